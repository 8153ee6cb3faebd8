"""Local text with a transformers causal LM and its chat template: any Hub id or model folder.

The prompt is the user message and the `system` parameter the system message; the model's own
chat template turns them into its prompt format. torch and transformers are imported inside the
functions that need them, so that importing this module (the registry does) stays cheap.
"""

from __future__ import annotations

import gc
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

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# Architecture names of causal LMs (LlamaForCausalLM, GPT2LMHeadModel, ...): the cheap check,
# made from config.json alone; anything else is looked up in transformers' own mapping.
CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")
PARAMS = (
    ParamSpec(
        "max_tokens",
        kind="int",
        default=256,
        minimum=1,
        maximum=4096,
        step=1,
        label="Max tokens",
        help="The longest answer, in tokens; the model may stop earlier.",
    ),
    ParamSpec(
        "temperature",
        kind="float",
        default=0.7,
        minimum=0.0,
        maximum=2.0,
        step=0.05,
        label="Temperature",
        help="Randomness: 0 always picks the likeliest token (the same text for every seed).",
    ),
    ParamSpec(
        "top_p",
        kind="float",
        default=0.95,
        minimum=0.0,
        maximum=1.0,
        step=0.01,
        label="Top p",
        help="Sample only from the likeliest tokens whose probabilities add up to this.",
    ),
    ParamSpec(
        "system",
        kind="str",
        default="",
        label="System message",
        help="Instructions the model follows for the whole answer; empty for none.",
    ),
)

CacheKey = tuple[str, str, "torch.dtype"]


