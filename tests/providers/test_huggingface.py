"""The Hugging Face provider, through huggingface_hub's InferenceClient, against a fake server."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from collections.abc import Iterator

import huggingface_hub.constants
import pytest
import soundfile as sf
from PIL import Image

from core.errors import (
    Canceled,
    InvalidInput,
    ProviderAuthFailed,
    ProviderBadRequest,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from core.providers import KeyChecker, Provider, ProviderRegistry
from core.types import CancelToken, Credentials, ProviderRequest, ProviderResult, Task, no_progress
from providers.huggingface import HuggingFaceProvider
from tests.providers.fakes import huggingface as fake_api
from tests.providers.fakes.server import FakeVendor, Reply, serve

INFERENCE_ROUTE = ("POST", "/models/*")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeVendor]:
    # One server for the module: stopping one takes half a second (serve_forever's poll interval).
    with serve(FakeVendor()) as vendor:
        yield vendor


@pytest.fixture
def fake(server: FakeVendor, monkeypatch: pytest.MonkeyPatch) -> FakeVendor:
    """The fake with its usual routes, and huggingface_hub allowed to make requests.

    The suite sets HF_HUB_OFFLINE so nothing can download from the Hub, and huggingface_hub then
    refuses every request, inference included. These tests talk only to the loopback fake (the
    suite's socket guard still refuses anything else), so offline mode is lifted for them alone.
    """
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server.routes = fake_api.huggingface_fake().routes
    server.requests.clear()
    return server


def request_for(
    fake: FakeVendor | None,
    source: str = fake_api.IMAGE_MODEL,
    prompt: str = "a lighthouse at dusk",
    key: str = fake_api.VALID_KEY,
    negative_prompt: str = "",
    task: Task | None = None,
    **params,
) -> ProviderRequest:
    credentials = Credentials(key, fake.url) if fake is not None else None
    model = HuggingFaceProvider().resolve(source, task)
    return ProviderRequest(model, prompt, params, 5, negative_prompt, credentials=credentials)


def run(request: ProviderRequest, provider: HuggingFaceProvider | None = None) -> ProviderResult:
    return (provider or HuggingFaceProvider()).generate(request, progress=no_progress, cancel=CancelToken())


# Making things


def test_image_is_posted_to_the_model_url_with_its_parameters_and_comes_back_as_png(fake):
    request = request_for(fake, negative_prompt="blurry", width=96, height=64, steps=4, guidance_scale=3.5)

    result = run(request)

    sent = fake.last
    assert sent.path == f"/models/{fake_api.IMAGE_MODEL}"
    assert sent.headers["authorization"] == f"Bearer {fake_api.VALID_KEY}"
    assert sent.headers["accept"] == "image/png"
    assert sent.json() == {
        "inputs": "a lighthouse at dusk",
        "parameters": {
            "negative_prompt": "blurry",
            "width": 96,
            "height": 64,
            "num_inference_steps": 4,
            "guidance_scale": 3.5,
            "seed": 5,
        },
    }
    (output,) = result.outputs
    image = Image.open(io.BytesIO(output.data))
    assert (output.mime, image.format, image.size, output.width, output.height) == (
        "image/png",
        "PNG",
        (96, 64),
        96,
        64,
    )
    assert (result.usage.images, result.usage.requests, result.seed) == (1, 1, 5)


def test_zero_parameters_leave_the_models_defaults(fake):
    run(request_for(fake))

    assert fake.last.json()["parameters"] == {"seed": 5}


def test_speech_arrives_as_flac_and_is_stored_as_measured_wav(fake):
    prompt = "Welcome aboard."

    result = run(request_for(fake, fake_api.SPEECH_MODEL, prompt))

    assert fake.last.path == f"/models/{fake_api.SPEECH_MODEL}"
    assert fake.last.json() == {"inputs": prompt, "parameters": {}}
    (output,) = result.outputs
    audio, rate = sf.read(io.BytesIO(output.data))
    assert sf.info(io.BytesIO(output.data)).format == "WAV"
    assert (output.mime, rate, output.sample_rate) == (
        "audio/wav",
        fake_api.SPEECH_RATE,
        fake_api.SPEECH_RATE,
    )
    assert len(audio) / rate == output.duration_s == result.usage.audio_seconds == fake_api.SPEECH_SECONDS
    assert result.usage.characters == len(prompt)


def test_chat_goes_to_the_models_chat_completions_and_reports_tokens(fake):
    request = request_for(fake, fake_api.CHAT_MODEL, "Tell me one line.", system="Be brief.", max_tokens=64)

    result = run(request)

    sent = fake.last
    assert sent.path == f"/models/{fake_api.CHAT_MODEL}/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {fake_api.VALID_KEY}"
    body = sent.json()
    assert body["model"] == fake_api.CHAT_MODEL
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me one line."},
    ]
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (64, 0.7, 5)
    (output,) = result.outputs
    assert (output.mime, output.text, output.data) == (
        "text/plain",
        fake_api.ANSWER,
        fake_api.ANSWER.encode(),
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (
        fake_api.PROMPT_TOKENS,
        fake_api.COMPLETION_TOKENS,
    )


# Models and parameters


def test_resolve_knows_some_models_and_needs_a_task_for_others():
    provider = HuggingFaceProvider()

    flux = provider.resolve(fake_api.IMAGE_MODEL)
    assert (flux.name, flux.task) == ("FLUX.1-schnell", Task.TEXT_TO_IMAGE)
    assert provider.resolve("someone/tts-model", Task.SPEECH).task is Task.SPEECH
    with pytest.raises(InvalidInput, match="Say which task"):
        provider.resolve("someone/model")
    with pytest.raises(InvalidInput, match="makes text, not speech"):
        provider.resolve(fake_api.CHAT_MODEL, Task.SPEECH)
    with pytest.raises(InvalidInput, match="does not run video"):
        provider.resolve("someone/model", Task.VIDEO)
    with pytest.raises(InvalidInput, match="not a Hugging Face Hub id"):
        provider.resolve("no-slash")


def test_describe_declares_ranges_for_every_parameter():
    provider = HuggingFaceProvider()

    image = provider.describe(provider.resolve(fake_api.IMAGE_MODEL))
    text = provider.describe(provider.resolve(fake_api.CHAT_MODEL))
    assert [p.name for p in image.params] == ["width", "height", "steps", "guidance_scale"]
    assert (image.param("width").maximum, image.param("width").step) == (2048, 8)
    assert [p.name for p in text.params] == ["max_tokens", "temperature", "system"]
    assert provider.describe(provider.resolve(fake_api.SPEECH_MODEL)).params == ()


def test_provider_is_found_by_its_entry_point_and_implements_the_protocols():
    provider = ProviderRegistry.from_entry_points().get("huggingface")

    assert isinstance(provider, Provider) and isinstance(provider, KeyChecker)
    assert (provider.name, provider.local) == ("huggingface", False)


def test_importing_hosted_providers_loads_neither_torch_nor_the_hub_sdk():
    code = (
        "import sys, providers.huggingface, providers.replicate, providers.elevenlabs; "
        "assert 'torch' not in sys.modules; assert 'huggingface_hub' not in sys.modules"
    )

    subprocess.run([sys.executable, "-c", code], check=True)


# Failures


def test_no_key_fails_before_any_request(fake):
    with pytest.raises(ProviderAuthFailed, match="No Hugging Face key is set"):
        run(request_for(None))

    assert fake.requests == []


def test_rejected_token_becomes_auth_failure_without_the_token_in_the_message(fake):
    with pytest.raises(ProviderAuthFailed, match="Invalid credentials") as caught:
        run(request_for(fake, key="hf_wrong_token_123"))

    assert caught.value.status == 401
    assert "hf_wrong_token_123" not in caught.value.message


def test_rate_limit_becomes_retryable_error_with_retry_after(fake):
    fake.routes[INFERENCE_ROUTE] = lambda _: fake_api.error(429, "Rate limit reached", {"Retry-After": "12"})

    with pytest.raises(ProviderRateLimited, match="Rate limit reached") as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.retry_after, caught.value.status) == (True, 12.0, 429)


def test_cold_model_is_unavailable_for_its_estimated_loading_time(fake):
    loading = fake_api.error(503, f"Model {fake_api.IMAGE_MODEL} is currently loading", estimated_time=20.0)
    fake.routes[INFERENCE_ROUTE] = lambda _: loading

    with pytest.raises(ProviderUnavailable, match="currently loading") as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.retry_after, caught.value.status) == (True, 20.0, 503)


def test_server_error_is_retryable_unavailable(fake):
    fake.routes[INFERENCE_ROUTE] = lambda _: fake_api.error(500, "Internal Server Error")

    with pytest.raises(ProviderUnavailable) as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.status) == (True, 500)


def test_unknown_model_is_a_bad_request(fake):
    with pytest.raises(ProviderBadRequest, match="does not exist") as caught:
        run(request_for(fake, "someone/missing", task=Task.TEXT_TO_IMAGE))

    assert (caught.value.status, caught.value.fallback) == (404, False)


def test_slow_answer_becomes_timeout(fake):
    fake.routes[INFERENCE_ROUTE] = lambda _: Reply(200, fake_api.png(8, 8), delay_s=1.0)

    with pytest.raises(ProviderTimeout) as caught:
        run(request_for(fake), HuggingFaceProvider(timeout_s=0.2))

    assert caught.value.retryable is True


def test_image_answer_that_is_not_an_image_is_a_retryable_vendor_fault(fake):
    fake.routes[INFERENCE_ROUTE] = lambda _: Reply(200, b"<html>oops</html>", {"Content-Type": "image/png"})

    with pytest.raises(ProviderUnavailable, match="could not be read") as caught:
        run(request_for(fake))

    assert caught.value.retryable is True


@pytest.mark.parametrize("body", [b"not json", {"object": "chat.completion"}, {"choices": []}])
def test_chat_answer_that_is_malformed_is_a_retryable_vendor_fault(fake, body):
    fake.routes[INFERENCE_ROUTE] = lambda _: Reply(200, body)

    with pytest.raises(ProviderUnavailable, match="could not be read"):
        run(request_for(fake, fake_api.CHAT_MODEL))


def test_unreachable_server_is_unavailable(fake):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    request = request_for(fake)
    request = ProviderRequest(
        request.model,
        request.prompt,
        {},
        5,
        credentials=Credentials(fake_api.VALID_KEY, f"http://127.0.0.1:{port}"),
    )

    with pytest.raises(ProviderUnavailable, match="Could not reach Hugging Face") as caught:
        run(request)

    assert caught.value.retryable is True


def test_offline_mode_is_reported_clearly_and_sends_nothing(fake, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    with pytest.raises(ProviderUnavailable, match="HF_HUB_OFFLINE") as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.fallback) == (False, True)
    assert fake.requests == []


def test_cancel_before_the_call_sends_nothing(fake):
    cancel = CancelToken()
    cancel.cancel()

    with pytest.raises(Canceled):
        HuggingFaceProvider().generate(request_for(fake), progress=no_progress, cancel=cancel)

    assert fake.requests == []


# Checking keys


def test_check_key_asks_whoami_once(fake):
    HuggingFaceProvider(hub_url=fake.url).check_key(Credentials(fake_api.VALID_KEY))

    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/api/whoami-v2")]
    assert fake.last.headers["authorization"] == f"Bearer {fake_api.VALID_KEY}"


def test_check_key_rejects_a_bad_token(fake):
    with pytest.raises(ProviderAuthFailed):
        HuggingFaceProvider(hub_url=fake.url).check_key(Credentials("hf_wrong_token_123"))
