"""The local diffusers provider: text-to-image on a tiny real Stable Diffusion pipeline built offline,
and which image tasks each kind of checkpoint serves. Edits are in test_diffusers_edits.py."""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.errors import Canceled, InvalidInput, ModelUnavailable, ProviderError
from core.providers import Provider, ProviderRegistry, TinyModelBuilder
from core.types import CancelToken, ModelRef, Progress, ProviderRequest, Task, no_progress
from providers.diffusers_local import DiffusersProvider

REPO_ROOT = Path(__file__).resolve().parents[2]


def request_for(model: ModelRef, seed: int | None = 1, **params: object) -> ProviderRequest:
    """A request for `model` with the given seed and parameters (others take their defaults)."""
    return ProviderRequest(model=model, prompt="a red fox in the snow", params=params, seed=seed)


def generate(provider: DiffusersProvider, request: ProviderRequest) -> bytes:
    """The PNG bytes of one call, with no progress reporting and no cancellation."""
    result = provider.generate(request, progress=no_progress, cancel=CancelToken())
    return result.outputs[0].data


# Making images


@pytest.mark.slow
def test_tiny_model_loads_from_its_folder_and_makes_a_png_of_the_native_size(tiny_sd):
    result = DiffusersProvider().generate(request_for(tiny_sd), progress=no_progress, cancel=CancelToken())

    (output,) = result.outputs
    image = Image.open(io.BytesIO(output.data))
    assert (output.mime, image.format) == ("image/png", "PNG")
    assert image.size == (output.width, output.height) == (64, 64)
    assert result.usage.images == 1
    assert result.usage.gpu_seconds > 0
    assert result.seed == 1
    assert result.info["device"] == "cpu"


@pytest.mark.slow
def test_width_and_height_parameters_set_the_image_size(tiny_sd):
    png = generate(DiffusersProvider(), request_for(tiny_sd, width=96, height=64))

    assert Image.open(io.BytesIO(png)).size == (96, 64)


@pytest.mark.slow
def test_same_seed_gives_identical_png_bytes(tiny_sd):
    provider = DiffusersProvider()

    assert generate(provider, request_for(tiny_sd, seed=7)) == generate(
        provider, request_for(tiny_sd, seed=7)
    )


@pytest.mark.slow
def test_different_seeds_give_different_images(tiny_sd):
    provider = DiffusersProvider()

    first = Image.open(io.BytesIO(generate(provider, request_for(tiny_sd, seed=1))))
    second = Image.open(io.BytesIO(generate(provider, request_for(tiny_sd, seed=2))))

    assert first.tobytes() != second.tobytes()


@pytest.mark.slow
def test_a_missing_seed_is_drawn_at_random_and_returned_so_the_image_can_be_made_again(tiny_sd):
    provider = DiffusersProvider()

    drawn = provider.generate(request_for(tiny_sd, seed=None), progress=no_progress, cancel=CancelToken())

    assert 0 <= drawn.seed < 2**32
    assert generate(provider, request_for(tiny_sd, seed=drawn.seed)) == drawn.outputs[0].data


@pytest.mark.slow
def test_negative_prompt_changes_the_image(tiny_sd):
    provider = DiffusersProvider()
    plain = request_for(tiny_sd)
    negative = ProviderRequest(tiny_sd, plain.prompt, {}, seed=1, negative_prompt="blurry")

    assert generate(provider, plain) != generate(provider, negative)


# Progress and cancellation


@pytest.mark.slow
def test_progress_is_reported_once_per_step_with_the_total(tiny_sd):
    reports: list[Progress] = []

    DiffusersProvider().generate(request_for(tiny_sd, steps=3), progress=reports.append, cancel=CancelToken())

    assert [(p.step, p.total) for p in reports] == [(1, 3), (2, 3), (3, 3)]
    assert reports[-1].fraction == 1.0


@pytest.mark.slow
def test_cancel_after_the_first_step_raises_canceled_and_skips_the_remaining_steps(tiny_sd):
    cancel = CancelToken()
    steps_seen: list[int] = []

    def cancel_after_first_step(progress: Progress) -> None:
        steps_seen.append(progress.step)
        cancel.cancel()

    with pytest.raises(Canceled, match="after 1 of 4 steps"):
        DiffusersProvider().generate(
            request_for(tiny_sd, steps=4), progress=cancel_after_first_step, cancel=cancel
        )
    assert steps_seen == [1]


@pytest.mark.slow
def test_the_next_call_after_a_cancel_runs_to_the_end_on_the_same_pipeline(tiny_sd):
    provider, cancel = DiffusersProvider(), CancelToken()

    with pytest.raises(Canceled, match="after 1 of"):
        provider.generate(request_for(tiny_sd), progress=lambda _: cancel.cancel(), cancel=cancel)
    reports: list[Progress] = []
    provider.generate(request_for(tiny_sd), progress=reports.append, cancel=CancelToken())

    assert len(reports) == 4
    assert provider.loads == 1


