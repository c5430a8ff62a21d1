"""The paper's evaluation tables, ours beside BodyNet's own numbers (Varol et al. 2018,
REFERENCE §2).

    bodynet_table   Table 4.2: surface error (mm) and voxel IoU (%), full / s20 / s10
    bodynet_inputs  Table 4.1: the voxel network fed different inputs
    bodynet_tasks   Table 4.6: the intermediate tasks trained alone and end to end
    pose3d_inputs   Table 4.8: the 3D-pose network fed different inputs
    motion_inputs   seed 001's motion ablation: the 3D-pose network fed RGB, flow (rendered
                    or estimated) and 2D keypoints, tested on a domain it never saw; the
                    paper's column is its PA-MPJPE on real video (3DPW), an ordering to compare

Each row names the evaluation (a folder of `summary.json` under the evaluation results)
it is read from; each column a figure of that summary. IoU and PCKh are given in %.
Where the paper gives no number the paper's cell is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError, read_json_record

PERCENT = {"voxel_iou", "voxel_iou_s20", "voxel_iou_s10", "part_iou", "pckh"}
LOWER_IS_BETTER = ("surface_error_mm", "joint_error_mm")


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    evaluation: str  # the evaluation folder, relative to the evaluation results
    paper: dict[str, float]


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[str, ...]  # summary figures, in this order
    rows: tuple[Row, ...]


def _surface(full, s20, s10, iou=None) -> dict[str, float]:
    paper = {"surface_error_mm": full, "surface_error_mm_s20": s20, "surface_error_mm_s10": s10}
    return paper | ({"voxel_iou": iou} if iou is not None else {})


def _inputs(network: str, inputs: str) -> str:
    return f"inputs/{network}/{inputs}"


def _motion(source: str, inputs: str, paper: float) -> Row:
    label = {"rgb": "RGB", "flow": "Flow", "pose2d": "Keypoints", "rgb+pose2d": "RGB + Keypoints",
             "flow+pose2d": "Flow + Keypoints"}[inputs]  # fmt: skip
    key = inputs if "flow" not in inputs else f"{inputs}_{source}"
    label = label if "flow" not in inputs else f"{label} ({source} flow)"
    return Row(key, label, f"motion/{source}/{inputs}", {"joint_error_mm": paper})


TABLES = {
    table.name: table
    for table in (
        Table("bodynet_table", "Table 4.2: body-model surface error of each method",
              ("surface_error_mm", "surface_error_mm_s20", "surface_error_mm_s10", "voxel_iou", "voxel_iou_s20",
               "voxel_iou_s10"),
              (Row("smplify", "SMPLify++ (θ, β optimised)", "smplify", _surface(75.3, 79.7, 86.1)),
               Row("shape_regression", "shape-parameter regression (β regressed, θ from 3D pose)", "shape_regression",
                   _surface(74.3, 82.1, 88.7)),
               Row("voxels", "voxels network", "voxels", _surface(73.6, 81.1, 86.3, 58.1)),
               Row("voxels_fv", "voxels + FV", "voxels_fv", _surface(69.9, 76.3, 81.3)),
               Row("voxels_fvsv", "voxels + FV + SV", "voxels_fvsv", _surface(68.2, 74.4, 79.3)),
               Row("end_to_end_fv_without_tasks", "end-to-end without intermediate tasks, FV",
                   "end_to_end_fv_without_tasks", _surface(72.7, 78.9, 83.2)),
               Row("end_to_end_fvsv_without_tasks", "end-to-end without intermediate tasks, FV + SV",
                   "end_to_end_fvsv_without_tasks", _surface(70.5, 76.9, 81.3)),
               Row("end_to_end_fv", "end-to-end with intermediate tasks, FV", "end_to_end_fv", _surface(67.7, 74.7, 81.0)),
               Row("end_to_end_fvsv", "end-to-end with intermediate tasks, FV + SV", "end_to_end_fvsv",
                   _surface(65.8, 72.2, 76.6)))),
        Table("bodynet_inputs", "Table 4.1: the voxel network fed different inputs", ("voxel_iou", "surface_error_mm"),
              (Row("pose2d", "2D pose", _inputs("voxels", "pose2d"), {"voxel_iou": 47.7, "surface_error_mm": 80.9}),
               Row("rgb", "RGB", _inputs("voxels", "rgb"), {"voxel_iou": 51.8, "surface_error_mm": 79.1}),
               Row("segm", "Segm", _inputs("voxels", "segm"), {"voxel_iou": 54.6, "surface_error_mm": 79.1}),
               Row("pose3d", "3D pose", _inputs("voxels", "pose3d"), {"voxel_iou": 56.3, "surface_error_mm": 74.5}),
               Row("segm+pose3d", "Segm + 3D pose", _inputs("voxels", "segm+pose3d"),
                   {"voxel_iou": 56.4, "surface_error_mm": 74.0}),
               Row("rgb+pose2d+segm+pose3d", "RGB + 2D pose + Segm + 3D pose", _inputs("voxels", "rgb+pose2d+segm+pose3d"),
                   {"voxel_iou": 58.1, "surface_error_mm": 73.6}))),
        Table("bodynet_tasks", "Table 4.6: intermediate tasks, trained alone or end to end",
              ("part_iou", "pckh", "joint_error_mm"),
              (Row("single_task", "independent single-task", "pose3d",
                   {"part_iou": 59.2, "pckh": 82.7, "joint_error_mm": 46.1}),
               Row("multi_task", "joint multi-task (end to end, FV + SV)", "end_to_end_fvsv",
                   {"part_iou": 69.2, "pckh": 90.8, "joint_error_mm": 40.8}))),
        Table("pose3d_inputs", "Table 4.8: the 3D-pose network fed different inputs", ("joint_error_mm",),
              (Row("rgb", "RGB", _inputs("pose3d", "rgb"), {"joint_error_mm": 49.1}),
               Row("pose2d", "2D pose", _inputs("pose3d", "pose2d"), {"joint_error_mm": 55.9}),
               Row("segm", "Segm", _inputs("pose3d", "segm"), {"joint_error_mm": 48.1}),
               Row("pose2d+segm", "2D pose + Segm", _inputs("pose3d", "pose2d+segm"), {"joint_error_mm": 47.7}),
               Row("rgb+pose2d+segm", "RGB + 2D pose + Segm", _inputs("pose3d", "rgb+pose2d+segm"),
                   {"joint_error_mm": 46.1}))),
        Table("motion_inputs", "Seed 001: the 3D-pose network fed motion (paper: PA-MPJPE on 3DPW)",
              ("joint_error_mm",),
              (_motion("rendered", "rgb", 105.6), _motion("rendered", "flow", 100.1),
               _motion("estimated", "flow", 100.1), _motion("rendered", "pose2d", 77.6),
               _motion("rendered", "rgb+pose2d", 82.4), _motion("rendered", "flow+pose2d", 74.7),
               _motion("estimated", "flow+pose2d", 74.7))),
    )
}  # fmt: skip


def read_summary(path: str | Path) -> dict:
    return read_json_record(path, "evaluation summary", ("measures",))


def build(table: Table, summaries: dict[str, dict]) -> pd.DataFrame:
    """One row per table row: ours, then the paper's (`paper_<column>`) for each column."""
    missing = [row.key for row in table.rows if row.key not in summaries]
    if missing:
        raise InputError(f"{table.name}: no evaluation given for row(s) {', '.join(missing)}")
    records = []
    for row in table.rows:
        measures = summaries[row.key]["measures"]
        absent = [c for c in table.columns if c not in measures]
        if absent:
            raise InputError(f"{table.name}: evaluation of row {row.key!r} lacks {', '.join(absent)}")
        record = {"key": row.key, "method": row.label}
        for column in table.columns:
            record[column] = measures[column] * (100 if column in PERCENT else 1)
        for column in table.columns:
            record[f"paper_{column}"] = row.paper.get(column, np.nan)
        record["images"] = int(measures["images"])
        records.append(record)
    return pd.DataFrame(records)


def orderings(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """For each pair of rows and each column the paper gives for both: whether our numbers
    order the two rows as the paper's do."""
    records = []
    for column in table.columns:
        paper, ours = frame[f"paper_{column}"], frame[column]
        for a in range(len(frame)):
            for b in range(a + 1, len(frame)):
                if np.isnan(paper[a]) or np.isnan(paper[b]) or paper[a] == paper[b]:
                    continue
                records.append({"column": column, "first": frame["key"][a], "second": frame["key"][b],
                                "paper_first_better": _better(column, paper[a], paper[b]),
                                "ours_first_better": _better(column, ours[a], ours[b])})  # fmt: skip
    result = pd.DataFrame(records, columns=["column", "first", "second", "paper_first_better", "ours_first_better"])
    result["holds"] = result["paper_first_better"] == result["ours_first_better"]
    return result


def _better(column: str, a: float, b: float) -> bool:
    return a < b if column.startswith(LOWER_IS_BETTER) else a > b
