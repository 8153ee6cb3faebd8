"""Local image generation with Hugging Face diffusers: any pipeline folder or Hub id, on this machine.

Text-to-image, image-to-image and inpainting run on a text-to-image checkpoint (or a dedicated
inpainting one); upscaling needs an upscaler. What a checkpoint is lives in diffusers_checkpoints,
its parameters in diffusers_params, loading and caching in diffusers_pipelines, the input and
output images in diffusers_images. torch, diffusers and transformers are imported inside the
functions that need them, so that importing this module (which the registry does to list
providers) stays cheap.
"""

from __future__ import annotations

import inspect
import math
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import Canceled, CreatorError, InvalidInput, ProviderError
from core.types import (
    CancelToken,
    ModelRef,
    ModelSpec,
    Progress,
    ProgressCallback,
    ProviderRequest,
    ProviderResult,
    Task,
    Usage,
)
from providers.diffusers_checkpoints import HUB_ID, looks_like_path, read_json, task_served
from providers.diffusers_images import decode_image, decode_mask, fitted, keep_unmasked, png_output
from providers.diffusers_params import input_limits, model_spec
from providers.diffusers_pipelines import PipelineCache, first_line, pick_device, pick_dtype

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from PIL import Image

ParamValues = dict[str, Any]


@dataclass(frozen=True)
class EditImages:
    """The input image fitted to the model, and for inpainting the mask at the same size."""

    image: Image.Image | None = None
    mask: Image.Image | None = None


class DiffusersProvider:
    """Runs diffusers image pipelines locally; keeps the last few loaded models warm."""

    name = "diffusers"
    local = True

    def __init__(self, max_cached: int = 2) -> None:
        self._cache = PipelineCache(max_cached)
        # One pipeline object cannot run two calls at once (the scheduler and the interrupt
        # flag are instance state, and pipelines of one model share their scheduler), and one
        # GPU runs one model at a time anyway.
        self._lock = threading.Lock()

    @property
    def loads(self) -> int:
        """How many times a model has been loaded from disk by this provider."""
        return self._cache.loads

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """Check that `source` is a pipeline folder or a Hub id that can serve `task`; name it."""
        source = source.strip()
        if looks_like_path(source):
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise InvalidInput(f"There is no folder at '{source}'.")
            index = read_json(str(folder), "model_index.json")
            if index is None:
                raise InvalidInput(
                    f"'{source}' is not a diffusers pipeline folder: it has no readable model_index.json."
                )
            served = task_served(source, index, task)
            folder = folder.resolve()
            return ModelRef(folder.name, self.name, str(folder), served)
        if HUB_ID.fullmatch(source):
            # Offline we can only check a Hub model whose index is already in the local cache.
            served = task_served(source, read_json(source, "model_index.json"), task)
            return ModelRef(source.rsplit("/", 1)[1], self.name, source, served)
        raise InvalidInput(
            f"'{source}' is neither a local pipeline folder nor a Hugging Face Hub id like 'org/name'."
        )

    def describe(self, model: ModelRef) -> ModelSpec:
        """Parameters for the model's task, with defaults read from its configs."""
        return model_spec(model)

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """Make one PNG; the model is loaded on first use and kept for the next calls."""
        if cancel.canceled:
            raise Canceled("Canceled before the model started.")
        model = request.model
        index = read_json(model.source, "model_index.json")
        if index is not None:  # the folder may have changed (or a Hub model arrived) since resolve
            task_served(model.source, index, model.task)
        params = {p.name: request.params.get(p.name, p.default) for p in self.describe(model).params}
        _check_strength(model.task, params)
        images = _edit_images(request)  # refuse a bad upload before any model is loaded
        import torch

        seed = request.seed if request.seed is not None else random.randrange(2**32)
        device = pick_device(torch)
        dtype = pick_dtype(torch, device, model.source)
        with self._lock:
            try:
                pipe = self._cache.pipeline(model.source, model.task, device, dtype)
                return _run(pipe, request, params, images, seed, device, progress, cancel)
            except CreatorError:
                raise
            except Exception as exc:
                raise _translate(exc, torch, device, _size_text(params, images)) from exc

    def build_tiny(self, path: Path, task: Task | None = None) -> str:
        """Write a tiny random-weight pipeline for `task` into `path` (text-to-image, 64×64, by default)."""
        from providers.diffusers_tiny import build_tiny

        return build_tiny(Path(path), task)


def _edit_images(request: ProviderRequest) -> EditImages:
    """The uploads an edit needs, decoded and fitted to the model; InvalidInput when missing or bad."""
    task = request.model.task
    if task is Task.TEXT_TO_IMAGE:
        return EditImages()
    smallest, largest = input_limits(request.model)
    image = fitted(decode_image(request.inputs.get("image"), "image"), smallest, largest)
    if task is Task.INPAINT:
        return EditImages(image, decode_mask(request.inputs.get("mask"), image.size))
    return EditImages(image)


