"""A fake Anthropic API on 127.0.0.1 that speaks the real wire format.

Paths, bodies, headers and error shapes follow Anthropic's API reference: requests carry the key
in `x-api-key` or, since API version 2026-10-21, `Authorization: Bearer` (x-api-key wins when both
come), and an `anthropic-version` header; errors are
`{"type": "error", "error": {"type", "message"}, "request_id"}` with a `request-id` header.
Version 2026-10-21 refuses the sampling parameters (temperature, top_p, top_k) with a 400.
Tests swap a route's handler (`fake.routes[...] = ...`) to inject errors.
"""

from __future__ import annotations

import itertools

from tests.providers.fakes.server import FakeVendor, Handler, Recorded, Reply

API_KEY = "sk-ant-api03-test0123456789abcdefWXYZ"
NO_SAMPLING_SINCE = "2026-10-21"
SAMPLING = ("temperature", "top_p", "top_k")
_ids = itertools.count(1)


def request_id() -> str:
    return f"req_011C{next(_ids):020d}"


def error_reply(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An error in Anthropic's shape."""
    rid = request_id()
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": rid}
    return Reply(status, body, {"request-id": rid, **(headers or {})})


def rate_limit_reply(retry_after: str = "12") -> Reply:
    return error_reply(
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 input tokens per minute.",
        {"retry-after": retry_after, "anthropic-ratelimit-requests-remaining": "0"},
    )


def overloaded_reply() -> Reply:
    return error_reply(529, "overloaded_error", "Overloaded")


def server_error_reply() -> Reply:
    return error_reply(500, "api_error", "Internal server error")


def message_body(text: str, model: str, *, stop_reason: str = "end_turn") -> dict:
    """A Messages API answer holding one text block."""
    content = [{"type": "text", "text": text}] if text else []
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 21,
            "output_tokens": 9,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


class FakeAnthropic(FakeVendor):
    """Anthropic's messages and models endpoints, accepting one API key."""

    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.reset()

    def reset(self) -> None:
        """Forget recorded requests and put back the normal handlers (between tests)."""
        self.requests.clear()
        self.routes.clear()
        self.route("POST", "/v1/messages")(self._checked(self._messages))
        self.route("GET", "/v1/models")(self._checked(self._models))

    def _checked(self, handler: Handler) -> Handler:
        def check(request: Recorded) -> Reply:
            bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
            key = request.headers.get("x-api-key") or bearer
            if not key:
                return error_reply(401, "authentication_error", "x-api-key header is required")
            if key != self.api_key:
                return error_reply(401, "authentication_error", "invalid x-api-key")
            if "anthropic-version" not in request.headers:
                return error_reply(400, "invalid_request_error", "anthropic-version: header is required")
            return handler(request)

        return check

    def _messages(self, request: Recorded) -> Reply:
        body = request.json()
        if not isinstance(body.get("max_tokens"), int):
            return error_reply(400, "invalid_request_error", "max_tokens: Field required")
        if not body.get("messages"):
            return error_reply(400, "invalid_request_error", "messages: Field required")
        if request.headers["anthropic-version"] >= NO_SAMPLING_SINCE:
            for name in SAMPLING:
                if name in body:
                    return error_reply(
                        400, "invalid_request_error", f"{name}: Extra inputs are not permitted"
                    )
        question = body["messages"][-1]["content"]
        reply = message_body(f"You asked: {question}", body["model"])
        return Reply(200, reply, {"request-id": request_id(), "anthropic-organization-id": "org-test"})

    def _models(self, request: Recorded) -> Reply:
        data = [
            {
                "type": "model",
                "id": "claude-sonnet-4-5-20250929",
                "display_name": "Claude Sonnet 4.5",
                "created_at": "2025-09-29T00:00:00Z",
            }
        ]
        body = {"data": data, "has_more": True, "first_id": data[0]["id"], "last_id": data[0]["id"]}
        return Reply(200, body, {"request-id": request_id()})