@pytest.mark.slow
def test_a_call_canceled_before_it_starts_does_not_load_the_model(tiny_sd):
    provider, cancel = DiffusersProvider(), CancelToken()
    cancel.cancel()

    with pytest.raises(Canceled):
        provider.generate(request_for(tiny_sd), progress=no_progress, cancel=cancel)
    assert provider.loads == 0


# The pipeline cache


@pytest.mark.slow
def test_the_model_is_loaded_once_across_calls(tiny_sd):
    provider = DiffusersProvider()

    for seed in (1, 2, 3):
        generate(provider, request_for(tiny_sd, seed=seed))

    assert provider.loads == 1


@pytest.mark.slow
def test_the_cache_evicts_the_least_recently_used_model_beyond_max_cached(tiny_sd_folder, tmp_path):
    provider = DiffusersProvider(max_cached=2)
    a, b, c = (
        provider.resolve(str(shutil.copytree(tiny_sd_folder, tmp_path / name))) for name in ("a", "b", "c")
    )

    for model in (a, b, a, c):  # c evicts b, the least recently used
        generate(provider, request_for(model))
    assert provider.loads == 3

    generate(provider, request_for(a))  # still cached
    assert provider.loads == 3
    generate(provider, request_for(b))  # was evicted: loaded again
    assert provider.loads == 4


@pytest.mark.slow
def test_a_damaged_model_fails_with_a_provider_error_that_names_the_folder(tiny_sd_folder, tmp_path):
    folder = shutil.copytree(tiny_sd_folder, tmp_path / "damaged")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not weights")
    provider = DiffusersProvider()
    model = provider.resolve(str(folder))

    with pytest.raises(ProviderError, match="Could not read the model") as raised:
        generate(provider, request_for(model))
    assert str(folder) in raised.value.message
    assert "Traceback" not in raised.value.message
    assert provider.loads == 0


# Resolving and describing models


def test_resolve_rejects_a_folder_that_does_not_exist(tmp_path):
    with pytest.raises(InvalidInput, match="no folder"):
        DiffusersProvider().resolve(str(tmp_path / "missing"))


def test_resolve_rejects_a_folder_without_model_index_json(tmp_path):
    (tmp_path / "unet").mkdir()

    with pytest.raises(InvalidInput, match=r"model_index\.json"):
        DiffusersProvider().resolve(str(tmp_path))


def test_resolve_rejects_a_pipeline_that_needs_more_than_a_prompt_and_an_image(tmp_path):
    index = {"_class_name": "StableDiffusionControlNetPipeline", "text_encoder": ["x", "y"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))

    with pytest.raises(InvalidInput, match="StableDiffusionControlNetPipeline"):
        DiffusersProvider().resolve(str(tmp_path))


def test_resolve_refuses_text_to_image_from_an_inpainting_checkpoint(tmp_path):
    index = {"_class_name": "StableDiffusionInpaintPipeline", "text_encoder": ["x", "y"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))

    with pytest.raises(InvalidInput, match="StableDiffusionInpaintPipeline"):
        DiffusersProvider().resolve(str(tmp_path), Task.TEXT_TO_IMAGE)


def test_resolve_rejects_something_that_is_neither_a_folder_nor_a_hub_id():
    with pytest.raises(InvalidInput, match="Hub id"):
        DiffusersProvider().resolve("just some words")


def test_resolve_names_a_hub_model_after_the_last_part_of_its_id():
    model = DiffusersProvider().resolve("some-org/some-model-v1")

    assert model == ModelRef("some-model-v1", "diffusers", "some-org/some-model-v1", Task.TEXT_TO_IMAGE)


@pytest.mark.slow
def test_resolve_names_a_folder_model_after_the_folder(tiny_sd, tiny_sd_folder):
    assert tiny_sd == ModelRef("tiny-sd", "diffusers", str(tiny_sd_folder), Task.TEXT_TO_IMAGE)


@pytest.mark.slow
def test_describe_reads_the_native_size_and_a_few_steps_for_a_tiny_model(tiny_sd):
    spec = DiffusersProvider().describe(tiny_sd)

    assert spec.task is Task.TEXT_TO_IMAGE
    assert spec.param("width").default == spec.param("height").default == 64
    assert spec.param("steps").default == 4
    assert spec.param("guidance_scale").default == 7.5


def test_describe_falls_back_to_512_for_a_hub_model_that_is_not_here():
    model = DiffusersProvider().resolve("some-org/some-model-v1")

    spec = DiffusersProvider().describe(model)

    assert spec.param("width").default == spec.param("height").default == 512
    assert spec.param("steps").default == 25
    width = spec.param("width")
    assert (width.minimum, width.maximum, width.step) == (64, 2048, 8)


