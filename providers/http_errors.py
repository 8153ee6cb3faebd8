"""HTTP failures as our typed errors, the one wire helper hosted providers share: 401/403 auth,
402 quota (not retryable; another provider may serve), 408 timeout, 429 rate limit with Retry-After,
5xx unavailable, other 4xx bad request. The vendor's message is kept, shortened, never with a key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from core.errors import (
    ProviderAuthFailed,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)

MESSAGE_LIMIT = 300
SECRET_HEADERS = ("authorization", "xi-api-key", "x-api-key", "api-key")


class HTTPResponse(Protocol):
    """What we read from a response: httpx's, or the httpx2 one huggingface_hub uses."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


def error_from_response(vendor: str, response: HTTPResponse) -> ProviderError:
    """The typed error for a failed HTTP answer, with the vendor's message and status."""
    status = response.status_code
    said = vendor_message(response)
    message = f"{vendor} answered {status}: {said}" if said else f"{vendor} answered {status}."
    retry_after = retry_after_seconds(response.headers)
    if status in (401, 403):
        return ProviderAuthFailed(message, status=status)
    if status == 402:  # payment required: the account is out of credit until someone pays
        return ProviderRateLimited(message, status=status, retryable=False, fallback=True)
    if status == 408:
        return ProviderTimeout(message, status=status)
    if status == 429:
        return ProviderRateLimited(message, status=status, retry_after=retry_after)
    if 400 <= status < 500:
        return ProviderBadRequest(message, status=status)
    return ProviderUnavailable(message, status=status, retry_after=retry_after)


def error_from_transport(vendor: str, exc: Exception) -> ProviderError:
    """The typed error for a request that got no answer (httpx or httpx2 transport errors)."""
    # Matched by class name so httpx2's twins of httpx's classes (huggingface_hub) map the same way.
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "TimeoutException" in names or isinstance(exc, TimeoutError):
        return ProviderTimeout(f"{vendor} did not answer in time ({type(exc).__name__}).")
    return ProviderUnavailable(f"Could not reach {vendor} ({type(exc).__name__}).")


def vendor_message(response: HTTPResponse) -> str:
    """The human part of an error body in the common JSON shapes, shortened, keys masked."""
    try:
        text = _message_in(json.loads(response.content or b"null"))
    except ValueError:  # not JSON: keep a plain-text body, never binary
        plain = response.headers.get("content-type", "text/").startswith("text/")
        text = response.content[:MESSAGE_LIMIT].decode("utf-8", "replace") if plain else ""
    text = " ".join(text.split())
    for secret in _secrets_of(response):
        text = text.replace(secret, "…")
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from retry-after-ms, or Retry-After in seconds or as an HTTP date; None if absent."""
    millis, value = headers.get("retry-after-ms"), (headers.get("retry-after") or "").strip()
    try:
        return max(0.0, float(millis) / 1000 if millis is not None else float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _message_in(body: Any) -> str:
    """{"detail": {"message"}|str|[{"msg"}]}, {"error": str|{"message"}}, {"message"}, {"title"}."""
    if isinstance(body, str):
        return body
    if isinstance(body, list):  # FastAPI validation errors: [{"loc": [...], "msg": "..."}]
        return "; ".join(_validation_item(item) for item in body[:3])
    if not isinstance(body, dict):
        return ""
    found = (_message_in(body.get(key)) for key in ("detail", "error", "message", "title") if key in body)
    return next((text for text in found if text), "")


def _validation_item(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where, what = ".".join(str(p) for p in item.get("loc") or ()), str(item.get("msg") or "")
    return f"{where}: {what}" if where else what


def _secrets_of(response: HTTPResponse) -> list[str]:
    """The credential values the request carried, so an echo of them never reaches a message."""
    try:
        headers = response.request.headers  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # a response built without a request
        return []
    values = [headers.get(name) or "" for name in SECRET_HEADERS]
    values += [value.split(" ", 1)[-1] for value in values]  # the bare key of "Bearer <key>"
    return sorted({v for v in values if len(v) >= 6}, key=len, reverse=True)
