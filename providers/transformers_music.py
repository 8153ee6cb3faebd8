"""Local music with MusicGen through transformers, on this machine.

Seeds: transformers' `generate` samples with torch's global random generator and takes no
`torch.Generator`, so a seed is applied with `torch.manual_seed` inside `torch.random.fork_rng`
(which puts the global state back afterwards) while the provider's lock is held. The same seed
gives the same music as long as nothing else in the process draws from torch's global generator
during the call; our other local providers use their own generators, so they do not.

Progress and cancellation come from a StoppingCriteria that transformers calls after every
token: it reports the token count and, when the caller cancels, leaves `generate` at once.
torch and transformers are imported inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

import gc
import io
import json
import math
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

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
MODEL_TYPE = "musicgen"
MIN_DURATION, MAX_DURATION = 0.5, 30.0
DEFAULT_DURATION, TINY_DURATION = 10.0, 1.0
DEFAULT_GUIDANCE, DEFAULT_TEMPERATURE = 3.0, 1.0
# A checkpoint this small is a test/demo model: a one-second default keeps demos quick.
TINY_WEIGHT_BYTES = 20_000_000

ParamValues = dict[str, Any]
CacheKey = tuple[str, str, "torch.dtype"]
Loaded = tuple[Any, Any]  # (MusicgenForConditionalGeneration, MusicgenProcessor)


class _Interrupted(Exception):
    """Raised from the stopping criterion to leave `generate` when the caller cancels."""


class MusicgenProvider:
    """Runs MusicGen text-to-music models locally; keeps the last few loaded models warm."""

    name = "musicgen"
    local = True

    def __init__(self, max_cached: int = 2) -> None:
        if max_cached < 1:
            raise ValueError("max_cached must be at least 1")
        self._max_cached = max_cached
        self._models: OrderedDict[CacheKey, Loaded] = OrderedDict()
        self._loads = 0
        # Seeding goes through torch's global generator, so calls must not overlap.
        self._lock = threading.Lock()

    @property
    def loads(self) -> int:
        """How many times a model has been loaded from disk by this provider."""
        return self._loads

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """Check that `source` is a MusicGen model (folder or Hub id); name it."""
        if task not in (None, Task.MUSIC):
            raise InvalidInput(f"The {self.name} provider makes music, not {task}.")
        source = source.strip()
        if _looks_like_path(source):
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise InvalidInput(f"There is no folder at '{source}'.")
            config = _read_json(str(folder), "config.json")
            if config is None:
                raise InvalidInput(f"'{source}' is not a transformers model folder: it has no config.json.")
            _check_musicgen(config, source)
            folder = folder.resolve()
            return ModelRef(folder.name, self.name, str(folder), Task.MUSIC)
        if HUB_ID.fullmatch(source):
            config = _read_json(source, "config.json")  # only when already in the local cache
            if config is not None:
                _check_musicgen(config, source)
            return ModelRef(source.rsplit("/", 1)[1], self.name, source, Task.MUSIC)
        raise InvalidInput(
            f"'{source}' is neither a local model folder nor a Hugging Face Hub id like 'org/name'."
        )

    def describe(self, model: ModelRef) -> ModelSpec:
        """Duration, guidance and temperature; the longest duration follows the model's positions."""
        longest = min(MAX_DURATION, _longest(model.source) or MAX_DURATION)
        tiny = _is_tiny(model.source)
        params = (
            ParamSpec(
                "duration_s",
                kind="float",
                default=min(longest, TINY_DURATION if tiny else DEFAULT_DURATION),
                minimum=MIN_DURATION,
                maximum=longest,
                step=0.5,
                label="Duration (s)",
                help="Length of the music in seconds; time grows with it, token by token.",
            ),
            ParamSpec(
                "guidance_scale",
                kind="float",
                default=DEFAULT_GUIDANCE,
                minimum=1.0,
                maximum=10.0,
                step=0.5,
                label="Guidance",
                help="How closely the music follows the prompt (1 turns guidance off).",
            ),
            ParamSpec(
                "temperature",
                kind="float",
                default=DEFAULT_TEMPERATURE,
                minimum=0.1,
                maximum=2.0,
                step=0.05,
                label="Temperature",
                help="Higher is more adventurous, lower more repetitive.",
            ),
        )
        description = f"Local MusicGen model '{model.name}' (negative prompts are not used)."
        return ModelSpec(Task.MUSIC, params, description)

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """Make one WAV; the model is loaded on first use and kept for the next calls."""
        if cancel.canceled:
            raise Canceled("Canceled before the model started.")
        import torch

        defaults = self.describe(request.model).params
        params = {p.name: request.params.get(p.name, p.default) for p in defaults}
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        device = _pick_device(torch)
        dtype = torch.float32 if device == "cpu" else torch.float16
        with self._lock:
            try:
                model, processor = self._model(request.model.source, device, dtype)
                return _run(model, processor, request, params, seed, device, progress, cancel)
            except CreatorError:
                raise
            except Exception as exc:
                raise _translate(exc, torch, device) from exc

    def build_tiny(self, path: Path) -> str:
        """Write a tiny random-weight MusicGen model (16 kHz, 50 frames a second) into `path`."""
        from providers.tiny_audio_models import build_tiny_musicgen

        return build_tiny_musicgen(Path(path))

    def _model(self, source: str, device: str, dtype: torch.dtype) -> Loaded:
        """The loaded model and processor for (source, device, dtype), from the cache or disk."""
        key = (source, device, dtype)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        while len(self._models) >= self._max_cached:
            _, evicted = self._models.popitem(last=False)
            del evicted
            if device == "cuda":
                import torch

                gc.collect()
                torch.cuda.empty_cache()
        from transformers import AutoProcessor, MusicgenForConditionalGeneration

        try:
            model = MusicgenForConditionalGeneration.from_pretrained(source, dtype=dtype)
            processor = AutoProcessor.from_pretrained(source)
        except OSError as exc:
            raise _load_error(source, exc) from exc
        model = model.to(device).eval()
        self._loads += 1
        self._models[key] = (model, processor)
        return model, processor


