"""ElevenLabs: sound effects and speech over its REST API, with the organization's own key.

Wire format (https://elevenlabs.io/docs/api-reference): POST /v1/sound-generation and
POST /v1/text-to-speech/{voice_id}, JSON bodies, `output_format` in the query, audio bytes back,
auth in the `xi-api-key` header. Errors come as {"detail": {"status": ..., "message": ...}}; the
`status` says more than the HTTP code (a spent quota arrives as 401, a refused prompt as 400).

Audio: MP3 formats are returned as they come ("audio/mpeg"); raw PCM (16-bit little-endian mono)
is wrapped in a WAV. The duration is measured from the audio itself (libsndfile decodes MP3), so
`Usage.audio_seconds` is what was delivered, not what was asked for.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

import httpx

from core.errors import (
    Canceled,
    ContentRefused,
    InvalidInput,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
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
from providers.http_errors import error_from_response, error_from_transport, vendor_message

VENDOR = "ElevenLabs"
API_URL = "https://api.elevenlabs.io"
SOUND_MODEL = "eleven_text_to_sound_v2"
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # "George", one of the premade voices every account has
# MP3 first (every plan); PCM 44.1 kHz needs a Pro plan. Opus and telephony codecs are left out.
OUTPUT_FORMATS = (
    "mp3_44100_128",
    "mp3_44100_192",
    "mp3_22050_32",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_44100",
    "pcm_48000",
)
MIN_DURATION_S, MAX_DURATION_S = 0.5, 30.0
REFUSALS = {"bad_prompt"}  # "Your prompt appears to have violated our Terms of Service."
# A restricted key without the user_read scope still authenticates: it just cannot read /v1/user.
KEY_WORKS_WITHOUT_SCOPE = {"missing_permissions"}

OUTPUT_FORMAT = ParamSpec(
    "output_format",
    "choice",
    OUTPUT_FORMATS[0],
    choices=OUTPUT_FORMATS,
    label="Format",
    help="codec_samplerate_bitrate: MP3 is small; PCM comes back as a WAV file.",
)
SOUND_PARAMS = (
    ParamSpec(
        "duration_s",
        "float",
        0.0,
        minimum=0.0,
        maximum=MAX_DURATION_S,
        step=0.1,
        label="Duration (s)",
        help="0.5 to 30 seconds; 0 lets ElevenLabs pick a length that suits the prompt.",
    ),
    ParamSpec(
        "prompt_influence",
        "float",
        0.3,
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        label="Prompt influence",
        help="Higher follows the prompt more closely, with less variety.",
    ),
    ParamSpec("loop", "bool", False, label="Loop", help="Make a sound that loops seamlessly."),
    OUTPUT_FORMAT,
)
SPEECH_PARAMS = (
    ParamSpec(
        "voice",
        "str",
        DEFAULT_VOICE,
        label="Voice",
        help="An ElevenLabs voice id (the default is the premade voice 'George').",
    ),
    ParamSpec(
        "stability",
        "float",
        0.5,
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        label="Stability",
        help="Higher is steadier; lower is more expressive.",
    ),
    ParamSpec(
        "similarity_boost",
        "float",
        0.75,
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        label="Similarity",
        help="How closely to stick to the original voice.",
    ),
    OUTPUT_FORMAT,
)


class ElevenLabsProvider:
    """ElevenLabs sound effects (eleven_text_to_sound_v2) and text-to-speech (eleven_* voices models)."""

    name = "elevenlabs"
    local = False

    def __init__(self, timeout_s: float = 120.0) -> None:
        self._timeout_s = timeout_s

    def resolve(self, source: str, task: Task | None = None) -> ModelRef:
        """An ElevenLabs model id: eleven_text_to_sound_v2 makes sound effects, other eleven_* speech."""
        source = source.strip()
        if not source.startswith("eleven_"):
            raise InvalidInput(
                f"'{source}' is not an ElevenLabs model id: they look like '{SOUND_MODEL}' "
                "or 'eleven_multilingual_v2'."
            )
        natural = Task.SOUND_EFFECT if "sound" in source else Task.SPEECH
        if task is not None and task is not natural:
            raise InvalidInput(f"The ElevenLabs model '{source}' makes {natural.value}, not {task.value}.")
        return ModelRef(source, self.name, source, natural)

    def describe(self, model: ModelRef) -> ModelSpec:
        """Sound effects: duration, prompt influence, loop, format; speech: voice, stability, similarity."""
        if model.task is Task.SOUND_EFFECT:
            return ModelSpec(Task.SOUND_EFFECT, SOUND_PARAMS, f"ElevenLabs sound effects ({model.source}).")
        return ModelSpec(Task.SPEECH, SPEECH_PARAMS, f"ElevenLabs text-to-speech ({model.source}).")

    def generate(
        self, request: ProviderRequest, *, progress: ProgressCallback, cancel: CancelToken
    ) -> ProviderResult:
        """One audio file; one request, answered when the audio is ready."""
        if cancel.canceled:
            raise Canceled("Canceled before the request was sent to ElevenLabs.")
        credentials = _credentials(request.credentials)
        defaults = self.describe(request.model).params
        params = {p.name: request.params.get(p.name, p.default) for p in defaults}
        output_format = str(params["output_format"])
        if request.model.task is Task.SOUND_EFFECT:
            path, body = "/v1/sound-generation", _sound_body(request, params)
        else:
            voice = quote(str(params["voice"]).strip() or DEFAULT_VOICE, safe="")  # an id, never a path
            path, body = f"/v1/text-to-speech/{voice}", _speech_body(request, params)
        progress(Progress(0, 1, "Waiting for ElevenLabs"))
        response = self._send(
            "POST", path, credentials, params={"output_format": output_format}, json_body=body
        )
        if response.status_code != 200:
            raise _error(response)
        output = _audio_output(response.content, output_format)
        progress(Progress(1, 1, "Done"))
        characters = len(request.prompt) if request.model.task is Task.SPEECH else 0
        usage = Usage(audio_seconds=output.duration_s or 0.0, characters=characters, requests=1)
        info: dict[str, Any] = {"output_format": output_format}
        for header in ("request-id", "character-cost"):  # ElevenLabs' own accounting, for support
            if header in response.headers:
                info[header.replace("-", "_")] = response.headers[header]
        return ProviderResult([output], usage, seed=request.seed, info=info)

    def check_key(self, credentials: Credentials) -> None:
        """GET /v1/user: the cheapest call that needs a valid key."""
        response = self._send("GET", "/v1/user", _credentials(credentials))
        if response.status_code != 200 and _detail_status(response) not in KEY_WORKS_WITHOUT_SCOPE:
            raise _error(response)

    def _send(
        self,
        method: str,
        path: str,
        credentials: Credentials,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One authenticated request, whatever its status; no answer at all is a typed error."""
        url = (credentials.base_url or API_URL).rstrip("/") + path
        headers = {"xi-api-key": credentials.api_key, "accept": "*/*"}
        try:
            response = httpx.request(
                method, url, params=params, json=json_body, headers=headers, timeout=self._timeout_s
            )
        except httpx.HTTPError as exc:
            raise error_from_transport(VENDOR, exc) from None
        return response


