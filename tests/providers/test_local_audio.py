"""The local audio providers (sound effects, music, speech), run on tiny real models built offline."""

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from core.errors import Canceled, InvalidInput, ModelUnavailable
from core.providers import Provider, ProviderRegistry, TinyModelBuilder
from core.types import CancelToken, ModelRef, Output, Progress, ProviderRequest, Task, no_progress
from providers.diffusers_audio import DiffusersAudioProvider
from providers.transformers_music import MusicgenProvider
from providers.transformers_speech import SpeechProvider

# torchsde (Stable Audio's noise) warns when a step's time lands a float's width outside its range.
pytestmark = pytest.mark.filterwarnings("ignore:Should have t:UserWarning")

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = {"diffusers-audio": DiffusersAudioProvider, "musicgen": MusicgenProvider, "tts": SpeechProvider}
# Every tiny model, by the fixture that resolves it, with the provider that runs it.
TINY_MODELS = {
    "tiny_audioldm2": DiffusersAudioProvider,
    "tiny_stable_audio": DiffusersAudioProvider,
    "tiny_musicgen": MusicgenProvider,
    "tiny_vits": SpeechProvider,
}


# Tiny models, built once per session


@pytest.fixture(scope="session")
def audio_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder for this session's tiny audio models, with torch on one thread."""
    pytest.importorskip("diffusers", reason="the local extra (torch, diffusers) is not installed")
    import torch

    # Tiny models gain nothing from threads, and on small shared machines torch's thread pool
    # stalls whenever another process takes a core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path_factory.mktemp("audio-models")
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_audioldm2_folder(audio_models_dir: Path) -> Path:
    return Path(DiffusersAudioProvider().build_tiny(audio_models_dir / "tiny-audioldm2"))


@pytest.fixture(scope="session")
def tiny_audioldm2(tiny_audioldm2_folder: Path) -> ModelRef:
    return DiffusersAudioProvider().resolve(str(tiny_audioldm2_folder))


@pytest.fixture(scope="session")
def tiny_stable_audio(audio_models_dir: Path) -> ModelRef:
    pytest.importorskip("torchsde", reason="Stable Audio's scheduler needs torchsde")
    provider = DiffusersAudioProvider()
    return provider.resolve(provider.build_tiny(audio_models_dir / "tiny-stable-audio", kind="stable-audio"))


@pytest.fixture(scope="session")
def tiny_musicgen_folder(audio_models_dir: Path) -> Path:
    return Path(MusicgenProvider().build_tiny(audio_models_dir / "tiny-musicgen"))


@pytest.fixture(scope="session")
def tiny_musicgen(tiny_musicgen_folder: Path) -> ModelRef:
    return MusicgenProvider().resolve(str(tiny_musicgen_folder))


@pytest.fixture(scope="session")
def tiny_vits_folder(audio_models_dir: Path) -> Path:
    return Path(SpeechProvider().build_tiny(audio_models_dir / "tiny-vits"))


@pytest.fixture(scope="session")
def tiny_vits(tiny_vits_folder: Path) -> ModelRef:
    return SpeechProvider().resolve(str(tiny_vits_folder))


def request_for(model: ModelRef, seed: int | None = 1, prompt: str = "", **params: object) -> ProviderRequest:
    """A request for `model` with the given seed and parameters (others take their defaults)."""
    return ProviderRequest(
        model=model, prompt=prompt or "a dog barks twice in the rain", params=params, seed=seed
    )


def generate(provider: Provider, request: ProviderRequest) -> Output:
    """The one output of a call, with no progress reporting and no cancellation."""
    (output,) = provider.generate(request, progress=no_progress, cancel=CancelToken()).outputs
    return output


def decoded(output: Output) -> np.ndarray:
    """The WAV's samples as (samples, channels), after checking it says what the Output says."""
    samples, sample_rate = soundfile.read(io.BytesIO(output.data), always_2d=True)
    assert output.mime == "audio/wav"
    assert sample_rate == output.sample_rate
    assert len(samples) / sample_rate == pytest.approx(output.duration_s)
    assert np.isfinite(samples).all()
    return samples


# Sound effects


@pytest.mark.slow
def test_audioldm2_makes_16_khz_mono_wav_of_exactly_the_requested_duration(tiny_audioldm2):
    result = DiffusersAudioProvider().generate(
        request_for(tiny_audioldm2, duration_s=0.7), progress=no_progress, cancel=CancelToken()
    )

    (output,) = result.outputs
    assert decoded(output).shape == (11200, 1)  # 0.7 s at 16 kHz, though the vocoder's hop is 256
    assert (output.sample_rate, output.duration_s) == (16000, 0.7)
    assert result.usage.audio_seconds == 0.7
    assert result.usage.gpu_seconds > 0
    assert result.info["pipeline"] == "AudioLDM2Pipeline"
    assert result.seed == 1


