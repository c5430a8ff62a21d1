"""Dense optical flow between consecutive frames, by the classical methods OpenCV ships.

    farneback                  Farnebäck's polynomial expansion (OpenCV's defaults as in
                               its samples: pyramid 0.5 × 3 levels, window 15, 3 iterations)
    dis_ultrafast / dis_fast / dis_medium
                               DIS (Kroeger et al. 2016) at OpenCV's three presets
    tvl1                       Dual TV-L1 (Zach et al. 2007), opencv-contrib's `optflow`

Every method maps two RGB frames (H, W, 3) uint8 to the forward flow (H, W, 2) float32 in
pixels: frame t's pixel (x, y) moves to (x + u, y + v) in frame t+1 (x right, y down), the
convention of the clips' `_flow.mat`.

No learned method is offered: the ones installable from the package registries (RAFT in
torchvision, the models of `ptlflow`) fetch their trained weights from other hosts at first
use, which this project's installs never do.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

FlowFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
DIS_PRESETS = {
    "dis_ultrafast": "DISOPTICAL_FLOW_PRESET_ULTRAFAST",
    "dis_fast": "DISOPTICAL_FLOW_PRESET_FAST",
    "dis_medium": "DISOPTICAL_FLOW_PRESET_MEDIUM",
}
METHODS = ("farneback", *DIS_PRESETS, "tvl1")


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def estimator(method: str) -> FlowFunction:
    """The flow function of `method` (one of METHODS); stateful ones are made once here."""
    if method == "farneback":

        def farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(_grey(a), _grey(b), None, 0.5, 3, 15, 3, 5, 1.2, 0)

        return farneback
    if method in DIS_PRESETS:
        dis = cv2.DISOpticalFlow_create(getattr(cv2, DIS_PRESETS[method]))
        return lambda a, b: dis.calc(_grey(a), _grey(b), None)
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise RuntimeError("TV-L1 needs opencv-contrib-python(-headless) in place of opencv-python(-headless)")
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(_grey(a), _grey(b), None)
    raise ValueError(f"unknown flow method {method!r}; one of {', '.join(METHODS)}")
