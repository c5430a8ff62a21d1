"""The test clips' meshes and joints, measured (Liu, Akhtar & Mian, 2019, Tables 2 and 3 in kind).

Rows, each a way to get every frame's SMPL parameters:

    constant        the training set's mean parameters in every frame (the regressor's start)
    smplify         SMPLify++ fitted frame by frame to the 3D-pose stage's networks' outputs
                    (`pipeline.video_mesh.smplify`): the paper's SMPLify
    frame           the frame model (the paper's HMR*), frame by frame
    frame_one_euro  the frame model's parameters 1 Euro filtered over the clip (VNect's 3D
                    setting: 0.8 Hz, β 0.4), a row the paper lacks
    video           the video model (MVIPER) over the whole clip
    frame_true_turn the frame model's parameters with the body's own rotation (the first) the
                    truth's: an oracle that parts the error of the body's orientation from the
                    rest of the pose and shape
    true_parameters the true rotations and shapes through the body model the networks pose
                    with (`video_mesh.gender`, HMR's neutral): the floor the clips' gendered
                    bodies leave them

Measures per clip, pelvis-relative, in the camera's frame, millimetres (the paper's formulas are
lost from its text; these are this project's, named after its):

    joint_error_mm              MPJPE over SMPL's 24 joints
    pa_joint_error_mm           the same after the best similarity transform, frame by frame
    vertex_error_mm             MPVPE: the mean vertex distance
    vertex_velocity_error_mm    MRVPV: the mean distance between each vertex's predicted and true
                                displacement from the frame before
    acceleration_error_mm       the joints' acceleration error (mm a frame², as HMMR and VIBE)
    shape_variation             MRSV: the mean change of β from frame to frame (the truth's is 0)

A row is Θ (N, T, P), or the body model's own parameters (`Bodies`: a fit's, whose shape may
have more coefficients than Θ's ten).

Shapes: N clips, T frames, V vertices, S shape coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from pipeline.body_model.model import BodyModel
from pipeline.evaluation import statistics
from pipeline.evaluation.measures import procrustes_error_mm
from pipeline.realtime.one_euro import VNECT_3D, filter_sequence
from pipeline.video_mesh import losses
from pipeline.video_mesh.data import MeshClips
from pipeline.video_mesh.network import PARAMETERS, six_values, split_parameters

CLIP_FPS = 30.0
ROWS = ("constant", "smplify", "frame", "frame_one_euro", "video", "frame_true_turn", "true_parameters")
MEASURES = (
    "joint_error_mm",
    "pa_joint_error_mm",
    "vertex_error_mm",
    "vertex_velocity_error_mm",
    "acceleration_error_mm",
    "shape_variation",
)
# the paper's Tables 2 and 3 on its own data (MPJPE, PA-MPJPE mm; MPVPE in its own units,
# read for the ordering only); HMR* is the frame model, MVIPER the video model
PAPER = {
    "smplify": {"joint_error_mm": 152.1, "pa_joint_error_mm": 109.3},
    "frame": {"joint_error_mm": 125.6, "pa_joint_error_mm": 77.6, "vertex_error_mm": 923.7, "shape_variation": 191.2},
    "video": {"joint_error_mm": 93.2, "pa_joint_error_mm": 60.5, "vertex_error_mm": 692.7, "shape_variation": 178.7},
}
# every measure: the paper's video model is better than its frame model (Tables 2 and 3)
ORDERED = MEASURES
# and both models better than SMPLify (Table 2), judged on every measure as well
BEATS_SMPLIFY = ("frame", "video")


@dataclass
class Bodies:
    """A row as the body model's parameters: rotations (..., 24, 3, 3) in the proper camera
    frame and shapes (..., S); indexed as Θ is (a clip: `bodies[n]`)."""

    rotations: torch.Tensor
    betas: torch.Tensor

    def __getitem__(self, index) -> Bodies:
        return Bodies(self.rotations[index], self.betas[index])


def one_euro(theta: torch.Tensor) -> torch.Tensor:
    """Each clip's parameters (N, T, P) 1 Euro filtered over time (VNect's 3D setting)."""
    filtered = [filter_sequence(clip.numpy().astype(np.float64), *VNECT_3D, rate=CLIP_FPS) for clip in theta]
    return torch.as_tensor(np.stack(filtered), dtype=theta.dtype)


def truth_parameters(data: MeshClips, scale: float) -> torch.Tensor:
    """The true Θ (N, T, P) of the clips (the camera's scale a constant; it is not measured)."""
    n, t = data.rotations.shape[:2]
    pose = six_values(data.rotations).reshape(n, t, -1)
    betas = data.betas[:, None].expand(n, t, -1)
    camera = torch.tensor([scale, 0.0, 0.0]).expand(n, t, 3)
    return torch.cat([pose, betas, camera], dim=-1)


def clip_measures(body: BodyModel, prediction: torch.Tensor | Bodies, truth: dict[str, np.ndarray]) -> dict[str, float]:
    """One clip's measures of its parameters (Θ (T, P), or `Bodies` of T frames), posed with
    `body`, against its true vertices (T, V, 3) and joints (T, 24, 3)."""
    if isinstance(prediction, Bodies):
        rotations, betas = prediction.rotations, prediction.betas
    else:
        parameters = split_parameters(prediction)
        rotations, betas = parameters["rotations"], parameters["betas"]
    with torch.no_grad():
        vertices, joints = losses.posed(body, rotations, betas)
    return posed_measures(vertices.double().numpy(), joints.double().numpy(), betas.double().numpy(), truth)


def posed_measures(
    vertices: np.ndarray, joints: np.ndarray, betas: np.ndarray, truth: dict[str, np.ndarray]
) -> dict[str, float]:
    """One clip's measures of its pelvis-relative vertices (T, V, 3), joints (T, 24, 3), metres,
    in the proper camera frame, and shapes (T, S), against the true vertices and joints."""
    true_vertices, true_joints = truth["vertices"], truth["joints"]
    velocity = np.diff(vertices, axis=0) - np.diff(true_vertices, axis=0)
    acceleration = np.diff(joints, n=2, axis=0) - np.diff(true_joints, n=2, axis=0)
    return {
        "joint_error_mm": float(1000 * np.linalg.norm(joints - true_joints, axis=-1).mean()),
        "pa_joint_error_mm": float(procrustes_error_mm(joints, true_joints).mean()),
        "vertex_error_mm": float(1000 * np.linalg.norm(vertices - true_vertices, axis=-1).mean()),
        "vertex_velocity_error_mm": float(1000 * np.linalg.norm(velocity, axis=-1).mean()),
        "acceleration_error_mm": float(1000 * np.linalg.norm(acceleration, axis=-1).mean()),
        "shape_variation": float(np.linalg.norm(np.diff(betas, axis=0), axis=-1).mean()),
    }


def true_meshes(models: dict[str, BodyModel], data: MeshClips, index: int) -> dict[str, np.ndarray]:
    """Clip `index`'s true pelvis-relative vertices and joints, through its own gender's model."""
    model = models[data.genders[index]]
    rotations = data.rotations[index]
    betas = data.betas[index].expand(len(rotations), -1)
    with torch.no_grad():
        vertices, joints = losses.posed(model, rotations, betas)
    return {"vertices": vertices.double().numpy(), "joints": joints.double().numpy()}


def evaluate_clips(
    predictions: dict[str, torch.Tensor | Bodies | dict[int, Bodies]],
    body: BodyModel,
    models: dict[str, BodyModel],
    data: MeshClips,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per clip and row of `predictions` ({row: Θ (N, T, P) or `Bodies` (N, T, ...), or
    for a row made for some of the clips only {clip index: Bodies (T, ...)}}, posed with
    `body`): the clip, its performance, the row and its measures against the truth, posed with
    its own gender's model of `models`."""
    from tqdm import tqdm

    rows = []
    for index in tqdm(range(len(data)), desc="test clips", unit="clip", disable=not progress):
        truth = true_meshes(models, data, index)
        for row, prediction in predictions.items():
            if isinstance(prediction, dict) and index not in prediction:
                continue
            measures = clip_measures(body, prediction[index], truth)
            rows.append({"clip": data.stems[index], "performance": data.performances[index], "row": row, **measures})
    return pd.DataFrame(rows)


def clip_predictions(predictions: dict[str, torch.Tensor | Bodies | dict[int, Bodies]], index: int) -> dict:
    """{row: its prediction of clip `index`} of the rows that made one (a row of some clips only
    lacks the others)."""
    return {
        row: prediction[index]
        for row, prediction in predictions.items()
        if not isinstance(prediction, dict) or index in prediction
    }


def row_predictions(
    frame_theta: torch.Tensor,
    video_theta: torch.Tensor,
    mean: torch.Tensor,
    data: MeshClips,
    smplify: dict[int, Bodies] | None = None,
) -> dict[str, torch.Tensor | dict[int, Bodies]]:
    """Θ (N, T, P) of every row (`ROWS`) from the two models' predictions, and the SMPLify
    row's fitted bodies ({clip index: (T, ...)}) where they are given."""
    n, t = frame_theta.shape[:2]
    truth = truth_parameters(data, float(mean[-3]))
    true_turn = frame_theta.clone()
    true_turn[..., :6] = truth[..., :6]  # the first rotation's six values
    fitted = {} if smplify is None else {"smplify": smplify}
    return {
        "constant": mean.expand(n, t, PARAMETERS),
        **fitted,
        "frame": frame_theta,
        "frame_one_euro": one_euro(frame_theta),
        "video": video_theta,
        "frame_true_turn": true_turn,
        "true_parameters": truth,
    }


def table(clips: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per row: each measure's mean over its clips with its 95 % bootstrap interval, the paper's
    figure where it has one, and for the video model each measure's paired difference from the
    frame model with its interval and whether the paper's ordering (video better) holds, is
    reversed or is undecided (`<measure>_vs_frame`, `<measure>_verdict`); for the frame and
    video models the same against SMPLify on the clips it was fitted to (`<measure>_vs_smplify`,
    `<measure>_vs_smplify_verdict`)."""
    names = clips["clip"].unique()
    by_row = {row: frame.set_index("clip") for row, frame in clips.groupby("row", sort=False)}
    by_row = {row: frame.loc[[name for name in names if name in frame.index]] for row, frame in by_row.items()}

    def bootstrapped(values: pd.Series, name: str) -> dict[str, float]:
        # rows of as many clips draw alike: paired differences resample the same clips
        counts = statistics.resample_counts(len(values), seed=seed)
        value, low, high = statistics.bootstrapped_mean(values, counts)
        return {name: value, f"{name}_low": low, f"{name}_high": high}

    def judged(values: pd.Series, name: str) -> dict[str, float | str]:
        difference = bootstrapped(values, name)
        verdict = statistics.verdict((difference[f"{name}_low"], difference[f"{name}_high"]), True, True)
        return difference | {f"{name}_verdict": verdict}

    result = []
    for row in [r for r in ROWS if r in by_row]:
        frame = by_row[row]
        record = {"row": row, "clips": len(frame)}
        for measure in MEASURES:
            record |= bootstrapped(frame[measure], measure)
            if measure in PAPER.get(row, {}):
                record[f"paper_{measure}"] = PAPER[row][measure]
        if row == "video" and "frame" in by_row:
            for measure in ORDERED:
                difference = judged(frame[measure] - by_row["frame"][measure], f"{measure}_vs_frame")
                verdict = difference.pop(f"{measure}_vs_frame_verdict")
                record |= difference | {f"{measure}_verdict": verdict}
        if row in BEATS_SMPLIFY and "smplify" in by_row:
            fitted = by_row["smplify"]
            for measure in MEASURES:
                record |= judged(frame.loc[fitted.index, measure] - fitted[measure], f"{measure}_vs_smplify")
        result.append(record)
    return pd.DataFrame(result).round(3)


# Table 4 of the paper (Human3.6M, protocol 1: MPJPE, PA-MPJPE mm): the video model trained
# with the 2D loss alone, with the 3D joints' or the SMPL parameters' loss added, and with all
LOSS_ROWS = {
    "l2d": ("reprojection",),
    "l2d_l3d": ("reprojection", "joints"),
    "l2d_smpl": ("reprojection", "smpl"),
    "all": ("reprojection", "joints", "smpl"),
}
PAPER_LOSSES = {
    "l2d": {"joint_error_mm": 139.0, "pa_joint_error_mm": 72.6},
    "l2d_l3d": {"joint_error_mm": 82.6, "pa_joint_error_mm": 56.4},
    "l2d_smpl": {"joint_error_mm": 110.7, "pa_joint_error_mm": 58.2},
    "all": {"joint_error_mm": 82.2, "pa_joint_error_mm": 54.0},
}
# the paper's orderings (first better than second) judged on each measure
LOSS_ORDERINGS = (("l2d_l3d", "l2d"), ("l2d_smpl", "l2d"), ("all", "l2d"), ("l2d_l3d", "l2d_smpl"))
COMPARED_MEASURES = ("joint_error_mm", "pa_joint_error_mm", "vertex_error_mm", "acceleration_error_mm")


def losses_table(clips: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 4 in kind from per-clip rows of the loss rows (`LOSS_ROWS`, as `evaluate_clips`
    writes them): `comparison` of the rows, the paper's orderings judged."""
    rows = {row: {"losses": "+".join(losses)} for row, losses in LOSS_ROWS.items()}
    return statistics.comparison(clips, seed, rows, LOSS_ORDERINGS, COMPARED_MEASURES, PAPER_LOSSES)


# The data claim (the paper's §3.2, untested there): the models trained on the captured motions
# alone, and with the poses interpolated between them added; the second better than the first
TRANSITION_ROWS = {
    "frame": {"model": "frame", "training": "captures"},
    "frame_transitions": {"model": "frame", "training": "captures+transitions"},
    "video": {"model": "video", "training": "captures"},
    "video_transitions": {"model": "video", "training": "captures+transitions"},
}
TRANSITION_ORDERINGS = (("frame_transitions", "frame"), ("video_transitions", "video"))


def transitions_table(clips: dict[str, pd.DataFrame], seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data claim from per-clip rows of `TRANSITION_ROWS` on each test set ({test set: rows
    as `evaluate_clips` writes them}): `comparison` on each, a column naming the test set."""
    tables, orderings = [], []
    for test_set, rows in clips.items():
        table, ordering = statistics.comparison(rows, seed, TRANSITION_ROWS, TRANSITION_ORDERINGS, COMPARED_MEASURES)
        table.insert(0, "test_set", test_set)
        ordering.insert(0, "test_set", test_set)
        tables.append(table)
        orderings.append(ordering)
    return pd.concat(tables, ignore_index=True), pd.concat(orderings, ignore_index=True)
