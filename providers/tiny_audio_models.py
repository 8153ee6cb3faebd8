"""Tiny random-weight audio models (AudioLDM2, Stable Audio, MusicGen, VITS), built offline.

Each builder writes its model with `save_pretrained`, so it loads back through the very
`from_pretrained` path a real checkpoint uses. Tokenizers come from hand-written vocabularies,
so nothing touches the Hub. The sound is noise: check lengths, sample rates and determinism.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROMPT_LENGTH = 77
# Characters a tiny T5 tokenizer knows; anything else becomes <unk>, which is fine for noise.
T5_CHARACTERS = "▁abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"


def build_tiny_audioldm2(path: Path) -> str:
    """An AudioLDM2 pipeline (16 kHz mono) sized as in diffusers' own test; ~0.1 s per second of audio."""
    import torch
    from diffusers import (
        AudioLDM2Pipeline,
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
        AutoencoderKL,
        DDIMScheduler,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        GPT2Config,
        GPT2LMHeadModel,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
    )

    torch.manual_seed(0)  # the same weights every time, so tests and demos are reproducible
    unet = AudioLDM2UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=([None, 16, 32], [None, 16, 32]),
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=1,
        out_channels=1,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
    )
    tokenizer = _roberta_tokenizer()
    text_config = ClapTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        hidden_size=16,
        intermediate_size=37,
        num_attention_heads=2,
        num_hidden_layers=2,
        vocab_size=len(tokenizer.get_vocab()),
        max_position_embeddings=PROMPT_LENGTH + 3,  # Roberta positions start after the padding id
        projection_dim=16,
    )
    audio_config = ClapAudioConfig(
        spec_size=64,
        window_size=4,
        num_mel_bins=64,
        intermediate_size=37,
        depths=[2, 2],
        num_attention_heads=[2, 2],
        num_hidden_layers=2,
        hidden_size=192,
        projection_dim=16,
        patch_size=2,
        patch_stride=2,
        patch_embed_input_channels=4,
    )
    clap = ClapModel(
        ClapConfig(text_config=text_config.to_dict(), audio_config=audio_config.to_dict(), projection_dim=16)
    )
    # Only used to rank several waveforms per prompt; built directly instead of fetched.
    feature_extractor = ClapFeatureExtractor(feature_size=64, hop_length=7900)
    tokenizer_2, text_encoder_2 = _t5_parts(d_model=32)
    language_model = GPT2LMHeadModel(
        GPT2Config(
            n_embd=16, n_head=2, n_layer=2, vocab_size=1000, n_positions=99, bos_token_id=0, eos_token_id=0
        )
    )
    language_model.config.max_new_tokens = 8
    projection_model = AudioLDM2ProjectionModel(
        text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16
    )
    # diffusers' test vocoder upsamples ×4 and takes ~11 s per second of audio; ×256 takes ~0.1 s.
    vocoder = SpeechT5HifiGan(
        SpeechT5HifiGanConfig(
            model_in_dim=8,
            sampling_rate=16000,
            upsample_initial_channel=16,
            upsample_rates=[8, 8, 4],
            upsample_kernel_sizes=[16, 16, 8],
            resblock_kernel_sizes=[3, 7],
            resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
            normalize_before=False,
        )
    )
    pipe = AudioLDM2Pipeline(
        vae=vae,
        text_encoder=clap,
        text_encoder_2=text_encoder_2,
        projection_model=projection_model,
        language_model=language_model,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        feature_extractor=feature_extractor,
        unet=unet,
        scheduler=scheduler,
        vocoder=vocoder,
    )
    return _saved(pipe, path)


def build_tiny_stable_audio(path: Path) -> str:
    """A Stable Audio pipeline at 44.1 kHz stereo with the real hop (2048), up to ~1 s long."""
    import torch
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )

    torch.manual_seed(0)
    # Stable Audio always denoises `sample_size` latents and cuts the audio afterwards:
    # 22 latents × 2048 samples / 44100 Hz ≈ 1.02 s is this model's longest sound.
    transformer = StableAudioDiTModel(
        sample_size=22,
        in_channels=3,
        num_layers=2,
        attention_head_dim=4,
        num_key_value_attention_heads=2,
        out_channels=3,
        cross_attention_dim=4,
        time_proj_dim=8,
        global_states_input_dim=8,
        cross_attention_input_dim=4,
    )
    scheduler = CosineDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    vae = AutoencoderOobleck(
        encoder_hidden_size=4,
        downsampling_ratios=[2, 4, 4, 8, 8],
        channel_multiples=[1, 2, 2, 4, 4],
        decoder_channels=4,
        decoder_input_channels=3,
        audio_channels=2,
        sampling_rate=44100,
    )
    tokenizer, text_encoder = _t5_parts(d_model=32)
    projection_model = StableAudioProjectionModel(
        text_encoder_dim=32, conditioning_dim=4, min_value=0, max_value=32
    )
    pipe = StableAudioPipeline(
        vae=vae,
        text_encoder=text_encoder,
        projection_model=projection_model,
        tokenizer=tokenizer,
        transformer=transformer,
        scheduler=scheduler,
    )
    return _saved(pipe, path)


