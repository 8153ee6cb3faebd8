"""The OpenAI provider, through the official SDK, against a fake OpenAI API over real HTTP."""

import io
import subprocess
import sys
import wave
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

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
from providers.openai import OpenAIProvider
from tests.providers.fakes.openai import (
    API_KEY,
    SPEECH_RATE,
    SPEECH_SECONDS,
    FakeOpenAI,
    content_filtered_chat_reply,
    content_policy_reply,
    error_reply,
    moderation_blocked_reply,
    multipart_form,
    png,
    quota_reply,
    rate_limit_reply,
    server_error_reply,
)
from tests.providers.fakes.server import Reply, serve

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served() -> Iterator[FakeOpenAI]:
    """One fake server for the module: stopping one costs half a second."""
    with serve(FakeOpenAI()) as vendor:
        yield vendor  # type: ignore[misc]


@pytest.fixture
def fake(served: FakeOpenAI) -> FakeOpenAI:
    """The fake with no requests recorded and its normal handlers."""
    served.reset()
    return served


def key_for(fake: FakeOpenAI, key: str = API_KEY) -> Credentials:
    return Credentials(key, fake.base_url)


def request_for(
    fake: FakeOpenAI,
    source: str,
    task: Task | None = None,
    prompt: str = "a lighthouse at dusk",
    inputs: dict[str, bytes] | None = None,
    **params: object,
) -> ProviderRequest:
    model = OpenAIProvider().resolve(source, task)
    return ProviderRequest(
        model, prompt, dict(params), seed=None, inputs=inputs or {}, credentials=key_for(fake)
    )


def run(request: ProviderRequest, provider: OpenAIProvider | None = None) -> ProviderResult:
    return (provider or OpenAIProvider()).generate(request, progress=no_progress, cancel=CancelToken())


def swap(fake: FakeOpenAI, method: str, path: str, reply: Reply) -> None:
    fake.routes[(method, path)] = lambda _request: reply


# Models and parameters


NATURAL_TASKS = {
    "gpt-image-1": Task.TEXT_TO_IMAGE,
    "gpt-image-1-mini": Task.TEXT_TO_IMAGE,
    "dall-e-3": Task.TEXT_TO_IMAGE,
    "gpt-4o-mini": Task.TEXT,
    "gpt-4.1-nano-2025-04-14": Task.TEXT,
    "gpt-5-mini": Task.TEXT,
    "o4-mini": Task.TEXT,
    "gpt-4o-mini-tts": Task.SPEECH,
    "tts-1-hd": Task.SPEECH,
}


@pytest.mark.parametrize(("source", "task"), NATURAL_TASKS.items())
def test_known_ids_resolve_to_their_natural_task(source, task):
    ref = OpenAIProvider().resolve(source)

    assert (ref.name, ref.provider, ref.source, ref.task) == (source, "openai", source, task)


def test_gpt_image_and_dall_e_2_can_be_registered_for_edits():
    provider = OpenAIProvider()

    assert provider.resolve("gpt-image-1", Task.IMAGE_TO_IMAGE).task is Task.IMAGE_TO_IMAGE
    assert provider.resolve("gpt-image-1", Task.INPAINT).task is Task.INPAINT
    assert provider.resolve("dall-e-2", Task.INPAINT).task is Task.INPAINT


def test_unknown_id_is_refused_unless_its_task_is_given():
    provider = OpenAIProvider()

    with pytest.raises(InvalidInput, match="give its task"):
        provider.resolve("gpt-9-omni")
    assert provider.resolve("gpt-9-omni", Task.TEXT).task is Task.TEXT
    assert provider.describe(provider.resolve("gpt-image-9", Task.TEXT_TO_IMAGE)).param("size")


def test_a_model_cannot_be_registered_for_a_task_it_does_not_do():
    provider = OpenAIProvider()

    with pytest.raises(InvalidInput, match="cannot do inpaint"):
        provider.resolve("dall-e-3", Task.INPAINT)
    with pytest.raises(InvalidInput):
        provider.resolve("gpt-4o-mini", Task.SPEECH)
    with pytest.raises(InvalidInput):
        provider.resolve("gpt-9", Task.MUSIC)