@pytest.mark.slow
def test_stable_audio_makes_44_khz_stereo_wav_of_exactly_the_requested_duration(tiny_stable_audio):
    result = DiffusersAudioProvider().generate(
        request_for(tiny_stable_audio, duration_s=0.7), progress=no_progress, cancel=CancelToken()
    )

    (output,) = result.outputs
    assert decoded(output).shape == (30870, 2)
    assert (output.sample_rate, output.duration_s) == (44100, 0.7)
    assert result.usage.audio_seconds == 0.7
    assert result.info["pipeline"] == "StableAudioPipeline"


@pytest.mark.slow
def test_negative_prompt_changes_the_sound(tiny_audioldm2):
    provider = DiffusersAudioProvider()
    plain = request_for(tiny_audioldm2)
    negative = ProviderRequest(tiny_audioldm2, plain.prompt, {}, seed=1, negative_prompt="thunder")

    assert generate(provider, plain).data != generate(provider, negative).data


@pytest.mark.slow
def test_sound_effect_progress_is_reported_once_per_step_with_the_total(tiny_audioldm2):
    reports: list[Progress] = []

    DiffusersAudioProvider().generate(
        request_for(tiny_audioldm2, steps=3), progress=reports.append, cancel=CancelToken()
    )

    assert [(p.step, p.total) for p in reports] == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.slow
@pytest.mark.parametrize("model_fixture", ["tiny_audioldm2", "tiny_stable_audio"])
def test_cancel_after_the_first_step_stops_the_sound_effect_and_the_next_call_runs(model_fixture, request):
    model = request.getfixturevalue(model_fixture)
    provider, cancel = DiffusersAudioProvider(), CancelToken()
    steps_seen: list[int] = []

    def cancel_after_first_step(progress: Progress) -> None:
        steps_seen.append(progress.step)
        cancel.cancel()

    with pytest.raises(Canceled, match="after 1 of 4 steps"):
        provider.generate(request_for(model, steps=4), progress=cancel_after_first_step, cancel=cancel)
    assert steps_seen == [1]
    assert decoded(generate(provider, request_for(model, steps=4))).size > 0
    assert provider.loads == 1


@pytest.mark.slow
def test_describe_gives_a_tiny_sound_model_one_second_and_two_steps(tiny_audioldm2):
    spec = DiffusersAudioProvider().describe(tiny_audioldm2)

    assert spec.task is Task.SOUND_EFFECT
    assert spec.param("duration_s").default == 1.0
    assert spec.param("steps").default == 2
    assert spec.param("guidance_scale").default == 3.5


@pytest.mark.slow
def test_describe_caps_stable_audio_duration_at_the_longest_sound_the_model_makes(tiny_stable_audio):
    duration = DiffusersAudioProvider().describe(tiny_stable_audio).param("duration_s")

    assert (duration.minimum, duration.maximum) == (0.5, 1.0)  # 22 latents × 2048 ÷ 44100 Hz = 1.02 s


def test_describe_a_hub_sound_model_that_is_not_here_with_real_defaults():
    provider = DiffusersAudioProvider()

    spec = provider.describe(provider.resolve("creator-tests/some-sound-model"))

    assert spec.param("duration_s").default == 5.0
    assert (spec.param("duration_s").minimum, spec.param("duration_s").maximum) == (0.5, 30.0)
    assert spec.param("steps").default == 100


# Music


@pytest.mark.slow
def test_musicgen_makes_wav_of_exactly_the_requested_duration(tiny_musicgen):
    result = MusicgenProvider().generate(
        request_for(tiny_musicgen, duration_s=0.7), progress=no_progress, cancel=CancelToken()
    )

    (output,) = result.outputs
    assert decoded(output).shape == (11200, 1)
    assert (output.sample_rate, output.duration_s) == (16000, 0.7)
    assert result.usage.audio_seconds == 0.7
    assert result.usage.gpu_seconds > 0


@pytest.mark.slow
def test_musicgen_reports_progress_per_token_including_the_codebook_delay(tiny_musicgen):
    reports: list[Progress] = []

    MusicgenProvider().generate(
        request_for(tiny_musicgen, duration_s=0.5), progress=reports.append, cancel=CancelToken()
    )

    # 0.5 s at 50 frames a second is 25 frames; the 4 codebooks' delay pattern adds 3 tokens.
    assert [(p.step, p.total) for p in reports] == [(step, 28) for step in range(1, 29)]


