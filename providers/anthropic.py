"""Anthropic, hosted: Claude text through the official `anthropic` SDK's Messages API.

The key comes only from `ProviderRequest.credentials`; the SDK's own retries are off (the router
retries and falls back) and every SDK error is translated here into `core.errors`. The SDK is
imported inside the functions that call it, so listing providers stays cheap.

SDK 2.x speaks API version 2026-10-21: the key goes out as `Authorization: Bearer` (the API also
takes `x-api-key`), and the sampling parameters (temperature, top_p, top_k) are gone: the API
answers 400 to any of them, even at their defaults, so this provider offers none.
"""

from __future__ import annotations

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
    ParamSpec,
    Progress,
    ProgressCallback,
    ProviderRequest,
    ProviderResult,
    Task,
    Usage,
)

if TYPE_CHECKING:
    import anthropic

DEFAULT_BASE_URL = "https://api.anthropic.com"
CLAUDE = re.compile(r"claude-[\w.@:-]+")
# The most tokens each generation may write in one answer; newer models allow at least this.
OUTPUT_LIMITS = (
    (re.compile(r"claude-3-(haiku|opus|sonnet)\b.*"), 4_096),
    (re.compile(r"claude-3-5-.*"), 8_192),
)
DEFAULT_OUTPUT_LIMIT = 32_000
DEFAULT_MAX_TOKENS = 512
BAD_REQUEST_STATUSES = frozenset({400, 404, 409, 413, 415, 422})
KEY_LIKE = re.compile(r"\bsk-[\w*-]{3,}")
HTML_TAG = re.compile(r"<[^>]+>")
MAX_VENDOR_MESSAGE = 300


class AnthropicProvider:
    """Text from Anthropic's Claude models."""

    name = "anthropic"
    local = False

    def __init__(self, timeout_s: float = 600.0) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._timeout_s = timeout_s

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """Check a Claude model id; Claude only writes text."""
        source = source.strip()
        if not source:
            raise InvalidInput("Give a Claude model id, like claude-sonnet-4-5.")
        if task is not None and task is not Task.TEXT:
            raise InvalidInput(f"Anthropic's models write text; they cannot do {task}.")
        if task is None and not CLAUDE.fullmatch(source):
            raise InvalidInput(
                f"'{source}' is not a Claude model id (claude-…); give its task to register it anyway."
            )
        return ModelRef(source, self.name, source, Task.TEXT)

    def describe(self, model: ModelRef) -> ModelSpec:
        """Max tokens (required by the API) and a system prompt."""
        if model.task is not Task.TEXT:
            raise InvalidInput(f"Anthropic's models write text; they cannot do {model.task}.")
        limit = next(
            (n for pattern, n in OUTPUT_LIMITS if pattern.fullmatch(model.source)), DEFAULT_OUTPUT_LIMIT
        )
        params = (
            ParamSpec(
                "max_tokens",
                "int",
                DEFAULT_MAX_TOKENS,
                minimum=1,
                maximum=limit,
                step=1,
                label="Max tokens",
                help="The longest answer, in tokens.",
            ),
            ParamSpec("system", "str", "", label="System prompt", help="Instructions the model follows."),
        )
        return ModelSpec(Task.TEXT, params, f"Anthropic {model.source}")

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """One answer from Claude."""
        credentials = _usable(request.credentials)
        spec = self.describe(request.model)
        params = {p.name: request.params.get(p.name, p.default) for p in spec.params}
        if not request.prompt.strip():
            raise InvalidInput("Write a prompt for the model to answer.")
        if cancel.canceled:
            raise Canceled("The generation was canceled before Anthropic was called.")
        progress(Progress(0, 1, "Waiting for Anthropic"))
        options: dict[str, Any] = {
            "model": request.model.source,
            "max_tokens": int(params["max_tokens"]),
            "messages": [{"role": "user", "content": request.prompt}],
        }
        if params["system"]:
            options["system"] = params["system"]
        with self._client(credentials) as client, _vendor_errors(credentials.api_key, self._timeout_s):
            message = client.messages.create(**options)  # type: ignore[call-overload]
            result = _answer(message)
        progress(Progress(1, 1, "Done"))
        return result

    def check_key(self, credentials: Credentials) -> None:
        """List one model, the cheapest authenticated call; ProviderAuthFailed on a bad key."""
        credentials = _usable(credentials)
        with self._client(credentials) as client, _vendor_errors(credentials.api_key, self._timeout_s):
            client.models.list(limit=1)

    def _client(self, credentials: Credentials) -> anthropic.Anthropic:
        import anthropic

        return anthropic.Anthropic(
            api_key=credentials.api_key,
            base_url=credentials.base_url or DEFAULT_BASE_URL,
            timeout=self._timeout_s,
            max_retries=0,
        )


