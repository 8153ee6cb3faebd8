"""A fake ElevenLabs API speaking its real wire format (https://elevenlabs.io/docs/api-reference).

POST /v1/sound-generation and POST /v1/text-to-speech/{voice_id} take JSON and `output_format` in
the query and answer audio bytes: real MP3 for mp3_* formats, raw 16-bit little-endian mono PCM
for pcm_*. Errors are {"detail": {"status": ..., "message": ...}}; FastAPI validation errors
(422) are {"detail": [{"loc": [...], "msg": ..., "type": ...}]}. GET /v1/user answers the account.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from tests.providers.fakes.server import FakeVendor, Recorded, Reply

VALID_KEY = "sk_fake_elevenlabs_0123456789abcdef"
AUTO_DURATION_S = 2.0  # what the fake "guesses" when duration_seconds is null
SPEECH_SECONDS_PER_CHARACTER = 0.05


def sine_audio(seconds: float, output_format: str) -> tuple[bytes, str]:
    """A 440 Hz tone encoded as ElevenLabs would deliver `output_format`, with its content type."""
    codec, rate = output_format.split("_")[:2]
    t = np.arange(round(seconds * int(rate))) / int(rate)
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype("float32")
    if codec == "pcm":
        return (tone * 32767).astype("<i2").tobytes(), "audio/pcm"
    buffer = io.BytesIO()
    sf.write(buffer, tone, int(rate), format="MP3")
    return buffer.getvalue(), "audio/mpeg"


def detail_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An ElevenLabs error reply: {"detail": {"status": code, "message": message}}."""
    return Reply(status, {"detail": {"status": code, "message": message}}, headers or {})


def invalid_api_key() -> Reply:
    return detail_error(401, "invalid_api_key", "Invalid API key")


def quota_exceeded() -> Reply:
    # ElevenLabs really sends a spent quota as 401.
    return detail_error(
        401,
        "quota_exceeded",
        "This request exceeds your quota of 10000. You have 12 credits remaining, "
        "while 120 credits are required for this request.",
    )


def bad_prompt() -> Reply:
    return detail_error(
        400,
        "bad_prompt",
        "Your prompt appears to have violated our Terms of Service. "
        "Please try again with a different prompt.",
    )


def too_many_requests(retry_after: str = "7") -> Reply:
    return detail_error(
        429,
        "too_many_concurrent_requests",
        "Too many concurrent requests for your plan.",
        {"Retry-After": retry_after},
    )


def _validation_error(field: str, message: str, kind: str = "value_error") -> Reply:
    return Reply(422, {"detail": [{"type": kind, "loc": ["body", field], "msg": message, "input": None}]})


def _authorized(request: Recorded) -> Reply | None:
    return None if request.headers.get("xi-api-key") == VALID_KEY else invalid_api_key()


def _output_format(request: Recorded) -> str:
    return request.query.get("output_format", ["mp3_44100_128"])[0]


def elevenlabs_fake() -> FakeVendor:
    """A FakeVendor with the sound-generation, text-to-speech and user routes."""
    vendor = FakeVendor()

    @vendor.route("POST", "/v1/sound-generation")
    def sound_generation(request: Recorded) -> Reply:
        if (refused := _authorized(request)) is not None:
            return refused
        body = request.json()
        if not body.get("text"):
            return _validation_error("text", "Field required", "missing")
        duration = body.get("duration_seconds")
        if duration is not None and not 0.5 <= duration <= 30:
            return _validation_error("duration_seconds", "Input should be between 0.5 and 30")
        audio, content_type = sine_audio(duration or AUTO_DURATION_S, _output_format(request))
        return Reply(200, audio, {"Content-Type": content_type, "request-id": "req_sfx_1"})

    @vendor.route("POST", "/v1/text-to-speech/*")
    def text_to_speech(request: Recorded) -> Reply:
        if (refused := _authorized(request)) is not None:
            return refused
        voice_id = request.path.rsplit("/", 1)[-1]
        if voice_id == "no-such-voice":
            return detail_error(
                404, "voice_not_found", f"A voice with the voice_id {voice_id} was not found."
            )
        text = request.json().get("text") or ""
        if not text:
            return _validation_error("text", "Field required", "missing")
        seconds = max(0.2, len(text) * SPEECH_SECONDS_PER_CHARACTER)
        audio, content_type = sine_audio(seconds, _output_format(request))
        headers = {"Content-Type": content_type, "character-cost": str(len(text)), "request-id": "req_tts_1"}
        return Reply(200, audio, headers)

    @vendor.route("GET", "/v1/user")
    def user(request: Recorded) -> Reply:
        if (refused := _authorized(request)) is not None:
            return refused
        return Reply(200, {"user_id": "u_1", "subscription": {"tier": "creator", "character_count": 120}})

    return vendor