@pytest.mark.slow
def test_cancel_stops_musicgen_between_tokens_and_the_next_call_runs(tiny_musicgen):
    cancel = CancelToken()
    steps_seen: list[int] = []

    def cancel_at_fifth_token(progress: Progress) -> None:
        steps_seen.append(progress.step)
        if progress.step == 5:
            cancel.cancel()

    provider = MusicgenProvider()

    with pytest.raises(Canceled, match="after 5 of 53 tokens"):
        provider.generate(request_for(tiny_musicgen), progress=cancel_at_fifth_token, cancel=cancel)
    assert steps_seen == [1, 2, 3, 4, 5]
    assert decoded(generate(provider, request_for(tiny_musicgen))).shape == (16000, 1)  # the next call runs


@pytest.mark.slow
def test_musicgen_temperature_and_guidance_change_the_music(tiny_musicgen):
    provider = MusicgenProvider()
    plain = generate(provider, request_for(tiny_musicgen)).data

    assert generate(provider, request_for(tiny_musicgen, temperature=0.5)).data != plain
    assert generate(provider, request_for(tiny_musicgen, guidance_scale=1.0)).data != plain


# Speech


@pytest.mark.slow
def test_speech_reads_the_text_into_a_wav_at_the_voice_sample_rate(tiny_vits):
    text = "Hello there, how are you today?"

    result = SpeechProvider().generate(
        request_for(tiny_vits, prompt=text), progress=no_progress, cancel=CancelToken()
    )

    (output,) = result.outputs
    samples = decoded(output)
    assert output.sample_rate == 16000
    assert samples.shape[1] == 1 and len(samples) % 256 == 0  # whole frames of the vocoder's hop
    assert result.usage.characters == len(text)
    assert result.usage.audio_seconds == output.duration_s > 0
    assert result.usage.gpu_seconds > 0


@pytest.mark.slow
def test_a_faster_speaking_rate_gives_shorter_speech(tiny_vits):
    provider = SpeechProvider()

    slow = generate(provider, request_for(tiny_vits, speaking_rate=0.5))
    fast = generate(provider, request_for(tiny_vits, speaking_rate=2.0))

    assert fast.duration_s < slow.duration_s


@pytest.mark.slow
def test_text_the_voice_has_no_characters_for_is_invalid_input(tiny_vits):
    with pytest.raises(InvalidInput, match="none of the characters"):
        generate(SpeechProvider(), request_for(tiny_vits, prompt="1234 !!"))


# What every local audio provider does


@pytest.mark.slow
@pytest.mark.parametrize("model_fixture", TINY_MODELS)
def test_same_seed_gives_identical_wav_bytes_and_another_seed_does_not(model_fixture, request):
    model, provider = request.getfixturevalue(model_fixture), TINY_MODELS[model_fixture]()

    first = generate(provider, request_for(model, seed=7)).data

    assert generate(provider, request_for(model, seed=7)).data == first
    assert generate(provider, request_for(model, seed=8)).data != first


@pytest.mark.slow
@pytest.mark.parametrize("model_fixture", TINY_MODELS)
def test_a_missing_seed_is_drawn_at_random_and_returned_so_the_sound_can_be_made_again(
    model_fixture, request
):
    model, provider = request.getfixturevalue(model_fixture), TINY_MODELS[model_fixture]()

    drawn = provider.generate(request_for(model, seed=None), progress=no_progress, cancel=CancelToken())

    assert 0 <= drawn.seed < 2**32
    assert generate(provider, request_for(model, seed=drawn.seed)).data == drawn.outputs[0].data


@pytest.mark.slow
@pytest.mark.parametrize("model_fixture", TINY_MODELS)
def test_the_model_is_loaded_once_across_calls(model_fixture, request):
    model, provider = request.getfixturevalue(model_fixture), TINY_MODELS[model_fixture]()

    for seed in (1, 2, 3):
        generate(provider, request_for(model, seed=seed))

    assert provider.loads == 1


@pytest.mark.slow
@pytest.mark.parametrize("model_fixture", TINY_MODELS)
def test_a_call_canceled_before_it_starts_does_not_load_the_model(model_fixture, request):
    model, provider, cancel = (
        request.getfixturevalue(model_fixture),
        TINY_MODELS[model_fixture](),
        CancelToken(),
    )
    cancel.cancel()

    with pytest.raises(Canceled):
        provider.generate(request_for(model), progress=no_progress, cancel=cancel)
    assert provider.loads == 0