class TextProvider:
    """Runs transformers chat models locally; keeps the last few loaded models warm."""

    name = "llm"
    local = True

    def __init__(self, max_cached: int = 2) -> None:
        if max_cached < 1:
            raise ValueError("max_cached must be at least 1")
        self._max_cached = max_cached
        self._models: OrderedDict[CacheKey, tuple[Any, Any]] = OrderedDict()
        self._loads = 0
        # The seed is torch's global RNG, and one GPU runs one model at a time anyway.
        self._lock = threading.Lock()

    @property
    def loads(self) -> int:
        """How many times a model has been loaded from disk by this provider."""
        return self._loads

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """Check that `source` is a causal LM with a chat template (a folder or a Hub id); name it."""
        if task is not None and task is not Task.TEXT:
            raise InvalidInput(f"Local chat models make text, not {task.value}.")
        source = source.strip()
        if _looks_like_path(source):
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise InvalidInput(f"There is no folder at '{source}'.")
            config = _read_json(str(folder), "config.json")
            if config is None:
                raise InvalidInput(
                    f"'{source}' is not a transformers model folder: it has no readable config.json."
                )
            _check_causal_lm(config, source)
            if not _has_chat_template(str(folder)):
                raise _no_chat_template(source)
            folder = folder.resolve()
            return ModelRef(folder.name, self.name, str(folder), Task.TEXT)
        if HUB_ID.fullmatch(source):
            # Offline we can only check a Hub model whose config is already in the local cache;
            # the chat template is checked when the tokenizer loads.
            config = _read_json(source, "config.json")
            if config is not None:
                _check_causal_lm(config, source)
            return ModelRef(source.rsplit("/", 1)[1], self.name, source, Task.TEXT)
        raise InvalidInput(
            f"'{source}' is neither a local model folder nor a Hugging Face Hub id like 'org/name'."
        )

    def describe(self, model: ModelRef) -> ModelSpec:
        """The sampling parameters every chat model takes."""
        return ModelSpec(Task.TEXT, PARAMS, f"Local chat model '{model.name}' (transformers).")

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """Answer the prompt; the model is loaded on first use and kept for the next calls."""
        if cancel.canceled:
            raise Canceled("Canceled before the model started.")
        import torch

        params = {p.name: request.params.get(p.name, p.default) for p in PARAMS}
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        device = _pick_device(torch)
        dtype = _pick_dtype(torch, device)
        with self._lock:
            try:
                model, tokenizer = self._model(request.model.source, device, dtype)
                return _run(model, tokenizer, request, params, seed, device, progress, cancel)
            except CreatorError:
                raise
            except Exception as exc:
                raise _translate(exc, torch, device) from exc

    def build_tiny(self, path: Path) -> str:
        """Write a tiny random-weight Llama chat model (byte-level ChatML tokenizer) into `path`."""
        from providers.transformers_text_tiny import build_tiny_chat_model

        return build_tiny_chat_model(Path(path))

    def _model(self, source: str, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
        """The loaded (model, tokenizer) for (source, device, dtype), from the cache or from disk."""
        key = (source, device, dtype)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            # The tokenizer first: it is cheap and tells us whether there is a chat template at all.
            tokenizer = AutoTokenizer.from_pretrained(source)
            if not tokenizer.chat_template:
                raise _no_chat_template(source)
            # Make room before loading, so two large models never sit in GPU memory at once.
            self._evict_down_to(self._max_cached - 1, device)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        except CreatorError:
            raise
        except ValueError as exc:  # "Unrecognized configuration class ...": not a causal LM
            raise InvalidInput(f"'{source}' is not a text-generation model ({_first_line(exc)}).") from exc
        except Exception as exc:
            raise _load_error(source, exc) from exc
        model = model.to(device).eval()
        self._loads += 1
        self._models[key] = (model, tokenizer)
        return model, tokenizer

    def _evict_down_to(self, size: int, device: str) -> None:
        """Drop least-recently-used models until at most `size` remain."""
        while len(self._models) > size:
            _, evicted = self._models.popitem(last=False)
            del evicted
            if device == "cuda":
                import torch

                gc.collect()  # drop reference cycles so the memory can really be returned
                torch.cuda.empty_cache()


def _run(
    model: Any,
    tokenizer: Any,
    request: ProviderRequest,
    params: dict[str, Any],
    seed: int,
    device: str,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> ProviderResult:
    """Generate one answer with progress per token and cancellation between tokens."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    if cancel.canceled:  # loading a large model takes a while: the caller may have given up
        raise Canceled("Canceled while the model was loading.")
    messages = [{"role": "user", "content": request.prompt}]
    if params["system"]:
        messages.insert(0, {"role": "system", "content": str(params["system"])})
    inputs = _encode(tokenizer, messages, request.model.source).to(device)
    prompt_length = int(inputs["input_ids"].shape[1])
    context = getattr(model.config, "max_position_embeddings", None)
    if isinstance(context, int) and prompt_length >= context:
        raise InvalidInput(f"The prompt is {prompt_length} tokens; this model reads at most {context}.")
    max_tokens = int(params["max_tokens"])
    generated = 0
    canceled = False

    class ReportAndStop(StoppingCriteria):
        """Called once per generated token: report it, and stop when the caller cancels."""

        def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
            nonlocal generated, canceled
            generated = int(input_ids.shape[1]) - prompt_length
            progress(Progress(generated, max_tokens, "tokens"))
            canceled = cancel.canceled
            return torch.full((input_ids.shape[0],), canceled, dtype=torch.bool, device=input_ids.device)

    options = _generation_options(model, tokenizer, params, max_tokens)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    torch.manual_seed(seed)  # the global RNG is what sampling draws from; the caller holds the lock
    with torch.inference_mode():
        sequences = model.generate(
            **inputs, **options, stopping_criteria=StoppingCriteriaList([ReportAndStop()])
        )
    if device == "cuda":
        torch.cuda.synchronize()  # GPU work is asynchronous: wait for it before reading the clock
    seconds = time.perf_counter() - started
    if canceled:
        raise Canceled(f"Canceled after {generated} of {max_tokens} tokens.")

    new_ids = sequences[0, prompt_length:].tolist()
    text = tokenizer.decode(new_ids, skip_special_tokens=True).strip()
    stopped = bool(new_ids) and new_ids[-1] in options.get("eos_token_id", [])
    return ProviderResult(
        outputs=[Output(text.encode(), "text/plain", text=text)],
        usage=Usage(input_tokens=prompt_length, output_tokens=len(new_ids), gpu_seconds=seconds),
        seed=seed,
        info={
            "device": device,
            "dtype": str(model.dtype).removeprefix("torch."),
            "finish_reason": "stop" if stopped else "length",
        },
    )


def _encode(tokenizer: Any, messages: list[dict[str, str]], source: str) -> Any:
    """The chat messages as model inputs (input_ids and attention_mask), via the chat template."""
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
    except TemplateError as exc:  # e.g. templates that refuse a system message
        reason = _first_line(exc)
        raise InvalidInput(f"The chat template of '{source}' refused the messages: {reason}") from exc


def _generation_options(
    model: Any, tokenizer: Any, params: dict[str, Any], max_tokens: int
) -> dict[str, Any]:
    """Our parameters for `generate`; transformers fills the rest from the model's own defaults."""
    options: dict[str, Any] = {"max_new_tokens": max_tokens}
    temperature = float(params["temperature"])
    if temperature > 0:
        options |= {"do_sample": True, "temperature": temperature, "top_p": float(params["top_p"])}
    else:
        options["do_sample"] = False  # greedy: the model's sampling defaults are then ignored
    eos = _eos_ids(model.generation_config.eos_token_id)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)  # some chat models end a turn with the tokenizer's eos only
    if eos:
        options["eos_token_id"] = eos
        if model.generation_config.pad_token_id is None:
            options["pad_token_id"] = eos[0]  # one sequence is never padded; this only silences a warning
    return options


def _eos_ids(eos: int | list[int] | None) -> list[int]:
    """End-of-sequence token ids (one, several or none) as a list."""
    if eos is None:
        return []
    return [int(eos)] if isinstance(eos, int) else [int(token) for token in eos]


def _translate(exc: Exception, torch: Any, device: str) -> ProviderError:
    """A torch/transformers failure as a ProviderError whose message is safe to show."""
    out_of_memory = isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )
    if out_of_memory:
        if device == "cuda":
            torch.cuda.empty_cache()
        return ProviderError(
            "The model ran out of GPU memory. Try fewer max tokens or a shorter prompt, "
            "or free the GPU for other work first.",
            retryable=False,
        )
    return ProviderError(f"The local model failed ({type(exc).__name__}: {_first_line(exc)}).")


