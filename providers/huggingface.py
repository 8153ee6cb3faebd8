"""Hugging Face hosted inference: images, speech and text from Hub models, for people without a GPU.

Calls go through `huggingface_hub.InferenceClient` with the organization's token. With no
`credentials.base_url` the SDK routes each call itself (the Hugging Face router picks an inference
provider serving the model). A `base_url` names an hf-inference-style server that serves models
under `{base_url}/models/{hub id}` (e.g. https://router.huggingface.co/hf-inference, or a proxy):
images and speech are then POSTed to that model URL ({"inputs", "parameters"}) and chat to
`{model URL}/v1/chat/completions` (OpenAI format), exactly as the SDK builds those URLs itself.

huggingface_hub is imported on first use. Two of its habits matter: it refuses every request,
hosted inference included, while HF_HUB_OFFLINE is set (that comes out as a clear
ProviderUnavailable); and when it routes an image or speech call itself, it first asks the Hub which
inference provider serves the model, a metadata read made with the machine's own Hub login if it
has one (the inference call itself always carries the organization's token, and only that).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import httpx

from core.errors import (
    Canceled,
    CreatorError,
    InvalidInput,
    ProviderAuthFailed,
    ProviderBadRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from core.types import (
    CancelToken,
    Credentials,
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
from providers.http_errors import error_from_response, error_from_transport, retry_after_seconds

VENDOR = "Hugging Face"
HUB_URL = "https://huggingface.co"
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
TASKS = (Task.TEXT_TO_IMAGE, Task.SPEECH, Task.TEXT)
# Models whose task we know without asking the Hub; any other model needs its task named.
KNOWN_MODELS = {
    "black-forest-labs/FLUX.1-schnell": Task.TEXT_TO_IMAGE,
    "black-forest-labs/FLUX.1-dev": Task.TEXT_TO_IMAGE,
    "stabilityai/stable-diffusion-xl-base-1.0": Task.TEXT_TO_IMAGE,
    "hexgrad/Kokoro-82M": Task.SPEECH,
    "meta-llama/Llama-3.1-8B-Instruct": Task.TEXT,
    "Qwen/Qwen2.5-7B-Instruct": Task.TEXT,
}

MODEL_DEFAULT = "0 leaves the model's own default."
IMAGE_PARAMS = (
    ParamSpec("width", "int", 0, 0, 2048, 8, label="Width", help=f"Pixels, a multiple of 8; {MODEL_DEFAULT}"),
    ParamSpec(
        "height", "int", 0, 0, 2048, 8, label="Height", help=f"Pixels, a multiple of 8; {MODEL_DEFAULT}"
    ),
    ParamSpec("steps", "int", 0, 0, 100, 1, label="Steps", help=f"Denoising steps; {MODEL_DEFAULT}"),
    ParamSpec(
        "guidance_scale",
        "float",
        0.0,
        0.0,
        30.0,
        0.5,
        label="Guidance",
        help=f"Prompt adherence; {MODEL_DEFAULT}",
    ),
)
TEXT_PARAMS = (
    ParamSpec("max_tokens", "int", 512, 1, 8192, 1, label="Max tokens", help="The longest answer allowed."),
    ParamSpec(
        "temperature", "float", 0.7, 0.0, 2.0, 0.05, label="Temperature", help="Higher is more varied."
    ),
    ParamSpec("system", "str", "", label="System prompt", help="Instructions that frame the answer."),
)


class HuggingFaceProvider:
    """Hub models run on Hugging Face's hosted inference: text-to-image, speech and chat."""

    name = "huggingface"
    local = False

    def __init__(self, timeout_s: float = 120.0, hub_url: str = HUB_URL) -> None:
        self._timeout_s = timeout_s
        self._hub_url = hub_url.rstrip("/")  # where keys are checked (whoami)

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """A Hub id 'org/name'; models we do not know need their task named."""
        source = source.strip()
        if not HUB_ID.fullmatch(source):
            raise InvalidInput(f"'{source}' is not a Hugging Face Hub id like 'org/name'.")
        known = KNOWN_MODELS.get(source)
        if known is not None and task is not None and task is not known:
            raise InvalidInput(f"The Hugging Face model '{source}' makes {known.value}, not {task.value}.")
        task = task or known
        if task is None:
            raise InvalidInput(
                f"Say which task '{source}' does on Hugging Face ({', '.join(t.value for t in TASKS)})."
            )
        if task not in TASKS:
            raise InvalidInput(f"The Hugging Face provider does not run {task.value} models.")
        return ModelRef(source.rsplit("/", 1)[1], self.name, source, task)

    def describe(self, model: ModelRef) -> ModelSpec:
        """Image size, steps and guidance; chat length, temperature and system prompt; speech: none."""
        params = {Task.TEXT_TO_IMAGE: IMAGE_PARAMS, Task.TEXT: TEXT_PARAMS}.get(model.task, ())
        return ModelSpec(model.task, params, f"{model.source} on Hugging Face hosted inference.")

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """One image, speech clip or chat answer from one hosted call."""
        if cancel.canceled:
            raise Canceled("Canceled before the request was sent to Hugging Face.")
        credentials = _credentials(request.credentials)
        defaults = self.describe(request.model).params
        params = {p.name: request.params.get(p.name, p.default) for p in defaults}
        progress(Progress(0, 1, "Waiting for Hugging Face"))
        try:
            result = self._call(request, params, credentials)
        except CreatorError:
            raise
        except Exception as exc:
            raise _translate(exc) from None
        progress(Progress(1, 1, "Done"))
        return result

    def check_key(self, credentials: Credentials) -> None:
        """GET {hub}/api/whoami-v2: the cheapest call that needs a valid token."""
        key = _credentials(credentials).api_key
        headers = {"authorization": f"Bearer {key}"}
        try:
            response = httpx.get(f"{self._hub_url}/api/whoami-v2", headers=headers, timeout=self._timeout_s)
        except httpx.HTTPError as exc:
            raise error_from_transport(VENDOR, exc) from None
        if response.status_code != 200:
            raise error_from_response(VENDOR, response)

    def _call(
        self, request: ProviderRequest, params: dict[str, Any], credentials: Credentials
    ) -> ProviderResult:
        from huggingface_hub import InferenceClient

        source = request.model.source
        if credentials.base_url:
            url = f"{credentials.base_url.rstrip('/')}/models/{source}"
            client = InferenceClient(base_url=url, api_key=credentials.api_key, timeout=self._timeout_s)
            model = None  # the URL names the model; a model id here would make the SDK route it itself
        else:
            client = InferenceClient(api_key=credentials.api_key, timeout=self._timeout_s)
            model = source
        if request.model.task is Task.TEXT_TO_IMAGE:
            image = client.text_to_image(
                request.prompt,
                model=model,
                negative_prompt=request.negative_prompt or None,
                width=int(params["width"]) or None,
                height=int(params["height"]) or None,
                num_inference_steps=int(params["steps"]) or None,
                guidance_scale=float(params["guidance_scale"]) or None,
                seed=request.seed,
            )
            return ProviderResult([_png_output(image)], Usage(images=1), seed=request.seed)
        if request.model.task is Task.SPEECH:
            output = _audio_output(client.text_to_speech(request.prompt, model=model))
            usage = Usage(characters=len(request.prompt), audio_seconds=output.duration_s or 0.0)
            return ProviderResult([output], usage)
        messages = [{"role": "user", "content": request.prompt}]
        if params["system"]:
            messages.insert(0, {"role": "system", "content": str(params["system"])})
        answer = client.chat_completion(
            messages,
            model=source,  # the payload's "model"; with a base_url the URL still decides where it goes
            max_tokens=int(params["max_tokens"]),
            temperature=float(params["temperature"]),
            seed=request.seed,
        )
        return _text_result(answer, request.seed)


