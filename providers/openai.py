"""OpenAI, hosted: images (GPT Image, DALL·E), chat text and speech, through the official `openai` SDK.

The key comes only from `ProviderRequest.credentials`; the SDK's own retries are off (the router
retries and falls back) and every SDK error is translated here into `core.errors`. The SDK is
imported inside the functions that call it, so listing providers stays cheap.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from core.errors import (
    Canceled,
    ContentRefused,
    InvalidInput,
    ProviderAuthFailed,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from core.types import (
    CancelToken,
    Credentials,
    ModelRef,
    ModelSpec,
    Output,
    Progress,
    ProgressCallback,
    ProviderRequest,
    ProviderResult,
    Task,
    Usage,
)
from providers.openai_catalog import (
    MAX_SPEECH_CHARACTERS,
    ChatModel,
    ImageModel,
    SpeechModel,
    family_for,
    family_of,
    natural_task,
    params_for,
)
from providers.openai_media import (
    looks_like_mp3,
    read_picture,
    repaired_wav,
    rgba_png,
    transparent_mask,
    upload_of,
)

if TYPE_CHECKING:
    import openai

DEFAULT_BASE_URL = "https://api.openai.com/v1"
CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
BAD_REQUEST_STATUSES = frozenset({400, 404, 409, 413, 415, 422})
# OpenAI's 401 message quotes the key, masked ("sk-proj-****abcd"); we show none of it.
KEY_LIKE = re.compile(r"\bsk-[\w*-]{3,}")
HTML_TAG = re.compile(r"<[^>]+>")
MAX_VENDOR_MESSAGE = 300


class OpenAIProvider:
    """Images, text and speech from OpenAI's API."""

    name = "openai"
    local = False

    def __init__(self, timeout_s: float = 600.0) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._timeout_s = timeout_s

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """Check an OpenAI model id serves `task`; an id we do not know needs its task given."""
        source = source.strip()
        if not source:
            raise InvalidInput("Give an OpenAI model id, like gpt-image-1 or gpt-4o-mini.")
        if task is None:
            family = family_of(source)
            if family is None:
                raise InvalidInput(
                    f"'{source}' is not an OpenAI model we know; give its task to register it anyway."
                )
            task = natural_task(family)
        family_for(source, task)
        return ModelRef(source, self.name, source, task)

    def describe(self, model: ModelRef) -> ModelSpec:
        """The model's parameters (sizes and qualities per image model), without any network."""
        family = family_for(model.source, model.task)
        return ModelSpec(model.task, params_for(family), f"OpenAI {model.source}")

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """One image, answer or speech file from OpenAI."""
        credentials = _usable(request.credentials)
        source, task = request.model.source, request.model.task
        family = family_for(source, task)
        params = {p.name: request.params.get(p.name, p.default) for p in params_for(family)}
        if cancel.canceled:
            raise Canceled("The generation was canceled before OpenAI was called.")
        progress(Progress(0, 1, "Waiting for OpenAI"))
        with self._client(credentials) as client, _vendor_errors(credentials.api_key, self._timeout_s):
            if isinstance(family, ImageModel):
                result = _make_image(client, request, family, params)
            elif isinstance(family, ChatModel):
                result = _make_text(client, request, family, params)
            else:
                result = _make_speech(client, request, family, params)
        progress(Progress(1, 1, "Done"))
        return result

    def check_key(self, credentials: Credentials) -> None:
        """List models, the cheapest authenticated call; ProviderAuthFailed on a bad key."""
        credentials = _usable(credentials)
        with self._client(credentials) as client, _vendor_errors(credentials.api_key, self._timeout_s):
            client.models.list()

    def _client(self, credentials: Credentials) -> openai.OpenAI:
        import openai

        return openai.OpenAI(
            api_key=credentials.api_key,
            base_url=credentials.base_url or DEFAULT_BASE_URL,
            timeout=self._timeout_s,
            max_retries=0,
            # The SDK adds organization and project headers from OPENAI_ORG_ID / OPENAI_PROJECT_ID;
            # a tenant's own key must not travel with the operator's organization.
            default_headers={"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()},  # type: ignore[dict-item]
        )


def _usable(credentials: Credentials | None) -> Credentials:
    if credentials is None or not credentials.api_key.strip():
        raise ProviderAuthFailed("No OpenAI key is set for this organization.")
    return credentials


def _make_image(
    client: openai.OpenAI, request: ProviderRequest, family: ImageModel, params: dict[str, Any]
) -> ProviderResult:
    source, task, prompt = request.model.source, request.model.task, request.prompt
    if not prompt.strip():
        raise InvalidInput("Describe the image in the prompt.")
    if len(prompt) > family.max_prompt:
        raise InvalidInput(f"OpenAI's {source} takes prompts of at most {family.max_prompt:,} characters.")
    size = params["size"]
    quality = params.get("quality", family.default_quality)
    options: dict[str, Any] = {"model": source, "prompt": prompt, "size": size}
    if family.qualities:
        options["quality"] = quality
    if family.legacy:
        options["response_format"] = "b64_json"
    else:
        options["output_format"] = "png"
    if task is Task.TEXT_TO_IMAGE:
        response = client.images.generate(**options)
    else:
        options.update(_edit_files(request, family))
        response = client.images.edit(**options)
    item = response.data[0]  # type: ignore[index]
    picture = read_picture(base64.b64decode(item.b64_json, validate=True))  # type: ignore[arg-type]
    usage = Usage(images=1)
    if response.usage is not None:
        usage.input_tokens = int(response.usage.input_tokens)
        usage.output_tokens = int(response.usage.output_tokens)
    info = {
        # Prices are per image by size and quality; keep what OpenAI says it used.
        "size": response.size if isinstance(response.size, str) else size,
        "quality": response.quality if isinstance(response.quality, str) else quality,
        "request_id": getattr(response, "_request_id", None),
    }
    if item.revised_prompt:
        info["revised_prompt"] = item.revised_prompt
    output = Output(picture.data, picture.mime, width=picture.width, height=picture.height)
    return ProviderResult([output], usage, info=info)


def _edit_files(request: ProviderRequest, family: ImageModel) -> dict[str, tuple[str, bytes, str]]:
    image = request.inputs.get("image")
    if not image:
        raise InvalidInput("Editing needs the image to edit.")
    filename, data, mime = upload_of(image, "image")
    picture = read_picture(data)
    if family.legacy:
        if picture.width != picture.height:
            raise InvalidInput(f"OpenAI's {request.model.source} edits square images only.")
        filename, data, mime = "image.png", rgba_png(data), "image/png"
    files = {"image": (filename, data, mime)}
    if request.model.task is Task.INPAINT:
        mask = request.inputs.get("mask")
        if not mask:
            raise InvalidInput("Inpainting needs a mask: white where to repaint.")
        files["mask"] = ("mask.png", transparent_mask(mask, (picture.width, picture.height)), "image/png")
    return files


def _make_text(
    client: openai.OpenAI, request: ProviderRequest, family: ChatModel, params: dict[str, Any]
) -> ProviderResult:
    if not request.prompt.strip():
        raise InvalidInput("Write a prompt for the model to answer.")
    messages = [{"role": "user", "content": request.prompt}]
    if params.get("system"):
        messages.insert(0, {"role": "system", "content": params["system"]})
    options: dict[str, Any] = {
        "model": request.model.source,
        "messages": messages,
        # `max_tokens` is refused by reasoning models; this one works for every chat model.
        "max_completion_tokens": int(params["max_tokens"]),
    }
    if family.temperature:
        options["temperature"] = float(params["temperature"])
    response = client.chat.completions.create(**options)
    choice = response.choices[0]
    text, refusal = choice.message.content, getattr(choice.message, "refusal", None)
    if choice.finish_reason == "content_filter" or (text is None and refusal):
        raise ContentRefused(f"OpenAI's safety system refused the request: {refusal or 'content filtered'}")
    if not isinstance(text, str):
        raise ValueError("no text in the answer")
    usage = Usage()
    if response.usage is not None:
        usage.input_tokens = int(response.usage.prompt_tokens)
        usage.output_tokens = int(response.usage.completion_tokens)
    info = {
        "finish_reason": choice.finish_reason,
        "model": response.model,
        "request_id": getattr(response, "_request_id", None),
    }
    return ProviderResult([Output(text.encode(), "text/plain", text=text)], usage, info=info)


def _make_speech(
    client: openai.OpenAI, request: ProviderRequest, family: SpeechModel, params: dict[str, Any]
) -> ProviderResult:
    text = request.prompt
    if not text.strip():
        raise InvalidInput("Write the text to speak.")
    if len(text) > MAX_SPEECH_CHARACTERS:
        raise InvalidInput(f"OpenAI speaks at most {MAX_SPEECH_CHARACTERS:,} characters per call.")
    audio_format = params["format"]
    options: dict[str, Any] = {
        "model": request.model.source,
        "voice": params["voice"],
        "input": text,
        "response_format": audio_format,
    }
    if family.speed:
        options["speed"] = float(params["speed"])
    response = client.audio.speech.create(**options)
    data = response.content
    usage = Usage(characters=len(text))
    http_response = getattr(response, "response", None)
    info = {
        "voice": params["voice"],
        "request_id": http_response and http_response.headers.get("x-request-id"),
    }
    if audio_format == "wav":
        sound = repaired_wav(data)
        usage.audio_seconds = sound.duration_s
        output = Output(sound.data, "audio/wav", duration_s=sound.duration_s, sample_rate=sound.sample_rate)
    else:
        if not looks_like_mp3(data):
            raise ValueError("not MP3 audio")
        output = Output(data, "audio/mpeg")
    return ProviderResult([output], usage, info=info)


@contextmanager
def _vendor_errors(api_key: str, timeout_s: float) -> Iterator[None]:
    """Translate whatever the SDK or a malformed answer raises into `core.errors`."""
    import openai

    try:
        yield
    except openai.APITimeoutError:
        raise ProviderTimeout(f"OpenAI did not answer within {timeout_s:g} seconds.") from None
    except openai.APIConnectionError as exc:
        raise ProviderUnavailable(f"Could not reach OpenAI: {_safe(exc.message, api_key)}") from None
    except openai.APIStatusError as exc:
        raise _status_error(exc, api_key) from None
    except openai.OpenAIError as exc:
        raise ProviderUnavailable(f"OpenAI failed: {_safe(str(exc), api_key)}") from None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        # Not JSON, or JSON of the wrong shape: the SDK does not validate, so it surfaces here.
        raise ProviderUnavailable(
            f"OpenAI sent a response we could not read ({type(exc).__name__}); try again."
        ) from None


def _status_error(exc: openai.APIStatusError, api_key: str) -> ProviderError:
    status, code = exc.status_code, exc.code
    message = _vendor_message(exc.body, exc.message, api_key)
    if exc.request_id:
        message += f" (request {exc.request_id})"
    if code in CONTENT_POLICY_CODES:
        return ContentRefused(f"OpenAI's safety system refused the request: {message}", status=status)
    if status in (401, 403):
        return ProviderAuthFailed(f"OpenAI refused the key ({status}): {message}", status=status)
    if status == 429:
        if code in QUOTA_CODES:
            # Waiting does not refill a quota; another provider may still serve.
            return ProviderRateLimited(
                f"The OpenAI account is out of quota: {message}",
                status=status,
                retryable=False,
                fallback=True,
            )
        retry_after = _retry_after(exc.response.headers)
        return ProviderRateLimited(
            f"OpenAI's rate limit was reached: {message}", status=status, retry_after=retry_after
        )
    if status in BAD_REQUEST_STATUSES:
        return ProviderBadRequest(f"OpenAI rejected the request ({status}): {message}", status=status)
    return ProviderUnavailable(f"OpenAI failed ({status}): {message}", status=status)


def _vendor_message(body: object, fallback: str, api_key: str) -> str:
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        text = body["message"]
    elif isinstance(body, str) and body.strip():
        text = HTML_TAG.sub(" ", body)  # a proxy's error page
    else:
        text = fallback
    text = " ".join(text.split())
    if len(text) > MAX_VENDOR_MESSAGE:
        text = text[:MAX_VENDOR_MESSAGE] + "…"
    return _safe(text, api_key)


def _safe(text: str, api_key: str) -> str:
    """The text without the key or anything that looks like one."""
    if api_key:
        text = text.replace(api_key, "[key hidden]")
    return KEY_LIKE.sub("[key hidden]", text)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from Retry-After-Ms, or Retry-After as seconds or an HTTP date."""
    try:
        return max(0.0, float(headers["retry-after-ms"]) / 1000)
    except (KeyError, ValueError):
        pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
