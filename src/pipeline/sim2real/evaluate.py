"""The temporal model's tables (Doersch & Zisserman, 2019, Tables 1 and 2 in kind).

Every row is measured on the same test clips (unseen people, motions and backgrounds, a
moving camera, the person tracked): each clip's mean PA-MPJPE and MPJPE over its frames (mm,
pelvis-relative joints, SMPL's 24), the rows' means with 95 % bootstrap intervals over the
clips, and the paper's orderings judged on paired differences (`statistics.comparison`).

Rows:
    constant              the training frames' mean pose, for every frame
    <inputs>              the model trained on the full construction reading those inputs
                          (Table 1: rgb, flow, keypoints and their pairs)
    no_occlusions, untracked, static
                          flow + keypoints trained on the other constructions (the paper's
                          "no occlusions", "no background tracking", "static background")
    frames_<n>            flow + keypoints on the full construction, trained and read in clips
                          of n frames (the paper's clip-length study: 8, 16, 31, 56)
    nearest_training_pose an oracle: each test frame's nearest training pose (by MPJPE), the
                          floor of a model that can only repeat the poses it was shown

Shapes: N clips of T frames, J = 24 joints, M training frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from pipeline.evaluation import statistics
from pipeline.sim2real.train import frame_errors_mm

MEASURES = ("aligned_error_mm", "joint_error_mm")
CONSTRUCTION_ROWS = ("no_occlusions", "untracked", "static")  # flow + keypoints on each of these constructions
# the paper's figures (3DPW, PA-MPJPE, mm): Table 1 and the dataset-construction table
PAPER = {
    "rgb": {"aligned_error_mm": 105.6},
    "flow": {"aligned_error_mm": 100.1},
    "rgb+keypoints": {"aligned_error_mm": 82.4},
    "keypoints": {"aligned_error_mm": 77.6},
    "flow+keypoints": {"aligned_error_mm": 74.7},
    "no_occlusions": {"aligned_error_mm": 77.2},
    "untracked": {"aligned_error_mm": 80.3},
    "static": {"aligned_error_mm": 88.9},
}
# the paper's clip-length study (PA-MPJPE, mm): frames a clip -> its figure
PAPER_CLIP_LENGTHS = {8: 79.0, 16: 77.8, 31: 74.7, 56: 76.2}
# the paper's orderings, the first better than the second
ORDERINGS = (
    ("flow+keypoints", "keypoints"),
    ("keypoints", "rgb+keypoints"),
    ("rgb+keypoints", "flow"),
    ("flow", "rgb"),
    ("flow+keypoints", "no_occlusions"),
    ("no_occlusions", "untracked"),
    ("untracked", "static"),
)
# and what any learned row must do: beat the constant guess
REFERENCE = "constant"
ORACLE = "nearest_training_pose"


def describe(row: str, frames: int | None) -> dict[str, object]:
    """The table's description columns of a row read in clips of `frames` (None: no model)."""
    frames = "" if frames is None else frames
    if row == REFERENCE:
        return {"inputs": "", "construction": "", "frames": frames, "kind": "reference: the training frames' mean pose"}
    if row == ORACLE:
        return {"inputs": "", "construction": "", "frames": frames, "kind": "oracle: the nearest training pose"}
    if row in CONSTRUCTION_ROWS:
        return {"inputs": "flow+keypoints", "construction": row, "frames": frames, "kind": "temporal model"}
    if row.startswith("frames_"):
        return {"inputs": "flow+keypoints", "construction": "full", "frames": frames, "kind": "temporal model"}
    return {"inputs": row, "construction": "full", "frames": frames, "kind": "temporal model"}


def clip_length_study(frames: dict[str, int]) -> tuple[dict[str, dict], tuple[tuple[str, str], ...]]:
    """The clip-length rows (`frames_<n>`, and flow + keypoints at its own length) of a run
    whose rows read clips of `frames` ({row: n}): the paper's figure of each (the paper's
    length nearest to n) and its orderings (longer better up to 31 frames; 31 better than 56)."""
    rows = {row: n for row, n in frames.items() if row.startswith("frames_") or row == "flow+keypoints"}
    if len(rows) < 2:
        return {}, ()
    nearest = {row: min(PAPER_CLIP_LENGTHS, key=lambda length: abs(length - n)) for row, n in rows.items()}
    paper = {row: {"aligned_error_mm": PAPER_CLIP_LENGTHS[length]} for row, length in nearest.items()}
    by_length = sorted(rows, key=rows.get)
    orderings = []
    for shorter, longer in zip(by_length, by_length[1:]):
        if nearest[longer] <= 31:
            orderings.append((longer, shorter))
        elif nearest[shorter] >= 31:
            orderings.append((shorter, longer))
    return {row: figures for row, figures in paper.items() if row != "flow+keypoints"}, tuple(orderings)


def nearest_training_poses(truth: np.ndarray, training: np.ndarray, chunk: int = 512) -> np.ndarray:
    """For each test pose (..., J, 3), the training pose (M, J, 3) nearest by MPJPE."""
    flat = truth.reshape(-1, *truth.shape[-2:])
    bank = torch.from_numpy(training.reshape(len(training), -1)).double()
    found = []
    for first in range(0, len(flat), chunk):
        poses = torch.from_numpy(flat[first : first + chunk]).double()
        distances = (poses[:, None] - bank.view(1, len(bank), -1, 3)).norm(dim=-1).mean(-1)
        found.append(training[distances.argmin(dim=1).numpy()])
    return np.concatenate(found).reshape(truth.shape)


def clip_rows(predictions: dict[str, np.ndarray], truth: np.ndarray, stems: np.ndarray) -> pd.DataFrame:
    """One line per row and clip: the clip's mean of each measure over its frames; predictions
    {row: (N, T, J, 3)}, truth (N, T, J, 3)."""
    lines = []
    for row, joints in predictions.items():
        errors = frame_errors_mm(torch.as_tensor(joints), torch.as_tensor(truth))
        per_clip = {name: value.mean(axis=1) for name, value in errors.items()}
        for n, stem in enumerate(stems):
            lines.append({"row": row, "clip": str(stem)} | {name: float(per_clip[name][n]) for name in MEASURES})
    return pd.DataFrame(lines)


def tables(clips: pd.DataFrame, seed: int, frames: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table (each row's measures with intervals and the paper's figures) and the orderings
    judged: the paper's, then every learned row against the constant; `frames` {row: the clip
    length it reads} of the learned rows."""
    rows = list(dict.fromkeys(clips["row"]))
    learned = [row for row in rows if row not in (REFERENCE, ORACLE)]
    lengths_paper, lengths_orderings = clip_length_study(frames)
    orderings = ORDERINGS + lengths_orderings + tuple((row, REFERENCE) for row in learned)
    described = {row: describe(row, frames.get(row)) for row in rows}
    return statistics.comparison(clips, seed, described, orderings, MEASURES, PAPER | lengths_paper)
