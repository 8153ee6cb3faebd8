"""The ElevenLabs provider against a fake ElevenLabs API on 127.0.0.1 (real HTTP, real audio)."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

import pytest
import soundfile as sf

from core.errors import (
    Canceled,
    ContentRefused,
    InvalidInput,
    ProviderAuthFailed,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from core.providers import KeyChecker, Provider, ProviderRegistry
from core.types import CancelToken, Credentials, Progress, ProviderRequest, ProviderResult, Task, no_progress
from providers.elevenlabs import DEFAULT_VOICE, SOUND_MODEL, ElevenLabsProvider
from tests.providers.fakes import elevenlabs as fake_api
from tests.providers.fakes.server import FakeVendor, Reply, serve

SOUND_ROUTE = ("POST", "/v1/sound-generation")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVendor]:
    # One server for the module: stopping one takes half a second (serve_forever's poll interval).
    with serve(FakeVendor()) as vendor:
        yield vendor


@pytest.fixture
def fake(server: FakeVendor) -> FakeVendor:
    """The fake API with its usual routes and no requests recorded yet."""
    server.routes = fake_api.elevenlabs_fake().routes
    server.requests.clear()
    return server


def keyed(fake: FakeVendor, key: str = fake_api.VALID_KEY) -> Credentials:
    return Credentials(api_key=key, base_url=fake.url)


def sound_request(
    credentials: FakeVendor | Credentials | None, prompt: str = "glass shattering on stone", **params
) -> ProviderRequest:
    """A sound-effect request; a FakeVendor stands for the valid key at that fake."""
    if isinstance(credentials, FakeVendor):
        credentials = keyed(credentials)
    model = ElevenLabsProvider().resolve(SOUND_MODEL)
    return ProviderRequest(model, prompt, params, seed=5, credentials=credentials)


def speech_request(fake: FakeVendor, prompt: str = "Hello from the studio.", **params) -> ProviderRequest:
    model = ElevenLabsProvider().resolve("eleven_multilingual_v2")
    return ProviderRequest(model, prompt, params, seed=11, credentials=keyed(fake))


def run(request: ProviderRequest, provider: ElevenLabsProvider | None = None) -> ProviderResult:
    return (provider or ElevenLabsProvider()).generate(request, progress=no_progress, cancel=CancelToken())


# Sound effects


def test_sound_effect_sends_key_body_and_format_and_returns_measured_mp3(fake):
    steps: list[Progress] = []

    result = ElevenLabsProvider().generate(
        sound_request(fake, duration_s=3.0, prompt_influence=0.6, loop=True),
        progress=steps.append,
        cancel=CancelToken(),
    )

    sent = fake.last
    assert (sent.method, sent.path) == SOUND_ROUTE
    assert sent.headers["xi-api-key"] == fake_api.VALID_KEY
    assert "authorization" not in sent.headers
    assert sent.query == {"output_format": ["mp3_44100_128"]}
    assert sent.json() == {
        "text": "glass shattering on stone",
        "model_id": "eleven_text_to_sound_v2",
        "duration_seconds": 3.0,
        "prompt_influence": 0.6,
        "loop": True,
    }
    (output,) = result.outputs
    audio, rate = sf.read(io.BytesIO(output.data))
    assert output.mime == "audio/mpeg"
    assert rate == output.sample_rate == 44100
    assert len(audio) / rate == pytest.approx(3.0, abs=0.01)
    assert output.duration_s == pytest.approx(3.0, abs=0.01)
    assert result.usage.audio_seconds == pytest.approx(3.0, abs=0.01)
    assert (result.usage.characters, result.usage.requests) == (0, 1)
    assert steps[-1].fraction == 1.0


def test_zero_duration_asks_elevenlabs_to_choose_and_bills_what_came_back(fake):
    result = run(sound_request(fake))

    assert fake.last.json()["duration_seconds"] is None
    assert result.usage.audio_seconds == pytest.approx(fake_api.AUTO_DURATION_S, abs=0.01)


def test_pcm_format_comes_back_as_a_wav_at_that_sample_rate(fake):
    result = run(sound_request(fake, duration_s=1.5, output_format="pcm_48000"))

    assert fake.last.query["output_format"] == ["pcm_48000"]
    (output,) = result.outputs
    audio, rate = sf.read(io.BytesIO(output.data))
    assert sf.info(io.BytesIO(output.data)).format == "WAV"
    assert (output.mime, rate, output.sample_rate) == ("audio/wav", 48000, 48000)
    assert len(audio) == 72000
    assert output.duration_s == result.usage.audio_seconds == pytest.approx(1.5)


def test_duration_below_half_a_second_is_refused_before_any_request(fake):
    with pytest.raises(InvalidInput, match=r"0\.5"):
        run(sound_request(fake, duration_s=0.2))

    assert fake.requests == []


# Speech


def test_speech_posts_to_the_voice_with_settings_and_counts_characters(fake):
    prompt = "Welcome back to the show."

    result = run(speech_request(fake, prompt, stability=0.3, similarity_boost=0.9))

    sent = fake.last
    assert sent.path == f"/v1/text-to-speech/{DEFAULT_VOICE}"
    assert sent.headers["xi-api-key"] == fake_api.VALID_KEY
    assert sent.json() == {
        "text": prompt,
        "model_id": "eleven_multilingual_v2",
        "voice_settings": {"stability": 0.3, "similarity_boost": 0.9},
        "seed": 11,
    }
    assert result.usage.characters == len(prompt)
    audio, rate = sf.read(io.BytesIO(result.outputs[0].data))
    assert len(audio) > 0
    assert result.usage.audio_seconds == pytest.approx(len(audio) / rate, abs=0.01)
    assert result.info["character_cost"] == str(len(prompt))


def test_voice_parameter_picks_the_voice_in_the_path(fake):
    run(speech_request(fake, voice="21m00Tcm4TlvDq8ikWAM"))

    assert fake.last.path == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM"


def test_voice_id_cannot_reach_another_endpoint(fake):
    run(speech_request(fake, voice="../../v1/user"))

    assert (fake.last.method, fake.last.path) == ("POST", "/v1/text-to-speech/..%2F..%2Fv1%2Fuser")


def test_unknown_voice_is_a_bad_request_that_no_other_provider_fixes(fake):
    with pytest.raises(ProviderBadRequest, match="was not found") as caught:
        run(speech_request(fake, voice="no-such-voice"))

    assert (caught.value.status, caught.value.fallback) == (404, False)


# Models and parameters


def test_model_ids_resolve_to_their_natural_task():
    provider = ElevenLabsProvider()

    assert provider.resolve(SOUND_MODEL).task is Task.SOUND_EFFECT
    assert provider.resolve("eleven_flash_v2_5", Task.SPEECH).task is Task.SPEECH
    with pytest.raises(InvalidInput, match="makes speech, not music"):
        provider.resolve("eleven_multilingual_v2", Task.MUSIC)
    with pytest.raises(InvalidInput, match="not an ElevenLabs model id"):
        provider.resolve("facebook/musicgen-small")


def test_describe_declares_ranges_for_every_parameter():
    provider = ElevenLabsProvider()
    sound = provider.describe(provider.resolve(SOUND_MODEL))
    speech = provider.describe(provider.resolve("eleven_multilingual_v2"))

    assert [p.name for p in sound.params] == ["duration_s", "prompt_influence", "loop", "output_format"]
    assert (sound.param("duration_s").minimum, sound.param("duration_s").maximum) == (0.0, 30.0)
    assert "pcm_48000" in sound.param("output_format").choices
    assert [p.name for p in speech.params] == ["voice", "stability", "similarity_boost", "output_format"]
    assert speech.param("voice").default == DEFAULT_VOICE


def test_provider_is_found_by_its_entry_point_and_implements_the_protocols():
    provider = ProviderRegistry.from_entry_points().get("elevenlabs")

    assert isinstance(provider, Provider) and isinstance(provider, KeyChecker)
    assert (provider.name, provider.local) == ("elevenlabs", False)


# Failures


def test_no_key_fails_before_any_request(fake):
    with pytest.raises(ProviderAuthFailed, match="No ElevenLabs key is set"):
        run(sound_request(None))

    assert fake.requests == []


def test_rejected_key_becomes_auth_failure_without_the_key_in_the_message(fake):
    with pytest.raises(ProviderAuthFailed, match="Invalid API key") as caught:
        run(sound_request(keyed(fake, "sk_wrong_key_123")))

    assert caught.value.status == 401
    assert "sk_wrong_key_123" not in caught.value.message
    assert caught.value.fallback is True


def test_key_echoed_back_by_the_vendor_is_masked_in_the_message(fake):
    key = "sk_wrong_key_123"
    echo = fake_api.detail_error(401, "invalid_api_key", f"Invalid API key {key}")
    fake.routes[SOUND_ROUTE] = lambda _: echo

    with pytest.raises(ProviderAuthFailed, match="Invalid API key") as caught:
        run(sound_request(keyed(fake, key)))

    assert key not in caught.value.message


def test_spent_quota_is_not_retried_but_may_fall_back(fake):
    fake.routes[SOUND_ROUTE] = lambda _: fake_api.quota_exceeded()

    with pytest.raises(ProviderRateLimited, match="exceeds your quota") as caught:
        run(sound_request(fake))

    assert (caught.value.retryable, caught.value.fallback, caught.value.status) == (False, True, 401)


def test_rate_limit_becomes_retryable_error_with_retry_after(fake):
    fake.routes[SOUND_ROUTE] = lambda _: fake_api.too_many_requests("7")

    with pytest.raises(ProviderRateLimited) as caught:
        run(sound_request(fake))

    assert (caught.value.retryable, caught.value.retry_after, caught.value.status) == (True, 7.0, 429)


def test_retry_after_may_be_an_http_date(fake):
    fake.routes[SOUND_ROUTE] = lambda _: fake_api.too_many_requests("Wed, 21 Oct 2015 07:28:00 GMT")

    with pytest.raises(ProviderRateLimited) as caught:
        run(sound_request(fake))

    assert caught.value.retry_after == 0.0  # a date in the past: try again now


def test_server_error_is_retryable_unavailable(fake):
    fake.routes[SOUND_ROUTE] = lambda _: Reply(
        500, {"detail": {"status": "internal_error", "message": "oops"}}
    )

    with pytest.raises(ProviderUnavailable, match="500: oops") as caught:
        run(sound_request(fake))

    assert (caught.value.retryable, caught.value.status) == (True, 500)


def test_slow_answer_becomes_timeout(fake):
    fake.routes[SOUND_ROUTE] = lambda _: Reply(200, b"late", delay_s=1.0)

    with pytest.raises(ProviderTimeout) as caught:
        run(sound_request(fake), ElevenLabsProvider(timeout_s=0.2))

    assert caught.value.retryable is True


def test_body_that_is_not_audio_is_a_retryable_vendor_fault(fake):
    fake.routes[SOUND_ROUTE] = lambda _: Reply(
        200, b"<html>maintenance</html>", {"Content-Type": "text/html"}
    )

    with pytest.raises(ProviderUnavailable, match="could not be read as mp3_44100_128") as caught:
        run(sound_request(fake))

    assert caught.value.retryable is True


def test_odd_length_pcm_is_a_vendor_fault(fake):
    fake.routes[SOUND_ROUTE] = lambda _: Reply(200, b"\x00\x01\x02", {"Content-Type": "audio/pcm"})

    with pytest.raises(ProviderUnavailable):
        run(sound_request(fake, output_format="pcm_16000"))


def test_prompt_against_terms_of_service_is_refused_and_never_retried(fake):
    fake.routes[SOUND_ROUTE] = lambda _: fake_api.bad_prompt()

    with pytest.raises(ContentRefused, match="violated our Terms of Service") as caught:
        run(sound_request(fake))

    assert (caught.value.retryable, caught.value.fallback, caught.value.status) == (False, False, 400)


def test_unreachable_vendor_is_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there

    with pytest.raises(ProviderUnavailable, match="Could not reach ElevenLabs"):
        run(sound_request(Credentials(fake_api.VALID_KEY, f"http://127.0.0.1:{port}")))


def test_cancel_before_the_call_sends_nothing(fake):
    cancel = CancelToken()
    cancel.cancel()

    with pytest.raises(Canceled):
        ElevenLabsProvider().generate(sound_request(fake), progress=no_progress, cancel=cancel)

    assert fake.requests == []


# Checking keys


def test_check_key_accepts_a_good_key_with_one_cheap_call(fake):
    ElevenLabsProvider().check_key(keyed(fake))

    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/v1/user")]
    assert fake.last.headers["xi-api-key"] == fake_api.VALID_KEY


def test_check_key_rejects_a_bad_key(fake):
    with pytest.raises(ProviderAuthFailed):
        ElevenLabsProvider().check_key(keyed(fake, "sk_wrong_key_123"))


def test_check_key_accepts_a_restricted_key_that_cannot_read_the_user(fake):
    fake.routes[("GET", "/v1/user")] = lambda _: fake_api.detail_error(
        401, "missing_permissions", "The API key you used is missing the permission user_read."
    )

    ElevenLabsProvider().check_key(keyed(fake))