def _check_strength(task: Task, params: ParamValues) -> None:
    """Refuse a strength so low that no denoising step would run (diffusers would fail later)."""
    if task not in (Task.IMAGE_TO_IMAGE, Task.INPAINT):
        return
    steps, strength = int(params["steps"]), float(params["strength"])
    if int(steps * strength) < 1:
        raise InvalidInput(
            f"With {steps} steps, a strength of {strength:g} runs no step at all: "
            f"raise the strength to at least {math.ceil(100 / steps) / 100:g} or add steps."
        )


class _StopRequested(Exception):
    """Raised from a legacy step callback to leave the denoising loop when the user cancels."""


def _run(
    pipe: DiffusionPipeline,
    request: ProviderRequest,
    params: ParamValues,
    images: EditImages,
    seed: int,
    device: str,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> ProviderResult:
    """Call the pipeline once with progress and cancellation; time it; encode the PNG."""
    import torch

    steps = int(params["steps"])
    done = 0
    interrupted = False

    def total() -> int:
        # num_timesteps is what the loop really runs (second-order schedulers run more, an
        # image-to-image strength below 1 fewer); older pipelines do not set it.
        return int(getattr(pipe, "num_timesteps", steps) or steps)

    def on_step_end(
        pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        nonlocal done, interrupted
        done = step + 1
        progress(Progress(done, total()))
        if cancel.canceled:
            # diffusers 0.42 resets `_interrupt` at the start of each call and, once it is set,
            # skips (`continue`s) the remaining denoising steps; it still decodes the latents,
            # and we throw that image away below.
            pipe._interrupt = True
            interrupted = True
        return tensors

    def on_legacy_step(step: int, timestep: Any, latents: Any) -> None:
        # Pipelines with only the old `callback` (the x4 upscaler) have no interrupt flag:
        # leaving the loop by raising is the only way out, and it skips the decoding too.
        nonlocal done
        done = step + 1
        progress(Progress(done, total()))
        if cancel.canceled:
            raise _StopRequested

    kwargs = _call_arguments(request, params, images)
    kwargs["generator"] = torch.Generator(device=device).manual_seed(seed)
    accepted = inspect.signature(pipe.__call__).parameters
    if "callback_on_step_end" in accepted:
        kwargs["callback_on_step_end"] = on_step_end
    else:
        kwargs.update(callback=on_legacy_step, callback_steps=1)
    # Pipelines differ (FLUX takes no negative prompt, SD img2img no size): pass what this one accepts.
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}

    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    try:
        made = pipe(**kwargs).images
    except _StopRequested:
        interrupted = True
        made = []
    if device == "cuda":
        torch.cuda.synchronize()  # GPU work is asynchronous: wait for it before reading the clock
    seconds = time.perf_counter() - started

    if interrupted:
        raise Canceled(f"Canceled after {done} of {total()} steps.")
    if images.image is not None and images.mask is not None:
        made = [keep_unmasked(image, images.image, images.mask) for image in made]
    outputs = [png_output(image) for image in made]
    dtype = str(pipe.dtype).removeprefix("torch.")
    info: dict[str, Any] = {"device": device, "dtype": dtype, "steps": total()}
    if images.image is not None:
        info["input_size"] = list(images.image.size)
    return ProviderResult(
        outputs=outputs, usage=Usage(images=len(outputs), gpu_seconds=seconds), seed=seed, info=info
    )


def _call_arguments(request: ProviderRequest, params: ParamValues, images: EditImages) -> dict[str, Any]:
    """The pipeline call's keyword arguments for the request's task (before filtering)."""
    task = request.model.task
    kwargs: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or None,
        "num_inference_steps": int(params["steps"]),
        "guidance_scale": float(params["guidance_scale"]),
    }
    if images.image is None:
        kwargs.update(width=int(params["width"]), height=int(params["height"]))
        return kwargs
    kwargs.update(image=images.image, width=images.image.width, height=images.image.height)
    if task in (Task.IMAGE_TO_IMAGE, Task.INPAINT):
        kwargs["strength"] = float(params["strength"])
    if task is Task.INPAINT:
        kwargs["mask_image"] = images.mask
    if task is Task.UPSCALE:
        kwargs["noise_level"] = int(params["noise_level"])
    return kwargs


def _size_text(params: ParamValues, images: EditImages) -> str:
    """The size the model worked at, for error messages."""
    if images.image is not None:
        return f"{images.image.width}×{images.image.height}"
    return f"{params['width']}×{params['height']}"


def _translate(exc: Exception, torch: Any, device: str, size: str) -> ProviderError:
    """A torch/diffusers failure as a ProviderError whose message is safe to show."""
    out_of_memory = isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )
    if out_of_memory:
        if device == "cuda":
            torch.cuda.empty_cache()
        return ProviderError(
            f"The model ran out of GPU memory at {size}. "
            "Try a smaller size, or free the GPU for other work first.",
            retryable=False,
        )
    return ProviderError(f"The local model failed ({type(exc).__name__}: {first_line(exc)}).")
