"""Training the frame model, then the video model from it (Liu, Akhtar & Mian, 2019, §4.3).

The frame model learns from single frames drawn at random from the training clips; the video
model, its encoder and regressor copied from the frame model, from windows of `window`
consecutive frames cut at random from them, every frame's losses summed with the shape's
smoothness. Both use Adam with the rate divided by 10 after `lr_drop` of the iterations (the
paper's Adam, batch 16; its rate is lost from the text). Every draw comes from the config's
seed, the model's name and the iteration, so a CPU run repeats bit for bit.

Shapes: B frames or clips, T frames a window, P parameters (`network`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.body_model.model import BodyModel
from pipeline.errors import InputError
from pipeline.meters import run_steps
from pipeline.seeding import seeded_generator, torch_seed
from pipeline.training.loop import TRAINING_PREFIX
from pipeline.video_mesh import losses
from pipeline.video_mesh.data import FLIP_X, MeshClips
from pipeline.video_mesh.network import FrameModel, MeshNetworkConfig, VideoModel, mean_parameters, split_parameters

log = logging.getLogger("pipeline.video_mesh")


@dataclass(frozen=True)
class MeshTrainSettings:
    """One model's training (the config's `video_mesh.train`, and the row's losses)."""

    iterations: int
    batch_size: int  # frames for the frame model, clips for the video model
    window: int  # the video model's frames a clip
    learning_rate: float
    lr_drop: float
    weights: dict[str, float]  # each loss's (`losses.LOSSES`); 0 leaves it out
    eval_every: int
    seed: int


def check_settings(settings: MeshTrainSettings, frames: int) -> None:
    unknown = set(settings.weights) - set(losses.LOSSES)
    if unknown:
        raise InputError(f"video_mesh.train.weights: unknown loss(es) {sorted(unknown)}; known: {losses.LOSSES}")
    if not 1 <= settings.window <= frames:
        raise InputError(f"video_mesh.train.window: {settings.window} frames, the clips have {frames}")


def images(batch: torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., S, S, 3) -> float (..., 3, S, S) in [0, 1]."""
    return batch.movedim(-1, -3).float() / 255


def frame_terms(
    body: BodyModel, theta: torch.Tensor, truth: dict[str, torch.Tensor], weights: dict[str, float]
) -> dict[str, torch.Tensor]:
    """Each weighted loss of frames' Θ (B, P) against their truth (`frame_truth`)."""
    parameters = split_parameters(theta)
    joints = losses.posed_joints(body, parameters["rotations"], parameters["betas"]).float()
    has_3d = torch.ones(len(theta), dtype=torch.bool)
    terms = {
        "reprojection": losses.reprojection_loss(joints, parameters["camera"], truth["points"], truth["visible"]),
        "joints": losses.joints_loss(joints, truth["joints"], has_3d),
        "smpl": losses.smpl_loss(
            parameters["rotations"], parameters["betas"], truth["rotations"], truth["betas"], has_3d
        ),
    }
    return {name: weights.get(name, 0.0) * value for name, value in terms.items() if weights.get(name, 0.0)}


def frame_truth(data: MeshClips, clips: np.ndarray, frames: np.ndarray) -> dict[str, torch.Tensor]:
    """The truth of the frames (clip, frame) given as two index arrays, flattened to (B, ...)."""
    return {
        "images": images(data.images[clips, frames]),
        "rotations": data.rotations[clips, frames],
        "betas": data.betas[clips],
        "joints": data.joints[clips, frames],
        "points": data.points[clips, frames],
        "visible": data.visible[clips, frames],
    }


def frame_step(model: FrameModel, body: BodyModel, data: MeshClips, settings: MeshTrainSettings, rng):
    """One batch of random frames' loss terms."""
    clips = rng.integers(len(data), size=settings.batch_size)
    frames = rng.integers(data.frames, size=settings.batch_size)
    truth = frame_truth(data, clips, frames)
    return frame_terms(body, model(truth["images"]), truth, settings.weights)


def video_step(model: VideoModel, body: BodyModel, data: MeshClips, settings: MeshTrainSettings, rng):
    """One batch of random windows' loss terms: every frame's, and the shape's smoothness."""
    b, t = settings.batch_size, settings.window
    clips = rng.integers(len(data), size=b)
    starts = rng.integers(data.frames - t + 1, size=b)
    frames = starts[:, None] + np.arange(t)
    rows = np.repeat(clips, t)
    truth = frame_truth(data, rows, frames.reshape(-1))
    theta = model(truth["images"].view(b, t, *truth["images"].shape[1:]))
    terms = frame_terms(body, theta.flatten(0, 1), truth, settings.weights)
    if settings.weights.get("smoothness", 0.0):
        betas = split_parameters(theta)["betas"]
        terms["smoothness"] = settings.weights["smoothness"] * losses.smoothness_loss(betas)
    return terms


