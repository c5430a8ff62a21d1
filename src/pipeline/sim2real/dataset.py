"""The temporal model's clips: rendered SURREAL clips recomposed over a hand-held camera's video.

Each clip's person (its segmentation's foreground, its rendered flow and joints) is laid over
one of the split's background photos filmed by `synthesis.handheld` (Doersch & Zisserman,
2019, App. A), with the paper's occluders, hidden keypoints and total occlusions (`occlude`),
then cropped frame by frame to a square around the person, as a detector would give it
(`compose.person_boxes`: the flow from each frame to the next through the first's box), and
resized to `size` pixels. The paper's dataset constructions:

    full           the camera moves, the person moves with the scene (tracked), occluders
    no_occlusions  the same without occluders or total occlusions
    untracked      the person stays where it was rendered ("no background tracking")
    static         the camera is still ("static background")

Each clip draws its photo and its camera from its own generator (the seed, the split and the
clip's stem), so a clip's composite does not depend on the others'. The clips shorter than the
split's longest (a motion's last, cut short) are left out: a batch's clips share one length.

Stored (`write`/`load`), for N clips of T frames at S pixels:

    frames   (N, T, S, S, 3) uint8
    flows    (N, T − 1, S, S, 2) float16, pixels of the crop
    points   (N, T, 24, 2) float32, SMPL's joints in crop pixels (centres at integers)
    visible  (N, T, 24) bool, the joints a detector finds (`occlude.hidden_keypoints`)
    blank    (N, T) bool, the totally occluded frames
    joints   (N, T, 24, 3) float32, pelvis-relative, metres, in the camera's frame (x right,
             y down, z forward)
    stems    (N,) the clips' names
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_output
from pipeline.clips import Clip
from pipeline.errors import InputError
from pipeline.images import read_rgb
from pipeline.seeding import seeded_generator
from pipeline.sim2real.compose import compose, crop, moved_mask, person_boxes
from pipeline.sim2real.occlude import (
    OcclusionSettings,
    behind_the_body,
    blank_frames,
    choose_occluder,
    hidden_keypoints,
    segment_masks,
)
from pipeline.synthesis.handheld import HandheldSettings, background_video, trajectory

log = logging.getLogger("pipeline.sim2real")

CONSTRUCTIONS = ("full", "no_occlusions", "untracked", "static")
ARRAYS = ("frames", "flows", "points", "visible", "blank", "joints", "stems")


@dataclass(frozen=True)
class Sim2RealData:
    """How a split's clips are recomposed (the config's `sim2real.dataset`)."""

    seed: int
    size: int  # the crop's side, pixels
    box_scale: float  # the crop's side over the person's extent
    camera: HandheldSettings
    occlusion: OcclusionSettings
    construction: str

    def __post_init__(self) -> None:
        if self.construction not in CONSTRUCTIONS:
            raise ValueError(f"construction {self.construction!r}: one of {CONSTRUCTIONS}")


def read_person(clip: Clip) -> dict[str, np.ndarray]:
    """A rendered clip's person: frames (T, H, W, 3), mask (T, H, W), flow (T − 1, H, W, 2),
    depth maps (T, H, W), points (T, 24, 2) pixels, their depths (T, 24) and joints (T, 24, 3)
    pelvis-relative in the camera's frame, metres."""
    video = clip.video()
    info = clip.info
    if len(video) != info.frames or len(video) < 2:
        raise InputError(f"{clip.info_path}: {info.frames} annotated frames, {len(video)} in the video (≥ 2 needed)")
    world = np.asarray(info.joints3d, np.float64)
    in_camera = info.to_camera(world)
    return {
        "frames": video,
        "mask": np.stack([clip.segm(t) > 0 for t in range(len(video))]),
        "flow": np.stack([clip.forward_flow(t) for t in range(len(video) - 1)]).astype(np.float32),
        "depth": np.stack([clip.depth(t) for t in range(len(video))]),
        "points": info.project(world),
        "depths": in_camera[..., 2],
        "joints": (in_camera - in_camera[:, :1]).astype(np.float32),
    }


