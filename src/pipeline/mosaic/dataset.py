"""The study's training sets, after Rogez & Schmid's Human3.6M experiments (§4.1): three sets
of images of the same 3D poses, seen from the same views and labelled with the same classes.

    real     the prepared crops of the training split (2D and 3D annotated)
    mosaic   for each of `count` of those crops, a mosaic of its pose and view (its 2D joints,
             its 3D pose's self-occlusion) stitched from a pool of the real crops of *other*
             clips, as the paper stitches a Human3.6M frame's pose from other subjects
    surreal  the same clips rendered again with another look (SURREAL's clothing study's
             renders: every clip as drawn before, dressed from fewer outfits), the paper's
             renders of the same poses in the same room with a visibly different body
    unblended the mosaics made without the pose-aware blend (Table 6)
    random   mosaics of the training poses, thinned to poses at least `spacing` apart at some
             joint, each seen from a random view (the paper's CMU mosaics, Tables 4 and 6);
             random_unblended the same views without the blend. These show other poses than
             the three above and mix only with each other.

A mosaic set is a folder of .npy arrays (`save`, `load`): ARRAYS, `rows` naming the real crop
(its position in the samples' arrays) whose pose and view each mosaic shows. Images are
(N, S, S, 3) uint8, 3D poses (N, J, 3) torso-centred metres in each image's camera frame.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pipeline.errors import InputError
from pipeline.mosaic.classify import torso_centred
from pipeline.mosaic.engine import MosaicSettings, Pool, synthesise
from pipeline.mosaic.views import query_pose, view_of
from pipeline.training.samples import SampleSet

ARRAYS = ("images", "joints3d", "joints2d", "visible", "rows")
OWN_VIEW_SOURCES = ("real", "mosaic", "surreal", "unblended")  # the real crops' poses, from their views
SOURCES = (*OWN_VIEW_SOURCES, "random", "random_unblended")
SAME_POSE_M = 1e-4  # metres: the surreal renders' joints agree with the real crops' within this


def resized(images: np.ndarray, size: int) -> np.ndarray:
    """(N, s, s, 3) -> (N, size, size, 3)."""
    if images.shape[1] == size:
        return np.asarray(images)
    return np.stack([cv2.resize(np.asarray(image), (size, size), interpolation=cv2.INTER_AREA) for image in images])


def crop_joints(samples: SampleSet, rows: np.ndarray, size: int) -> np.ndarray:
    """(n,) rows -> (n, J, 2) their 2D joints in the pixels of the crops resized to `size`."""
    return (np.asarray(samples.arrays["joints"][rows], np.float64) + 0.5) * size / samples.sizes.heatmap - 0.5


def pool_of(samples: SampleSet, count: int, size: int, rng: np.random.Generator) -> Pool:
    """`count` of the prepared crops drawn with `rng` (all where fewer), resized to `size`,
    their 2D joints in its pixels, grouped by clip."""
    rows = samples.positions
    rows = np.sort(rng.choice(rows, min(count, len(rows)), replace=False))
    return Pool.of(
        resized(samples.arrays["rgb"][rows], size), crop_joints(samples, rows, size), samples.arrays["clip"][rows]
    )


def pool_from(pool: dict[str, np.ndarray], count: int, size: int, rng: np.random.Generator) -> Pool:
    """`count` images of a pool folder (`pipeline.mosaic.pools`) drawn with `rng` (all where
    fewer), resized to `size`, their joints in its pixels; each image its own group."""
    rows = np.sort(rng.choice(len(pool["images"]), min(count, len(pool["images"])), replace=False))
    scale = size / pool["images"].shape[1]
    return Pool.of(resized(pool["images"][rows], size), (pool["joints"][rows] + 0.5) * scale - 0.5)


def rendered(samples: SampleSet, size: int) -> dict[str, np.ndarray]:
    """The prepared crops as a test set: images resized to `size`, their 3D joints
    torso-centred."""
    rows = samples.positions
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
    own_clips_excluded: bool = True,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Mosaics of the poses and views of `count` crops of `poses` drawn with `rng` (all where
    fewer): ARRAYS. `own_clips_excluded`: the pool holds crops of the same samples, and each
    mosaic is cut from the other clips' (a clip's frames would give the crop back)."""
    rows = poses.positions
    rows = np.sort(rng.choice(rows, min(count, len(rows)), replace=False))
    made: dict[str, list] = {name: [] for name in ARRAYS}
    for row in tqdm(rows, desc="mosaics", disable=not progress):
        mosaic, query, visible = own_view_mosaic(pool, poses, row, settings, own_clips_excluded)
        joints3d = torso_centred(np.asarray(poses.arrays["joints_camera"][row], np.float64))
        for name, value in zip(ARRAYS, (mosaic.image, joints3d, query, visible, row)):
            made[name].append(value)
    return {name: np.stack(values) for name, values in made.items()}


def own_view_mosaic(pool: Pool, poses: SampleSet, row: int, settings: MosaicSettings, own_clips_excluded: bool):
    """The mosaic of crop `row`'s 2D pose (its own joints; those its 3D pose hides from its view
    not searched): (Mosaic, (J, 2) query, (J,) visible)."""
    query = crop_joints(poses, np.array([row]), pool.size)[0]
    visible = view_of(np.asarray(poses.arrays["joints_camera"][row], np.float64), 0.0, 0.0, pool.size).visible
    group = poses.arrays["clip"][row] if own_clips_excluded else None
    return synthesise(query, visible, pool, settings, group=group), query, visible


