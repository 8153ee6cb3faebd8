"""The local chat-model provider, run on a tiny real Llama with a ChatML template built offline."""

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import Canceled, InvalidInput, ModelUnavailable, ProviderError
from core.providers import Provider, ProviderRegistry, TinyModelBuilder
from core.types import CancelToken, ModelRef, Progress, ProviderRequest, Task, no_progress
from providers.transformers_text import TextProvider

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMPT = "a red fox in the snow"


@pytest.fixture(scope="session")
def tiny_llm_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny random-weight Llama chat model saved with save_pretrained."""
    pytest.importorskip("transformers", reason="the local extra (torch, transformers) is not installed")
    import torch

    # Tiny models gain nothing from threads, and on small shared machines torch's thread pool
    # stalls whenever another process takes a core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("models") / "tiny-llm"
    yield Path(TextProvider().build_tiny(folder))
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_llm(tiny_llm_folder: Path) -> ModelRef:
    """The tiny chat model as the core would register it."""
    return TextProvider().resolve(str(tiny_llm_folder))


def request_for(
    model: ModelRef, seed: int | None = 1, prompt: str = PROMPT, **params: object
) -> ProviderRequest:
    """A request for `model` with the given seed and parameters (others take their defaults)."""
    params.setdefault("max_tokens", 16)  # the default 256 is needlessly slow for junk text
    return ProviderRequest(model=model, prompt=prompt, params=params, seed=seed)


def answer(provider: TextProvider, request: ProviderRequest) -> str:
    """The text of one call, with no progress reporting and no cancellation."""
    return provider.generate(request, progress=no_progress, cancel=CancelToken()).outputs[0].text


def chatml_length(*messages: tuple[str, str]) -> int:
    """Tokens of (role, content) messages in ChatML for the byte-level tokenizer: one per byte or marker."""
    text = "".join(f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in messages)
    text += "<|im_start|>assistant\n"
    return len(text.replace("<|im_start|>", "\0").replace("<|im_end|>", "\0").encode())


# Answering


@pytest.mark.slow
def test_tiny_model_loads_from_its_folder_and_answers_with_plain_text(tiny_llm):
    result = TextProvider().generate(
        request_for(tiny_llm, max_tokens=12), progress=no_progress, cancel=CancelToken()
    )

    (output,) = result.outputs
    assert output.mime == "text/plain"
    assert isinstance(output.text, str) and output.data == output.text.encode()
    assert 0 < result.usage.output_tokens <= 12
    assert result.usage.input_tokens > 0
    assert result.usage.gpu_seconds > 0
    assert result.seed == 1
    assert result.info["device"] == "cpu"
    assert result.info["finish_reason"] in ("stop", "length")


@pytest.mark.slow
def test_input_tokens_count_the_prompt_after_the_chat_template_including_the_system_message(tiny_llm):
    provider = TextProvider()

    plain = provider.generate(
        request_for(tiny_llm, prompt="héllo"), progress=no_progress, cancel=CancelToken()
    )
    with_system = provider.generate(
        request_for(tiny_llm, prompt="héllo", system="Be brief."), progress=no_progress, cancel=CancelToken()
    )

    assert plain.usage.input_tokens == chatml_length(("user", "héllo"))
    assert with_system.usage.input_tokens == chatml_length(("system", "Be brief."), ("user", "héllo"))


@pytest.mark.slow
def test_max_tokens_caps_the_answer_and_finishes_by_length(tiny_llm):
    result = TextProvider().generate(
        request_for(tiny_llm, max_tokens=3), progress=no_progress, cancel=CancelToken()
    )

    assert result.usage.output_tokens == 3  # random weights almost never pick <|im_end|> this soon
    assert result.info["finish_reason"] == "length"


@pytest.mark.slow
def test_same_seed_and_parameters_give_the_same_text(tiny_llm):
    provider = TextProvider()

    first = answer(provider, request_for(tiny_llm, seed=7, temperature=1.0))
    second = answer(provider, request_for(tiny_llm, seed=7, temperature=1.0))

    assert first == second != ""


@pytest.mark.slow
def test_different_seeds_give_different_text(tiny_llm):
    provider = TextProvider()

    assert answer(provider, request_for(tiny_llm, seed=1)) != answer(provider, request_for(tiny_llm, seed=2))


@pytest.mark.slow
def test_temperature_zero_is_greedy_and_gives_the_same_text_for_every_seed(tiny_llm):
    provider = TextProvider()

    texts = {answer(provider, request_for(tiny_llm, seed=seed, temperature=0.0)) for seed in (1, 2, 3)}

    assert len(texts) == 1 and texts != {""}


@pytest.mark.slow
def test_the_system_message_changes_the_answer(tiny_llm):
    provider = TextProvider()

    # Same seed, so only the prompt differs (greedy decoding of random weights ignores context).
    plain = answer(provider, request_for(tiny_llm, seed=3))
    steered = answer(provider, request_for(tiny_llm, seed=3, system="Answer in French."))

    assert plain != steered


@pytest.mark.slow
def test_a_missing_seed_is_drawn_at_random_and_returned_so_the_text_can_be_made_again(tiny_llm):
    provider = TextProvider()

    drawn = provider.generate(request_for(tiny_llm, seed=None), progress=no_progress, cancel=CancelToken())

    assert isinstance(drawn.seed, int)
    assert answer(provider, request_for(tiny_llm, seed=drawn.seed)) == drawn.outputs[0].text


@pytest.mark.slow
def test_concurrent_calls_with_the_same_seed_still_give_the_same_text(tiny_llm):
    provider = TextProvider()
    expected = answer(provider, request_for(tiny_llm, seed=5))
    texts: list[str] = []

    def call() -> None:
        texts.append(answer(provider, request_for(tiny_llm, seed=5)))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert texts == [expected] * 3


# Progress and cancellation


@pytest.mark.slow
def test_progress_is_reported_once_per_generated_token_out_of_max_tokens(tiny_llm):
    seen: list[Progress] = []

    result = TextProvider().generate(
        request_for(tiny_llm, max_tokens=10), progress=seen.append, cancel=CancelToken()
    )

    assert [p.step for p in seen] == list(range(1, result.usage.output_tokens + 1))
    assert {p.total for p in seen} == {10}


@pytest.mark.slow
def test_cancel_after_a_few_tokens_raises_canceled_and_stops_generating(tiny_llm):
    cancel = CancelToken()
    seen: list[int] = []

    def on_progress(p: Progress) -> None:
        seen.append(p.step)
        if p.step == 3:
            cancel.cancel()

    with pytest.raises(Canceled, match="after 3 of 200 tokens"):
        TextProvider().generate(request_for(tiny_llm, max_tokens=200), progress=on_progress, cancel=cancel)
    assert seen == [1, 2, 3]


@pytest.mark.slow
def test_the_next_call_after_a_cancel_runs_to_the_end_on_the_same_model(tiny_llm):
    provider = TextProvider()
    cancel = CancelToken()
    with pytest.raises(Canceled):
        provider.generate(request_for(tiny_llm), progress=lambda p: cancel.cancel(), cancel=cancel)

    result = provider.generate(
        request_for(tiny_llm, max_tokens=5), progress=no_progress, cancel=CancelToken()
    )

    assert result.usage.output_tokens == 5
    assert provider.loads == 1


def test_a_call_canceled_before_it_starts_does_not_load_the_model():
    provider = TextProvider()
    cancel = CancelToken()
    cancel.cancel()
    model = provider.resolve("creator-tests/not-downloaded")

    with pytest.raises(Canceled):
        provider.generate(request_for(model), progress=no_progress, cancel=cancel)
    assert provider.loads == 0


# Keeping models warm


@pytest.mark.slow
def test_the_model_is_loaded_once_across_calls(tiny_llm):
    provider = TextProvider()

    for seed in (1, 2, 3):
        answer(provider, request_for(tiny_llm, seed=seed))

    assert provider.loads == 1


@pytest.mark.slow
def test_the_cache_evicts_the_least_recently_used_model_beyond_max_cached(tiny_llm_folder, tmp_path):
    provider = TextProvider(max_cached=2)
    a, b, c = (
        provider.resolve(str(shutil.copytree(tiny_llm_folder, tmp_path / name))) for name in ("a", "b", "c")
    )

    for model in (a, b, a, c):  # c evicts b, the least recently used
        answer(provider, request_for(model, max_tokens=1))
    assert provider.loads == 3

    answer(provider, request_for(a, max_tokens=1))  # still cached
    assert provider.loads == 3
    answer(provider, request_for(b, max_tokens=1))  # was evicted: loaded again
    assert provider.loads == 4


# Models that cannot serve


@pytest.mark.slow
def test_a_folder_without_a_chat_template_is_refused_when_resolved_and_when_run(tiny_llm_folder, tmp_path):
    folder = shutil.copytree(tiny_llm_folder, tmp_path / "base-model")
    (folder / "chat_template.jinja").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    provider = TextProvider()

    with pytest.raises(InvalidInput, match="no chat template"):
        provider.resolve(str(folder))
    registered_earlier = ModelRef("base-model", "llm", str(folder), Task.TEXT)
    with pytest.raises(InvalidInput, match="no chat template"):
        answer(provider, request_for(registered_earlier))
    assert provider.loads == 0


def test_resolve_rejects_a_folder_holding_a_model_that_is_not_a_causal_lm(tmp_path):
    config = {"model_type": "bert", "architectures": ["BertForMaskedLM"], "hidden_size": 32}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "chat_template.jinja").write_text("{{ messages }}")

    with pytest.raises(InvalidInput, match="BertForMaskedLM, which is not a text-generation"):
        TextProvider().resolve(str(tmp_path))


def test_resolve_rejects_a_folder_without_config_json(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))

    with pytest.raises(InvalidInput, match=r"config\.json"):
        TextProvider().resolve(str(tmp_path))


def test_resolve_accepts_a_causal_lm_known_only_to_transformers_own_table(tmp_path):
    pytest.importorskip("transformers", reason="the local extra (torch, transformers) is not installed")
    config = {"model_type": "gemma3", "architectures": ["Gemma3ForConditionalGeneration"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))

    assert TextProvider().resolve(str(tmp_path)).task is Task.TEXT


@pytest.mark.slow
def test_resolve_refuses_tasks_other_than_text(tiny_llm_folder):
    with pytest.raises(InvalidInput, match="make text, not text-to-image"):
        TextProvider().resolve(str(tiny_llm_folder), Task.TEXT_TO_IMAGE)


def test_resolve_rejects_a_folder_that_does_not_exist(tmp_path):
    with pytest.raises(InvalidInput, match="no folder"):
        TextProvider().resolve(str(tmp_path / "missing"))


def test_resolve_rejects_something_that_is_neither_a_folder_nor_a_hub_id():
    with pytest.raises(InvalidInput, match="Hub id"):
        TextProvider().resolve("just some words")


@pytest.mark.slow
def test_resolve_names_a_folder_model_after_the_folder(tiny_llm, tiny_llm_folder):
    assert tiny_llm == ModelRef("tiny-llm", "llm", str(tiny_llm_folder), Task.TEXT)


def test_resolve_names_a_hub_model_after_the_last_part_of_its_id():
    model = TextProvider().resolve("some-org/some-chat-model", Task.TEXT)

    assert model == ModelRef("some-chat-model", "llm", "some-org/some-chat-model", Task.TEXT)


def test_describe_declares_the_sampling_parameters_with_their_ranges():
    spec = TextProvider().describe(TextProvider().resolve("some-org/some-chat-model"))

    assert spec.task is Task.TEXT
    ranges = {p.name: (p.kind, p.default, p.minimum, p.maximum) for p in spec.params}
    assert ranges == {
        "max_tokens": ("int", 256, 1, 4096),
        "temperature": ("float", 0.7, 0.0, 2.0),
        "top_p": ("float", 0.95, 0.0, 1.0),
        "system": ("str", "", None, None),
    }


@pytest.mark.slow
def test_a_hub_model_missing_offline_is_unavailable_with_the_command_to_fetch_it():
    pytest.importorskip("transformers", reason="the local extra (torch, transformers) is not installed")
    model = TextProvider().resolve("creator-tests/not-downloaded")

    with pytest.raises(ModelUnavailable, match="creator models pull creator-tests/not-downloaded"):
        answer(TextProvider(), request_for(model))


@pytest.mark.slow
def test_a_damaged_model_fails_with_a_provider_error_that_names_the_folder(tiny_llm_folder, tmp_path):
    folder = shutil.copytree(tiny_llm_folder, tmp_path / "damaged")
    (folder / "model.safetensors").write_bytes(b"not weights")
    provider = TextProvider()
    model = provider.resolve(str(folder))

    with pytest.raises(ProviderError, match="Could not read the model") as raised:
        answer(provider, request_for(model))
    assert str(folder) in raised.value.message
    assert "Traceback" not in raised.value.message
    assert provider.loads == 0


@pytest.mark.slow
def test_a_chat_template_that_refuses_a_system_message_is_reported_as_invalid_input(
    tiny_llm_folder, tmp_path
):
    folder = shutil.copytree(tiny_llm_folder, tmp_path / "no-system")
    template = (folder / "chat_template.jinja").read_text()
    refusal = (
        "{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
    )
    (folder / "chat_template.jinja").write_text(refusal + template)
    provider = TextProvider()
    model = provider.resolve(str(folder))

    assert answer(provider, request_for(model, max_tokens=2)) is not None
    with pytest.raises(InvalidInput, match="System role not supported"):
        answer(provider, request_for(model, system="Be brief."))


@pytest.mark.slow
def test_a_prompt_longer_than_the_model_reads_is_invalid_input(tiny_llm):
    with pytest.raises(InvalidInput, match="reads at most 4608"):
        answer(TextProvider(), request_for(tiny_llm, prompt="x" * 5000))


# Plugging in


def test_the_registry_finds_the_provider_through_its_entry_point():
    provider = ProviderRegistry.from_entry_points().get("llm")

    assert isinstance(provider, TextProvider)
    assert isinstance(provider, Provider) and isinstance(provider, TinyModelBuilder)
    assert (provider.name, provider.local) == ("llm", True)


def test_importing_the_provider_does_not_import_torch():
    code = "import providers.transformers_text, sys; assert 'torch' not in sys.modules"

    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