def _run(
    model: Any,
    processor: Any,
    request: ProviderRequest,
    params: ParamValues,
    seed: int,
    device: str,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> ProviderResult:
    """Generate once with progress and cancellation; time it; encode the WAV."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    codec = model.config.audio_encoder
    sample_rate = int(codec.sampling_rate)
    duration = float(params["duration_s"])
    frames = math.ceil(duration * sample_rate / codec.hop_length)
    # Codebook k is delayed by k tokens, so the last codebooks need a few tokens more.
    tokens = frames + _codebooks_per_channel(model) - 1

    class ReportAndCancel(StoppingCriteria):
        """Called after each token: report it, and stop everything when the caller cancels."""

        def __init__(self) -> None:
            self.done = 0
            self.start: int | None = None

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> Any:
            if self.start is None:
                self.start = input_ids.shape[-1] - 1
            self.done = input_ids.shape[-1] - self.start
            progress(Progress(self.done, tokens))
            if cancel.canceled:
                raise _Interrupted
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    criterion = ReportAndCancel()
    inputs = processor(text=[request.prompt], padding=True, return_tensors="pt").to(device)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    devices = [torch.cuda.current_device()] if device == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            audio = model.generate(
                **inputs,
                do_sample=True,
                guidance_scale=float(params["guidance_scale"]),
                temperature=float(params["temperature"]),
                max_new_tokens=tokens,
                stopping_criteria=StoppingCriteriaList([criterion]),
            )
    except _Interrupted:
        raise Canceled(f"Canceled after {criterion.done} of {tokens} tokens.") from None
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started

    # (batch, channels, samples) → (samples, channels), cut to the duration asked for.
    samples = audio[0, :, : round(duration * sample_rate)].float().cpu().numpy().T
    output = _wav_output(samples, sample_rate)
    return ProviderResult(
        outputs=[output],
        usage=Usage(audio_seconds=output.duration_s or 0.0, gpu_seconds=seconds),
        seed=seed,
        info={
            "device": device,
            "dtype": str(model.dtype).removeprefix("torch."),
            "tokens": tokens,
            "channels": int(samples.shape[1]),
        },
    )


def _codebooks_per_channel(model: Any) -> int:
    """Codebooks per audio channel: stereo models interleave two channels' codebooks."""
    decoder = model.config.decoder
    return int(decoder.num_codebooks) // int(getattr(decoder, "audio_channels", 1) or 1)


def _wav_output(samples: Any, sample_rate: int) -> Output:
    """Float samples (samples, channels) in -1..1 as a 16-bit PCM WAV Output."""
    import numpy as np
    import soundfile

    clipped = np.clip(np.nan_to_num(samples.astype(np.float32)), -1.0, 1.0)
    buffer = io.BytesIO()
    soundfile.write(buffer, clipped, sample_rate, format="WAV", subtype="PCM_16")
    return Output(
        buffer.getvalue(), "audio/wav", duration_s=len(clipped) / sample_rate, sample_rate=sample_rate
    )


def _translate(exc: Exception, torch: Any, device: str) -> ProviderError:
    """A torch/transformers failure as a ProviderError whose message is safe to show."""
    out_of_memory = isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )
    if out_of_memory:
        if device == "cuda":
            torch.cuda.empty_cache()
        return ProviderError(
            "The model ran out of GPU memory. Try shorter music, or free the GPU for other work first.",
            retryable=False,
        )
    return ProviderError(f"The local model failed ({type(exc).__name__}: {_first_line(exc)}).")


