"""VNect frame by frame on a video (Mehta's thesis §5.3 and §8.2): the box tracker, the network,
the 1 Euro filters and the kinematic fit, each frame's pose given out as soon as it is known.

Shapes: J = 16 joints in MPII's order (`JOINT_NAMES`), S×S crops, H×W frames.

Per frame:
    1. the crop: the square around the box the tracker chose after the frame before (the
       first frame: a given box, else `first_box`)
    2. the network (BatchNorm folded into the convolutions; float32, or bfloat16 autocast):
       each joint's heatmap maximum (2D, image pixels), its value (the joint's confidence)
       and the location maps there (3D, pelvis-relative metres)
    3. the tracker's next box, from the 2D joints
    4. 1 Euro filters on the 2D joints (1.7 Hz, β 0.3) and the 3D joints (0.8 Hz, β 0.4)
    5. the kinematic skeleton fitted to the filtered joints (bone lengths: the median over
       the first BONE_FRAMES frames, which are therefore fitted once the last of them is read)
    6. a 1 Euro filter on the fitted pelvis' camera position, the skeleton's global
       placement (20 Hz, β 0.4)

The camera: `focal` pixels (a user's video seldom says; the image's longer side, a 53° field
of view, is the guess `pipeline.predict` makes too) and the frame's centre.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.datasets.surreal import crop_box, crop_transform, warp
from pipeline.evaluation.frames import crop_to_image
from pipeline.models.folding import fold_batchnorm
from pipeline.models.vnect import PELVIS, VNect, read_out
from pipeline.realtime.kinematic import KinematicFit, bone_lengths
from pipeline.realtime.one_euro import VNECT_2D, VNECT_3D, VNECT_GLOBAL, OneEuroFilter
from pipeline.realtime.tracker import BoxTracker, square_box
from pipeline.realtime.train import LOCATION_UNIT, STRIDE

BONE_FRAMES = 5  # the first frames whose median bone lengths the fit keeps
# passes of `first_box`: each crops around the box the joints of the pass before span (from
# the whole frame, the first pass sees the person small). On 42 test clips' first frames
# (the default run's network at 4138c71) the box overlapped the true crop by IoU >= 0.5 in
# 10, 15 and 31 of them after 1, 2 and 4 passes: give a box where you know one.
FIRST_BOX_PASSES = 4


@dataclass
class FramePose:
    """One frame's pose. Times are milliseconds of this process' work on the frame."""

    frame: int
    box: np.ndarray  # (4,) x0, y0, x1, y1: the box whose square the network read
    points: np.ndarray  # (J, 2) image pixels, filtered
    confidence: np.ndarray  # (J,) each heatmap's maximum
    relative: np.ndarray  # (J, 3) the network's pelvis-relative joints, metres, filtered
    joints: np.ndarray  # (J, 3) the fitted skeleton in camera metres
    network_ms: float  # crop, network and read-out
    fit_ms: float  # filters and fit


@torch.no_grad()
def read_frame(
    model: VNect, image: np.ndarray, centre: np.ndarray, side: float, size: int, dtype: torch.dtype | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The network on the size×size crop of `image` (H, W, 3 uint8) around the square (centre,
    side) -> the 2D joints (J, 2, image pixels), the pelvis-relative 3D joints (J, 3, metres)
    and each joint's confidence (J,). `dtype`: the autocast type (None: float32)."""
    device = next(model.parameters()).device
    crop = warp(image, crop_transform(centre, side, size), size, nearest=False)
    rgb = torch.from_numpy(crop.transpose(2, 0, 1)[None].astype(np.float32) / 255).to(device)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        outputs = model(rgb)
    heatmaps = outputs["heatmaps"].float()
    peaks, joints = read_out(heatmaps, outputs["locations"].float() * LOCATION_UNIT)
    pixels = peaks[0].cpu().numpy() * STRIDE + (STRIDE - 1) / 2  # map pixels -> the crop's (centres)
    relative = (joints[0] - joints[0, PELVIS]).cpu().numpy().astype(np.float64)
    confidence = heatmaps[0].flatten(1).max(dim=1).values.cpu().numpy().astype(np.float64)
    return crop_to_image(pixels, size, centre, side), relative, confidence


