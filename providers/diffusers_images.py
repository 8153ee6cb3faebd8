"""The images an edit works on: decoding the uploaded bytes, fitting them to the model, PNG out.

Pillow only (no torch), so a bad upload is refused before any model is loaded.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

from core.errors import InvalidInput
from core.types import Output

if TYPE_CHECKING:
    from PIL import Image

ACCEPTED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP"}
SIZE_STEP = 8  # latents are 1/8 of the pixels for most models, so sides must divide by 8


def decode_image(data: bytes | None, role: str) -> Image.Image:
    """An uploaded PNG/JPEG/WebP as an upright RGB image; InvalidInput when missing or unreadable."""
    from PIL import Image, ImageOps

    image = _open(data, role)
    image = ImageOps.exif_transpose(image)  # phone photos are stored sideways with a rotation tag
    if _has_alpha(image):
        # Transparent areas would turn black (or keep invisible colours); put them on white.
        background = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def decode_mask(data: bytes | None, size: tuple[int, int]) -> Image.Image:
    """An uploaded mask as greyscale at `size` (white = repaint); InvalidInput when missing or empty."""
    from PIL import Image, ImageChops, ImageOps

    mask = ImageOps.exif_transpose(_open(data, "mask"))
    grey = mask.convert("L")
    if _has_alpha(mask):
        # A painted layer (white strokes on a transparent sheet) marks the strokes only, whatever
        # colour the transparent pixels happen to hold.
        grey = ImageChops.multiply(grey, mask.convert("RGBA").getchannel("A"))
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    if grey.getbbox() is None:
        raise InvalidInput("The mask is empty: paint white where the image should change.")
    return grey


def fitted(image: Image.Image, minimum: int, maximum: int) -> Image.Image:
    """`image` resized to sides within [minimum, maximum] on the 8-pixel grid, keeping its shape."""
    from PIL import Image

    width, height = image.size
    scale = 1.0
    if max(width, height) > maximum:
        scale = maximum / max(width, height)
    elif min(width, height) < minimum:
        scale = min(minimum / min(width, height), maximum / max(width, height))
    size = (_on_grid(width * scale, minimum, maximum), _on_grid(height * scale, minimum, maximum))
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS)


def keep_unmasked(result: Image.Image, original: Image.Image, mask: Image.Image) -> Image.Image:
    """The result where the mask is white, the original's own pixels where it is black."""
    from PIL import Image

    # The model's output went through the VAE everywhere, which shifts colours and detail even
    # where nothing was to change; pasting the original back keeps those pixels exact.
    if result.size != original.size:
        result = result.resize(original.size, Image.Resampling.LANCZOS)
    return Image.composite(result.convert("RGB"), original, mask)


def png_output(image: Image.Image) -> Output:
    """A PIL image as a PNG Output."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Output(buffer.getvalue(), "image/png", width=image.width, height=image.height)


def _open(data: bytes | None, role: str) -> Image.Image:
    """The decoded upload, fully read; InvalidInput with a reason otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        needs = "a mask (white where to repaint)" if role == "mask" else "an input image"
        raise InvalidInput(f"This task needs {needs}: none was given.")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 89 and 179 megapixels; refuse those as well.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise InvalidInput(
                    f"The {role} must be PNG, JPEG or WebP (it is {image.format or 'unknown'})."
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(f"The {role} has too many pixels to process.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInput(f"The {role} could not be read as a PNG, JPEG or WebP image.") from exc
    return image


def _has_alpha(image: Image.Image) -> bool:
    """True when the image carries transparency (an alpha band or a transparent palette entry)."""
    return "A" in image.getbands() or "transparency" in image.info


def _on_grid(side: float, minimum: int, maximum: int) -> int:
    """A side rounded to the grid and kept within the limits."""
    snapped = round(side) // SIZE_STEP * SIZE_STEP
    return max(minimum, min(maximum, snapped))
