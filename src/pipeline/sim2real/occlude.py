"""Occluders and hidden keypoints (Doersch & Zisserman, 2019, App. A).

Real people are hidden by the things around them. The paper segments its background video
with SLIC in four dimensions (x, y scaled for the tracked camera, time, colour) and lets one
random segment pass in front of the person: the segment's pixels show the background, not
the person. Here the background is a still photo filmed by a moving camera, so its segments
in the tracked camera's coordinates are the photo's own, and each frame's segment is the
photo's segment where the camera shows it (`segment_masks`): SLIC on the reference frame,
moved with the scene. A segment that covers none of the person, or hides more than half of
the 12 keypoints, is refused and another drawn (the paper discards the video).

The keypoints a detector would not find are hidden (`hidden_keypoints`): out of the frame,
under the occluder, in a totally occluded frame, or at least `behind` metres behind the depth
map at their pixel (the body hides them); then every leg keypoint is shown in a clip with
chance `unhide_legs` (the paper: 3DPW's detector guesses legs even when hidden), and each
keypoint's visibility is turned over with chance `flip` (hidden shown, shown hidden).

A total occlusion (`blank_frames`) blanks a run of frames: every input channel zero there, a
flag channel one.

Shapes: T frames of H × W pixels; points (T, 24, 2) pixels; labels (H, W) int, 0 none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.segmentation import slic

from pipeline.body_model.skeleton import SMPL_JOINT_NAMES
from pipeline.sim2real.compose import shifted
from pipeline.sim2real.inputs import KEYPOINTS

LEGS = np.array([SMPL_JOINT_NAMES.index(f"{side}_{part}") for part in ("ankle", "knee") for side in ("left", "right")])
TRIES = 5  # segments drawn before a clip is left unoccluded


@dataclass(frozen=True)
class OcclusionSettings:
    """How clips are occluded (the config's `sim2real.occlusion`)."""

    chance: float  # of a clip having an occluder (the paper: about 30 % of its videos)
    segments: tuple[int, int]  # SLIC's segment count, drawn per clip (the paper: 10–30)
    compactness: float  # SLIC's balance of space against colour
    blank_chance: float  # of a clip having a total occlusion
    blank_frames: int  # its most frames (the paper: 15 of 31)
    behind: float  # metres behind the depth map that hide a joint (the paper: 0.2)
    unhide_legs: float  # chance a clip shows its legs' hidden keypoints (the paper: 0.5)
    flip: float  # chance a keypoint's visibility is turned over in a frame (the paper: 0.05)

    def __post_init__(self) -> None:
        for name in ("chance", "blank_chance", "unhide_legs", "flip"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a chance, in [0, 1]: {getattr(self, name)}")
        if not 2 <= self.segments[0] <= self.segments[1]:
            raise ValueError(f"segments: a range of at least 2, got {self.segments}")


NONE = OcclusionSettings(0.0, (10, 30), 10.0, 0.0, 1, 0.2, 0.0, 0.0)  # the 'no occlusions' construction


def segment_masks(reference: np.ndarray, offsets: np.ndarray, count: int, compactness: float) -> np.ndarray:
    """SLIC's segments (H, W) int of the reference frame (H, W, 3) uint8, the camera's offset
    zero, as each frame of `offsets` (T, 2) shows them: (T, H, W), 0 where none is seen."""
    labels = slic(reference, n_segments=count, compactness=compactness, start_label=1, channel_axis=-1)
    return np.stack([shifted(labels.astype(np.int32), -offset, nearest=True) for offset in offsets])


def choose_occluder(
    segments: np.ndarray, person: np.ndarray, points: np.ndarray, rng: np.random.Generator
) -> np.ndarray | None:
    """A segment's masks (T, H, W) bool that hide some of the person (T, H, W) and at most
    half of the 12 keypoints (points (T, 24, 2)); None when `TRIES` draws find none."""
    labels = np.unique(segments[person])
    labels = labels[labels > 0]
    height, width = person.shape[1:]
    pixels = np.clip(np.round(points[:, KEYPOINTS]).astype(int), 0, [width - 1, height - 1])
    for label in rng.permutation(labels)[:TRIES]:
        masks = segments == label
        under = masks[np.arange(len(masks))[:, None], pixels[..., 1], pixels[..., 0]]  # (T, 12)
        if under.mean() <= 0.5:
            return masks
    return None


def blank_frames(rng: np.random.Generator, frames: int, settings: OcclusionSettings) -> np.ndarray:
    """(T,) bool: a run of 1 to `blank_frames` frames, with chance `blank_chance`, else none."""
    blank = np.zeros(frames, bool)
    if rng.random() < settings.blank_chance:
        length = int(rng.integers(1, min(settings.blank_frames, frames) + 1))
        start = int(rng.integers(frames - length + 1))
        blank[start : start + length] = True
    return blank


def behind_the_body(points: np.ndarray, depths: np.ndarray, depth_maps: np.ndarray, behind: float) -> np.ndarray:
    """(T, 24) bool: the joints at least `behind` metres behind the depth map (T, H, W) at their
    pixel (points (T, 24, 2), their camera depths (T, 24)); a joint outside the frame is not."""
    frames, height, width = depth_maps.shape
    inside = ((points >= 0) & (points <= [width - 1, height - 1])).all(-1)
    pixels = np.clip(np.round(points).astype(int), 0, [width - 1, height - 1])
    surface = depth_maps[np.arange(frames)[:, None], pixels[..., 1], pixels[..., 0]]
    return inside & (depths >= surface + behind)


def hidden_keypoints(
    points: np.ndarray,
    shape: tuple[int, int],
    body_hides: np.ndarray,
    occluder: np.ndarray | None,
    blank: np.ndarray,
    rng: np.random.Generator,
    settings: OcclusionSettings,
) -> np.ndarray:
    """(T, 24) bool: the keypoints a detector reports, of points (T, 24, 2) in frames of `shape`
    (H, W); `body_hides` (T, 24) the joints behind the body, `occluder` (T, H, W) or None,
    `blank` (T,) the totally occluded frames."""
    height, width = shape
    frames = len(points)
    inside = ((points >= 0) & (points <= [width - 1, height - 1])).all(-1)
    hidden = body_hides.copy()
    if occluder is not None:
        pixels = np.clip(np.round(points).astype(int), 0, [width - 1, height - 1])
        hidden |= occluder[np.arange(frames)[:, None], pixels[..., 1], pixels[..., 0]]
    if rng.random() < settings.unhide_legs:
        hidden[:, LEGS] = False
    visible = inside & ~hidden
    visible ^= rng.random(visible.shape) < settings.flip
    return visible & ~blank[:, None]