def recompose(clip: Clip, photos: list[Path], split: str, settings: Sim2RealData) -> dict[str, np.ndarray]:
    """One clip recomposed and cropped (the module's arrays, not yet stacked)."""
    rng = seeded_generator(settings.seed, "sim2real", split, clip.stem)
    person = read_person(clip)
    frames, height, width = person["mask"].shape
    photo = read_rgb(photos[rng.integers(len(photos))])
    offsets = trajectory(rng, frames, settings.camera)
    occlusion = settings.occlusion
    if settings.construction == "static":
        offsets = np.zeros_like(offsets)
    if settings.construction == "no_occlusions":
        occlusion = replace(occlusion, chance=0.0, blank_chance=0.0)
    tracked = settings.construction != "untracked"
    moves = offsets if tracked else np.zeros_like(offsets)
    occluder = None
    if rng.random() < occlusion.chance:  # a segment of the scene, moving with it, in front of the person
        reference = background_video(photo, np.zeros((1, 2)), height, width)[0][0]
        count = int(rng.integers(occlusion.segments[0], occlusion.segments[1] + 1))
        segments = segment_masks(reference, offsets, count, occlusion.compactness)
        layer = np.stack([moved_mask(person["mask"][t], moves[t]) for t in range(frames)])
        occluder = choose_occluder(segments, layer, person["points"] - moves[:, None], rng)
    composite = compose(
        person["frames"], person["mask"], person["flow"], person["points"], photo, offsets, tracked, occluder
    )
    blank = blank_frames(rng, frames, occlusion)
    body_hides = behind_the_body(person["points"], person["depths"], person["depth"], occlusion.behind)
    visible = hidden_keypoints(composite.points, (height, width), body_hides, occluder, blank, rng, occlusion)
    in_frame = ((composite.points >= 0) & (composite.points <= [width - 1, height - 1])).all(-1)
    try:
        boxes = person_boxes(composite.points, in_frame, settings.box_scale)
    except ValueError:
        raise InputError(f"{clip.info_path}: the person is out of frame in every frame") from None
    cropped = crop(composite, boxes, settings.size)
    inside = ((cropped.points >= 0) & (cropped.points <= settings.size - 1)).all(-1)
    return {
        "frames": cropped.frames,
        "flows": cropped.flows.astype(np.float16),
        "points": cropped.points.astype(np.float32),
        "visible": visible & inside,
        "blank": blank,
        "joints": person["joints"],
    }


def prepare(clips: list[Path], photos: list[Path], split: str, settings: Sim2RealData, progress=True):
    """Every clip of a split recomposed: the module's arrays, stacked."""
    from tqdm import tqdm

    if not clips:
        raise InputError(f"split {split!r}: no clip to recompose")
    if not photos:
        raise InputError(f"split {split!r}: no background photo to film")
    made = {name: [] for name in ARRAYS}
    for path in tqdm(clips, desc=f"sim2real {split}", unit="clip", disable=not progress):
        clip = Clip(path)
        for name, value in recompose(clip, photos, split, settings).items():
            made[name].append(value)
        made["stems"].append(clip.stem)
    lengths = np.array([len(frames) for frames in made["frames"]])
    kept = np.flatnonzero(lengths == lengths.max())
    if len(kept) < len(lengths):  # a motion's last clip, cut short: the clips of a batch share one length
        log.info(
            "split %s: %d of %d clips shorter than %d frames left out",
            split,
            len(lengths) - len(kept),
            len(lengths),
            lengths.max(),
        )
    return {name: np.stack([values[k] for k in kept]) for name, values in made.items()}


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_output(path) as partial, open(partial, "wb") as file:
        np.savez(file, **arrays)


def load(path: Path) -> dict[str, np.ndarray]:
    """The arrays `write` stored, checked for every name and one clip count."""
    try:
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in ARRAYS}
    except (OSError, KeyError, ValueError) as error:
        raise InputError(f"{path}: not a sim2real clip file ({error})") from error
    counts = {name: len(value) for name, value in arrays.items()}
    if len(set(counts.values())) != 1:
        raise InputError(f"{path}: arrays of different clip counts {counts}")
    return arrays