def test_each_image_model_offers_its_own_sizes_and_qualities():
    provider = OpenAIProvider()
    gpt_image = provider.describe(provider.resolve("gpt-image-1"))
    dall_e_3 = provider.describe(provider.resolve("dall-e-3"))
    dall_e_2 = provider.describe(provider.resolve("dall-e-2"))

    assert gpt_image.param("size").choices == ("1024x1024", "1536x1024", "1024x1536")
    assert gpt_image.param("quality").choices == ("low", "medium", "high")
    assert dall_e_3.param("size").choices == ("1024x1024", "1792x1024", "1024x1792")
    assert dall_e_3.param("quality").choices == ("standard", "hd")
    assert "256x256" in dall_e_2.param("size").choices
    assert dall_e_2.param("quality") is None


def test_chat_speech_parameters_have_ranges_and_reasoning_models_take_no_temperature():
    provider = OpenAIProvider()
    chat = provider.describe(provider.resolve("gpt-4o-mini"))
    reasoning = provider.describe(provider.resolve("o3-mini"))
    speech = provider.describe(provider.resolve("tts-1"))

    assert (chat.param("max_tokens").minimum, chat.param("temperature").maximum) == (1, 2.0)
    assert chat.param("system").kind == "str"
    assert reasoning.param("temperature") is None
    assert "nova" in speech.param("voice").choices
    assert speech.param("format").choices == ("wav", "mp3")
    assert (speech.param("speed").minimum, speech.param("speed").maximum) == (0.25, 4.0)


def test_registry_finds_the_provider_under_its_entry_point_name():
    provider = ProviderRegistry.from_entry_points().get("openai")

    assert isinstance(provider, OpenAIProvider)
    assert isinstance(provider, Provider) and isinstance(provider, KeyChecker)
    assert provider.name == "openai" and provider.local is False


def test_importing_the_provider_loads_neither_the_sdk_nor_torch():
    code = "import providers.openai, sys; assert not {'openai', 'torch', 'PIL'} & set(sys.modules)"

    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


# Images


def test_gpt_image_sends_model_prompt_size_and_quality_and_returns_the_png(fake):
    result = run(request_for(fake, "gpt-image-1", size="1536x1024", quality="high"))

    sent = fake.last
    assert (sent.method, sent.path) == ("POST", "/v1/images/generations")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    body = sent.json()
    assert (body["model"], body["prompt"], body["size"], body["quality"]) == (
        "gpt-image-1",
        "a lighthouse at dusk",
        "1536x1024",
        "high",
    )
    assert body["output_format"] == "png" and "response_format" not in body and "n" not in body
    (output,) = result.outputs
    image = Image.open(io.BytesIO(output.data))
    assert (output.mime, image.format, image.size) == ("image/png", "PNG", (1536, 1024))
    assert (output.width, output.height) == (1536, 1024)
    assert (result.usage.images, result.usage.input_tokens, result.usage.output_tokens) == (1, 50, 1056)
    assert (result.info["size"], result.info["quality"]) == ("1536x1024", "high")
    assert result.info["request_id"].startswith("req_")


def test_defaults_are_used_for_parameters_not_given(fake):
    result = run(request_for(fake, "gpt-image-1"))

    assert (fake.last.json()["size"], fake.last.json()["quality"]) == ("1024x1024", "medium")
    assert (result.info["size"], result.info["quality"]) == ("1024x1024", "medium")


def test_dall_e_3_asks_for_base64_and_records_size_and_quality_for_pricing(fake):
    result = run(request_for(fake, "dall-e-3", size="1792x1024", quality="hd"))

    body = fake.last.json()
    assert (body["response_format"], body["size"], body["quality"]) == ("b64_json", "1792x1024", "hd")
    assert (result.outputs[0].width, result.outputs[0].height) == (1792, 1024)
    assert (result.usage.images, result.usage.input_tokens) == (1, 0)
    assert (result.info["size"], result.info["quality"]) == ("1792x1024", "hd")
    assert result.info["revised_prompt"].startswith("A detailed picture")


def test_dall_e_2_is_priced_at_standard_quality_and_sends_no_quality(fake):
    result = run(request_for(fake, "dall-e-2", size="512x512"))

    assert "quality" not in fake.last.json()
    assert (result.info["size"], result.info["quality"]) == ("512x512", "standard")


