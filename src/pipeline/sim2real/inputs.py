"""The temporal model's input channels (Doersch & Zisserman, 2019, §3, Fig. 3 and App. B).

The paper computes flow between each frame and the next ("paired boxes"), so a clip of T frames
is T − 1 steps, step t reading frame t and its flow to frame t + 1:

    rgb        3 channels, the frame scaled to [0, 1]
    flow       3 channels, the flow to the next frame (u, v) and its magnitude, each divided by
               20 (the paper's scaling at 224 pixels, here scaled with the crop's side)
    keypoints  12 channels, a Gaussian of σ 10 pixels at 224 (scaled with the side) at each of
               the 12 joints a keypoint detector finds on real video (ankles, knees, hips,
               shoulders, elbows, wrists), zero where the joint is hidden

and always one more, the paper's flag of a totally occluded frame: one there, where every
other channel is zero.

Shapes: T frames, S × S crops; points (T, 24, 2) SMPL's joints in crop pixels (centres at
integers), visible (T, 24) bool, blank (T,) bool the totally occluded frames; the channels
(T − 1, C, S, S) float32 in the order of `kinds`, then the flag.
"""

from __future__ import annotations

import numpy as np

from pipeline.body_model.skeleton import SMPL_JOINT_NAMES

KINDS = ("rgb", "flow", "keypoints")
CHANNELS = {"rgb": 3, "flow": 3, "keypoints": 12}
KEYPOINT_NAMES = tuple(
    f"{side}_{part}" for part in ("ankle", "knee", "hip", "shoulder", "elbow", "wrist") for side in ("left", "right")
)
KEYPOINTS = np.array([SMPL_JOINT_NAMES.index(name) for name in KEYPOINT_NAMES])
PAPER_SIDE = 224  # pixels: the crop the paper's flow scale and σ belong to
FLOW_SCALE = 20.0
SIGMA = 10.0


def parse_kinds(text: str) -> tuple[str, ...]:
    """'flow+keypoints' -> ('flow', 'keypoints'), in `KINDS`' order, each once."""
    kinds = text.split("+")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or len(set(kinds)) != len(kinds) or not text:
        raise ValueError(f"inputs {text!r}: '+'-joined, each once, of {KINDS}")
    return tuple(kind for kind in KINDS if kind in kinds)


def channel_count(kinds: tuple[str, ...]) -> int:
    return sum(CHANNELS[kind] for kind in kinds) + 1  # and the flag


def flow_channels(flows: np.ndarray, side: int) -> np.ndarray:
    """(T − 1, S, S, 2) flows -> (T − 1, 3, S, S): u, v, |f|, divided by 20 at 224 pixels."""
    scale = FLOW_SCALE * side / PAPER_SIDE
    magnitude = np.linalg.norm(flows, axis=-1, keepdims=True)
    return (np.concatenate([flows, magnitude], axis=-1) / scale).transpose(0, 3, 1, 2).astype(np.float32)


def keypoint_heatmaps(points: np.ndarray, visible: np.ndarray, side: int) -> np.ndarray:
    """(T, 12, S, S): each keypoint's Gaussian (peak 1, σ 10 at 224 pixels), zero where hidden."""
    sigma = SIGMA * side / PAPER_SIDE
    grid = np.arange(side, dtype=np.float32)
    chosen, shown = points[:, KEYPOINTS].astype(np.float32), visible[:, KEYPOINTS]
    across = np.exp(-((grid - chosen[..., :1]) ** 2) / (2 * sigma**2))  # (T, 12, S) along x
    down = np.exp(-((grid - chosen[..., 1:]) ** 2) / (2 * sigma**2))  # (T, 12, S) along y
    return (down[..., :, None] * across[..., None, :] * shown[..., None, None]).astype(np.float32)


def channels(
    kinds: tuple[str, ...],
    frames: np.ndarray,
    flows: np.ndarray,
    points: np.ndarray,
    visible: np.ndarray,
    blank: np.ndarray,
) -> np.ndarray:
    """The network's input (T − 1, C, S, S) for one clip: frames (T, S, S, 3) uint8, flows
    (T − 1, S, S, 2), points (T, 24, 2), visible (T, 24), blank (T,)."""
    side, steps = frames.shape[1], len(flows)
    if len(frames) != steps + 1 or steps < 1:
        raise ValueError(f"{len(frames)} frames and {steps} flows: a clip of T ≥ 2 frames has T − 1 flows")
    parts = {
        "rgb": lambda: frames[:steps].transpose(0, 3, 1, 2).astype(np.float32) / 255.0,
        "flow": lambda: flow_channels(flows, side),
        "keypoints": lambda: keypoint_heatmaps(points[:steps], visible[:steps], side),
    }
    blanked = blank[:steps, None, None, None]
    made = np.concatenate([parts[kind]() for kind in kinds], axis=1) * ~blanked
    flag = np.broadcast_to(blanked, (steps, 1, side, side)).astype(np.float32)
    return np.concatenate([made, flag], axis=1)
