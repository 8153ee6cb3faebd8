"""The Anthropic provider, through the official SDK, against a fake Anthropic API over real HTTP."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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
from providers.anthropic import AnthropicProvider
from tests.providers.fakes.anthropic import (
    API_KEY,
    FakeAnthropic,
    error_reply,
    message_body,
    overloaded_reply,
    rate_limit_reply,
    server_error_reply,
)
from tests.providers.fakes.server import Reply, serve

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "claude-haiku-4-5"


@pytest.fixture(scope="module")
def served() -> Iterator[FakeAnthropic]:
    """One fake server for the module: stopping one costs half a second."""
    with serve(FakeAnthropic()) as vendor:
        yield vendor  # type: ignore[misc]


@pytest.fixture
def fake(served: FakeAnthropic) -> FakeAnthropic:
    """The fake with no requests recorded and its normal handlers."""
    served.reset()
    return served


def request_for(
    fake: FakeAnthropic, prompt: str = "Name a colour.", key: str = API_KEY, **params: object
) -> ProviderRequest:
    model = AnthropicProvider().resolve(MODEL)
    return ProviderRequest(model, prompt, dict(params), seed=None, credentials=Credentials(key, fake.url))


def run(request: ProviderRequest, provider: AnthropicProvider | None = None) -> ProviderResult:
    return (provider or AnthropicProvider()).generate(request, progress=no_progress, cancel=CancelToken())


def swap(fake: FakeAnthropic, reply: Reply, method: str = "POST", path: str = "/v1/messages") -> None:
    fake.routes[(method, path)] = lambda _request: reply


# Models and parameters


def test_claude_ids_resolve_to_text():
    ref = AnthropicProvider().resolve("claude-haiku-4-5-20251001")

    assert (ref.name, ref.provider, ref.source, ref.task) == (
        "claude-haiku-4-5-20251001",
        "anthropic",
        "claude-haiku-4-5-20251001",
        Task.TEXT,
    )


def test_other_ids_need_the_text_task_and_nothing_but_text_is_served():
    provider = AnthropicProvider()

    with pytest.raises(InvalidInput, match="not a Claude model id"):
        provider.resolve("gpt-4o")
    assert provider.resolve("gpt-4o", Task.TEXT).task is Task.TEXT
    with pytest.raises(InvalidInput, match="cannot do text-to-image"):
        provider.resolve(MODEL, Task.TEXT_TO_IMAGE)


def test_parameters_have_ranges_and_max_tokens_follows_the_generation():
    provider = AnthropicProvider()
    spec = provider.describe(provider.resolve(MODEL))

    assert (spec.param("max_tokens").default, spec.param("max_tokens").minimum) == (512, 1)
    assert spec.param("system").kind == "str"
    # API version 2026-10-21 refuses temperature, top_p and top_k, even at their defaults.
    assert spec.param("temperature") is None
    old = provider.describe(provider.resolve("claude-3-haiku-20240307"))
    assert old.param("max_tokens").maximum == 4096
    assert provider.describe(provider.resolve("claude-3-5-haiku-latest")).param("max_tokens").maximum == 8192


def test_registry_finds_the_provider_under_its_entry_point_name():
    provider = ProviderRegistry.from_entry_points().get("anthropic")

    assert isinstance(provider, AnthropicProvider)
    assert isinstance(provider, Provider) and isinstance(provider, KeyChecker)
    assert provider.name == "anthropic" and provider.local is False


def test_importing_the_provider_loads_neither_the_sdk_nor_torch():
    code = "import providers.anthropic, sys; assert not {'anthropic', 'torch'} & set(sys.modules)"

    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


# Answers


def test_message_sends_key_version_model_max_tokens_and_system_and_reports_tokens(fake):
    result = run(request_for(fake, max_tokens=64, system="Answer in one word."))

    sent = fake.last
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert "x-api-key" not in sent.headers  # the key travels once
    assert sent.headers["anthropic-version"] == "2026-10-21"
    body = sent.json()
    assert body == {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Name a colour."}],
        "system": "Answer in one word.",
    }
    (output,) = result.outputs
    assert (output.text, output.data, output.mime) == (
        "You asked: Name a colour.",
        b"You asked: Name a colour.",
        "text/plain",
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (21, 9)
    assert result.info["stop_reason"] == "end_turn"
    assert result.info["request_id"].startswith("req_")


def test_defaults_fill_max_tokens_and_an_empty_system_prompt_is_not_sent(fake):
    run(request_for(fake))

    body = fake.last.json()
    assert body["max_tokens"] == 512
    assert "system" not in body


def test_refusal_stop_reason_is_content_refused(fake):
    swap(fake, Reply(200, message_body("", MODEL, stop_reason="refusal")))

    with pytest.raises(ContentRefused) as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.fallback) == (False, False)


def test_answer_cut_at_max_tokens_is_returned_as_is(fake):
    swap(fake, Reply(200, message_body("Red, gre", MODEL, stop_reason="max_tokens")))

    result = run(request_for(fake, max_tokens=3))

    assert result.outputs[0].text == "Red, gre"
    assert result.info["stop_reason"] == "max_tokens"


# Keys


def test_missing_key_fails_auth_without_any_request(fake, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)  # the environment is never a source of keys
    request = ProviderRequest(AnthropicProvider().resolve(MODEL), "hi", {}, None)

    with pytest.raises(ProviderAuthFailed, match="No Anthropic key is set for this organization"):
        run(request)

    assert fake.requests == []


def test_wrong_key_fails_auth_and_the_message_shows_none_of_it(fake):
    wrong = "sk-ant-api03-wrongwrong0123456789"

    with pytest.raises(ProviderAuthFailed) as caught:
        run(request_for(fake, key=wrong))

    error = caught.value
    assert (error.status, error.fallback, error.retryable) == (401, True, False)
    assert "invalid x-api-key" in error.message
    assert wrong not in error.message
    assert len(fake.requests) == 1


def test_check_key_accepts_a_good_key_with_one_models_call(fake):
    AnthropicProvider().check_key(Credentials(API_KEY, fake.url))

    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/v1/models")]
    assert fake.last.headers["authorization"] == f"Bearer {API_KEY}"


def test_check_key_refuses_a_bad_key(fake):
    with pytest.raises(ProviderAuthFailed):
        AnthropicProvider().check_key(Credentials("sk-ant-bad-000000000", fake.url))
    with pytest.raises(ProviderAuthFailed):
        AnthropicProvider().check_key(Credentials(" ", fake.url))


# Failures


def test_rate_limit_becomes_retryable_error_with_retry_after(fake):
    swap(fake, rate_limit_reply("12"))

    with pytest.raises(ProviderRateLimited) as caught:
        run(request_for(fake))

    assert (caught.value.retry_after, caught.value.status, caught.value.retryable) == (12.0, 429, True)
    assert "exceed the rate limit" in caught.value.message
    assert len(fake.requests) == 1  # the SDK did not retry on its own


@pytest.mark.parametrize("reply", [overloaded_reply(), server_error_reply()], ids=["529", "500"])
def test_overloaded_or_failing_server_is_retryable_and_not_retried_by_the_sdk(fake, reply):
    swap(fake, reply)

    with pytest.raises(ProviderUnavailable) as caught:
        run(request_for(fake))

    assert caught.value.status == reply.status and caught.value.retryable
    assert len(fake.requests) == 1


def test_invalid_request_is_a_bad_request_not_retried_nor_sent_elsewhere(fake):
    swap(fake, error_reply(400, "invalid_request_error", "max_tokens: 99999 > 64000, the maximum allowed"))

    with pytest.raises(ProviderBadRequest, match="99999") as caught:
        run(request_for(fake))

    assert (caught.value.status, caught.value.retryable, caught.value.fallback) == (400, False, False)


def test_exhausted_credit_is_not_retried_but_may_fall_back(fake):
    swap(
        fake, error_reply(402, "billing_error", "Your credit balance is too low to access the Anthropic API.")
    )

    with pytest.raises(ProviderRateLimited) as caught:
        run(request_for(fake))

    assert (caught.value.retryable, caught.value.fallback) == (False, True)


def test_slow_answer_becomes_a_timeout(fake):
    fake.routes[("POST", "/v1/messages")] = lambda _r: Reply(200, {}, delay_s=2.0)

    with pytest.raises(ProviderTimeout) as caught:
        run(request_for(fake), AnthropicProvider(timeout_s=0.3))

    assert caught.value.retryable
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, '{"id": "msg_1", "type": "mess', {"Content-Type": "application/json"}),
        Reply(200, {"id": "msg_1", "type": "message", "content": "oops"}),
        Reply(200, "<html>upstream busy</html>", {"Content-Type": "text/html"}),
    ],
    ids=["truncated", "wrong-shape", "html"],
)
def test_malformed_answer_is_a_retryable_unavailable_error(fake, reply):
    swap(fake, reply)

    with pytest.raises(ProviderUnavailable, match="could not read") as caught:
        run(request_for(fake))

    assert caught.value.retryable


def test_unreachable_server_is_unavailable():
    request = ProviderRequest(
        AnthropicProvider().resolve(MODEL),
        "hi",
        {},
        None,
        credentials=Credentials(API_KEY, "http://127.0.0.1:9"),
    )

    with pytest.raises(ProviderUnavailable, match="Could not reach Anthropic"):
        run(request)


def test_cancel_before_the_call_sends_nothing(fake):
    cancel = CancelToken()
    cancel.cancel()

    with pytest.raises(Canceled):
        AnthropicProvider().generate(request_for(fake), progress=no_progress, cancel=cancel)

    assert fake.requests == []


def test_progress_goes_from_waiting_to_done(fake):
    seen: list[Progress] = []

    AnthropicProvider().generate(request_for(fake), progress=seen.append, cancel=CancelToken())

    assert [p.fraction for p in seen] == [0.0, 1.0]