def _credentials(credentials: Credentials | None) -> Credentials:
    if credentials is None or not credentials.api_key:
        raise ProviderAuthFailed("No Hugging Face key is set for this organization.")
    return credentials


def _translate(exc: Exception) -> ProviderError:
    """huggingface_hub's errors (and undecodable answers) as our typed errors."""
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return ProviderUnavailable(
            "HF_HUB_OFFLINE is set on this machine, which switches off Hugging Face hosted inference; "
            "unset it to use hosted models.",
            retryable=False,
            fallback=True,
        )
    if isinstance(exc, InferenceTimeoutError):
        return ProviderTimeout(f"{VENDOR} did not answer in time.")
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        error = error_from_response(VENDOR, exc.response)
        if error.retry_after is None and error.status == 503:  # a cold model: {"estimated_time": 20.0}
            error.retry_after = _estimated_time(exc.response) or retry_after_seconds(exc.response.headers)
        return error
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TransportError" in names:  # httpx2's connection errors
        return error_from_transport(VENDOR, exc)
    if isinstance(exc, ValueError) and "support" in str(exc) and not isinstance(exc, json.JSONDecodeError):
        # The SDK refused before sending: no inference provider serves this model for this task.
        return ProviderBadRequest(f"{VENDOR} cannot run this: {str(exc).splitlines()[0][:300]}")
    return ProviderUnavailable(f"{VENDOR} sent an answer that could not be read ({type(exc).__name__}).")


def _estimated_time(response: Any) -> float | None:
    try:
        value = json.loads(response.content).get("estimated_time")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and value >= 0 else None


def _png_output(image: Any) -> Output:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Output(buffer.getvalue(), "image/png", width=image.width, height=image.height)


def _audio_output(data: bytes) -> Output:
    """WAV and MP3 as delivered; anything else libsndfile reads (FLAC, OGG) converted to WAV."""
    import soundfile as sf

    info = sf.info(io.BytesIO(data))
    if info.frames <= 0 or info.samplerate <= 0:
        raise ValueError("no audio frames")
    seconds = info.frames / info.samplerate
    if info.format in ("WAV", "MP3"):
        mime = "audio/wav" if info.format == "WAV" else "audio/mpeg"
        return Output(data, mime, duration_s=seconds, sample_rate=info.samplerate)
    audio, rate = sf.read(io.BytesIO(data))
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, subtype="PCM_16", format="WAV")
    return Output(buffer.getvalue(), "audio/wav", duration_s=seconds, sample_rate=rate)


def _text_result(answer: Any, seed: int | None) -> ProviderResult:
    """The first choice's text and the token counts the server reported."""
    text = answer.choices[0].message.content
    if not isinstance(text, str):
        raise ValueError("the answer has no text")
    usage_block = answer.usage
    usage = Usage(
        input_tokens=int(getattr(usage_block, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage_block, "completion_tokens", 0) or 0),
    )
    info = {"finish_reason": answer.choices[0].finish_reason, "model": answer.model}
    return ProviderResult([Output(text.encode(), "text/plain", text=text)], usage, seed=seed, info=info)
