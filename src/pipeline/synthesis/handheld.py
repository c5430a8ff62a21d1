"""A hand-held camera over a still scene: the moving background of synthetic video.

Doersch & Zisserman ("Sim2real transfer learning for 3D human pose estimation: motion to the
rescue", NeurIPS 2019) train on synthetic people composited over backgrounds that move as a
hand-held camera's do, because real video's flow is never zero off the person. Here the
camera pans across a scene photo at a steady speed with a smooth shake (a first-order
autoregressive jitter), and each frame is the photo's window at the camera's offset. The
background's flow is then exact: a camera that moves by d between two frames moves every
scene point by −d in the image.

Shapes: T frames of H × W pixels; offsets and flow in pixels, x right and y down.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.errors import InputError


@dataclass(frozen=True)
class HandheldSettings:
    """How the camera moves (pixels of the rendered frame)."""

    pan: float  # mean speed, pixels per frame, in a direction drawn per clip
    shake: float  # standard deviation of the jitter's step, pixels
    smoothing: float  # the jitter's autoregression, 0 (white) to below 1 (smooth)

    def __post_init__(self) -> None:
        if self.pan < 0 or self.shake < 0:
            raise ValueError(f"pan and shake must be ≥ 0, got {self.pan} and {self.shake}")
        if not 0 <= self.smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing}")


def trajectory(rng: np.random.Generator, frames: int, settings: HandheldSettings) -> np.ndarray:
    """(T, 2) the camera's offset in each frame, zero at the centre frame (T // 2)."""
    if frames < 1:
        raise ValueError(f"a trajectory needs at least one frame, got {frames}")
    angle = rng.uniform(0.0, 2.0 * np.pi)
    steps = np.tile(settings.pan * np.array([np.cos(angle), np.sin(angle)]), (frames, 1))
    jitter = np.zeros(2)
    for t in range(frames):
        jitter = settings.smoothing * jitter + rng.normal(0.0, settings.shake, 2)
        steps[t] += jitter
    offsets = np.cumsum(steps, axis=0)
    return offsets - offsets[frames // 2]


def margin_needed(offsets: np.ndarray) -> tuple[int, int]:
    """(x, y) pixels the photo must extend beyond the frame on each side for `offsets` (T, 2)."""
    reach = np.ceil(np.abs(offsets).max(axis=0)).astype(int) + 1
    return int(reach[0]), int(reach[1])


def background_video(photo: np.ndarray, offsets: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo (h, w, 3) uint8 filmed along `offsets` (T, 2) → frames (T, H, W, 3) uint8 and
    the background's flow from each frame to the next (T − 1, H, W, 2) float32.

    The photo is scaled, keeping its aspect, so that the frame and the trajectory's reach fit
    in it; frame t is the window centred on the photo's centre plus offsets[t]."""
    margin_x, margin_y = margin_needed(offsets)
    need_w, need_h = width + 2 * margin_x, height + 2 * margin_y
    h, w = photo.shape[:2]
    if h < 2 or w < 2:
        raise InputError(f"a background photo of {w} × {h} pixels cannot be filmed")
    scale = max(need_w / w, need_h / h)
    if scale > 1:
        photo = cv2.resize(photo, (int(np.ceil(w * scale)), int(np.ceil(h * scale))), interpolation=cv2.INTER_LINEAR)
    centre = np.array([photo.shape[1], photo.shape[0]]) / 2.0
    frames = np.empty((len(offsets), height, width, 3), dtype=np.uint8)
    for t, offset in enumerate(offsets):
        left, top = centre + offset - np.array([width, height]) / 2.0
        # frame pixel (x, y) is the photo's (x + left, y + top), sampled bilinearly
        window = np.array([[1.0, 0.0, -left], [0.0, 1.0, -top]])
        frames[t] = cv2.warpAffine(
            photo, window, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    moves = -np.diff(offsets, axis=0).astype(np.float32)  # (T − 1, 2): the scene moves against the camera
    flow = np.broadcast_to(moves[:, None, None, :], (len(moves), height, width, 2)).copy()
    return frames, flow