@pytest.mark.slow
def test_the_cache_evicts_the_least_recently_used_model_beyond_max_cached(tiny_vits_folder, tmp_path):
    provider = SpeechProvider(max_cached=2)
    a, b, c = (
        provider.resolve(str(shutil.copytree(tiny_vits_folder, tmp_path / name))) for name in ("a", "b", "c")
    )

    for model in (a, b, a, c):  # c evicts b, the least recently used
        generate(provider, request_for(model))
    assert provider.loads == 3

    generate(provider, request_for(a))
    assert provider.loads == 3
    generate(provider, request_for(b))
    assert provider.loads == 4


@pytest.mark.slow
@pytest.mark.parametrize("name", PROVIDERS)
def test_a_hub_model_missing_offline_is_unavailable_with_the_command_to_fetch_it(name):
    pytest.importorskip("diffusers", reason="the local extra (torch, diffusers) is not installed")
    provider = PROVIDERS[name]()
    model = provider.resolve("creator-tests/not-downloaded")

    with pytest.raises(ModelUnavailable, match="creator models pull creator-tests/not-downloaded"):
        generate(provider, request_for(model))


# Resolving models


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model_fixture", "task"),
    [("tiny_audioldm2", Task.SOUND_EFFECT), ("tiny_musicgen", Task.MUSIC), ("tiny_vits", Task.SPEECH)],
)
def test_resolve_names_a_folder_model_after_the_folder_with_its_task(model_fixture, task, request):
    model = request.getfixturevalue(model_fixture)

    assert model.task is task
    assert model.name == Path(model.source).name


def test_resolve_rejects_a_pipeline_folder_that_does_not_make_sound(tmp_path):
    index = {"_class_name": "StableDiffusionPipeline", "text_encoder": ["transformers", "CLIPTextModel"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))

    with pytest.raises(InvalidInput, match="StableDiffusionPipeline"):
        DiffusersAudioProvider().resolve(str(tmp_path))


def test_resolve_rejects_a_folder_without_model_index_json(tmp_path):
    with pytest.raises(InvalidInput, match=r"model_index\.json"):
        DiffusersAudioProvider().resolve(str(tmp_path))


@pytest.mark.parametrize("provider_class", [MusicgenProvider, SpeechProvider])
def test_resolve_rejects_a_transformers_folder_of_another_kind_of_model(provider_class, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))

    with pytest.raises(InvalidInput, match="'llama' model"):
        provider_class().resolve(str(tmp_path))


@pytest.mark.parametrize("provider_class", [MusicgenProvider, SpeechProvider])
def test_resolve_rejects_a_folder_without_config_json(provider_class, tmp_path):
    with pytest.raises(InvalidInput, match=r"config\.json"):
        provider_class().resolve(str(tmp_path))


def test_resolve_rejects_a_music_model_for_speech(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "musicgen"}))

    assert MusicgenProvider().resolve(str(tmp_path)).task is Task.MUSIC
    with pytest.raises(InvalidInput, match="'musicgen' model"):
        SpeechProvider().resolve(str(tmp_path))


@pytest.mark.parametrize(
    ("name", "other_task"),
    [("diffusers-audio", Task.MUSIC), ("musicgen", Task.SPEECH), ("tts", Task.TEXT_TO_IMAGE)],
)
def test_resolve_rejects_a_task_the_provider_does_not_do(name, other_task):
    with pytest.raises(InvalidInput, match=f"not {other_task}"):
        PROVIDERS[name]().resolve("some-org/some-model", other_task)


@pytest.mark.parametrize("name", PROVIDERS)
def test_resolve_rejects_something_that_is_neither_a_folder_nor_a_hub_id(name):
    with pytest.raises(InvalidInput, match="Hub id"):
        PROVIDERS[name]().resolve("just some words")


# Plugging in


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_registry_finds_the_provider_through_its_entry_point(name):
    provider = ProviderRegistry.from_entry_points().get(name)

    assert isinstance(provider, PROVIDERS[name])
    assert isinstance(provider, Provider) and isinstance(provider, TinyModelBuilder)
    assert (provider.name, provider.local) == (name, True)


def test_importing_the_providers_does_not_import_torch():
    modules = ", ".join(
        f"providers.{m}" for m in ("diffusers_audio", "transformers_music", "transformers_speech")
    )
    code = f"import {modules}, sys; assert 'torch' not in sys.modules, 'torch was imported'"

    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