def _load_error(source: str, exc: OSError) -> ProviderError:
    """Why a model could not be loaded, and for a Hub model how to get it onto this machine."""
    if Path(source).is_dir():
        return ProviderError(f"Could not read the model in '{source}' ({_first_line(exc)}).")
    if not HUB_ID.fullmatch(source):
        return ModelUnavailable(f"There is no model folder at '{source}' on this machine any more.")
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


def _looks_like_path(source: str) -> bool:
    """True when `source` names a folder rather than a Hub id ('org/name')."""
    if Path(source).expanduser().exists():
        return True
    if HUB_ID.fullmatch(source):
        return False
    return "/" in source or "\\" in source or source.startswith(("~", "."))


def _check_musicgen(config: dict[str, Any], source: str) -> None:
    """Raise InvalidInput unless a config.json describes a MusicGen model."""
    model_type = config.get("model_type")
    if model_type != MODEL_TYPE:
        what = f"a '{model_type}' model" if isinstance(model_type, str) else "no model type"
        raise InvalidInput(f"'{source}' holds {what}; the musicgen provider runs MusicGen models only.")


def _longest(source: str) -> float | None:
    """The longest music the decoder's positions allow, in seconds, or None when unknown here."""
    config = _read_json(source, "config.json") or {}
    decoder, codec = config.get("decoder") or {}, config.get("audio_encoder") or {}
    positions, rate = decoder.get("max_position_embeddings"), codec.get("sampling_rate")
    ratios = codec.get("upsampling_ratios")
    if not (isinstance(positions, int) and isinstance(rate, int) and isinstance(ratios, list) and rate > 0):
        return None
    frames = positions - int(decoder.get("num_codebooks", 4))  # room for the delay pattern
    return math.floor(frames * math.prod(ratios) / rate * 2) / 2  # down to the 0.5 s step


def _is_tiny(source: str) -> bool:
    """True for a test/demo model: its weights are only a few megabytes."""
    folder = Path(source).expanduser()
    if not folder.is_dir():
        return False
    weights = [f.stat().st_size for f in folder.glob("*.safetensors")]
    return bool(weights) and sum(weights) < TINY_WEIGHT_BYTES


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
