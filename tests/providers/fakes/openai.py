"""A fake OpenAI API on 127.0.0.1 that speaks the real wire format.

Paths, bodies, headers and error shapes follow OpenAI's API reference: errors are
`{"error": {"message", "type", "param", "code"}}` with an `x-request-id` header; images come back
as base64 PNGs; speech is a binary body (a WAV with the 0xFFFFFFFF sizes OpenAI streams).
Tests swap a route's handler (`fake.routes[...] = ...`) to inject errors.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
import struct
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser

from PIL import Image

from tests.providers.fakes.server import FakeVendor, Handler, Recorded, Reply

API_KEY = "sk-proj-test0123456789abcdefWXYZ"
SPEECH_RATE = 24_000  # OpenAI's WAV and PCM speech is 24 kHz, 16-bit, mono
SPEECH_SECONDS = 0.5
GPT_IMAGE_PREFIXES = ("gpt-image", "chatgpt-image")
_ids = itertools.count(1)


@dataclass(frozen=True)
class FormPart:
    """One field of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


def multipart_form(request: Recorded) -> dict[str, FormPart]:
    """The fields of a multipart/form-data request, by name."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.body)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = FormPart(
            name, part.get_filename(), part.get_content_type(), part.get_payload(decode=True) or b""
        )
    return parts


def request_id() -> str:
    return f"req_{next(_ids):032x}"


def error_reply(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An error in OpenAI's shape."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return Reply(status, body, {"x-request-id": request_id(), **(headers or {})})


def invalid_key_reply(key: str) -> Reply:
    """401 as OpenAI sends it, quoting the key masked."""
    masked = key[:8] + "*" * 20 + key[-4:]
    return error_reply(
        401,
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def rate_limit_reply(retry_after: str = "7") -> Reply:
    return error_reply(
        429,
        "Rate limit reached for gpt-image-1 in organization org-test on images per minute (IPM): "
        "Limit 5, Used 5, Requested 1.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"retry-after": retry_after, "x-ratelimit-remaining-requests": "0"},
    )


def quota_reply() -> Reply:
    return error_reply(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        type="insufficient_quota",
        code="insufficient_quota",
    )


def server_error_reply() -> Reply:
    return error_reply(
        500, "The server had an error while processing your request. Sorry about that!", type="server_error"
    )


def moderation_blocked_reply() -> Reply:
    """GPT Image's refusal."""
    return error_reply(
        400,
        "Your request was rejected by the safety system. If you believe this is an error, contact us "
        "at help.openai.com and include the request ID. safety_violations=[violence].",
        type="image_generation_user_error",
        code="moderation_blocked",
    )


def content_policy_reply() -> Reply:
    """DALL·E's refusal."""
    return error_reply(
        400,
        "Your request was rejected as a result of our safety system. Your prompt may contain text "
        "that is not allowed by our safety system.",
        code="content_policy_violation",
    )


def content_filtered_chat_reply(refusal: str) -> Reply:
    """A chat completion stopped by OpenAI's content filter."""
    message = {"role": "assistant", "content": None, "refusal": refusal, "annotations": []}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"}
    body = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeH",
        "object": "chat.completion",
        "created": 1_741_570_283,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [choice],
        "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5},
    }
    return Reply(200, body, {"x-request-id": request_id()})


def png(width: int, height: int, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def streamed_wav(seconds: float = SPEECH_SECONDS) -> bytes:
    """A 24 kHz mono 16-bit WAV whose RIFF and data sizes are 0xFFFFFFFF, as OpenAI streams it."""
    frames = int(SPEECH_RATE * seconds)
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / SPEECH_RATE))) for i in range(frames)
    )
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, SPEECH_RATE, SPEECH_RATE * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVE"
        + fmt
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
        + samples
    )


# An ID3v2 header then one MPEG-1 Layer III frame header: enough to look like MP3.
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(413)


