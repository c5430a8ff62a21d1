"""Figures of the evaluation: each table's bars beside the paper's, and a qualitative sheet
(input crop, the voxels measured, the fitted body over the crop, the ground truth)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.evaluation.tables import PERCENT, REFERENCES, Table  # noqa: E402
from pipeline.figures import save_figure  # noqa: E402

LABELS = {
    "surface_error_mm": "surface error (mm)",
    "voxel_iou": "voxel IoU (%)",
    "part_iou": "part IoU (%)",
    "part_accuracy": "pixel accuracy (%)",
    "depth_rmse_mm": "depth RMSE (mm)",
    "depth_st_rmse_mm": "depth st-RMSE (mm)",
    "pckh": "PCKh@0.5 (%)",
    "joint_error_mm": "3D joint error (mm)",
    "pa_joint_error_mm": "PA 3D joint error (mm)",
    "pck3d": "3DPCK@150 mm (%)",
    "auc3d": "3DPCK AUC, 0–150 mm (%)",
    "class_accuracy": "top class the nearest (%)",
}


def _label(column: str) -> str:
    for name, label in LABELS.items():
        if column.startswith(name):
            subset = column.removeprefix(name).strip("_")
            return f"{label}, {subset}" if subset else label
    return column


def table_bars(table: Table, frame: pd.DataFrame, out: Path) -> None:
    """One panel per column: our number with its 95 % interval and the paper's, for every
    row; the reference rows (constant, truth) drawn hatched."""
    columns = table.columns
    fig, axes = plt.subplots(
        1, len(columns), figsize=(3.2 * len(columns) + 2.5, 0.45 * len(frame) + 1.8), sharey=True, squeeze=False
    )
    y = np.arange(len(frame))
    reference = frame["key"].isin(REFERENCES).to_numpy()
    for ax, column in zip(axes[0], columns):
        values = frame[column].to_numpy(dtype=float)
        errors = np.abs(np.stack([values - frame[f"{column}_low"], frame[f"{column}_high"] - values]))
        ax.barh(
            y[~reference] - 0.2,
            values[~reference],
            height=0.4,
            xerr=errors[:, ~reference],
            capsize=2,
            label="this pipeline (95 % interval)",
            color="tab:blue",
        )
        ax.barh(
            y[reference] - 0.2,
            values[reference],
            height=0.4,
            xerr=errors[:, reference],
            capsize=2,
            label="reference rows",
            color="white",
            edgecolor="tab:blue",
            hatch="//",
        )
        ax.barh(y + 0.2, frame[f"paper_{column}"], height=0.4, label="the paper", color="tab:gray")
        ax.set_title(_label(column), fontsize=9)
        if column in PERCENT:
            ax.set_xlim(0, 100)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y, frame["method"], fontsize=8)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(table.title, fontsize=10)
    save_figure(fig, out)


def table_curve(table: Table, frame: pd.DataFrame, out: Path) -> None:
    """One panel per column: our number with its 95 % interval against the rows' positions
    (`table.x`, log scale), the reference rows as horizontal lines."""
    columns = table.columns
    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 3.2), squeeze=False)
    learned = frame[frame["key"].isin(table.x or {})]
    x = learned["key"].map(table.x).to_numpy(dtype=float)
    for ax, column in zip(axes[0], columns):
        values = learned[column].to_numpy(dtype=float)
        errors = np.abs(np.stack([values - learned[f"{column}_low"], learned[f"{column}_high"] - values]))
        ax.errorbar(x, values, yerr=errors, marker="o", capsize=3, label="this pipeline (95 % interval)")
        for key, style in zip(REFERENCES, ("--", ":")):
            reference = frame.loc[frame["key"] == key, column]
            if len(reference):
                ax.axhline(reference.item(), color="grey", linestyle=style, linewidth=1, label=f"reference: {key}")
        ax.set_xscale("log")
        ax.set_xlabel(table.x_label)
        ax.set_title(_label(column), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(table.title, fontsize=10)
    save_figure(fig, out)


def _front_depth(voxels: np.ndarray) -> np.ndarray:
    """(D, D, D) occupancy (z towards the camera, y, x) → (D, D) image: near is bright."""
    depth = voxels.shape[0]
    nearest = np.where(voxels.any(axis=0), depth - 1 - np.argmax(voxels[::-1], axis=0), -1)
    return np.where(nearest >= 0, 0.3 + 0.7 * nearest / max(depth - 1, 1), 0.0)


def qualitative_sheet(examples: list[dict], title: str, out: Path) -> None:
    """One row per test image: crop, voxels measured (front depth), fitted body over the
    crop, true body and true voxels."""
    if not examples:
        raise ValueError("no examples to draw")
    headers = ("input", "voxels", "fitted body", "true body", "true voxels")
    fig, axes = plt.subplots(
        len(examples), len(headers), figsize=(2.0 * len(headers), 2.0 * len(examples)), squeeze=False
    )
    for row, example in zip(axes, examples):
        rgb = example["rgb"]
        size = rgb.shape[0]
        row[0].imshow(rgb)
        row[1].imshow(_front_depth(example["voxels"]), cmap="magma", vmin=0, vmax=1)
        for ax, key, colour in ((row[2], "fitted", "tab:cyan"), (row[3], "truth", "tab:orange")):
            ax.imshow(rgb, alpha=0.6)
            points = example[key]
            step = max(1, len(points) // 3000)
            ax.scatter(points[::step, 0], points[::step, 1], s=0.3, c=colour, alpha=0.5, linewidths=0)
            ax.set_xlim(-0.5, size - 0.5)
            ax.set_ylim(size - 0.5, -0.5)
        row[4].imshow(_front_depth(example["true_voxels"]), cmap="magma", vmin=0, vmax=1)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, header in zip(axes[0], headers):
        ax.set_title(header, fontsize=9)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, out)
