"""Tracking a moving camera by its background's flow.

Doersch & Zisserman ("Sim2real transfer learning for 3D human pose estimation: motion to the
rescue", NeurIPS 2019) track the camera of each training clip by the per-frame median of the
background's optical flow, integrated over the clip with the centre frame as reference, and
move the person with it, so that the person stays put in the scene as a filmed person does.
The median ignores the person and whatever else moves on its own, as long as it covers less
than half of the background.

Shapes: T frames; flows (T − 1, H, W, 2) in pixels from each frame to the next, x right and
y down (the convention of `pipeline.flow.methods`).
"""

from __future__ import annotations

import numpy as np


def background_motion(flows: np.ndarray, moving: np.ndarray | None = None) -> np.ndarray:
    """(T − 1, 2) the median flow of each frame pair, over the pixels that `moving`
    (T − 1, H, W) bool, e.g. the person's mask, leaves out (all pixels without it)."""
    if flows.ndim != 4 or flows.shape[-1] != 2:
        raise ValueError(f"flows are (T − 1, H, W, 2), got {flows.shape}")
    if moving is not None and moving.shape != flows.shape[:3]:
        raise ValueError(f"the moving pixels' mask is {moving.shape}, the flows {flows.shape[:3]}")
    motion = np.empty((len(flows), 2))
    for t, flow in enumerate(flows):
        still = flow.reshape(-1, 2) if moving is None else flow[~moving[t]]
        if len(still) == 0:
            raise ValueError(f"frame pair {t} has no background pixel to track the camera by")
        motion[t] = np.median(still, axis=0)
    return motion


def track(flows: np.ndarray, moving: np.ndarray | None = None, reference: int | None = None) -> np.ndarray:
    """(T, 2) where each frame shows a point of the scene that the reference frame (the
    centre frame, T // 2, by default) shows at the origin: its background motion integrated,
    zero at the reference. Adding it to a position in the reference frame follows the scene."""
    motion = background_motion(flows, moving)
    positions = np.concatenate([np.zeros((1, 2)), np.cumsum(motion, axis=0)])
    reference = len(positions) // 2 if reference is None else reference
    if not 0 <= reference < len(positions):
        raise ValueError(f"reference frame {reference} outside the clip's {len(positions)} frames")
    return positions - positions[reference]
