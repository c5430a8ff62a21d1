"""Estimated flow scored against the renderer's true flow.

- end-point error (EPE): the mean length of estimated − true flow, over all pixels and over
  body pixels (the segmentation's foreground in frame t);
- outlier rate: the share of pixels whose EPE exceeds both 3 pixels and 5 % of the true
  flow's length (KITTI's Fl measure).

Errors are summed per clip, so that any set of clips gives exact means.

Shapes: T frame pairs, H × W pixels.
"""

from __future__ import annotations

import numpy as np


def flow_error_sums(estimated: np.ndarray, truth: np.ndarray, body: np.ndarray) -> dict[str, float]:
    """(T, H, W, 2), (T, H, W, 2), (T, H, W) bool → sums and counts of the errors."""
    if estimated.shape != truth.shape:
        raise ValueError(f"flows of different shapes: {estimated.shape} and {truth.shape}")
    error = np.linalg.norm(estimated.astype(np.float64) - truth, axis=-1)
    outlier = (error > 3.0) & (error > 0.05 * np.linalg.norm(truth, axis=-1))
    return {
        "pixels": float(error.size),
        "epe_sum": float(error.sum()),
        "outliers": float(outlier.sum()),
        "body_pixels": float(body.sum()),
        "body_epe_sum": float(error[body].sum()),
        "body_outliers": float(outlier[body].sum()),
    }


def summarise(sums: list[dict[str, float]]) -> dict[str, float]:
    """EPE over all and body pixels, and the outlier rates, from per-clip sums."""
    total = {key: sum(s[key] for s in sums) for key in sums[0]}
    return {
        "epe": total["epe_sum"] / total["pixels"],
        "epe_body": total["body_epe_sum"] / max(total["body_pixels"], 1),
        "outlier_rate": total["outliers"] / total["pixels"],
        "outlier_rate_body": total["body_outliers"] / max(total["body_pixels"], 1),
    }
