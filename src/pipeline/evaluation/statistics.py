"""Uncertainty of the test-set figures: bootstrap intervals over test images, and paired
intervals of the difference between two rows measured on the same images.

A figure is a function of per-image columns: a mean (surface error, voxel IoU, 3D joint
error), a ratio of sums (PCKh: correct over visible joints), or the mean over classes of
per-class ratios of sums (part IoU: intersections over unions). One set of resampled images
(a multinomial count per image and resample, drawn from a seed) serves every figure and
every row, so intervals of differences are paired: the two rows are compared on the same
resampled test sets.

Verdicts on an ordering the paper reports ("row A beats row B"): `holds` when the 95 %
interval of our difference lies wholly on the paper's side of zero, `reversed` when it lies
wholly on the other side, `undecided` when it contains zero.

Shapes: N images, R resamples, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RESAMPLES = 2000
LEVEL = 0.95
VERDICTS = ("holds", "reversed", "undecided")


@dataclass(frozen=True)
class Figure:
    """How a figure is computed from per-image columns.

    kind 'mean': the mean of `columns[0]` over the images where it is a number (a depth error
    is none on an image without a person); 'ratio': sum of `columns[0]` / sum of
    `columns[1]`; 'class_ratio': the mean over classes (present in the denominators) of the
    ratios of sums of the paired columns `columns[:C]` / `columns[C:]`. `subset` names a
    boolean per-image column selecting the images it is taken over (s20, s10)."""

    kind: str
    columns: tuple[str, ...]
    subset: str | None = None


def resample_counts(images: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """(R, N) how many times each image is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(images, np.full(images, 1.0 / images), size=resamples).astype(np.float64)


def evaluate(figure: Figure, images: pd.DataFrame, counts: np.ndarray | None = None) -> np.ndarray:
    """The figure on the whole set (counts None: shape ()) or on each resample (R,)."""
    weights = np.ones((1, len(images))) if counts is None else counts
    if figure.subset is not None:
        weights = weights * images[figure.subset].to_numpy(dtype=np.float64)[None]
    values = images[list(figure.columns)].to_numpy(dtype=np.float64)  # (N, K)
    sums = weights @ np.nan_to_num(values)  # (R, K)
    if figure.kind == "mean":
        result = sums[:, 0] / np.maximum(weights @ np.isfinite(values[:, 0]), 1e-12)
    elif figure.kind == "ratio":
        result = sums[:, 0] / np.maximum(sums[:, 1], 1e-12)
    elif figure.kind == "class_ratio":
        classes = values.shape[1] // 2
        numerators, denominators = sums[:, :classes], sums[:, classes:]
        present = denominators > 0
        ratios = np.where(present, numerators / np.maximum(denominators, 1e-12), 0.0)
        result = ratios.sum(1) / np.maximum(present.sum(1), 1)
    else:
        raise ValueError(f"unknown figure kind {figure.kind!r}")
    return result[0] if counts is None else result


def interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of bootstrap samples (R,)."""
    tail = (1 - level) / 2
    low, high = np.nanquantile(samples, [tail, 1 - tail])
    return float(low), float(high)


def verdict(difference: tuple[float, float], paper_first_better: bool, lower_is_better: bool) -> str:
    """holds / reversed / undecided for the paper's ordering of two rows, from the interval
    of our difference (first − second)."""
    low, high = difference
    if low <= 0 <= high or np.isnan(low) or np.isnan(high):
        return "undecided"
    first_better = high < 0 if lower_is_better else low > 0
    return "holds" if first_better == paper_first_better else "reversed"


def bootstrapped_mean(values: pd.Series, counts: np.ndarray) -> tuple[float, float, float]:
    """The mean of per-clip (or per-image) `values` (N,) and its 95 % interval over the
    resampled sets `counts` (R, N), every table's rows drawn alike."""
    frame = pd.DataFrame({"value": values.to_numpy(dtype=np.float64)})
    mean = Figure("mean", ("value",))
    low, high = interval(evaluate(mean, frame, counts))
    return float(evaluate(mean, frame)), low, high


def comparison(
    clips: pd.DataFrame,
    seed: int,
    rows: dict[str, dict],
    orderings: tuple[tuple[str, str], ...],
    measures: tuple[str, ...],
    paper: dict[str, dict] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Models compared on the same clips (`clips`: one row per model ('row') and clip ('clip'),
    lower better on every measure): per row of `rows` ({row: its description's columns}) each
    of `measures` with its 95 % interval and `paper`'s figures; and per ordering (the first
    better than the second) and measure, the paired difference, its interval and the verdict."""
    names = clips["clip"].unique()
    counts = resample_counts(len(names), seed=seed)
    by_row = {row: frame.set_index("clip").loc[names] for row, frame in clips.groupby("row", sort=False)}
    table = []
    for row in [r for r in rows if r in by_row]:
        record = {"row": row, **rows[row], "clips": len(names)}
        for measure in measures:
            bounds = bootstrapped_mean(by_row[row][measure], counts)
            record[measure], record[f"{measure}_low"], record[f"{measure}_high"] = bounds
        record |= {f"paper_{k}": v for k, v in (paper or {}).get(row, {}).items()}
        table.append(record)
    judged = []
    for first, second in orderings:
        if first not in by_row or second not in by_row:
            continue
        for measure in measures:
            value, low, high = bootstrapped_mean(by_row[first][measure] - by_row[second][measure], counts)
            judged.append(
                {
                    "better": first,
                    "than": second,
                    "measure": measure,
                    "difference": value,
                    "low": low,
                    "high": high,
                    "verdict": verdict((low, high), True, True),
                }
            )
    return pd.DataFrame(table).round(3), pd.DataFrame(judged).round(3)