def joints_box(points: np.ndarray) -> np.ndarray:
    """(J, 2) joints -> the box (x0, y0, x1, y1) of the square crop training cut around them."""
    return square_box(*crop_box(points))


def first_box(
    model: VNect, image: np.ndarray, size: int, dtype: torch.dtype | None = None, start: np.ndarray | None = None
) -> np.ndarray:
    """The person's box in a first frame, found by the network itself: from `start` (x0, y0,
    x1, y1; the whole frame by default), FIRST_BOX_PASSES times the box of the joints it finds
    in the crop of the box before."""
    height, width = image.shape[:2]
    box = np.array([0.0, 0.0, width, height]) if start is None else np.asarray(start, np.float64)
    for _ in range(FIRST_BOX_PASSES):
        x0, y0, x1, y1 = box
        centre, side = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(x1 - x0, y1 - y0)
        points, _, _ = read_frame(model, image, centre, side, size, dtype)
        box = joints_box(points)
    return box


class PoseStream:
    """VNect over the frames of one video, given one at a time (`push`), in order."""

    def __init__(
        self,
        model: VNect,
        size: int,
        focal: float,
        principal: np.ndarray,
        rate: float,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.model = fold_batchnorm(model)
        self.size, self.focal, self.principal, self.dtype = size, focal, np.asarray(principal, np.float64), dtype
        self.tracker = BoxTracker()
        self.filter_2d = OneEuroFilter(*VNECT_2D, rate=rate)
        self.filter_3d = OneEuroFilter(*VNECT_3D, rate=rate)
        self.filter_global = OneEuroFilter(*VNECT_GLOBAL, rate=rate)
        self.fit: KinematicFit | None = None
        self.pending: list[FramePose] = []  # read before the bone lengths are known
        self.count = 0

    def start(self, image: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
        """The first frame's box: `box` (x0, y0, x1, y1) where given, else `first_box`."""
        box = first_box(self.model, image, self.size, self.dtype) if box is None else np.asarray(box, np.float64)
        self.tracker.start(box)
        return box

    def push(self, image: np.ndarray) -> list[FramePose]:
        """The next frame (H, W, 3 uint8 RGB) -> the poses now known, in frame order: none for
        the first BONE_FRAMES − 1 frames, those and this one at the BONE_FRAMES-th, then this one."""
        if self.tracker.box is None:
            self.start(image)
        began = time.perf_counter()
        box = self.tracker.box.copy()
        centre, side = self.tracker.square()
        points, relative, confidence = read_frame(self.model, image, centre, side, self.size, self.dtype)
        self.tracker.update(points)
        network_ms = 1e3 * (time.perf_counter() - began)
        began = time.perf_counter()
        read = FramePose(
            self.count, box, self.filter_2d(points), confidence, self.filter_3d(relative), np.zeros((len(points), 3)),
            network_ms, 0.0,
        )  # fmt: skip
        read.fit_ms = 1e3 * (time.perf_counter() - began)
        self.count += 1
        self.pending.append(read)
        if self.fit is None and len(self.pending) < BONE_FRAMES:
            return []
        return self.finish()

    def finish(self) -> list[FramePose]:
        """The poses still pending (a video shorter than BONE_FRAMES frames: all of them)."""
        if not self.pending:
            return []
        if self.fit is None:
            lengths = bone_lengths(np.stack([read.relative for read in self.pending]))
            self.fit = KinematicFit(lengths, self.focal, self.principal)
        done, self.pending = self.pending, []
        for read in done:
            began = time.perf_counter()
            joints = self.fit(read.relative, read.points)
            pelvis = self.filter_global(joints[PELVIS])
            read.joints = joints - joints[PELVIS] + pelvis
            read.fit_ms += 1e3 * (time.perf_counter() - began)
        return done
