"""The files OpenAI sends and takes: edit masks, input images, returned images and WAV headers.

Pillow is imported inside the functions that need it; importing this module stays cheap.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from core.errors import InvalidInput

MASK_THRESHOLD = 128  # grey at or above this counts as white, "repaint here"
UNKNOWN_SIZE = 0xFFFFFFFF  # what a streamed WAV header carries instead of its real sizes


@dataclass(frozen=True)
class Picture:
    """An image file with what we know about it."""

    data: bytes
    mime: str
    width: int
    height: int


def read_picture(data: bytes) -> Picture:
    """Format and size of image bytes; ValueError when they are not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format or "", image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError("not an image") from exc
    mime = Image.MIME.get(kind, "application/octet-stream")
    return Picture(data, mime, width, height)


def upload_of(data: bytes, role: str) -> tuple[str, bytes, str]:
    """A (filename, bytes, content type) tuple for a multipart upload; InvalidInput if not an image."""
    try:
        picture = read_picture(data)
    except ValueError:
        raise InvalidInput(f"The {role} is not an image file we can read.") from None
    extension = picture.mime.rsplit("/", 1)[-1].replace("jpeg", "jpg")
    return f"{role}.{extension}", data, picture.mime


def rgba_png(data: bytes) -> bytes:
    """The image as an RGBA PNG (DALL·E 2 rejects RGB images for edits)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        buffer = io.BytesIO()
        image.convert("RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def transparent_mask(mask: bytes, size: tuple[int, int]) -> bytes:
    """Our mask (white = repaint) as OpenAI wants it: an RGBA PNG, fully transparent where to edit."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(mask)) as image:
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError):
        raise InvalidInput("The mask is not an image file we can read.") from None
    if grey.size != size:
        # OpenAI needs the mask at the image's size; nearest keeps the edge hard.
        grey = grey.resize(size, Image.Resampling.NEAREST)
    alpha = grey.point(lambda value: 0 if value >= MASK_THRESHOLD else 255)
    result = Image.new("RGBA", size, (0, 0, 0, 255))
    result.putalpha(alpha)
    buffer = io.BytesIO()
    result.save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Sound:
    """A WAV file with consistent sizes, and what it holds."""

    data: bytes
    sample_rate: int
    duration_s: float


def repaired_wav(data: bytes) -> Sound:
    """The WAV with true RIFF and data sizes; ValueError when it is not PCM WAV.

    OpenAI streams speech, so its WAV header says 0xFFFFFFFF for both sizes; strict readers
    (Python's `wave`, some players) then see hours of audio or refuse the file.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV file")
    offset, fmt = 12, None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (declared,) = struct.unpack_from("<I", data, offset + 4)
        body = offset + 8
        if chunk_id == b"fmt ":
            if declared < 16 or body + 16 > len(data):
                raise ValueError("short fmt chunk")
            fmt = struct.unpack_from("<HHIIHH", data, body)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("data before fmt")
            _, _, rate, _, block_align, _ = fmt
            if not rate or not block_align:
                raise ValueError("empty format")
            available = len(data) - body
            size = available if declared == UNKNOWN_SIZE or declared > available else declared
            size -= size % block_align
            fixed = bytearray(data[: body + size])
            struct.pack_into("<I", fixed, 4, len(fixed) - 8)
            struct.pack_into("<I", fixed, offset + 4, size)
            return Sound(bytes(fixed), rate, size / block_align / rate)
        offset = body + declared + (declared & 1)
    raise ValueError("no data chunk")


def looks_like_mp3(data: bytes) -> bool:
    """True for an ID3 tag or an MPEG audio frame header."""
    return data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)