class FakeOpenAI(FakeVendor):
    """OpenAI's images, chat, speech and models endpoints, accepting one API key."""

    def __init__(self, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.reset()

    def reset(self) -> None:
        """Forget recorded requests and put back the normal handlers (between tests)."""
        self.requests.clear()
        self.routes.clear()
        self.route("POST", "/v1/images/generations")(self._authorized(self._generate_image))
        self.route("POST", "/v1/images/edits")(self._authorized(self._edit_image))
        self.route("POST", "/v1/chat/completions")(self._authorized(self._chat))
        self.route("POST", "/v1/audio/speech")(self._authorized(self._speech))
        self.route("GET", "/v1/models")(self._authorized(self._models))

    @property
    def base_url(self) -> str:
        """What a client uses as its base URL (the API root, with /v1)."""
        return self.url + "/v1"

    def _authorized(self, handler: Handler) -> Handler:
        def check(request: Recorded) -> Reply:
            authorization = request.headers.get("authorization", "")
            if authorization != f"Bearer {self.api_key}":
                given = authorization.removeprefix("Bearer ")
                if not given:
                    return error_reply(
                        401,
                        "You didn't provide an API key. You need to provide your API key in an "
                        "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    )
                return invalid_key_reply(given)
            return handler(request)

        return check

    def _generate_image(self, request: Recorded) -> Reply:
        body = request.json()
        model = body.get("model", "dall-e-2")
        size = body.get("size") or "1024x1024"
        return self._image_reply(
            model, size, body.get("quality"), body.get("response_format"), body["prompt"]
        )

    def _edit_image(self, request: Recorded) -> Reply:
        form = multipart_form(request)
        if "image" not in form or "prompt" not in form:
            return error_reply(
                400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter"
            )
        image = Image.open(io.BytesIO(form["image"].data))
        if "mask" in form:
            mask = Image.open(io.BytesIO(form["mask"].data))
            if mask.mode != "RGBA" or mask.size != image.size:
                return error_reply(
                    400,
                    "Invalid mask image. The mask and image must be the same size "
                    "and the mask must have an alpha channel.",
                    param="mask",
                )
        text = {name: part.data.decode() for name, part in form.items() if part.filename is None}
        model = text.get("model", "dall-e-2")
        if model.startswith("dall-e-2") and image.mode not in ("RGBA", "LA", "L"):
            return error_reply(
                400,
                f"Invalid input image - format must be in ['RGBA', 'LA', 'L'], got {image.mode}.",
                param="image",
            )
        size = text.get("size") or f"{image.width}x{image.height}"
        return self._image_reply(
            model, size, text.get("quality"), text.get("response_format"), text["prompt"]
        )

    def _image_reply(
        self, model: str, size: str, quality: str | None, response_format: str | None, prompt: str
    ) -> Reply:
        width, height = (int(n) for n in size.split("x"))
        encoded = base64.b64encode(png(width, height)).decode()
        if model.startswith(GPT_IMAGE_PREFIXES):
            if response_format is not None:
                return error_reply(
                    400,
                    "Unknown parameter: 'response_format'.",
                    param="response_format",
                    code="unknown_parameter",
                )
            body = {
                "created": 1_713_833_628,
                "background": "opaque",
                "data": [{"b64_json": encoded}],
                "output_format": "png",
                "quality": quality or "medium",
                "size": size,
                "usage": {
                    "input_tokens": 50,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
                    "output_tokens": 1056,
                    "total_tokens": 1106,
                },
            }
        else:
            item: dict[str, str] = (
                {"b64_json": encoded}
                if response_format == "b64_json"
                else {"url": "https://oaidalleapiprodscus.blob.core.windows.net/private/img.png"}
            )
            if model.startswith("dall-e-3"):
                item["revised_prompt"] = f"A detailed picture of {prompt}"
            body = {"created": 1_713_833_628, "data": [item]}
        return Reply(200, body, {"x-request-id": request_id(), "openai-processing-ms": "2113"})

    def _chat(self, request: Recorded) -> Reply:
        body = request.json()
        if "max_tokens" in body and body["model"].startswith(("o", "gpt-5")):
            return error_reply(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                param="max_tokens",
                code="unsupported_parameter",
            )
        question = body["messages"][-1]["content"]
        answer = f"You asked: {question}"
        reply = {
            "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
            "object": "chat.completion",
            "created": 1_741_570_283,
            "model": f"{body['model']}-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 19,
                "completion_tokens": 10,
                "total_tokens": 29,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306",
        }
        return Reply(200, reply, {"x-request-id": request_id(), "openai-processing-ms": "412"})

    def _speech(self, request: Recorded) -> Reply:
        body = request.json()
        if body.get("response_format", "mp3") == "wav":
            return Reply(200, streamed_wav(), {"Content-Type": "audio/wav", "x-request-id": request_id()})
        return Reply(200, MP3, {"Content-Type": "audio/mpeg", "x-request-id": request_id()})

    def _models(self, request: Recorded) -> Reply:
        models = ["gpt-4o-mini", "gpt-image-1", "tts-1", "dall-e-3"]
        data = [{"id": m, "object": "model", "created": 1_698_785_189, "owned_by": "system"} for m in models]
        return Reply(200, {"object": "list", "data": data}, {"x-request-id": request_id()})
