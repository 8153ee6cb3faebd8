"""A tiny random-weight Stable Diffusion pipeline, built offline, for tests and demos.

It goes through `save_pretrained`, so it loads back through the very `from_pretrained` path a
real checkpoint uses. Its images are noise: check sizes and determinism, not content.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_SIZE = 32  # latents; the 2-level VAE doubles it, so images are 64×64
PROMPT_LENGTH = 77  # CLIP's context length, which Stable Diffusion pipelines pad to


def build_tiny_pipeline(path: Path) -> str:
    """Write the pipeline into `path` (created if needed) and return the folder as a string."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline
    from diffusers import UNet2DConditionModel as UNet

    torch.manual_seed(0)  # the same weights every time, so tests and demos are reproducible
    tokenizer, text_encoder = _clip_text_parts()
    unet = UNet(
        sample_size=SAMPLE_SIZE,
        block_out_channels=(4, 8),
        layers_per_block=1,
        norm_num_groups=2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 8),
        norm_num_groups=2,
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,  # without it diffusers warns that the config is outdated
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path)
    return str(path.resolve())


def _clip_text_parts() -> tuple[object, object]:
    """A CLIP tokenizer from a hand-written vocabulary and a matching 32-wide text encoder."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    # The byte-level alphabet, plus an end-of-word form of each character, covers any text
    # without merges, so no vocabulary has to come from the Hub.
    alphabet = sorted(ByteLevel.alphabet())
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=PROMPT_LENGTH)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=PROMPT_LENGTH,
        projection_dim=32,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    return tokenizer, CLIPTextModel(config)
