"""Local sound effects with diffusers audio pipelines (AudioLDM2, Stable Audio Open), on this machine.

Which pipeline a model is comes from its model_index.json. torch and diffusers are imported
inside the functions that need them, so importing this module (the registry does) stays cheap.
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
    from diffusers import DiffusionPipeline

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
AUDIOLDM2, STABLE_AUDIO = "AudioLDM2Pipeline", "StableAudioPipeline"
SUPPORTED = (AUDIOLDM2, STABLE_AUDIO)
MIN_DURATION, MAX_DURATION = 0.5, 30.0
DEFAULT_DURATION, TINY_DURATION = 5.0, 1.0
DEFAULT_STEPS, TINY_STEPS = 100, 2
DEFAULT_GUIDANCE = {AUDIOLDM2: 3.5, STABLE_AUDIO: 7.0}  # each pipeline's own default
# A denoiser this small is a test/demo model: a second of sound and two steps are plenty.
TINY_WEIGHT_BYTES = 20_000_000
WEIGHT_SUFFIXES = (".safetensors", ".bin")

ParamValues = dict[str, Any]
CacheKey = tuple[str, str, "torch.dtype"]


class _Interrupted(Exception):
    """Raised from the step callback to leave the denoising loop when the caller cancels."""


class DiffusersAudioProvider:
    """Runs AudioLDM2 and Stable Audio pipelines locally; keeps the last few loaded pipelines warm."""

    name = "diffusers-audio"
    local = True

    def __init__(self, max_cached: int = 2) -> None:
        if max_cached < 1:
            raise ValueError("max_cached must be at least 1")
        self._max_cached = max_cached
        self._pipelines: OrderedDict[CacheKey, DiffusionPipeline] = OrderedDict()
        self._loads = 0
        # A pipeline object cannot run two calls at once (its scheduler is instance state).
        self._lock = threading.Lock()

    @property
    def loads(self) -> int:
        """How many times a pipeline has been loaded from disk by this provider."""
        return self._loads

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """Check that `source` is an AudioLDM2 or Stable Audio pipeline (folder or Hub id); name it."""
        if task not in (None, Task.SOUND_EFFECT):
            raise InvalidInput(f"The {self.name} provider makes sound effects, not {task}.")
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
            _check_supported(index, source)
            folder = folder.resolve()
            return ModelRef(folder.name, self.name, str(folder), Task.SOUND_EFFECT)
        if HUB_ID.fullmatch(source):
            # Offline we can only check a Hub model whose index is already in the local cache.
            index = _read_json(source, "model_index.json")
            if index is not None:
                _check_supported(index, source)
            return ModelRef(source.rsplit("/", 1)[1], self.name, source, Task.SOUND_EFFECT)
        raise InvalidInput(
            f"'{source}' is neither a local pipeline folder nor a Hugging Face Hub id like 'org/name'."
        )

    def describe(self, model: ModelRef) -> ModelSpec:
        """Duration, steps and guidance, with defaults read from the model's configs."""
        family = _family(model.source)
        tiny = _is_tiny(model.source, family)
        longest = min(MAX_DURATION, _longest_stable_audio(model.source) or MAX_DURATION)
        duration = min(longest, TINY_DURATION if tiny else DEFAULT_DURATION)
        params = (
            ParamSpec(
                "duration_s",
                kind="float",
                default=duration,
                minimum=MIN_DURATION,
                maximum=longest,
                step=0.1,
                label="Duration (s)",
                help="Length of the sound in seconds.",
            ),
            ParamSpec(
                "steps",
                kind="int",
                default=TINY_STEPS if tiny else DEFAULT_STEPS,
                minimum=1,
                maximum=500,
                step=1,
                label="Steps",
                help="Denoising steps: more is slower and often cleaner.",
            ),
            ParamSpec(
                "guidance_scale",
                kind="float",
                default=DEFAULT_GUIDANCE[family],
                minimum=0.0,
                maximum=20.0,
                step=0.5,
                label="Guidance",
                help="How closely the sound follows the prompt.",
            ),
        )
        kind = "Stable Audio (44.1 kHz stereo)" if family == STABLE_AUDIO else "AudioLDM2 (16 kHz mono)"
        return ModelSpec(Task.SOUND_EFFECT, params, f"Local {kind} pipeline '{model.name}'.")

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """Make one WAV; the pipeline is loaded on first use and kept for the next calls."""
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
                pipe = self._pipeline(request.model.source, device, dtype)
                return _run(pipe, request, params, seed, device, progress, cancel)
            except CreatorError:
                raise
            except Exception as exc:
                raise _translate(exc, torch, device) from exc

    def build_tiny(self, path: Path, kind: str = "audioldm2") -> str:
        """Write a tiny random-weight AudioLDM2 (or, with kind="stable-audio", Stable Audio) pipeline."""
        from providers.tiny_audio_models import build_tiny_audioldm2, build_tiny_stable_audio

        builders = {"audioldm2": build_tiny_audioldm2, "stable-audio": build_tiny_stable_audio}
        if kind not in builders:
            raise ValueError(f"kind must be one of {', '.join(builders)}")
        return builders[kind](Path(path))

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
        from diffusers import DiffusionPipeline

        try:
            pipe = DiffusionPipeline.from_pretrained(source, dtype=dtype)
        except OSError as exc:
            raise _load_error(source, exc) from exc
        if type(pipe).__name__ not in SUPPORTED:
            raise ProviderError(
                f"'{source}' holds a {type(pipe).__name__}, which does not make sound effects."
            )
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
    """Call the pipeline once with progress and cancellation; time it; encode the WAV."""
    import torch

    family = type(pipe).__name__
    steps = int(params["steps"])
    duration = float(params["duration_s"])
    done = 0

    def on_step(step: int, timestep: Any, latents: Any) -> None:
        nonlocal done
        done = step + 1
        progress(Progress(done, steps))
        # These pipelines take only the legacy callback, which cannot interrupt; raising is the
        # one way out of the loop, and it leaves nothing behind (each call sets up its own state).
        if cancel.canceled:
            raise _Interrupted

    kwargs: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or None,
        "num_inference_steps": steps,
        "guidance_scale": float(params["guidance_scale"]),
        "generator": torch.Generator(device=device).manual_seed(seed),
        "callback": on_step,
        "callback_steps": 1,
        "output_type": "np",
    }
    if family == STABLE_AUDIO:
        sample_rate = int(pipe.vae.config.sampling_rate)
        # The pipeline cuts at int(end × rate); half a sample more makes that round instead.
        longest = pipe.transformer.config.sample_size * pipe.vae.hop_length / sample_rate
        kwargs["audio_end_in_s"] = min(duration + 0.5 / sample_rate, longest)
    else:
        sample_rate = int(pipe.vocoder.config.sampling_rate)
        kwargs["audio_length_in_s"] = _audioldm2_length(pipe, duration)

    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    try:
        audio = pipe(**kwargs).audios[0]
    except _Interrupted:
        raise Canceled(f"Canceled after {done} of {steps} steps.") from None
    if device == "cuda":
        torch.cuda.synchronize()  # GPU work is asynchronous: wait for it before reading the clock
    seconds = time.perf_counter() - started

    # AudioLDM2 gives (samples,), Stable Audio (channels, samples); soundfile wants (samples, channels).
    samples = audio.reshape(1, -1) if audio.ndim == 1 else audio
    samples = samples[:, : round(duration * sample_rate)].T
    output = _wav_output(samples, sample_rate)
    return ProviderResult(
        outputs=[output],
        usage=Usage(audio_seconds=output.duration_s or 0.0, gpu_seconds=seconds),
        seed=seed,
        info={
            "device": device,
            "dtype": str(pipe.dtype).removeprefix("torch."),
            "steps": steps,
            "pipeline": family,
            "channels": int(samples.shape[1]),
        },
    )


