"""Local text-to-speech with VITS voices (MMS-TTS and others) through transformers, on this machine.

Seeds: VITS draws its noise from torch's global random generator inside `forward` (it takes no
`torch.Generator`), so a seed is applied with `torch.manual_seed` inside `torch.random.fork_rng`
(which puts the global state back afterwards) while the provider's lock is held.

A voice speaks in one forward pass, so progress is reported once, at the end, and a cancel is
honoured before the model is loaded and before it runs. torch and transformers are imported
inside functions, so importing this module stays cheap.
"""

from __future__ import annotations

import gc
import io
import json
import random
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

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

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
MODEL_TYPE = "vits"
MIN_RATE, MAX_RATE = 0.5, 2.0

ParamValues = dict[str, Any]
CacheKey = tuple[str, str]
Loaded = tuple[Any, Any]  # (VitsModel, VitsTokenizer)


class SpeechProvider:
    """Runs VITS text-to-speech voices locally; keeps the last few loaded voices warm."""

    name = "tts"
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
        """How many times a voice has been loaded from disk by this provider."""
        return self._loads

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """Check that `source` is a VITS voice (folder or Hub id); name it."""
        if task not in (None, Task.SPEECH):
            raise InvalidInput(f"The {self.name} provider makes speech, not {task}.")
        source = source.strip()
        if _looks_like_path(source):
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise InvalidInput(f"There is no folder at '{source}'.")
            config = _read_json(str(folder), "config.json")
            if config is None:
                raise InvalidInput(f"'{source}' is not a transformers model folder: it has no config.json.")
            _check_vits(config, source)
            folder = folder.resolve()
            return ModelRef(folder.name, self.name, str(folder), Task.SPEECH)
        if HUB_ID.fullmatch(source):
            config = _read_json(source, "config.json")  # only when already in the local cache
            if config is not None:
                _check_vits(config, source)
            return ModelRef(source.rsplit("/", 1)[1], self.name, source, Task.SPEECH)
        raise InvalidInput(
            f"'{source}' is neither a local model folder nor a Hugging Face Hub id like 'org/name'."
        )

    def describe(self, model: ModelRef) -> ModelSpec:
        """The speaking rate, with the voice's own default; the text sets the length."""
        rate = (_read_json(model.source, "config.json") or {}).get("speaking_rate", 1.0)
        default = min(MAX_RATE, max(MIN_RATE, float(rate))) if isinstance(rate, int | float) else 1.0
        params = (
            ParamSpec(
                "speaking_rate",
                kind="float",
                default=default,
                minimum=MIN_RATE,
                maximum=MAX_RATE,
                step=0.05,
                label="Speaking rate",
                help="Above 1 speaks faster, below 1 slower.",
            ),
        )
        return ModelSpec(Task.SPEECH, params, f"Local VITS voice '{model.name}'; the prompt is read aloud.")

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """Read the prompt aloud into one WAV; the voice is loaded on first use and kept."""
        if cancel.canceled:
            raise Canceled("Canceled before the model started.")
        if not request.prompt.strip():
            raise InvalidInput("There is no text to speak.")
        import torch

        defaults = self.describe(request.model).params
        params = {p.name: request.params.get(p.name, p.default) for p in defaults}
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        device = _pick_device(torch)
        with self._lock:
            try:
                model, tokenizer = self._model(request.model.source, device)
                if cancel.canceled:  # loading can take a while; stop before the model runs
                    raise Canceled("Canceled before the model started.")
                return _run(model, tokenizer, request, params, seed, device, progress)
            except CreatorError:
                raise
            except Exception as exc:
                raise _translate(exc, torch, device) from exc

    def build_tiny(self, path: Path) -> str:
        """Write a tiny random-weight VITS voice (16 kHz, character vocabulary) into `path`."""
        from providers.tiny_audio_models import build_tiny_vits

        return build_tiny_vits(Path(path))

    def _model(self, source: str, device: str) -> Loaded:
        """The loaded voice and tokenizer for (source, device), from the cache or from disk."""
        key = (source, device)
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
        from transformers import AutoTokenizer, VitsModel

        try:
            # float32 on every device: VITS voices are small (~36M parameters for MMS-TTS), so half
            # precision would save little, and float32 spares its normalising flows any rounding.
            model = VitsModel.from_pretrained(source)
            tokenizer = AutoTokenizer.from_pretrained(source)
        except OSError as exc:
            raise _load_error(source, exc) from exc
        model = model.to(device).eval()
        self._loads += 1
        self._models[key] = (model, tokenizer)
        return model, tokenizer


def _run(
    model: Any,
    tokenizer: Any,
    request: ProviderRequest,
    params: ParamValues,
    seed: int,
    device: str,
    progress: ProgressCallback,
) -> ProviderResult:
    """Speak once; time it; encode the WAV."""
    import torch

    inputs = tokenizer(request.prompt, return_tensors="pt").to(device)
    pad = tokenizer.pad_token_id
    if not bool((inputs["input_ids"] != pad).any()):
        # The tokenizer drops characters the voice does not know (digits, other scripts).
        raise InvalidInput("The voice knows none of the characters in this text; try spelling it out.")
    sample_rate = int(model.config.sampling_rate)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    devices = [torch.cuda.current_device()] if device == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode():
        torch.manual_seed(seed)
        result = model(**inputs, speaking_rate=float(params["speaking_rate"]))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    progress(Progress(1, 1))

    length = int(result.sequence_lengths[0]) if result.sequence_lengths is not None else None
    samples = result.waveform[0, :length].float().cpu().numpy().reshape(-1, 1)
    output = _wav_output(samples, sample_rate)
    return ProviderResult(
        outputs=[output],
        usage=Usage(
            characters=len(request.prompt),
            audio_seconds=output.duration_s or 0.0,
            gpu_seconds=seconds,
        ),
        seed=seed,
        info={"device": device, "dtype": str(model.dtype).removeprefix("torch.")},
    )


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
            "The voice ran out of GPU memory. Try a shorter text, or free the GPU for other work first.",
            retryable=False,
        )
    if isinstance(exc, ImportError):
        # Some voices need phonemizer (espeak) or uroman; the library's message names the package.
        return ProviderError(f"The voice needs a package that is not installed ({_first_line(exc)}).")
    return ProviderError(f"The local voice failed ({type(exc).__name__}: {_first_line(exc)}).")


def _load_error(source: str, exc: OSError) -> ProviderError:
    """Why a voice could not be loaded, and for a Hub model how to get it onto this machine."""
    if Path(source).is_dir():
        return ProviderError(f"Could not read the voice in '{source}' ({_first_line(exc)}).")
    if not HUB_ID.fullmatch(source):
        return ModelUnavailable(f"There is no model folder at '{source}' on this machine any more.")
    return ModelUnavailable(
        f"The voice '{source}' is not on this machine and could not be downloaded. "
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


def _check_vits(config: dict[str, Any], source: str) -> None:
    """Raise InvalidInput unless a config.json describes a VITS voice."""
    model_type = config.get("model_type")
    if model_type != MODEL_TYPE:
        what = f"a '{model_type}' model" if isinstance(model_type, str) else "no model type"
        raise InvalidInput(
            f"'{source}' holds {what}; the tts provider runs VITS voices (such as facebook/mms-tts-eng)."
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