@pytest.mark.slow
def test_a_hub_model_missing_offline_is_unavailable_with_the_command_to_fetch_it():
    pytest.importorskip("diffusers", reason="the local extra (torch, diffusers) is not installed")
    model = DiffusersProvider().resolve("creator-tests/not-downloaded")

    with pytest.raises(ModelUnavailable, match="creator models pull creator-tests/not-downloaded"):
        DiffusersProvider().generate(request_for(model), progress=no_progress, cancel=CancelToken())


# Which tasks a checkpoint serves


@pytest.mark.slow
def test_each_tiny_model_resolves_to_its_natural_task(
    tiny_sd_folder, tiny_inpaint_folder, tiny_upscaler_folder
):
    provider = DiffusersProvider()

    assert provider.resolve(str(tiny_sd_folder)).task is Task.TEXT_TO_IMAGE
    assert provider.resolve(str(tiny_inpaint_folder)).task is Task.INPAINT
    assert provider.resolve(str(tiny_upscaler_folder)).task is Task.UPSCALE


@pytest.mark.slow
def test_a_text_to_image_checkpoint_serves_image_to_image_and_inpainting(tiny_sd_folder):
    provider = DiffusersProvider()

    for task in (Task.TEXT_TO_IMAGE, Task.IMAGE_TO_IMAGE, Task.INPAINT):
        assert provider.resolve(str(tiny_sd_folder), task) == ModelRef(
            "tiny-sd", "diffusers", str(tiny_sd_folder), task
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("folder", "task", "message"),
    [
        ("tiny_sd_folder", Task.UPSCALE, "cannot upscale"),
        ("tiny_upscaler_folder", Task.IMAGE_TO_IMAGE, "can only upscale"),
        ("tiny_upscaler_folder", Task.TEXT_TO_IMAGE, "can only upscale"),
        ("tiny_inpaint_folder", Task.IMAGE_TO_IMAGE, "can only inpaint"),
        ("tiny_inpaint_folder", Task.TEXT_TO_IMAGE, "can only inpaint"),
        ("tiny_sd_folder", Task.MUSIC, "makes images"),
    ],
)
def test_resolve_refuses_a_task_the_checkpoint_cannot_serve(request, folder, task, message):
    path = request.getfixturevalue(folder)

    with pytest.raises(InvalidInput, match=message):
        DiffusersProvider().resolve(str(path), task)


def test_a_9_channel_unet_marks_an_inpainting_checkpoint_whatever_its_class(tmp_path):
    index = {"_class_name": "StableDiffusionPipeline", "text_encoder": ["x", "y"], "unet": ["x", "y"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text(json.dumps({"in_channels": 9}))

    assert DiffusersProvider().resolve(str(tmp_path)).task is Task.INPAINT


def test_resolve_refuses_an_upscaler_other_than_the_x4_one(tmp_path):
    index = {"_class_name": "StableDiffusionLatentUpscalePipeline", "text_encoder": ["x", "y"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))

    with pytest.raises(InvalidInput, match="StableDiffusionUpscalePipeline"):
        DiffusersProvider().resolve(str(tmp_path), Task.UPSCALE)


def test_a_hub_model_not_downloaded_yet_is_trusted_with_the_task_asked_for():
    model = DiffusersProvider().resolve("some-org/some-upscaler", Task.UPSCALE)

    assert model == ModelRef("some-upscaler", "diffusers", "some-org/some-upscaler", Task.UPSCALE)
    spec = DiffusersProvider().describe(model)
    assert spec.param("steps").default == 20
    assert spec.param("guidance_scale").default == 9.0


@pytest.mark.slow
@pytest.mark.parametrize(("task", "strength"), [(Task.IMAGE_TO_IMAGE, 0.6), (Task.INPAINT, 1.0)])
def test_describe_an_edit_offers_strength_and_no_size(tiny_sd_folder, task, strength):
    provider = DiffusersProvider()

    spec = provider.describe(provider.resolve(str(tiny_sd_folder), task))

    assert spec.task is task
    assert [p.name for p in spec.params] == ["steps", "guidance_scale", "strength"]
    param = spec.param("strength")
    assert (param.kind, param.default, param.minimum, param.maximum) == ("float", strength, 0.0, 1.0)


# Plugging in


def test_the_registry_finds_the_provider_through_its_entry_point():
    registry = ProviderRegistry.from_entry_points()

    provider = registry.get("diffusers")

    assert isinstance(provider, DiffusersProvider)
    assert isinstance(provider, Provider) and isinstance(provider, TinyModelBuilder)
    assert (provider.name, provider.local) == ("diffusers", True)


def test_importing_the_provider_does_not_import_torch():
    code = "import providers.diffusers_local, sys; assert 'torch' not in sys.modules"

    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
