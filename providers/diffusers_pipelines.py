"""Loaded diffusers pipelines: which device and precision, loading from disk, and the LRU cache.

The pipelines of one model source form a family that shares one set of weights: the first task
asked for loads them with `from_pretrained`, the others are made from it with `from_pipe`, which
reuses the modules in memory. The cache evicts whole families, least recently used first.
torch and diffusers are imported inside the functions that need them.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import CreatorError, InvalidInput, ModelUnavailable, ProviderError
from core.types import Task
from providers.diffusers_checkpoints import HUB_ID, UPSCALER_CLASS, read_json

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

FamilyKey = tuple[str, str, "torch.dtype"]  # source, device, dtype


class PipelineCache:
    """The last few model families loaded, by (source, device, dtype); not thread-safe: lock around it."""

    def __init__(self, max_cached: int) -> None:
        if max_cached < 1:
            raise ValueError("max_cached must be at least 1")
        self._max_cached = max_cached
        self._families: OrderedDict[FamilyKey, dict[Task, DiffusionPipeline]] = OrderedDict()
        self.loads = 0

    def pipeline(self, source: str, task: Task, device: str, dtype: torch.dtype) -> DiffusionPipeline:
        """The pipeline doing `task` for `source`, from the cache, made from a cached sibling, or loaded."""
        key = (source, device, dtype)
        family = self._families.get(key)
        if family is not None:
            self._families.move_to_end(key)
            if task not in family:
                family[task] = _quiet(_sibling(next(iter(family.values())), task, source))
            return family[task]
        # Make room before loading, so two large models never sit in GPU memory at once.
        while len(self._families) >= self._max_cached:
            _, evicted = self._families.popitem(last=False)
            evicted.clear()
            if device == "cuda":
                import torch

                gc.collect()  # drop reference cycles so the memory can really be returned
                torch.cuda.empty_cache()
        pipe = _quiet(_load(source, task, dtype).to(device))
        self.loads += 1
        self._families[key] = {task: pipe}
        return pipe


def pick_device(torch: Any) -> str:
    """The fastest device here: cuda, then Apple's mps, then cpu."""
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(torch: Any, device: str, source: str) -> torch.dtype:
    """Half precision on accelerators, float32 on CPU (where half is slow or unsupported)."""
    if device == "cpu":
        return torch.float32
    if device == "cuda" and torch.cuda.is_bf16_supported():
        index = read_json(source, "model_index.json") or {}
        # FLUX is trained in bfloat16 and overflows in float16.
        if str(index.get("_class_name", "")).startswith("Flux"):
            return torch.bfloat16
    return torch.float16


def _load(source: str, task: Task, dtype: torch.dtype) -> DiffusionPipeline:
    """The pipeline for `task` read from disk (or the Hub when online)."""
    import diffusers

    if task is Task.UPSCALE:
        loader: Any = diffusers.DiffusionPipeline
    else:
        loader = _auto_pipeline(diffusers, task)
    try:
        pipe = loader.from_pretrained(source, dtype=dtype)
    except OSError as exc:
        raise _load_error(source, exc) from exc
    except ValueError as exc:
        raise _no_pipeline_for(source, task, exc) from exc
    if task is Task.UPSCALE and type(pipe).__name__ != UPSCALER_CLASS:
        # Only possible for a Hub model resolved before its files were here.
        raise InvalidInput(f"'{source}' holds a {type(pipe).__name__}, not an upscaler ({UPSCALER_CLASS}).")
    return pipe


def _sibling(pipe: DiffusionPipeline, task: Task, source: str) -> DiffusionPipeline:
    """A pipeline for `task` sharing `pipe`'s modules (no new weights in memory)."""
    import diffusers

    if task is Task.UPSCALE or type(pipe).__name__ == UPSCALER_CLASS:
        raise InvalidInput(f"'{source}' cannot do both {task.value} and what it is loaded for.")
    try:
        return _auto_pipeline(diffusers, task).from_pipe(pipe)
    except ValueError as exc:
        raise _no_pipeline_for(source, task, exc) from exc


def _auto_pipeline(diffusers: Any, task: Task) -> Any:
    """diffusers' AutoPipeline class for an image task."""
    return {
        Task.TEXT_TO_IMAGE: diffusers.AutoPipelineForText2Image,
        Task.IMAGE_TO_IMAGE: diffusers.AutoPipelineForImage2Image,
        Task.INPAINT: diffusers.AutoPipelineForInpainting,
    }[task]


def _quiet(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """`pipe` without its console progress bar (we report progress through our callback)."""
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _no_pipeline_for(source: str, task: Task, exc: ValueError) -> CreatorError:
    """The AutoPipeline found no `task` form of this model family (or refused another way)."""
    if "can't find a pipeline" in str(exc):
        return InvalidInput(f"diffusers has no {task.value} pipeline for the model in '{source}'.")
    return ProviderError(f"Could not load the model in '{source}' ({first_line(exc)}).")


def _load_error(source: str, exc: OSError) -> ProviderError:
    """Why a pipeline could not be loaded, and for a Hub model how to get it onto this machine."""
    if Path(source).is_dir():
        return ProviderError(f"Could not read the model in '{source}' ({first_line(exc)}).")
    if not HUB_ID.fullmatch(source):
        return ModelUnavailable(f"There is no model folder at '{source}' on this machine any more.")
    # Offline, or the download failed: either way the files are not here.
    return ModelUnavailable(
        f"The model '{source}' is not on this machine and could not be downloaded. "
        f"Run `creator models pull {source}` on a machine with internet access."
    )


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an error message, shortened: enough to act on, no traceback."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
