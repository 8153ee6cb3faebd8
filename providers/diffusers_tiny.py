"""Tiny random-weight Stable Diffusion pipelines, built offline, for tests and demos.

They go through `save_pretrained`, so they load back through the very `from_pretrained` path a
real checkpoint uses. Their images are noise: check sizes and determinism, not content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.types import Task

SAMPLE_SIZE = 32  # latents; the 2-level VAE doubles it, so images are 64×64
PROMPT_LENGTH = 77  # CLIP's context length, which Stable Diffusion pipelines pad to
INPAINT_UNET_CHANNELS = 9  # noisy latents 4 + mask 1 + masked-image latents 4


def build_tiny(path: Path, task: Task | None = None) -> str:
    """Write the tiny pipeline that serves `task` into `path` and return the folder as a string.

    Text-to-image (the default) also serves image-to-image and inpainting through the same weights;
    Task.INPAINT builds a dedicated 9-channel inpainting checkpoint, Task.UPSCALE the x4 upscaler.
    """
    if task is Task.UPSCALE:
        return build_tiny_upscale_pipeline(path)
    if task is Task.INPAINT:
        return build_tiny_inpaint_pipeline(path)
    if task in (None, Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE):
        return build_tiny_pipeline(path)
    raise InvalidInput(f"There is no tiny diffusers image model for {task.value}.")


def build_tiny_pipeline(path: Path) -> str:
    """Write the text-to-image pipeline into `path` (created if needed) and return the folder."""
    from diffusers import StableDiffusionPipeline

    return _save(StableDiffusionPipeline, _sd_components(in_channels=4), path)


def build_tiny_inpaint_pipeline(path: Path) -> str:
    """Write a 9-channel inpainting pipeline (like stable-diffusion-inpainting) into `path`."""
    from diffusers import StableDiffusionInpaintPipeline

    return _save(StableDiffusionInpaintPipeline, _sd_components(in_channels=INPAINT_UNET_CHANNELS), path)


def build_tiny_upscale_pipeline(path: Path) -> str:
    """Write an x4 upscaler (32×32 in, 128×128 out) sized like diffusers' own upscaler test."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionUpscalePipeline
    from diffusers import UNet2DConditionModel as UNet

    torch.manual_seed(0)
    tokenizer, text_encoder = clip_text_parts()
    unet = UNet(
        block_out_channels=(32, 32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=7,  # 4 latent channels + the 3 channels of the low-res image
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        use_linear_projection=True,
        only_cross_attention=(True, True, False),
        # The noise level added to the low-res image is a class label: the real upscaler's 1000
        # labels (diffusers' test has 100) let every noise level up to max_noise_level through.
        num_class_embeds=1000,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 32, 64],  # 3 levels: latents at the input size decode to 4× it
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=4,
        scaling_factor=0.08333,  # the real x4 upscaler's value; the default 0.18215 blows latents up
    )
    components = {
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "unet": unet,
        "low_res_scheduler": DDPMScheduler(),
        "scheduler": DDIMScheduler(prediction_type="v_prediction", steps_offset=1),
        "max_noise_level": 350,
    }
    return _save(StableDiffusionUpscalePipeline, components, path)


def _sd_components(in_channels: int) -> dict[str, Any]:
    """The modules of a tiny Stable Diffusion 1.x pipeline whose UNet takes `in_channels`."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler
    from diffusers import UNet2DConditionModel as UNet

    torch.manual_seed(0)  # the same weights every time, so tests and demos are reproducible
    tokenizer, text_encoder = clip_text_parts()
    unet = UNet(
        sample_size=SAMPLE_SIZE,
        block_out_channels=(4, 8),
        layers_per_block=1,
        norm_num_groups=2,
        in_channels=in_channels,
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
    return {
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "unet": unet,
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


def _save(pipeline_class: Any, components: dict[str, Any], path: Path) -> str:
    """Assemble the pipeline, write it with save_pretrained and return the folder as a string."""
    pipe = pipeline_class(**components)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path)
    return str(path.resolve())


def clip_text_parts() -> tuple[Any, Any]:
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