def _load_error(source: str, exc: Exception) -> ProviderError:
    """Why a model could not be loaded, and for a Hub model how to get it onto this machine."""
    if Path(source).is_dir():
        return ProviderError(f"Could not read the model in '{source}' ({_first_line(exc)}).")
    if not HUB_ID.fullmatch(source):
        return ModelUnavailable(f"There is no model folder at '{source}' on this machine any more.")
    if not isinstance(exc, OSError):
        return ProviderError(f"Could not read the model '{source}' ({_first_line(exc)}).")
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


def _pick_dtype(torch: Any, device: str) -> torch.dtype:
    """bfloat16 where supported (LLMs are trained in it), float16 on other GPUs, float32 on CPU."""
    if device == "cpu":
        return torch.float32
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _looks_like_path(source: str) -> bool:
    """True when `source` names a folder rather than a Hub id ('org/name')."""
    if Path(source).expanduser().exists():
        return True
    if HUB_ID.fullmatch(source):
        return False
    return "/" in source or "\\" in source or source.startswith(("~", "."))


def _no_chat_template(source: str) -> InvalidInput:
    """The error for a base model: without a chat template it cannot take system and user messages."""
    return InvalidInput(
        f"'{source}' has no chat template, so it cannot take a system and a user message. "
        "Use the instruct/chat version of the model."
    )


def _check_causal_lm(config: dict[str, Any], source: str) -> None:
    """Raise InvalidInput unless a config.json describes a model AutoModelForCausalLM can run."""
    architectures = [name for name in config.get("architectures") or [] if isinstance(name, str)]
    if any(name.endswith(CAUSAL_LM_SUFFIXES) for name in architectures):
        return
    model_type = config.get("model_type")
    if isinstance(model_type, str):
        # Rare layouts (e.g. Gemma 3's ...ForConditionalGeneration) need transformers' own table,
        # which imports torch: only reached for configs the cheap check could not accept.
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        causal = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type)
        if causal and (not architectures or causal in architectures):
            return
    kind = ", ".join(architectures) or model_type or "an unknown model"
    raise InvalidInput(f"'{source}' holds {kind}, which is not a text-generation (causal LM) model.")


def _has_chat_template(folder: str) -> bool:
    """True when the tokenizer files in `folder` carry a chat template."""
    if (Path(folder) / "chat_template.jinja").is_file():
        return True
    for name in ("tokenizer_config.json", "chat_template.json"):
        if (_read_json(folder, name) or {}).get("chat_template"):
            return True
    return False


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
