"""The Replicate provider against a fake Replicate API and file host on 127.0.0.1 (real HTTP)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import soundfile as sf
from PIL import Image

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
from core.providers import KeyChecker, Provider, ProviderRegistry
from core.types import CancelToken, Credentials, Progress, ProviderRequest, ProviderResult, Task, no_progress
from providers.replicate import ReplicateProvider
from tests.providers.fakes import replicate as fake_api
from tests.providers.fakes.server import FakeVendor, Reply, serve

SCHNELL = "black-forest-labs/flux-schnell"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
CREATE_SCHNELL = ("POST", f"/v1/models/{SCHNELL}/predictions")


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeVendor, FakeVendor]]:
    # Module-wide servers: stopping one takes half a second (serve_forever's poll interval).
    with serve(FakeVendor()) as api, serve(FakeVendor()) as files:
        yield api, files


@pytest.fixture
def fake(servers: tuple[FakeVendor, FakeVendor]) -> fake_api.ReplicateFake:
    """A fresh fake: a fast model, no predictions, no requests recorded."""
    return fake_api.ReplicateFake(*servers).install()


def fast(**kwargs) -> ReplicateProvider:
    """A provider that polls every 10 ms."""
    return ReplicateProvider(poll_interval_s=0.01, **kwargs)


def request_for(
    fake: fake_api.ReplicateFake | None,
    source: str = SCHNELL,
    task: Task | None = None,
    key: str = fake_api.VALID_KEY,
    **params,
) -> ProviderRequest:
    credentials = Credentials(key, fake.api.url) if fake is not None else None
    model = ReplicateProvider().resolve(source, task)
    return ProviderRequest(model, "a lighthouse at dusk", params, seed=5, credentials=credentials)


def run(request: ProviderRequest, provider: ReplicateProvider | None = None) -> ProviderResult:
    return (provider or fast()).generate(request, progress=no_progress, cancel=CancelToken())


# Making things


def test_fast_model_answers_within_the_wait_and_its_image_is_fetched_without_the_key(fake):
    result = run(request_for(fake, aspect_ratio="16:9"))

    (create,) = fake.api.requests
    assert (create.method, create.path) == CREATE_SCHNELL
    assert create.headers["authorization"] == f"Bearer {fake_api.VALID_KEY}"
    assert create.headers["prefer"] == "wait=60"
    assert create.json() == {
        "input": {
            "prompt": "a lighthouse at dusk",
            "seed": 5,
            "aspect_ratio": "16:9",
            "num_inference_steps": 4,
            "output_format": "png",
        }
    }
    (download,) = fake.files.requests
    assert "authorization" not in download.headers
    (output,) = result.outputs
    image = Image.open(io.BytesIO(output.data))
    assert (output.mime, image.format, image.size) == ("image/png", "PNG", (64, 36))
    assert (output.width, output.height) == (64, 36)
    assert (result.usage.images, result.usage.gpu_seconds, result.usage.requests) == (1, 1.25, 1)
    assert result.seed == 5


def test_version_pinned_model_is_created_through_the_predictions_endpoint(fake):
    result = run(request_for(fake, f"owner/some-model:{VERSION}", Task.TEXT_TO_IMAGE))

    (create,) = fake.creations
    assert create.path == "/v1/predictions"
    assert create.json() == {"version": VERSION, "input": {"prompt": "a lighthouse at dusk", "seed": 5}}
    assert result.outputs[0].mime == "image/png"


def test_webp_output_is_stored_as_png(fake):
    fake.image_format = "WEBP"

    result = run(request_for(fake, output_format="webp"))

    assert fake.creations[0].json()["input"]["output_format"] == "webp"
    assert Image.open(io.BytesIO(result.outputs[0].data)).format == "PNG"


def test_slow_model_is_polled_to_the_end_with_progress_from_its_logs(fake):
    fake.polls_until_done = 3
    steps: list[Progress] = []

    result = fast().generate(request_for(fake), progress=steps.append, cancel=CancelToken())

    polls = [r for r in fake.api.requests if r.method == "GET"]
    assert len(polls) == 3
    assert all(r.path.startswith("/v1/predictions/p") for r in polls)
    assert [(s.step, s.total) for s in steps] == [(0, 1), (1, 4), (2, 4), (4, 4)]
    assert steps[-1].fraction == 1.0
    assert result.usage.gpu_seconds == fake_api.PREDICT_TIME_S


def test_video_model_is_measured_in_seconds_of_video(fake):
    result = run(request_for(fake, "minimax/video-01"))

    (output,) = result.outputs
    assert fake.creations[0].json()["input"]["prompt_optimizer"] is True
    assert (output.mime, output.duration_s) == ("video/mp4", fake_api.VIDEO_SECONDS)
    assert (result.usage.video_seconds, result.usage.images) == (fake_api.VIDEO_SECONDS, 0)


def test_music_model_takes_a_duration_and_bills_the_seconds_it_made(fake):
    result = run(request_for(fake, "meta/musicgen", duration_s=3))

    assert fake.creations[0].json()["input"]["duration"] == 3
    (output,) = result.outputs
    audio, rate = sf.read(io.BytesIO(output.data))
    assert (output.mime, rate, output.sample_rate) == ("audio/wav", 32000, 32000)
    assert len(audio) / rate == output.duration_s == result.usage.audio_seconds == 3.0


def test_unknown_model_runs_with_its_own_defaults_once_its_task_is_named(fake):
    result = run(request_for(fake, "someone/audio-gen", Task.SOUND_EFFECT))

    assert fake.creations[0].json() == {"input": {"prompt": "a lighthouse at dusk", "seed": 5}}
    assert result.usage.audio_seconds == 2.0


# Models and parameters


def test_resolve_knows_official_models_and_needs_a_task_for_others():
    provider = ReplicateProvider()

    schnell = provider.resolve(SCHNELL)
    assert (schnell.name, schnell.task, schnell.source) == ("flux-schnell", Task.TEXT_TO_IMAGE, SCHNELL)
    assert provider.resolve("someone/thing", Task.VIDEO).task is Task.VIDEO
    with pytest.raises(InvalidInput, match="say which task"):
        provider.resolve("someone/thing")
    with pytest.raises(InvalidInput, match="makes text-to-image, not video"):
        provider.resolve(SCHNELL, Task.VIDEO)
    with pytest.raises(InvalidInput, match="does not run text models"):
        provider.resolve("meta/llama", Task.TEXT)
    with pytest.raises(InvalidInput, match="not a Replicate model id"):
        provider.resolve("just-a-name")


def test_describe_declares_known_parameters_and_none_for_unknown_models():
    provider = ReplicateProvider()

    schnell = provider.describe(provider.resolve(SCHNELL))
    assert [p.name for p in schnell.params] == ["aspect_ratio", "steps", "output_format"]
    assert (schnell.param("steps").minimum, schnell.param("steps").maximum) == (1, 4)
    assert "16:9" in schnell.param("aspect_ratio").choices
    assert provider.describe(provider.resolve("someone/thing", Task.MUSIC)).params == ()


def test_provider_is_found_by_its_entry_point_and_implements_the_protocols():
    provider = ProviderRegistry.from_entry_points().get("replicate")

    assert isinstance(provider, Provider) and isinstance(provider, KeyChecker)
    assert (provider.name, provider.local) == ("replicate", False)


# Cancel


def test_cancel_during_polling_cancels_the_prediction_on_replicate(fake):
    fake.polls_until_done = 1000
    cancel = CancelToken()

    def cancel_after_first_poll(step: Progress) -> None:
        if step.step >= 1:  # the first poll's logs say step 1 of 4
            cancel.cancel()

    with pytest.raises(Canceled, match="stopped on Replicate"):
        fast().generate(request_for(fake), progress=cancel_after_first_poll, cancel=cancel)

    last = fake.api.last
    assert (last.method, last.path) == ("POST", "/v1/predictions/p0000000000000000000000001/cancel")
    assert last.headers["authorization"] == f"Bearer {fake_api.VALID_KEY}"
    assert fake.predictions["p0000000000000000000000001"]["status"] == "canceled"
    assert fake.files.requests == []


def test_cancel_before_the_call_sends_nothing(fake):
    cancel = CancelToken()
    cancel.cancel()

    with pytest.raises(Canceled):
        fast().generate(request_for(fake), progress=no_progress, cancel=cancel)

    assert fake.api.requests == []


def test_prediction_that_runs_too_long_is_canceled_and_reported(fake):
    fake.polls_until_done = 10_000

    with pytest.raises(ProviderError, match="did not finish"):
        run(request_for(fake), fast(max_run_s=0.05))

    assert fake.api.last.path.endswith("/cancel")


# Failures


def test_no_key_fails_before_any_request(fake):
    with pytest.raises(ProviderAuthFailed, match="No Replicate key is set"):
        run(request_for(None))

    assert fake.api.requests == []


def test_rejected_token_becomes_auth_failure_without_the_token_in_the_message(fake):
    with pytest.raises(ProviderAuthFailed, match="valid authentication token") as caught:
        run(request_for(fake, key="r8_wrong_token_123"))

    assert caught.value.status == 401
    assert "r8_wrong_token_123" not in caught.value.message


def test_rate_limit_becomes_retryable_error_with_retry_after(fake):
    fake.api.routes[CREATE_SCHNELL] = lambda _: fake_api.throttled("9")

    with pytest.raises(ProviderRateLimited, match="throttled") as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.retry_after, caught.value.status) == (True, 9.0, 429)


def test_insufficient_credit_is_not_retried_but_may_fall_back(fake):
    fake.api.routes[CREATE_SCHNELL] = lambda _: fake_api.problem(
        402, "Insufficient credit", "You have insufficient credit to run this model."
    )

    with pytest.raises(ProviderRateLimited) as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.fallback) == (False, True)


def test_invalid_input_is_a_bad_request_with_replicates_explanation(fake):
    fake.api.routes[CREATE_SCHNELL] = lambda _: fake_api.problem(
        422, "Input validation failed", "- input.aspect_ratio: aspect_ratio must be one of 1:1, 16:9"
    )

    with pytest.raises(ProviderBadRequest, match="aspect_ratio must be one of") as caught:
        run(request_for(fake))

    assert (caught.value.status, caught.value.fallback) == (422, False)


def test_server_error_while_polling_is_retryable_unavailable(fake):
    fake.polls_until_done = 5
    fake.api.routes[("GET", "/v1/predictions/*")] = lambda _: fake_api.problem(500, "Internal error", "boom")

    with pytest.raises(ProviderUnavailable, match="500: boom") as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.status) == (True, 500)


def test_slow_answer_while_polling_becomes_timeout(fake):
    fake.polls_until_done = 5
    fake.api.routes[("GET", "/v1/predictions/*")] = lambda _: Reply(200, {}, delay_s=1.0)

    with pytest.raises(ProviderTimeout):
        run(request_for(fake), fast(timeout_s=0.2))


def test_answer_that_is_not_a_prediction_is_a_retryable_vendor_fault(fake):
    fake.api.routes[CREATE_SCHNELL] = lambda _: Reply(
        201, b"<html>gateway</html>", {"Content-Type": "text/html"}
    )

    with pytest.raises(ProviderUnavailable, match="not a prediction") as caught:
        run(request_for(fake))

    assert caught.value.retryable is True


def test_output_file_that_is_not_an_image_is_a_vendor_fault(fake):
    fake.files.routes[("GET", "/files/*")] = lambda _: Reply(200, b"truncated", {"Content-Type": "image/png"})

    with pytest.raises(ProviderUnavailable, match="not readable image"):
        run(request_for(fake))


def test_failed_prediction_reports_the_models_error_and_allows_fallback(fake):
    fake.failure = "CUDA out of memory. Tried to allocate 2.00 GiB"

    with pytest.raises(ProviderError, match="CUDA out of memory") as caught:
        run(request_for(fake))

    assert type(caught.value) is ProviderError
    assert (caught.value.retryable, caught.value.fallback) == (False, True)


def test_nsfw_failure_is_a_content_refusal(fake):
    fake.failure = "NSFW content detected. Try running it again, or try a different prompt."

    with pytest.raises(ContentRefused, match="NSFW content detected") as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.fallback) == (False, False)


# Checking keys


def test_check_key_accepts_a_good_token_with_one_cheap_call(fake):
    ReplicateProvider().check_key(Credentials(fake_api.VALID_KEY, fake.api.url))

    assert [(r.method, r.path) for r in fake.api.requests] == [("GET", "/v1/account")]


def test_check_key_rejects_a_bad_token(fake):
    with pytest.raises(ProviderAuthFailed):
        ReplicateProvider().check_key(Credentials("r8_wrong_token_123", fake.api.url))