def _audioldm2_length(pipe: DiffusionPipeline, duration: float) -> float:
    """The length to ask AudioLDM2 for so it makes at least `duration` seconds (we cut the rest).

    AudioLDM2 makes a whole number of VAE-latent rows of vocoder hops and rounds the request
    down to a hop, so 1 s at hop 256 came out 0.992 s. Asking for whole rows plus half a hop
    gives at least the duration, whatever float rounding does inside the pipeline.
    """
    hop = math.prod(pipe.vocoder.config.upsample_rates)
    rate = pipe.vocoder.config.sampling_rate
    row = hop * pipe.vae_scale_factor
    rows = math.ceil(duration * rate / row)
    return (rows * row + hop / 2) / rate


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
    """A torch/diffusers failure as a ProviderError whose message is safe to show."""
    out_of_memory = isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )
    if out_of_memory:
        if device == "cuda":
            torch.cuda.empty_cache()
        return ProviderError(
            "The model ran out of GPU memory. Try a shorter sound, or free the GPU for other work first.",
            retryable=False,
        )
    if isinstance(exc, ImportError):
        # e.g. Stable Audio's scheduler needs torchsde; the library's message says what to install.
        return ProviderError(f"The model needs a package that is not installed ({_first_line(exc)}).")
    return ProviderError(f"The local model failed ({type(exc).__name__}: {_first_line(exc)}).")


def _load_error(source: str, exc: OSError) -> ProviderError:
    """Why a pipeline could not be loaded, and for a Hub model how to get it onto this machine."""
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


def _check_supported(index: dict[str, Any], source: str) -> None:
    """Raise InvalidInput unless a model_index.json describes a pipeline this provider runs."""
    class_name = index.get("_class_name")
    if class_name not in SUPPORTED:
        what = f"a {class_name}" if isinstance(class_name, str) else "no pipeline class"
        raise InvalidInput(
            f"'{source}' holds {what}; the {DiffusersAudioProvider.name} provider runs "
            f"{' and '.join(SUPPORTED)} models."
        )


def _family(source: str) -> str:
    """AUDIOLDM2 or STABLE_AUDIO, from model_index.json (or the Hub id when that is not here)."""
    class_name = (_read_json(source, "model_index.json") or {}).get("_class_name")
    if class_name in SUPPORTED:
        return str(class_name)
    return STABLE_AUDIO if "stable-audio" in source.lower() else AUDIOLDM2


def _is_tiny(source: str, family: str) -> bool:
    """True for a test/demo model: its denoiser's weights are only a few megabytes."""
    folder = Path(source).expanduser() / ("transformer" if family == STABLE_AUDIO else "unet")
    if not folder.is_dir():
        return False
    weights = [f.stat().st_size for f in folder.iterdir() if f.name.endswith(WEIGHT_SUFFIXES)]
    return bool(weights) and sum(weights) < TINY_WEIGHT_BYTES


def _longest_stable_audio(source: str) -> float | None:
    """Stable Audio's longest sound (latents × hop ÷ rate, 47.5 s for Open 1.0), or None."""
    transformer = _read_json(source, "transformer/config.json") or {}
    vae = _read_json(source, "vae/config.json") or {}
    latents, ratios, rate = (
        transformer.get("sample_size"),
        vae.get("downsampling_ratios"),
        vae.get("sampling_rate"),
    )
    if not (isinstance(latents, int) and isinstance(ratios, list) and isinstance(rate, int) and rate > 0):
        return None
    return math.floor(latents * math.prod(ratios) / rate * 10) / 10  # down to the 0.1 s step


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
