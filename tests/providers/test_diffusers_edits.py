"""Editing images with the local diffusers provider: image-to-image, inpainting and upscaling.

Run on tiny real pipelines built offline: a text-to-image checkpoint (which also serves
image-to-image and inpainting), a 9-channel inpainting checkpoint and an x4 upscaler.
"""

import io

import numpy as np
import pytest
from PIL import Image

from core.errors import Canceled, InvalidInput
from core.types import CancelToken, ModelRef, Progress, ProviderRequest, Task, no_progress
from providers.diffusers_local import DiffusersProvider


def picture(width: int, height: int, fmt: str = "PNG", seed: int = 0) -> bytes:
    """A random-coloured picture of the given size, encoded as `fmt`."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def left_half_mask(width: int, height: int) -> bytes:
    """A PNG mask that is white (repaint) on the left half and black (keep) on the right."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, (0, 0, width // 2, height))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def edit(
    model: ModelRef, inputs: dict[str, bytes], seed: int | None = 1, **params: object
) -> ProviderRequest:
    """A request to edit `inputs` with `model`; parameters not given take their defaults."""
    return ProviderRequest(model, "a red fox in the snow", params, seed=seed, inputs=inputs)


def run(provider: DiffusersProvider, request: ProviderRequest) -> Image.Image:
    """The one image a call makes, decoded, with no progress reporting and no cancellation."""
    result = provider.generate(request, progress=no_progress, cancel=CancelToken())
    (output,) = result.outputs
    image = Image.open(io.BytesIO(output.data))
    assert (output.mime, image.format) == ("image/png", "PNG")
    assert (output.width, output.height) == image.size
    return image


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="session")
def img2img(tiny_sd_folder) -> ModelRef:
    return DiffusersProvider().resolve(str(tiny_sd_folder), Task.IMAGE_TO_IMAGE)


@pytest.fixture(scope="session")
def inpaint(tiny_sd_folder) -> ModelRef:
    return DiffusersProvider().resolve(str(tiny_sd_folder), Task.INPAINT)


@pytest.fixture(scope="session")
def upscaler(tiny_upscaler_folder) -> ModelRef:
    return DiffusersProvider().resolve(str(tiny_upscaler_folder))


# Image-to-image


@pytest.mark.slow
def test_image_to_image_output_has_the_input_size(img2img):
    provider = DiffusersProvider()

    result = provider.generate(
        edit(img2img, {"image": picture(96, 64)}), progress=no_progress, cancel=CancelToken()
    )

    (output,) = result.outputs
    assert Image.open(io.BytesIO(output.data)).size == (output.width, output.height) == (96, 64)
    assert result.usage.images == 1 and result.usage.gpu_seconds > 0
    assert result.info["input_size"] == [96, 64]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_jpeg_and_webp_inputs_are_accepted_and_fitted_to_the_8_pixel_grid(img2img, fmt):
    # 30×20 is below the 64-pixel minimum: scaled up keeping its shape to 96×64.
    image = run(DiffusersProvider(), edit(img2img, {"image": picture(30, 20, fmt)}))

    assert image.size == (96, 64)


@pytest.mark.slow
def test_image_to_image_with_the_same_seed_gives_identical_png_bytes(img2img):
    provider, inputs = DiffusersProvider(), {"image": picture(64, 64)}

    first = provider.generate(edit(img2img, inputs, seed=5), progress=no_progress, cancel=CancelToken())
    second = provider.generate(edit(img2img, inputs, seed=5), progress=no_progress, cancel=CancelToken())

    assert first.outputs[0].data == second.outputs[0].data


@pytest.mark.slow
def test_strength_changes_the_result(img2img):
    provider, inputs = DiffusersProvider(), {"image": picture(64, 64)}

    light = run(provider, edit(img2img, inputs, strength=0.3, steps=10))
    heavy = run(provider, edit(img2img, inputs, strength=0.9, steps=10))

    assert light.tobytes() != heavy.tobytes()


@pytest.mark.slow
def test_only_the_strength_fraction_of_the_steps_runs_and_is_reported(img2img):
    reports: list[Progress] = []

    DiffusersProvider().generate(
        edit(img2img, {"image": picture(64, 64)}, steps=4, strength=0.5),
        progress=reports.append,
        cancel=CancelToken(),
    )

    assert [(p.step, p.total) for p in reports] == [(1, 2), (2, 2)]


@pytest.mark.slow
def test_a_strength_that_would_run_no_step_is_refused_before_loading(tiny_sd_folder):
    provider = DiffusersProvider()
    model = provider.resolve(str(tiny_sd_folder), Task.IMAGE_TO_IMAGE)

    with pytest.raises(InvalidInput, match="runs no step"):
        provider.generate(
            edit(model, {"image": picture(64, 64)}, steps=4, strength=0.1),
            progress=no_progress,
            cancel=CancelToken(),
        )
    assert provider.loads == 0