def build_tiny_musicgen(path: Path) -> str:
    """A MusicGen model (16 kHz mono, 50 frames a second, 4 codebooks) with its processor beside it."""
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        GenerationConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
    )

    torch.manual_seed(0)
    tokenizer, text_encoder = _t5_parts(d_model=16)
    audio_encoder = EncodecConfig(
        sampling_rate=16000,
        hidden_size=16,
        num_filters=4,
        num_lstm_layers=1,
        codebook_size=64,
        upsampling_ratios=[8, 5, 4, 2],  # hop 320: 50 frames a second, as real MusicGen
        target_bandwidths=[1.2],  # 1200 bit/s ÷ (50 frames × 6 bits) = 4 codebooks
    )
    # Token 64 (one past the codebook) is MusicGen's pad/start token, exactly as 2048 is for the
    # real models; transformers warns that it lies outside the vocabulary, which is expected.
    decoder = MusicgenDecoderConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        ffn_dim=32,
        max_position_embeddings=2048,
        num_codebooks=4,
        # Wider random weights give peaked logits, so temperature and guidance audibly matter.
        initializer_factor=1.0,
        pad_token_id=64,
        bos_token_id=64,
        decoder_start_token_id=64,
    )
    config = MusicgenConfig(
        text_encoder=text_encoder.config.to_dict(),
        audio_encoder=audio_encoder.to_dict(),
        decoder=decoder.to_dict(),
    )
    model = MusicgenForConditionalGeneration(config)
    # Encodec starts with all-zero codebooks (real ones are learned), which would decode every
    # token sequence to the same sound; random codebooks make different music sound different.
    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
    # Real checkpoints carry their sampling defaults here; assign a fresh object so that it is
    # what save_pretrained writes (edits to the derived one can be lost on reload).
    model.generation_config = GenerationConfig(
        do_sample=True,
        guidance_scale=3.0,
        top_k=250,
        max_length=1500,
        pad_token_id=64,
        bos_token_id=64,
        decoder_start_token_id=64,
    )
    processor = MusicgenProcessor(
        feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=16000), tokenizer=tokenizer
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return str(path.resolve())


def build_tiny_vits(path: Path) -> str:
    """A VITS (MMS-TTS style) voice at 16 kHz with a character vocabulary; hop 256."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    # MMS-TTS voices read characters, not phonemes: a hand-written vocab.json is all they need.
    characters = " '-abcdefghijklmnopqrstuvwxyz"
    vocab = {"<pad>": 0, "<unk>": 1, **{c: i + 2 for i, c in enumerate(characters)}}
    vocab_file = path / "vocab.json"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = VitsTokenizer(str(vocab_file), phonemize=False, add_blank=True, normalize=True)
    config = VitsConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        ffn_dim=16,
        flow_size=16,
        spectrogram_bins=9,
        upsample_initial_channel=16,
        upsample_rates=[8, 8, 4],
        upsample_kernel_sizes=[16, 16, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3, 5]],
        duration_predictor_filter_channels=16,
        duration_predictor_num_flows=2,
        prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=2,
        posterior_encoder_num_wavenet_layers=2,
        # A random stochastic duration predictor gives each character seconds of sound (a
        # 30-character text became 36 s); the deterministic one gives about one frame each.
        use_stochastic_duration_prediction=False,
        sampling_rate=16000,
        pad_token_id=0,
    )
    VitsModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path.resolve())


def _saved(pipe: Any, path: Path) -> str:
    """Write a diffusers pipeline into `path` (created if needed) and return the folder."""
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path)
    return str(path.resolve())


def _t5_parts(d_model: int) -> tuple[Any, Any]:
    """A character-level T5 tokenizer (no sentencepiece file) and a matching tiny T5 encoder."""
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *((c, -1.0) for c in T5_CHARACTERS)]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=PROMPT_LENGTH)
    config = T5Config(vocab_size=len(pieces), d_model=d_model, d_ff=37, d_kv=8, num_heads=2, num_layers=2)
    return tokenizer, T5EncoderModel(config)


def _roberta_tokenizer() -> Any:
    """A byte-level Roberta tokenizer (CLAP's) that covers any text without merges."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizer

    tokens = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", *sorted(ByteLevel.alphabet())]
    vocab = {token: i for i, token in enumerate(tokens)}
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=PROMPT_LENGTH)
