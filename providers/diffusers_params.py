"""The parameters each image task takes on a local diffusers model, with defaults from its configs.

Read from JSON only (no torch, no weights), so the core can list models and validate requests
cheaply. Names are shared with the hosted providers where the meaning is the same.
"""

from __future__ import annotations

from core.types import ModelRef, ModelSpec, ParamSpec, Task
from providers.diffusers_checkpoints import max_noise_level, sample_size, vae_scale_factor

FALLBACK_SIZE = 512  # when the model's configs are not on this machine
DEFAULT_STEPS = 25
UPSCALE_STEPS = 20
TINY_STEPS = 4
TINY_SAMPLE_SIZE = 32  # a latent this small is a test/demo model: a few steps are plenty
DEFAULT_GUIDANCE = 7.5
UPSCALE_GUIDANCE = 9.0  # StableDiffusionUpscalePipeline's own default
UPSCALE_NOISE_LEVEL = 20
MIN_SIZE, MAX_SIZE, SIZE_STEP = 64, 2048, 8
MIN_UPSCALE_INPUT = 16
X4_UPSCALER_FACTOR = 4  # when the upscaler's VAE config is not on this machine
DEFAULT_STRENGTH = {Task.IMAGE_TO_IMAGE: 0.6, Task.INPAINT: 1.0}


def model_spec(model: ModelRef) -> ModelSpec:
    """What `model` does for its task and the parameters it takes there."""
    if model.task is Task.UPSCALE:
        return _upscale_spec(model)
    latent = sample_size(model.source)
    if latent is None:
        native, steps = FALLBACK_SIZE, DEFAULT_STEPS
    else:
        native = clamp_size(latent * vae_scale_factor(model.source))
        steps = TINY_STEPS if latent <= TINY_SAMPLE_SIZE else DEFAULT_STEPS
    common = (_steps(steps), _guidance(DEFAULT_GUIDANCE))
    if model.task is Task.TEXT_TO_IMAGE:
        description = f"Local diffusers pipeline '{model.name}', native size {native}×{native}."
        return ModelSpec(Task.TEXT_TO_IMAGE, (*_sizes(native), *common), description)
    strength = _strength(DEFAULT_STRENGTH[model.task], model.task)
    action = "Repaints the white area of a mask" if model.task is Task.INPAINT else "Reworks an input image"
    description = (
        f"Local diffusers pipeline '{model.name}'. {action}; the output has the input's size, "
        f"fitted to {MIN_SIZE}–{MAX_SIZE} px a side on the {SIZE_STEP}-pixel grid "
        f"(native size {native}×{native})."
    )
    return ModelSpec(model.task, (*common, strength), description)


def input_limits(model: ModelRef) -> tuple[int, int]:
    """The smallest and largest side an input image is fitted to for `model`'s task."""
    if model.task is Task.UPSCALE:
        largest = MAX_SIZE // upscale_factor(model.source)
        return MIN_UPSCALE_INPUT, max(MIN_UPSCALE_INPUT, largest - largest % SIZE_STEP)
    return MIN_SIZE, MAX_SIZE


def upscale_factor(source: str) -> int:
    """How many times larger an upscaler's output is than its input."""
    return vae_scale_factor(source, unknown=X4_UPSCALER_FACTOR)


def clamp_size(size: int) -> int:
    """A size within the accepted range, on the 8-pixel grid."""
    return max(MIN_SIZE, min(MAX_SIZE, size - size % SIZE_STEP))


def _upscale_spec(model: ModelRef) -> ModelSpec:
    latent = sample_size(model.source)
    steps = TINY_STEPS if latent is not None and latent <= TINY_SAMPLE_SIZE else UPSCALE_STEPS
    smallest, largest = input_limits(model)
    factor = upscale_factor(model.source)
    noise = ParamSpec(
        "noise_level",
        kind="int",
        default=UPSCALE_NOISE_LEVEL,
        minimum=0,
        maximum=max_noise_level(model.source),
        step=1,
        label="Noise level",
        help="Noise added to the input first: more lets the model invent detail, less keeps it faithful.",
    )
    description = (
        f"Local diffusers upscaler '{model.name}': makes the input {factor}× larger "
        f"(inputs are fitted to {smallest}–{largest} px a side)."
    )
    return ModelSpec(Task.UPSCALE, (_steps(steps), _guidance(UPSCALE_GUIDANCE), noise), description)


def _sizes(native: int) -> tuple[ParamSpec, ...]:
    return tuple(
        ParamSpec(
            name,
            kind="int",
            default=native,
            minimum=MIN_SIZE,
            maximum=MAX_SIZE,
            step=SIZE_STEP,
            label=name.capitalize(),
            help="Pixels, a multiple of 8; the model's native size gives the best results.",
        )
        for name in ("width", "height")
    )


def _steps(default: int) -> ParamSpec:
    return ParamSpec(
        "steps",
        kind="int",
        default=default,
        minimum=1,
        maximum=150,
        step=1,
        label="Steps",
        help="Denoising steps: more is slower and often finer.",
    )


def _guidance(default: float) -> ParamSpec:
    return ParamSpec(
        "guidance_scale",
        kind="float",
        default=default,
        minimum=0.0,
        maximum=30.0,
        step=0.5,
        label="Guidance",
        help="How closely the image follows the prompt.",
    )


def _strength(default: float, task: Task) -> ParamSpec:
    keeps = "the masked area's" if task is Task.INPAINT else "the input's"
    return ParamSpec(
        "strength",
        kind="float",
        default=default,
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        label="Strength",
        help=f"How much to change: near 0 keeps {keeps} look, 1 repaints from scratch. "
        "Only this fraction of the steps runs.",
    )