@pytest.mark.slow
def test_cancel_during_image_to_image_raises_canceled(img2img):
    cancel = CancelToken()

    with pytest.raises(Canceled, match="after 1 of 3 steps"):
        DiffusersProvider().generate(
            edit(img2img, {"image": picture(64, 64)}, steps=4, strength=0.75),
            progress=lambda _: cancel.cancel(),
            cancel=cancel,
        )


# Inpainting


@pytest.mark.slow
def test_inpainting_with_a_text_to_image_checkpoint_keeps_unmasked_pixels_and_changes_masked_ones(inpaint):
    source = picture(96, 64)

    image = run(DiffusersProvider(), edit(inpaint, {"image": source, "mask": left_half_mask(96, 64)}))

    before, after = pixels(Image.open(io.BytesIO(source))), pixels(image)
    assert image.size == (96, 64)
    assert np.abs(after[:, 48:] - before[:, 48:]).mean() < 1.0
    assert np.abs(after[:, :48] - before[:, :48]).mean() > 10.0


@pytest.mark.slow
def test_a_9_channel_inpainting_checkpoint_inpaints_by_default(tiny_inpaint_folder):
    provider = DiffusersProvider()
    model = provider.resolve(str(tiny_inpaint_folder))
    source = picture(64, 64, seed=3)

    image = run(provider, edit(model, {"image": source, "mask": left_half_mask(64, 64)}))

    assert model.task is Task.INPAINT
    before, after = pixels(Image.open(io.BytesIO(source))), pixels(image)
    assert np.abs(after[:, 32:] - before[:, 32:]).mean() < 1.0
    assert np.abs(after[:, :32] - before[:, :32]).mean() > 10.0


@pytest.mark.slow
def test_inpainting_with_the_same_seed_gives_identical_png_bytes(inpaint):
    provider = DiffusersProvider()
    inputs = {"image": picture(64, 64), "mask": left_half_mask(64, 64)}

    first = provider.generate(edit(inpaint, inputs, seed=9), progress=no_progress, cancel=CancelToken())
    second = provider.generate(edit(inpaint, inputs, seed=9), progress=no_progress, cancel=CancelToken())

    assert first.outputs[0].data == second.outputs[0].data


@pytest.mark.slow
def test_a_mask_of_another_size_is_stretched_over_the_image(inpaint):
    source = picture(64, 64)

    image = run(DiffusersProvider(), edit(inpaint, {"image": source, "mask": left_half_mask(16, 16)}))

    before, after = pixels(Image.open(io.BytesIO(source))), pixels(image)
    assert np.abs(after[:, 40:] - before[:, 40:]).mean() < 1.0
    assert np.abs(after[:, :24] - before[:, :24]).mean() > 10.0


@pytest.mark.slow
def test_a_painted_mask_layer_repaints_only_where_it_is_opaque(inpaint):
    # White everywhere, but opaque only on the left half: what a paint layer over the image gives.
    layer = Image.new("RGBA", (64, 64), (255, 255, 255, 0))
    layer.paste((255, 255, 255, 255), (0, 0, 32, 64))
    buffer = io.BytesIO()
    layer.save(buffer, format="PNG")
    source = picture(64, 64)

    image = run(DiffusersProvider(), edit(inpaint, {"image": source, "mask": buffer.getvalue()}))

    before, after = pixels(Image.open(io.BytesIO(source))), pixels(image)
    assert np.abs(after[:, 32:] - before[:, 32:]).mean() < 1.0
    assert np.abs(after[:, :32] - before[:, :32]).mean() > 10.0


# Missing or bad uploads are refused before any model is loaded


@pytest.mark.slow
@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "needs an input image"),
        ({"image": b"certainly not an image"}, "could not be read"),
        ({"image": picture(64, 64, "GIF")}, "must be PNG, JPEG or WebP"),
        ({"image": picture(64, 64)}, "needs a mask"),
        ({"image": picture(64, 64), "mask": b"\x89PNG\r\n\x1a\n broken"}, "mask could not be read"),
    ],
)
def test_missing_or_unreadable_uploads_are_invalid_input(inpaint, inputs, message):
    provider = DiffusersProvider()

    with pytest.raises(InvalidInput, match=message):
        provider.generate(edit(inpaint, inputs), progress=no_progress, cancel=CancelToken())
    assert provider.loads == 0


@pytest.mark.slow
def test_an_all_black_mask_is_refused_as_there_is_nothing_to_repaint(inpaint):
    black = io.BytesIO()
    Image.new("L", (64, 64), 0).save(black, format="PNG")
    inputs = {"image": picture(64, 64), "mask": black.getvalue()}

    with pytest.raises(InvalidInput, match="mask is empty"):
        DiffusersProvider().generate(edit(inpaint, inputs), progress=no_progress, cancel=CancelToken())