def _credentials(credentials: Credentials | None) -> Credentials:
    if credentials is None or not credentials.api_key:
        raise ProviderAuthFailed("No ElevenLabs key is set for this organization.")
    return credentials


def _sound_body(request: ProviderRequest, params: dict[str, Any]) -> dict[str, Any]:
    duration = float(params["duration_s"])
    if 0 < duration < MIN_DURATION_S:
        raise InvalidInput(f"Duration must be 0 (automatic) or between {MIN_DURATION_S} and 30 seconds.")
    return {
        "text": request.prompt,
        "model_id": request.model.source,
        # null asks ElevenLabs to choose a length that suits the prompt
        "duration_seconds": duration or None,
        "prompt_influence": float(params["prompt_influence"]),
        "loop": bool(params["loop"]),
    }


def _speech_body(request: ProviderRequest, params: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": request.prompt,
        "model_id": request.model.source,
        "voice_settings": {
            "stability": float(params["stability"]),
            "similarity_boost": float(params["similarity_boost"]),
        },
    }
    if request.seed is not None:  # best-effort determinism; the API takes 0..4294967295
        body["seed"] = request.seed % 2**32
    return body


def _error(response: httpx.Response) -> ProviderError:
    """ElevenLabs' `detail.status` refines the HTTP status (quota_exceeded comes as a 401)."""
    error = error_from_response(VENDOR, response)
    detail_status = _detail_status(response)
    if detail_status == "quota_exceeded":
        # The account's credits are spent: retrying will not help, another provider might.
        error = ProviderRateLimited(
            error.message, status=response.status_code, retryable=False, fallback=True
        )
    elif detail_status in REFUSALS:
        error = ContentRefused(
            f"ElevenLabs refused the prompt: {vendor_message(response)}", status=response.status_code
        )
    return error


def _detail_status(response: httpx.Response) -> str | None:
    try:
        detail = json.loads(response.content).get("detail")
    except (ValueError, AttributeError):
        return None
    status = detail.get("status") if isinstance(detail, dict) else None
    return status if isinstance(status, str) else None


def _audio_output(data: bytes, output_format: str) -> Output:
    """MP3 as it came, PCM wrapped in a WAV; both measured. Undecodable audio is a vendor fault."""
    import numpy as np
    import soundfile as sf

    codec, rate = output_format.split("_")[:2]
    try:
        if codec == "pcm":
            if not data or len(data) % 2:
                raise ValueError("PCM data must be a whole number of 16-bit samples")
            samples = np.frombuffer(data, dtype="<i2")
            buffer = io.BytesIO()
            sf.write(buffer, samples, int(rate), subtype="PCM_16", format="WAV")
            return Output(
                buffer.getvalue(), "audio/wav", duration_s=len(samples) / int(rate), sample_rate=int(rate)
            )
        info = sf.info(io.BytesIO(data))
        if info.frames <= 0 or info.samplerate <= 0:
            raise ValueError("no audio frames")
    except (sf.SoundFileError, RuntimeError, ValueError):
        raise ProviderUnavailable(
            f"ElevenLabs sent audio that could not be read as {output_format}."
        ) from None
    return Output(data, "audio/mpeg", duration_s=info.frames / info.samplerate, sample_rate=info.samplerate)