def distinct_poses(poses: np.ndarray, spacing: float) -> np.ndarray:
    """(N, J, 3) torso-centred poses -> the indices, in order, of those a greedy pass keeps so
    that any two kept differ by at least `spacing` (metres) at some joint (the paper thins
    CMU's 140k poses to 12k at 5 cm)."""
    kept = np.empty((len(poses), *poses.shape[1:]))
    chosen: list[int] = []
    for index, pose in enumerate(poses):
        if not chosen or (np.linalg.norm(kept[: len(chosen)] - pose, axis=-1).max(1) >= spacing).all():
            kept[len(chosen)] = pose
            chosen.append(index)
    return np.array(chosen, dtype=np.int64)


def make_random_view_mosaics(
    pool: Pool,
    poses: SampleSet,
    count: int,
    spacing: float,
    settings: MosaicSettings,
    rng: np.random.Generator,
    own_clips_excluded: bool = True,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """`count` mosaics of the `poses`' 3D poses thinned by `distinct_poses`, each drawn with
    `rng` (a pose may recur, from another view) and seen from a random view
    (`pipeline.mosaic.views.query_pose`): ARRAYS, joints3d in the view's frame."""
    rows = poses.positions
    joints = np.asarray(poses.arrays["joints_camera"][rows], np.float64)
    distinct = rows[distinct_poses(torso_centred(joints), spacing)]
    made: dict[str, list] = {name: [] for name in ARRAYS}
    for row in tqdm(np.sort(rng.choice(distinct, count)), desc="mosaics", disable=not progress):
        view = query_pose(np.asarray(poses.arrays["joints_camera"][row], np.float64), rng, pool.size)
        group = poses.arrays["clip"][row] if own_clips_excluded else None
        mosaic = synthesise(view.pixels, view.visible, pool, settings, group=group)
        for name, value in zip(ARRAYS, (mosaic.image, view.camera, view.pixels, view.visible, row)):
            made[name].append(value)
    return {name: np.stack(values) for name, values in made.items()}


def save_arrays(arrays: dict[str, np.ndarray], folder: Path, names: tuple[str, ...] = ARRAYS) -> None:
    """`names` of `arrays` as <name>.npy in `folder` (a mosaic set; `pipeline.mosaic.pools` a pool)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        np.save(folder / f"{name}.npy", arrays[name])


def load_arrays(folder: str | Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays `save_arrays` wrote; an InputError naming the file that is missing or unreadable."""
    found = {}
    for name in names:
        path = Path(folder) / f"{name}.npy"
        try:
            found[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise InputError(f"{path}: not a readable array ({error})") from error
    return found


def load(folder: Path) -> dict[str, np.ndarray]:
    """A mosaic set `save_arrays` wrote; an InputError naming what is wrong."""
    found = load_arrays(folder, ARRAYS)
    if len({len(values) for values in found.values()}) != 1 or found["images"].ndim != 4:
        raise InputError(f"{folder}: its arrays disagree in length or shape")
    return found


def shared_poses(count: int, percent: int, seed: int) -> np.ndarray:
    """The first `percent` % (at least one) of a seeded order of `count` poses, sorted: the
    poses a share of every source shows."""
    if not 0 < percent <= 100:
        raise InputError(f"a share of the poses is a percentage in (0, 100], got {percent}")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[: max(1, round(count * percent / 100))])


def training_set(
    sources: list[str],
    sets: dict[str, dict[str, np.ndarray]],
    real: SampleSet,
    size: int,
    percent: int = 100,
    seed: int = 0,
    surreal: SampleSet | None = None,
) -> dict[str, np.ndarray]:
    """The images of `sources` (SOURCES, each at most once) for a `percent` share of their
    poses, concatenated: {images (n·len(sources), S, S, 3), joints3d (same, J, 3), poses (n, J, 3)
    the poses once}. `sets`: the mosaic folders by source name; the poses are the `mosaic` set's
    where a source shows the real crops' poses, else the first source's. Every source must show
    the same poses from the same views (checked: an InputError names the one that does not)."""
    unknown = [name for name in sources if name not in SOURCES]
    if unknown or not sources or len(set(sources)) != len(sources):
        raise InputError(f"sources {'+'.join(sources)}: each of {', '.join(SOURCES)} at most once")
    base = "mosaic" if any(name in OWN_VIEW_SOURCES for name in sources) else sources[0]
    for name in {base, *sources} - {"real", "surreal"}:
        if name not in sets:
            raise InputError(f"sources {'+'.join(sources)}: the {name} mosaics are not given")
        if sets[name]["images"].shape[1] != size:
            raise InputError(f"the {name} mosaics are of {sets[name]['images'].shape[1]} pixels, the study's {size}")
    reference = sets[base]
    chosen = shared_poses(len(reference["rows"]), percent, seed)
    rows, poses = reference["rows"][chosen], reference["joints3d"][chosen]
    images = []
    for name in sources:
        if name in ("real", "surreal"):
            samples = real if name == "real" else surreal
            if samples is None or rows.max(initial=-1) >= len(samples.arrays["rgb"]):
                raise InputError(f"the {name} samples are missing or hold fewer crops than the mosaics name")
            shown = torso_centred(np.asarray(samples.arrays["joints_camera"][rows], np.float64))
            picture = resized(samples.arrays["rgb"][rows], size)
        else:
            if not np.array_equal(sets[name]["rows"], reference["rows"]):
                raise InputError(f"the {name} mosaics show other poses than the {base} mosaics")
            shown, picture = sets[name]["joints3d"][chosen], sets[name]["images"][chosen]
        if not np.allclose(shown, poses, atol=SAME_POSE_M):
            raise InputError(f"the {name} images show other poses than the {base} mosaics: made from other samples")
        images.append(picture)
    return {"images": np.concatenate(images), "joints3d": np.concatenate([poses] * len(sources)), "poses": poses}