@pytest.mark.slow
def test_image_to_image_without_an_image_is_invalid_input(img2img):
    with pytest.raises(InvalidInput, match="needs an input image"):
        DiffusersProvider().generate(edit(img2img, {}), progress=no_progress, cancel=CancelToken())


# Upscaling


@pytest.mark.slow
def test_upscaler_makes_a_32_pixel_image_four_times_larger(upscaler):
    result = DiffusersProvider().generate(
        edit(upscaler, {"image": picture(32, 32)}), progress=no_progress, cancel=CancelToken()
    )

    (output,) = result.outputs
    assert Image.open(io.BytesIO(output.data)).size == (output.width, output.height) == (128, 128)
    assert result.usage.gpu_seconds > 0


@pytest.mark.slow
def test_upscaling_with_the_same_seed_is_identical_and_noise_level_changes_it(upscaler):
    provider, inputs = DiffusersProvider(), {"image": picture(32, 32)}

    first = run(provider, edit(upscaler, inputs, seed=3, noise_level=20))
    again = run(provider, edit(upscaler, inputs, seed=3, noise_level=20))
    noisier = run(provider, edit(upscaler, inputs, seed=3, noise_level=200))

    assert first.tobytes() == again.tobytes()
    assert first.tobytes() != noisier.tobytes()


@pytest.mark.slow
def test_upscaling_reports_progress_and_can_be_canceled_between_steps(upscaler):
    reports: list[Progress] = []
    cancel = CancelToken()

    def cancel_after_second_step(progress: Progress) -> None:
        reports.append(progress)
        if progress.step == 2:
            cancel.cancel()

    with pytest.raises(Canceled, match="after 2 of 4 steps"):
        DiffusersProvider().generate(
            edit(upscaler, {"image": picture(32, 32)}), progress=cancel_after_second_step, cancel=cancel
        )
    assert [(p.step, p.total) for p in reports] == [(1, 4), (2, 4)]


@pytest.mark.slow
def test_the_next_upscale_after_a_cancel_runs_to_the_end_on_the_same_pipeline(upscaler):
    provider, cancel = DiffusersProvider(), CancelToken()
    request = edit(upscaler, {"image": picture(32, 32)})

    with pytest.raises(Canceled):
        provider.generate(request, progress=lambda _: cancel.cancel(), cancel=cancel)
    reports: list[Progress] = []
    provider.generate(request, progress=reports.append, cancel=CancelToken())

    assert len(reports) == 4
    assert provider.loads == 1


@pytest.mark.slow
def test_describe_an_upscaler_offers_steps_guidance_and_noise_level(upscaler):
    spec = DiffusersProvider().describe(upscaler)

    assert spec.task is Task.UPSCALE
    assert [p.name for p in spec.params] == ["steps", "guidance_scale", "noise_level"]
    assert spec.param("steps").default == 4  # a tiny model
    noise = spec.param("noise_level")
    assert (noise.kind, noise.default, noise.minimum, noise.maximum) == ("int", 20, 0, 350)


# One load shared by the tasks of one model


@pytest.mark.slow
def test_text_to_image_image_to_image_and_inpainting_of_one_model_share_one_load(tiny_sd, img2img, inpaint):
    provider = DiffusersProvider()
    image = picture(64, 64)

    provider.generate(edit(tiny_sd, {}), progress=no_progress, cancel=CancelToken())
    run(provider, edit(img2img, {"image": image}))
    run(provider, edit(inpaint, {"image": image, "mask": left_half_mask(64, 64)}))
    run(provider, edit(img2img, {"image": image}))

    assert provider.loads == 1


@pytest.mark.slow
def test_image_to_image_first_then_text_to_image_also_shares_the_load(tiny_sd, img2img):
    provider = DiffusersProvider()

    run(provider, edit(img2img, {"image": picture(64, 64)}))
    provider.generate(edit(tiny_sd, {}), progress=no_progress, cancel=CancelToken())

    assert provider.loads == 1


@pytest.mark.slow
def test_sharing_weights_leaves_no_trace_in_the_next_image(tiny_sd, img2img):
    shared = DiffusersProvider()
    run(shared, edit(img2img, {"image": picture(64, 64)}, strength=0.5))

    after_an_edit = run(shared, edit(tiny_sd, {}, seed=4))
    fresh = run(DiffusersProvider(), edit(tiny_sd, {}, seed=4))

    assert after_an_edit.tobytes() == fresh.tobytes()


@pytest.mark.slow
def test_an_upscaler_and_a_text_to_image_model_are_two_loads(tiny_sd, upscaler):
    provider = DiffusersProvider()

    provider.generate(edit(tiny_sd, {}), progress=no_progress, cancel=CancelToken())
    run(provider, edit(upscaler, {"image": picture(32, 32)}))

    assert provider.loads == 2
