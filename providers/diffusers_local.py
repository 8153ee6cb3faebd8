"""Local text-to-image with Hugging Face diffusers: any pipeline folder or Hub id, on this machine.

torch, diffusers and transformers are imported inside the functions that need them, so that
importing this module (which the registry does to list providers) stays cheap.
"""

from __future__ import annotations

import gc
import inspect
import io
import json
import random
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import Canceled, CreatorError, InvalidInput, ModelUnavailable, ProviderError
from core.types import (
    CancelToken,
    ModelRef,
    ModelSpec,
    Output,
    ParamSpec,
    Progress,
    ProgressCallback,
    ProviderRequest,
    ProviderResult,
    Task,
    Usage,
)

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
FALLBACK_SIZE = 512  # when the model's configs are not on this machine
DEFAULT_STEPS = 25
TINY_STEPS = 4
TINY_SAMPLE_SIZE = 32  # a latent this small is a test/demo model: a few steps are plenty
DEFAULT_GUIDANCE = 7.5
MIN_SIZE, MAX_SIZE, SIZE_STEP = 64, 2048, 8

# AutoPipelineForText2Image maps any pipeline of a family to its text-to-image sibling, so it
# would happily load an inpainting or ControlNet checkpoint that then fails or needs an image.
# Class names are the only cheap signal (no torch import); these mark pipelines that need more
# than a prompt or make something other than an image.
OTHER_TASK_MARKERS = (
    "Img2Img",
    "Image2Image",
    "ImageToImage",
    "Inpaint",
    "Upscale",
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

ParamValues = dict[str, Any]
CacheKey = tuple[str, str, "torch.dtype"]


class DiffusersProvider:
    """Runs diffusers text-to-image pipelines locally; keeps the last few loaded pipelines warm."""

    name = "diffusers"
    local = True

    def __init__(self, max_cached: int = 2) -> None:
        if max_cached < 1:
            raise ValueError("max_cached must be at least 1")
        self._max_cached = max_cached
        self._pipelines: OrderedDict[CacheKey, DiffusionPipeline] = OrderedDict()
        self._loads = 0
        # One pipeline object cannot run two calls at once (the scheduler and the interrupt
        # flag are instance state), and one GPU runs one model at a time anyway.
        self._lock = threading.Lock()

    @property
    def loads(self) -> int:
        """How many times a pipeline has been loaded from disk by this provider."""
        return self._loads

    def resolve(self, source: str) -> ModelRef:
        """Check that `source` is a text-to-image pipeline folder or a Hub id; name it."""
        source = source.strip()
        if _looks_like_path(source):
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise InvalidInput(f"There is no folder at '{source}'.")
            index = _read_json(str(folder), "model_index.json")
            if index is None:
                raise InvalidInput(
                    f"'{source}' is not a diffusers pipeline folder: it has no readable model_index.json."
                )
            _check_text_to_image(index, source)
            folder = folder.resolve()
            return ModelRef(folder.name, self.name, str(folder), Task.TEXT_TO_IMAGE)
        if HUB_ID.fullmatch(source):
            # Offline we can only check a Hub model whose index is already in the local cache.
            index = _read_json(source, "model_index.json")
            if index is not None:
                _check_text_to_image(index, source)
            return ModelRef(source.rsplit("/", 1)[1], self.name, source, Task.TEXT_TO_IMAGE)
        raise InvalidInput(
            f"'{source}' is neither a local pipeline folder nor a Hugging Face Hub id like 'org/name'."
        )

    def describe(self, model: ModelRef) -> ModelSpec:
        """Parameters with the model's native size as default, read from its configs."""
        sample_size = _sample_size(model.source)
        if sample_size is None:
            native, steps = FALLBACK_SIZE, DEFAULT_STEPS
        else:
            native = _clamp_size(sample_size * _vae_scale_factor(model.source))
            steps = TINY_STEPS if sample_size <= TINY_SAMPLE_SIZE else DEFAULT_STEPS
        size_help = "Pixels, a multiple of 8; the model's native size gives the best results."
        params = (
            *(
                ParamSpec(
                    name,
                    kind="int",
                    default=native,
                    minimum=MIN_SIZE,
                    maximum=MAX_SIZE,
                    step=SIZE_STEP,
                    label=name.capitalize(),
                    help=size_help,
                )
                for name in ("width", "height")
            ),
            ParamSpec(
                "steps",
                kind="int",
                default=steps,
                minimum=1,
                maximum=150,
                step=1,
                label="Steps",
                help="Denoising steps: more is slower and often finer.",
            ),
            ParamSpec(
                "guidance_scale",
                kind="float",
                default=DEFAULT_GUIDANCE,
                minimum=0.0,
                maximum=30.0,
                step=0.5,
                label="Guidance",
                help="How closely the image follows the prompt.",
            ),
        )
        description = f"Local diffusers pipeline '{model.name}', native size {native}×{native}."
        return ModelSpec(Task.TEXT_TO_IMAGE, params, description)

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """Make one PNG; the pipeline is loaded on first use and kept for the next calls."""
        if cancel.canceled:
            raise Canceled("Canceled before the model started.")
        import torch

        defaults = self.describe(request.model).params
        params = {p.name: request.params.get(p.name, p.default) for p in defaults}
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        device = _pick_device(torch)
        dtype = _pick_dtype(torch, device, request.model.source)
        with self._lock:
            try:
                pipe = self._pipeline(request.model.source, device, dtype)
                return _run(pipe, request, params, seed, device, progress, cancel)
            except CreatorError:
                raise
            except Exception as exc:
                raise _translate(exc, torch, device, params) from exc

    def build_tiny(self, path: Path) -> str:
        """Write a tiny random-weight Stable Diffusion pipeline (64×64) into `path`."""
        from providers.diffusers_tiny import build_tiny_pipeline

        return build_tiny_pipeline(Path(path))

    def _pipeline(self, source: str, device: str, dtype: torch.dtype) -> DiffusionPipeline:
        """The loaded pipeline for (source, device, dtype), from the cache or from disk."""
        key = (source, device, dtype)
        if key in self._pipelines:
            self._pipelines.move_to_end(key)
            return self._pipelines[key]
        # Make room before loading, so two large models never sit in GPU memory at once.
        while len(self._pipelines) >= self._max_cached:
            _, evicted = self._pipelines.popitem(last=False)
            del evicted
            if device == "cuda":
                import torch

                gc.collect()  # drop reference cycles so the memory can really be returned
                torch.cuda.empty_cache()
        from diffusers import AutoPipelineForText2Image

        try:
            pipe = AutoPipelineForText2Image.from_pretrained(source, dtype=dtype)
        except OSError as exc:
            raise _load_error(source, exc) from exc
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._loads += 1
        self._pipelines[key] = pipe
        return pipe


def _run(
    pipe: DiffusionPipeline,
    request: ProviderRequest,
    params: ParamValues,
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

    def on_step_end(
        pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        nonlocal done, interrupted
        done = step + 1
        # num_timesteps is what the loop really runs (second-order schedulers run more).
        progress(Progress(done, int(getattr(pipe, "num_timesteps", steps) or steps)))
        if cancel.canceled:
            # diffusers 0.42 resets `_interrupt` at the start of each call and, once it is set,
            # skips (`continue`s) the remaining denoising steps; it still decodes the latents,
            # and we throw that image away below.
            pipe._interrupt = True
            interrupted = True
        return tensors

    kwargs = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or None,
        "width": int(params["width"]),
        "height": int(params["height"]),
        "num_inference_steps": steps,
        "guidance_scale": float(params["guidance_scale"]),
        "generator": torch.Generator(device=device).manual_seed(seed),
        "callback_on_step_end": on_step_end,
    }
    # Some pipelines take no negative prompt (e.g. FLUX); pass only what this one accepts.
    accepted = inspect.signature(pipe.__call__).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}

    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    images = pipe(**kwargs).images
    if device == "cuda":
        torch.cuda.synchronize()  # GPU work is asynchronous: wait for it before reading the clock
    seconds = time.perf_counter() - started

    total = int(getattr(pipe, "num_timesteps", steps) or steps)
    if interrupted:
        raise Canceled(f"Canceled after {done} of {total} steps.")
    outputs = [_png_output(image) for image in images]
    return ProviderResult(
        outputs=outputs,
        usage=Usage(images=len(outputs), gpu_seconds=seconds),
        seed=seed,
        info={"device": device, "dtype": str(pipe.dtype).removeprefix("torch."), "steps": total},
    )


def _png_output(image: Any) -> Output:
    """A PIL image as a PNG Output."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Output(buffer.getvalue(), "image/png", width=image.width, height=image.height)


def _translate(exc: Exception, torch: Any, device: str, params: ParamValues) -> ProviderError:
    """A torch/diffusers failure as a ProviderError whose message is safe to show."""
    out_of_memory = isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )
    if out_of_memory:
        if device == "cuda":
            torch.cuda.empty_cache()
        return ProviderError(
            f"The model ran out of GPU memory at {params['width']}×{params['height']}. "
            "Try a smaller size, or free the GPU for other work first.",
            retryable=False,
        )
    return ProviderError(f"The local model failed ({type(exc).__name__}: {_first_line(exc)}).")


def _load_error(source: str, exc: OSError) -> ProviderError:
    """Why a pipeline could not be loaded, and for a Hub model how to get it onto this machine."""
    if Path(source).is_dir():
        return ProviderError(f"Could not read the model in '{source}' ({_first_line(exc)}).")
    if not HUB_ID.fullmatch(source):
        return ModelUnavailable(f"There is no model folder at '{source}' on this machine any more.")
    # Offline, or the download failed: either way the files are not here.
    return ModelUnavailable(
        f"The model '{source}' is not on this machine and could not be downloaded. "
        f"Run `creator models pull {source}` on a machine with internet access."
    )


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an error message, shortened: enough to act on, no traceback."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pick_device(torch: Any) -> str:
    """The fastest device here: cuda, then Apple's mps, then cpu."""
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _pick_dtype(torch: Any, device: str, source: str) -> torch.dtype:
    """Half precision on accelerators, float32 on CPU (where half is slow or unsupported)."""
    if device == "cpu":
        return torch.float32
    if device == "cuda" and torch.cuda.is_bf16_supported():
        index = _read_json(source, "model_index.json") or {}
        # FLUX is trained in bfloat16 and overflows in float16.
        if str(index.get("_class_name", "")).startswith("Flux"):
            return torch.bfloat16
    return torch.float16


def _looks_like_path(source: str) -> bool:
    """True when `source` names a folder rather than a Hub id ('org/name')."""
    if Path(source).expanduser().exists():
        return True
    if HUB_ID.fullmatch(source):
        return False
    return "/" in source or "\\" in source or source.startswith(("~", "."))


def _check_text_to_image(index: dict[str, Any], source: str) -> None:
    """Raise InvalidInput unless a model_index.json describes a text-to-image pipeline."""
    class_name = index.get("_class_name")
    if not isinstance(class_name, str) or not class_name.endswith("Pipeline"):
        raise InvalidInput(f"'{source}' is not a diffusers pipeline (no pipeline class named).")
    has_text_encoder = any(key.startswith("text_encoder") for key in index)
    if not has_text_encoder or any(marker in class_name for marker in OTHER_TASK_MARKERS):
        raise InvalidInput(
            f"'{source}' holds a {class_name}, which does not make images from a prompt alone."
        )


def _read_json(source: str, relative: str) -> dict[str, Any] | None:
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


def _sample_size(source: str) -> int | None:
    """The denoiser's latent size (UNet or transformer), or None when unknown here."""
    for component in ("unet", "transformer"):
        config = _read_json(source, f"{component}/config.json") or {}
        size = config.get("sample_size")
        if isinstance(size, int) and size > 0:
            return size
    return None


def _vae_scale_factor(source: str) -> int:
    """Pixels per latent: 2 per VAE level after the first (8 for most real models)."""
    channels = (_read_json(source, "vae/config.json") or {}).get("block_out_channels")
    return 2 ** (len(channels) - 1) if isinstance(channels, list) and channels else 8


def _clamp_size(size: int) -> int:
    """A size within the accepted range, on the 8-pixel grid."""
    return max(MIN_SIZE, min(MAX_SIZE, size - size % SIZE_STEP))
