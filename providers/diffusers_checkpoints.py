"""What a diffusers checkpoint is and which image tasks it can serve, read from its JSON configs.

A checkpoint is a pipeline folder or a Hub id whose files are in the local Hugging Face cache.
Nothing here imports torch or diffusers, and nothing touches the network: the core calls this
when a model is added and every time it lists models.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.types import Task

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
UPSCALER_CLASS = "StableDiffusionUpscalePipeline"
INPAINT_UNET_CHANNELS = 9  # noisy latents 4 + mask 1 + masked-image latents 4
DEFAULT_MAX_NOISE_LEVEL = 350  # StableDiffusionUpscalePipeline's own default

# Class names are the only cheap signal (no torch import). These mark pipelines that need more
# than a prompt and an image (a control image, an image prompt, an edit instruction…) or that make
# something other than an image: this provider runs none of them.
UNSUPPORTED_MARKERS = (
    "Variation",
    "Pix2Pix",
    "Edit",
    "Control",
    "Kontext",
    "Prior",
    "Video",
    "Audio",
    "Music",
)
IMAGE_TO_IMAGE_MARKERS = ("Img2Img", "Image2Image", "ImageToImage")

# What a checkpoint of each natural task can also do with the same weights. A text-to-image model
# does image-to-image and (by the legacy mask-blend path) inpainting through diffusers'
# AutoPipelines; an inpainting UNet takes 9 input channels and an upscaler a low-res image, so
# neither can do anything else.
SERVED_TASKS: dict[Task, tuple[Task, ...]] = {
    Task.TEXT_TO_IMAGE: (Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE, Task.INPAINT),
    Task.IMAGE_TO_IMAGE: (Task.IMAGE_TO_IMAGE, Task.INPAINT),
    Task.INPAINT: (Task.INPAINT,),
    Task.UPSCALE: (Task.UPSCALE,),
}
IMAGE_TASKS = tuple(SERVED_TASKS)


def looks_like_path(source: str) -> bool:
    """True when `source` names a folder rather than a Hub id ('org/name')."""
    if Path(source).expanduser().exists():
        return True
    if HUB_ID.fullmatch(source):
        return False
    return "/" in source or "\\" in source or source.startswith(("~", "."))


def read_json(source: str, relative: str) -> dict[str, Any] | None:
    """A JSON file of the model from its folder or the local Hub cache; None when not here."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        file = folder / relative
    elif HUB_ID.fullmatch(source):
        from huggingface_hub import try_to_load_from_cache  # never touches the network

        cached = try_to_load_from_cache(source, relative)
        if not isinstance(cached, str):
            return None
        file = Path(cached)
    else:
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def task_served(source: str, index: dict[str, Any] | None, task: Task | None) -> Task:
    """The task `source` will run: `task`, or its natural task when None; InvalidInput if it cannot."""
    if task is not None and task not in IMAGE_TASKS:
        raise InvalidInput(f"The diffusers provider makes images; it cannot do {task.value}.")
    if index is None:
        # A Hub model that is not downloaded yet: nothing to check offline, so trust the caller.
        return task or Task.TEXT_TO_IMAGE
    natural = natural_task(source, index)
    if task is None or task in SERVED_TASKS[natural]:
        return task or natural
    class_name = index["_class_name"]
    if task is Task.UPSCALE:
        raise InvalidInput(
            f"'{source}' holds a {class_name}, which cannot upscale: upscaling needs an upscaler "
            f"pipeline ({UPSCALER_CLASS}), such as stabilityai/stable-diffusion-x4-upscaler."
        )
    if natural is Task.UPSCALE:
        raise InvalidInput(f"'{source}' is an upscaler ({class_name}): it can only upscale images.")
    if natural is Task.INPAINT:
        raise InvalidInput(
            f"'{source}' is an inpainting checkpoint ({class_name}): it needs a mask and can only inpaint."
        )
    raise InvalidInput(f"'{source}' holds a {class_name}, which does not make images from a prompt alone.")


def natural_task(source: str, index: dict[str, Any]) -> Task:
    """What a pipeline's model_index.json says it was made for; InvalidInput when we cannot run it."""
    class_name = index.get("_class_name")
    if not isinstance(class_name, str) or not class_name.endswith("Pipeline"):
        raise InvalidInput(f"'{source}' is not a diffusers pipeline (no pipeline class named).")
    has_text_encoder = any(key.startswith("text_encoder") for key in index)
    if not has_text_encoder or any(marker in class_name for marker in UNSUPPORTED_MARKERS):
        raise InvalidInput(
            f"'{source}' holds a {class_name}, which needs more than a prompt and an image, "
            "or makes something other than an image."
        )
    if class_name == UPSCALER_CLASS:
        return Task.UPSCALE
    if "Upscale" in class_name:
        raise InvalidInput(
            f"'{source}' holds a {class_name}; "
            f"the only upscaler this provider runs is the x4 {UPSCALER_CLASS}."
        )
    unet_channels = (read_json(source, "unet/config.json") or {}).get("in_channels")
    if "Inpaint" in class_name or unet_channels == INPAINT_UNET_CHANNELS:
        return Task.INPAINT
    if any(marker in class_name for marker in IMAGE_TO_IMAGE_MARKERS):
        return Task.IMAGE_TO_IMAGE
    return Task.TEXT_TO_IMAGE


def sample_size(source: str) -> int | None:
    """The denoiser's latent size (UNet or transformer), or None when unknown here."""
    for component in ("unet", "transformer"):
        config = read_json(source, f"{component}/config.json") or {}
        size = config.get("sample_size")
        if isinstance(size, int) and size > 0:
            return size
    return None


def vae_scale_factor(source: str, unknown: int = 8) -> int:
    """Pixels per latent: 2 per VAE level after the first (8 for most models, 4 for the x4 upscaler)."""
    channels = (read_json(source, "vae/config.json") or {}).get("block_out_channels")
    return 2 ** (len(channels) - 1) if isinstance(channels, list) and channels else unknown


def max_noise_level(source: str) -> int:
    """The most noise an upscaler accepts on its low-res input (`max_noise_level` in its index)."""
    level = (read_json(source, "model_index.json") or {}).get("max_noise_level")
    level = level if isinstance(level, int) and level >= 0 else DEFAULT_MAX_NOISE_LEVEL
    # The UNet takes the level as a class label: one beyond its labels fails inside torch.
    labels = (read_json(source, "unet/config.json") or {}).get("num_class_embeds")
    return min(level, labels - 1) if isinstance(labels, int) and labels > 0 else level