def test_image_to_image_uploads_the_image_as_multipart(fake):
    source = png(64, 48)

    result = run(
        request_for(fake, "gpt-image-1", Task.IMAGE_TO_IMAGE, inputs={"image": source}, quality="low")
    )

    sent = fake.last
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    form = multipart_form(sent)
    assert (form["image"].data, form["image"].content_type) == (source, "image/png")
    assert (form["model"].data, form["prompt"].data, form["quality"].data) == (
        b"gpt-image-1",
        b"a lighthouse at dusk",
        b"low",
    )
    assert "mask" not in form
    assert result.outputs[0].mime == "image/png" and result.usage.images == 1


def test_inpaint_mask_turns_transparent_where_our_mask_is_white(fake):
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 32, 48))  # repaint the left half
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")

    run(
        request_for(
            fake, "gpt-image-1", Task.INPAINT, inputs={"image": png(64, 48), "mask": buffer.getvalue()}
        )
    )

    sent_mask = Image.open(io.BytesIO(multipart_form(fake.last)["mask"].data))
    assert (sent_mask.format, sent_mask.mode, sent_mask.size) == ("PNG", "RGBA", (64, 48))
    assert sent_mask.getpixel((5, 20))[3] == 0  # white: edit here
    assert sent_mask.getpixel((50, 20))[3] == 255  # black: keep


def test_mask_of_another_size_is_scaled_to_the_image(fake):
    mask = io.BytesIO()
    Image.new("L", (16, 16), 255).save(mask, format="PNG")

    run(
        request_for(fake, "gpt-image-1", Task.INPAINT, inputs={"image": png(64, 48), "mask": mask.getvalue()})
    )

    assert Image.open(io.BytesIO(multipart_form(fake.last)["mask"].data)).size == (64, 48)


def test_dall_e_2_inpaint_sends_the_image_as_rgba_png(fake):
    mask = io.BytesIO()
    Image.new("L", (64, 64), 255).save(mask, format="PNG")

    result = run(
        request_for(
            fake,
            "dall-e-2",
            Task.INPAINT,
            inputs={"image": png(64, 64), "mask": mask.getvalue()},
            size="256x256",
        )
    )

    form = multipart_form(fake.last)
    assert Image.open(io.BytesIO(form["image"].data)).mode == "RGBA"
    assert form["response_format"].data == b"b64_json"
    assert (result.outputs[0].width, result.info["size"]) == (256, "256x256")


@pytest.mark.parametrize(
    ("source", "task", "inputs", "message"),
    [
        ("gpt-image-1", Task.INPAINT, {"image": png(8, 8)}, "needs a mask"),
        ("gpt-image-1", Task.IMAGE_TO_IMAGE, {}, "needs the image"),
        ("gpt-image-1", Task.IMAGE_TO_IMAGE, {"image": b"not an image"}, "not an image"),
        ("dall-e-2", Task.INPAINT, {"image": png(8, 4), "mask": png(8, 4)}, "square"),
    ],
)
def test_missing_or_unusable_inputs_are_refused_before_any_request(fake, source, task, inputs, message):
    with pytest.raises(InvalidInput, match=message):
        run(request_for(fake, source, task, inputs=inputs))

    assert fake.requests == []


# Text