@torch.no_grad()
def predict(model: FrameModel | VideoModel, data: MeshClips, batch_size: int = 4) -> torch.Tensor:
    """Θ (N, T, P) of every frame of every clip: the frame model frame by frame, the video model
    over each whole clip."""
    model.eval()
    thetas = []
    for start in range(0, len(data), batch_size):
        clips = images(data.images[start : start + batch_size])
        if isinstance(model, VideoModel):
            thetas.append(model(clips))
        else:
            thetas.append(model(clips.flatten(0, 1)).view(*clips.shape[:2], -1))
    return torch.cat(thetas)


@torch.no_grad()
def validation(model: FrameModel | VideoModel, body: BodyModel, data: MeshClips) -> dict[str, float]:
    """The validation clips' MPJPE (mm) and 2D error (frame units) of the model's prediction."""
    theta = predict(model, data)
    parameters = split_parameters(theta.flatten(0, 1))
    joints = losses.posed_joints(body, parameters["rotations"], parameters["betas"])
    truth = data.joints.flatten(0, 1)
    error = 1000 * (joints.float() - truth).norm(dim=-1).mean()
    points = losses.project(joints.float(), parameters["camera"])
    visible = data.visible.flatten(0, 1)
    error_2d = ((points - data.points.flatten(0, 1)).norm(dim=-1) * visible).sum() / visible.sum().clamp(min=1)
    return {"joint_error_mm": float(error), "point_error": float(error_2d)}


def measured(model, body: BodyModel, test_set: MeshClips, seen: MeshClips) -> dict[str, float]:
    """The test clips' measures, and the same on the fixed training clips `seen` (`train_...`):
    how far the model fits what it learns from, beside how far it carries to the test."""
    on_training = {f"{TRAINING_PREFIX}{k}": v for k, v in validation(model, body, seen).items()}
    return validation(model, body, test_set) | on_training


def train(
    name: str,
    model: FrameModel | VideoModel,
    body: BodyModel,
    train_set: MeshClips,
    test_set: MeshClips,
    settings: MeshTrainSettings,
    run=None,
    progress: bool = True,
) -> list[dict]:
    """Train `model` in place on `train_set`; the history, one row per evaluation (the untrained
    model's first): the mean losses since the last, MPJPE and 2D error on `test_set` and on as
    many training clips, spread evenly over the set."""
    check_settings(settings, train_set.frames)
    torch.manual_seed(torch_seed(settings.seed, "video_mesh train", name))
    frames_or_clips = video_step if isinstance(model, VideoModel) else frame_step
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    seen = train_set.take(np.linspace(0, len(train_set) - 1, min(len(train_set), len(test_set))).round().astype(int))

    def step(iteration: int):
        rng = seeded_generator(settings.seed, "video_mesh batch", name, iteration)
        terms = frames_or_clips(model, body, train_set, settings, rng)
        return sum(terms.values()), terms

    def evaluate() -> dict[str, float]:
        return measured(model, body, test_set, seen)

    history, _ = run_steps(name, model, optimiser, settings, step, evaluate, "examples_per_second", log, run, progress)
    return history


def initial_model(
    config: MeshNetworkConfig, train_set: MeshClips, seed: int, frame: FrameModel | None = None
) -> FrameModel | VideoModel:
    """The model training starts from, its weights drawn from `seed` alone: the video model
    built on `frame`, else a frame model whose regressor starts at the training clips' mean
    parameters."""
    torch.manual_seed(torch_seed(seed, "video_mesh init", "frame" if frame is None else "video"))
    if frame is not None:
        return VideoModel.from_frame_model(frame)
    flat = train_set.rotations.flatten(0, 1)
    return FrameModel(config, mean_parameters(flat, train_set.betas, camera_scale(train_set)))


def camera_scale(data: MeshClips) -> float:
    """The weak-perspective scale that best takes the clips' pelvis-relative joints to their 2D
    joints (frame units a metre), over every visible joint: the camera's start."""
    image = data.joints[..., :2] * torch.from_numpy(FLIP_X.diagonal()[:2].copy()).float()  # back to the image's x
    offsets = data.points - data.points[..., :1, :]
    weight = data.visible[..., None].float()
    return float((weight * offsets * image).sum() / (weight * image**2).sum().clamp(min=1e-12))
