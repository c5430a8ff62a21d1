"""Image files read whole or refused: a truncated or corrupt photograph stops the stage with a
line naming it, instead of being read with grey where its data ran out.

OpenCV's `imread` hands back what libjpeg decoded before the data ended (with only a warning
on stderr), so images are decoded with Pillow, which raises on missing data. PNG is the one
format Pillow reads without its end: a file cut inside its last chunks (the final IDAT's
checksum, IEND) still decodes, so a PNG's chunks are walked to IEND first.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow's modes of one 16-bit channel; OpenCV reads these as grey with the high byte kept
SIXTEEN_BIT_GREY = {"I;16", "I;16L", "I;16B", "I;16N"}


class ImageError(InputError):
    """An image file that is missing, truncated or corrupt; the message names it."""


def png_problem(data: bytes) -> str | None:
    """Why the PNG `data` is incomplete (a chunk cut short, no IEND), or None when its chunks
    run whole from the signature to IEND."""
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        end = offset + 12 + length  # length and type, the data, then its CRC
        if end > len(data):
            return f"truncated: its {kind.decode('latin-1')} chunk is cut short"
        if kind == b"IEND":
            return None
        offset = end
    return "truncated: no IEND chunk"


def _decode(data: bytes) -> np.ndarray:
    """The image `data` decoded whole, turned upright by its EXIF orientation (as OpenCV
    does), as RGB uint8 (H, W, 3); Pillow's error when the data is incomplete or corrupt."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decodes every pixel: raises where the data ends early
        upright = ImageOps.exif_transpose(image)
        if upright.mode in SIXTEEN_BIT_GREY:
            grey = (np.asarray(upright).astype(np.uint16) >> 8).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=2)
        return np.array(upright.convert("RGB"))


def read_rgb(path: str | Path) -> np.ndarray:
    """The image file at `path` (JPEG, PNG, BMP, WebP, TIFF, ...) as RGB uint8 (H, W, 3), or an
    ImageError naming it when it is missing, empty, truncated or not an image."""
    from PIL import Image

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot read the image ({error.strerror or error})") from error
    if not data:
        raise ImageError(f"{path}: cannot read the image (the file is empty)")
    problem = png_problem(data) if data.startswith(PNG_SIGNATURE) else None
    if problem is None:
        # Pillow's decoders report bad data as any of these, depending on the format and the byte
        bad_data = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, Image.DecompressionBombError)
        try:
            return _decode(data)
        except bad_data as error:
            problem = str(error) or type(error).__name__
    raise ImageError(f"{path}: cannot read the image ({problem})")
