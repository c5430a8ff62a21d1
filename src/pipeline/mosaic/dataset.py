"""Training sets for the pose classifier: mosaics made from a pool of prepared crops for the
3D poses of another split seen from random views, or the rendered crops themselves, both as
(N, S, S, 3) images with (N, J, 3) torso-centred 3D poses (metres, each image's camera frame).
A mosaic set is a folder of .npy arrays (`save`, `load`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pipeline.errors import InputError
from pipeline.mosaic.classify import torso_centred
from pipeline.mosaic.engine import MosaicSettings, Pool, synthesise
from pipeline.mosaic.views import query_pose
from pipeline.training.samples import SampleSet

ARRAYS = ("images", "joints3d", "joints2d", "visible", "sources")


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """(N, s, s, 3) -> (N, size, size, 3)."""
    if images.shape[1] == size:
        return np.asarray(images)
    return np.stack([cv2.resize(np.asarray(image), (size, size), interpolation=cv2.INTER_AREA) for image in images])


def sample_rows(samples: SampleSet) -> np.ndarray:
    return samples.rows if samples.rows is not None else np.arange(len(samples.arrays["rgb"]))


def pool_of(samples: SampleSet, count: int, size: int, rng: np.random.Generator) -> Pool:
    """`count` of the prepared crops drawn with `rng` (all where fewer), resized to `size`,
    and their 2D joints in its pixels."""
    rows = sample_rows(samples)
    rows = np.sort(rng.choice(rows, min(count, len(rows)), replace=False))
    a = samples.arrays
    poses = (np.asarray(a["joints"][rows], np.float64) + 0.5) * size / samples.sizes.heatmap - 0.5
    return Pool.of(resized(a["rgb"][rows], size), poses)


def rendered(samples: SampleSet, size: int) -> dict[str, np.ndarray]:
    """The prepared crops as a training or test set: images resized to `size`, their 3D joints
    torso-centred."""
    rows = sample_rows(samples)
    a = samples.arrays
    return {
        "images": resized(a["rgb"][rows], size),
        "joints3d": torso_centred(np.asarray(a["joints_camera"][rows], np.float64)),
    }


def make_mosaics(
    pool: Pool,
    poses: SampleSet,
    count: int,
    settings: MosaicSettings,
    rng: np.random.Generator,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """`count` mosaics from `pool` for 3D poses of `poses` drawn with `rng`, each from a random
    view: ARRAYS."""
    joints = np.asarray(poses.arrays["joints_camera"], np.float64)[sample_rows(poses)]
    made: dict[str, list] = {name: [] for name in ARRAYS}
    for k in tqdm(rng.choice(len(joints), count), desc="mosaics", disable=not progress):
        view = query_pose(joints[k], rng, pool.size)
        mosaic = synthesise(view.pixels, view.visible, pool, settings)
        made["images"].append(mosaic.image)
        made["joints3d"].append(torso_centred(view.camera))
        made["joints2d"].append(view.pixels)
        made["visible"].append(view.visible)
        made["sources"].append(k)
    return {name: np.stack(values) for name, values in made.items()}


def save(arrays: dict[str, np.ndarray], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        np.save(folder / f"{name}.npy", arrays[name])


def load(folder: Path) -> dict[str, np.ndarray]:
    """A mosaic set `save` wrote; an InputError naming the file that is missing or unreadable."""
    found = {}
    for name in ARRAYS:
        path = Path(folder) / f"{name}.npy"
        try:
            found[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: not a readable array ({error})") from error
    if len({len(values) for values in found.values()}) != 1 or found["images"].ndim != 4:
        raise InputError(f"{folder}: its arrays disagree in length or shape")
    return found
