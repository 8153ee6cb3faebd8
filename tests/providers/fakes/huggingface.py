"""A fake Hugging Face inference server speaking what huggingface_hub's InferenceClient sends.

With `InferenceClient(base_url="{url}/models/{hub id}")` (the hf-inference layout), the SDK posts
text-to-image and text-to-speech to the model URL itself as {"inputs": ..., "parameters": {...}}
(images with `Accept: image/png`) and chat to `{model URL}/v1/chat/completions` in OpenAI format
with {"model", "messages", ...}; it authenticates with `authorization: Bearer hf_...`. Answers:
PNG bytes, FLAC audio (what hf-inference returns for speech), a chat.completion object. Errors are
{"error": "..."} (a cold model adds "estimated_time"). GET /api/whoami-v2 is the Hub's key check.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from PIL import Image

from tests.providers.fakes.server import FakeVendor, Recorded, Reply

VALID_KEY = "hf_fakeFAKEfake0123456789abcdef"
IMAGE_MODEL = "black-forest-labs/FLUX.1-schnell"
SPEECH_MODEL = "hexgrad/Kokoro-82M"
CHAT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CHAT_SUFFIX = "/v1/chat/completions"
SPEECH_RATE = 24000
SPEECH_SECONDS = 1.5
ANSWER = "A lighthouse keeper counts the waves."
PROMPT_TOKENS, COMPLETION_TOKENS = 23, 9


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: object) -> Reply:
    """A Hugging Face error reply: {"error": message, ...}."""
    return Reply(status, {"error": message, **extra}, headers or {})


def invalid_credentials() -> Reply:
    return error(401, "Invalid credentials in Authorization header")


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 60, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def flac(seconds: float = SPEECH_SECONDS, rate: int = SPEECH_RATE) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(2 * np.pi * 330 * t), rate, format="FLAC")
    return buffer.getvalue()


def chat_completion(model: str, content: str = ANSWER) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "system_fingerprint": "3.2.1-sha-fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        },
    }


def _authorized(request: Recorded) -> Reply | None:
    ok = request.headers.get("authorization") == f"Bearer {VALID_KEY}"
    return None if ok else invalid_credentials()


def huggingface_fake() -> FakeVendor:
    """A FakeVendor serving one image, one speech and one chat model under /models/, plus whoami."""
    vendor = FakeVendor()

    @vendor.route("POST", "/models/*")
    def inference(request: Recorded) -> Reply:
        if (refused := _authorized(request)) is not None:
            return refused
        model = request.path.removeprefix("/models/").removesuffix(CHAT_SUFFIX)
        body = request.json()
        if request.path.endswith(CHAT_SUFFIX):
            if model != CHAT_MODEL or not body.get("messages"):
                return error(400, f"Model {model} does not support chat completion")
            return Reply(200, chat_completion(body.get("model") or model))
        if model == IMAGE_MODEL:
            parameters = body.get("parameters") or {}
            width, height = parameters.get("width") or 64, parameters.get("height") or 48
            return Reply(200, png(width, height), {"Content-Type": "image/png"})
        if model == SPEECH_MODEL:
            return Reply(200, flac(), {"Content-Type": "audio/flac"})
        return error(404, f"Model {model} does not exist")

    @vendor.route("GET", "/api/whoami-v2")
    def whoami(request: Recorded) -> Reply:
        if (refused := _authorized(request)) is not None:
            return refused
        token = {"displayName": "studio", "role": "read"}
        return Reply(
            200, {"type": "user", "name": "studio", "auth": {"type": "access_token", "accessToken": token}}
        )

    return vendor