def _usable(credentials: Credentials | None) -> Credentials:
    if credentials is None or not credentials.api_key.strip():
        raise ProviderAuthFailed("No Anthropic key is set for this organization.")
    return credentials


def _answer(message: anthropic.types.Message) -> ProviderResult:
    """The text of a Messages API answer; ContentRefused when Claude declined."""
    if message.stop_reason == "refusal":
        raise ContentRefused("Anthropic's model declined to answer this request.")
    blocks = [block for block in message.content if getattr(block, "type", None) == "text"]
    if not blocks and message.stop_reason != "max_tokens":
        raise ValueError("no text in the answer")
    text = "".join(block.text for block in blocks)  # type: ignore[union-attr]
    usage = Usage(
        input_tokens=int(message.usage.input_tokens), output_tokens=int(message.usage.output_tokens)
    )
    info = {
        "stop_reason": message.stop_reason,
        "model": message.model,
        "request_id": getattr(message, "_request_id", None),
    }
    return ProviderResult([Output(text.encode(), "text/plain", text=text)], usage, info=info)


@contextmanager
def _vendor_errors(api_key: str, timeout_s: float) -> Iterator[None]:
    """Translate whatever the SDK or a malformed answer raises into `core.errors`."""
    import anthropic

    try:
        yield
    except anthropic.APITimeoutError:
        raise ProviderTimeout(f"Anthropic did not answer within {timeout_s:g} seconds.") from None
    except anthropic.APIConnectionError as exc:
        raise ProviderUnavailable(f"Could not reach Anthropic: {_safe(exc.message, api_key)}") from None
    except anthropic.APIStatusError as exc:
        raise _status_error(exc, api_key) from None
    except anthropic.AnthropicError as exc:
        raise ProviderUnavailable(f"Anthropic failed: {_safe(str(exc), api_key)}") from None
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        # Not JSON, or JSON of the wrong shape: the SDK does not validate, so it surfaces here.
        raise ProviderUnavailable(
            f"Anthropic sent a response we could not read ({type(exc).__name__}); try again."
        ) from None


def _status_error(exc: anthropic.APIStatusError, api_key: str) -> ProviderError:
    status, kind = exc.status_code, exc.type
    message = _vendor_message(exc, api_key)
    if status in (401, 403) or kind in ("authentication_error", "permission_error"):
        return ProviderAuthFailed(f"Anthropic refused the key ({status}): {message}", status=status)
    if status == 402 or kind == "billing_error":
        # Waiting does not add credit; another provider may still serve.
        return ProviderRateLimited(
            f"The Anthropic account is out of credit: {message}",
            status=status,
            retryable=False,
            fallback=True,
        )
    if status == 429 or kind == "rate_limit_error":
        return ProviderRateLimited(
            f"Anthropic's rate limit was reached: {message}",
            status=status,
            retry_after=_retry_after(exc.response.headers),
        )
    if status == 504 or kind == "timeout_error":
        return ProviderTimeout(f"Anthropic timed out ({status}): {message}", status=status)
    if status in BAD_REQUEST_STATUSES:
        return ProviderBadRequest(f"Anthropic rejected the request ({status}): {message}", status=status)
    # 500 api_error, 529 overloaded_error and anything else the server got wrong.
    return ProviderUnavailable(f"Anthropic failed ({status}): {message}", status=status)


def _vendor_message(exc: anthropic.APIStatusError, api_key: str) -> str:
    if isinstance(exc.api_message, str) and exc.api_message:
        text = exc.api_message
    elif isinstance(exc.body, str) and exc.body.strip():
        text = HTML_TAG.sub(" ", exc.body)  # a proxy's error page
    else:
        text = exc.message
    text = " ".join(text.split())
    if len(text) > MAX_VENDOR_MESSAGE:
        text = text[:MAX_VENDOR_MESSAGE] + "…"
    if exc.request_id:
        text += f" (request {exc.request_id})"
    return _safe(text, api_key)


def _safe(text: str, api_key: str) -> str:
    """The text without the key or anything that looks like one."""
    if api_key:
        text = text.replace(api_key, "[key hidden]")
    return KEY_LIKE.sub("[key hidden]", text)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from Retry-After as seconds or an HTTP date."""
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