def test_chat_sends_system_and_max_completion_tokens_and_reports_tokens(fake):
    request = request_for(
        fake,
        "gpt-4o-mini",
        prompt="Name a colour.",
        max_tokens=64,
        temperature=0.2,
        system="Answer in one word.",
    )

    result = run(request)

    sent = fake.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    body = sent.json()
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Name a colour."},
    ]
    assert (body["max_completion_tokens"], body["temperature"]) == (64, 0.2)
    assert "max_tokens" not in body
    (output,) = result.outputs
    assert (output.text, output.data, output.mime) == (
        "You asked: Name a colour.",
        b"You asked: Name a colour.",
        "text/plain",
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (19, 10)
    assert result.info["finish_reason"] == "stop"


def test_reasoning_model_gets_no_temperature_and_no_system_message_when_empty(fake):
    run(request_for(fake, "o4-mini", prompt="Why is the sky blue?"))

    body = fake.last.json()
    assert "temperature" not in body
    assert body["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]
    assert body["max_completion_tokens"] == 4096


def test_content_filtered_answer_is_content_refused(fake):
    swap(fake, "POST", "/v1/chat/completions", content_filtered_chat_reply("I can't help with that."))

    with pytest.raises(ContentRefused, match="can't help"):
        run(request_for(fake, "gpt-4o-mini"))


# Speech


def test_speech_wav_comes_back_with_true_sizes_and_its_duration(fake):
    text = "Hello from the fake."

    result = run(request_for(fake, "tts-1", prompt=text, voice="nova", speed=1.25))

    body = fake.last.json()
    assert fake.last.path == "/v1/audio/speech"
    assert body == {"model": "tts-1", "voice": "nova", "input": text, "response_format": "wav", "speed": 1.25}
    (output,) = result.outputs
    with wave.open(io.BytesIO(output.data)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (SPEECH_RATE, 1, 2)
        assert audio.getnframes() == SPEECH_RATE * SPEECH_SECONDS
    assert (output.mime, output.sample_rate, output.duration_s) == ("audio/wav", SPEECH_RATE, SPEECH_SECONDS)
    assert (result.usage.characters, result.usage.audio_seconds) == (len(text), SPEECH_SECONDS)


def test_speech_can_be_mp3_and_gpt_4o_mini_tts_gets_no_speed(fake):
    result = run(request_for(fake, "gpt-4o-mini-tts", format="mp3"))

    assert "speed" not in fake.last.json()
    assert fake.last.json()["response_format"] == "mp3"
    assert result.outputs[0].mime == "audio/mpeg"
    assert result.usage.characters == len("a lighthouse at dusk")


def test_speech_longer_than_openai_takes_is_refused_before_any_request(fake):
    with pytest.raises(InvalidInput, match="4,096"):
        run(request_for(fake, "tts-1", prompt="a" * 4097))

    assert fake.requests == []


# Keys


def test_missing_key_fails_auth_without_any_request(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)  # the environment is never a source of keys
    request = replace(request_for(fake, "gpt-4o-mini"), credentials=None)

    with pytest.raises(ProviderAuthFailed, match="No OpenAI key is set for this organization"):
        run(request)

    assert fake.requests == []


def test_wrong_key_fails_auth_and_the_message_shows_none_of_it(fake):
    wrong = "sk-proj-wrongwrongwrong0123456789"
    request = replace(request_for(fake, "gpt-4o-mini"), credentials=key_for(fake, wrong))

    with pytest.raises(ProviderAuthFailed) as caught:
        run(request)

    error = caught.value
    assert error.status == 401 and error.fallback and not error.retryable
    assert "Incorrect API key provided" in error.message
    assert wrong not in error.message and "sk-proj" not in error.message and "6789" not in error.message
    assert len(fake.requests) == 1


def test_environment_organization_and_project_are_not_sent(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-operator")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-operator")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")

    run(request_for(fake, "gpt-4o-mini"))

    assert "openai-organization" not in fake.last.headers
    assert "openai-project" not in fake.last.headers


def test_check_key_accepts_a_good_key_with_one_models_call(fake):
    OpenAIProvider().check_key(key_for(fake))

    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/v1/models")]
    assert fake.last.headers["authorization"] == f"Bearer {API_KEY}"


def test_check_key_refuses_a_bad_key(fake):
    with pytest.raises(ProviderAuthFailed):
        OpenAIProvider().check_key(key_for(fake, "sk-bad-key-000000000000"))
    with pytest.raises(ProviderAuthFailed):
        OpenAIProvider().check_key(Credentials("", fake.base_url))


# Failures


def test_rate_limit_becomes_retryable_error_with_retry_after(fake):
    swap(fake, "POST", "/v1/images/generations", rate_limit_reply("7"))

    with pytest.raises(ProviderRateLimited) as caught:
        run(request_for(fake, "gpt-image-1"))

    assert (caught.value.retry_after, caught.value.status, caught.value.retryable) == (7.0, 429, True)
    assert "Rate limit reached" in caught.value.message
    assert len(fake.requests) == 1  # the SDK did not retry on its own


def test_exhausted_quota_is_not_retried_but_may_fall_back(fake):
    swap(fake, "POST", "/v1/chat/completions", quota_reply())

    with pytest.raises(ProviderRateLimited) as caught:
        run(request_for(fake, "gpt-4o-mini"))

    assert (caught.value.retryable, caught.value.fallback) == (False, True)


def test_server_error_is_retryable_and_not_retried_by_the_sdk(fake):
    swap(fake, "POST", "/v1/chat/completions", server_error_reply())

    with pytest.raises(ProviderUnavailable) as caught:
        run(request_for(fake, "gpt-4o-mini"))

    assert (caught.value.status, caught.value.retryable) == (500, True)
    assert "had an error" in caught.value.message
    assert len(fake.requests) == 1


def test_slow_answer_becomes_a_timeout(fake):
    fake.routes[("POST", "/v1/chat/completions")] = lambda _r: Reply(200, {}, delay_s=2.0)

    with pytest.raises(ProviderTimeout) as caught:
        run(request_for(fake, "gpt-4o-mini"), OpenAIProvider(timeout_s=0.3))

    assert caught.value.retryable
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("source", "path", "reply"),
    [
        (
            "gpt-4o-mini",
            "/v1/chat/completions",
            Reply(200, '{"id": "chatcmpl-1", "choi', {"Content-Type": "application/json"}),
        ),
        ("gpt-4o-mini", "/v1/chat/completions", Reply(200, {"id": "chatcmpl-1", "choices": []})),
        ("gpt-image-1", "/v1/images/generations", Reply(200, {"created": 1, "data": "oops"})),
        ("gpt-image-1", "/v1/images/generations", Reply(200, {"created": 1, "data": [{"b64_json": "!!"}]})),
        ("tts-1", "/v1/audio/speech", Reply(200, b"<html>busy</html>", {"Content-Type": "audio/wav"})),
    ],
)
def test_malformed_answer_is_a_retryable_unavailable_error(fake, source, path, reply):
    swap(fake, "POST", path, reply)

    with pytest.raises(ProviderUnavailable, match="could not read") as caught:
        run(request_for(fake, source))

    assert caught.value.retryable


@pytest.mark.parametrize(
    ("source", "reply"),
    [("gpt-image-1", moderation_blocked_reply()), ("dall-e-3", content_policy_reply())],
    ids=["moderation_blocked", "content_policy_violation"],
)
def test_safety_refusal_is_content_refused_and_never_retried_elsewhere(fake, source, reply):
    swap(fake, "POST", "/v1/images/generations", reply)

    with pytest.raises(ContentRefused, match="safety system") as caught:
        run(request_for(fake, source))

    assert (caught.value.status, caught.value.retryable, caught.value.fallback) == (400, False, False)


def test_other_bad_request_is_not_retried_nor_sent_elsewhere(fake):
    swap(
        fake,
        "POST",
        "/v1/images/generations",
        error_reply(400, "Invalid value: '999x999'.", param="size", code="invalid_value"),
    )

    with pytest.raises(ProviderBadRequest, match="999x999") as caught:
        run(request_for(fake, "gpt-image-1"))

    assert (caught.value.status, caught.value.retryable, caught.value.fallback) == (400, False, False)


def test_unreachable_server_is_unavailable(fake):
    request = request_for(fake, "gpt-4o-mini")
    request = replace(request, credentials=Credentials(API_KEY, "http://127.0.0.1:9/v1"))

    with pytest.raises(ProviderUnavailable, match="Could not reach OpenAI"):
        run(request)


def test_cancel_before_the_call_sends_nothing(fake):
    cancel = CancelToken()
    cancel.cancel()

    with pytest.raises(Canceled):
        OpenAIProvider().generate(request_for(fake, "gpt-image-1"), progress=no_progress, cancel=cancel)

    assert fake.requests == []


def test_progress_goes_from_waiting_to_done(fake):
    seen: list[Progress] = []

    OpenAIProvider().generate(request_for(fake, "gpt-4o-mini"), progress=seen.append, cancel=CancelToken())

    assert [p.fraction for p in seen] == [0.0, 1.0]
