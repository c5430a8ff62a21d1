"""Training the temporal model (Doersch & Zisserman, 2019, §3 and App. B).

Each step draws `batch_size` windows of `window` consecutive frames from the training clips
(the paper's 3 clips of 31 frames), builds their input channels (`inputs.channels`) and
minimises the weighted losses of every prediction, current and next (`losses.terms`), with Adam
and the rate divided by 10 after `lr_drop` of the iterations. The heads start at the training
frames' mean pose, so the untrained model is the constant guess. Every draw comes from the
config's seed, the model's name and the iteration: a CPU run repeats bit for bit.

At test a clip is read in pieces of the training window's length, each on its own (the
paper's clips: a model trained on 8 frames sees 8 at test): a piece's frames' joints are the
current head's and the last step's next (`network.clip_joints`).

Shapes: N clips of T frames, B windows of W frames, J = 24 joints; arrays as `dataset` stores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.meters import run_steps
from pipeline.seeding import seeded_generator, torch_seed
from pipeline.sim2real import inputs, losses
from pipeline.sim2real.network import TemporalPoseNet, clip_joints
from pipeline.training.loop import TRAINING_PREFIX

log = logging.getLogger("pipeline.sim2real")


@dataclass(frozen=True)
class Sim2RealTrainSettings:
    """One model's training (the config's `sim2real.train`)."""

    iterations: int
    batch_size: int  # windows a step
    window: int  # frames a window
    learning_rate: float
    lr_drop: float
    weights: dict[str, float]  # each loss's (`losses.LOSSES`); 0 leaves it out
    eval_every: int
    seed: int


def check_settings(settings: Sim2RealTrainSettings, frames: int) -> None:
    unknown = set(settings.weights) - set(losses.LOSSES)
    if unknown:
        raise InputError(f"sim2real.train.weights: unknown loss(es) {sorted(unknown)}; known: {losses.LOSSES}")
    if not 2 <= settings.window <= frames:
        raise InputError(f"sim2real.train.window: {settings.window} frames; the clips have {frames} (≥ 2 needed)")


def windows(data: dict[str, np.ndarray], kinds, clips, starts, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The input channels (B, W − 1, C, S, S) and joints (B, W, J, 3) of the windows of `length`
    frames starting at `starts` (B,) in `clips` (B,)."""
    channels, joints = [], []
    for clip, start in zip(clips, starts):
        span = slice(start, start + length)
        flows = data["flows"][clip, start : start + length - 1].astype(np.float32)
        frames, points, visible, blank = (data[name][clip, span] for name in ("frames", "points", "visible", "blank"))
        channels.append(inputs.channels(kinds, frames, flows, points, visible, blank))
        joints.append(data["joints"][clip, span])
    return torch.from_numpy(np.stack(channels)), torch.from_numpy(np.stack(joints)).float()


def weighted_terms(predicted, joints, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    terms = losses.terms(predicted, joints)
    return {name: weights[name] * value for name, value in terms.items() if weights.get(name, 0.0)}


def chunks(frames: int, length: int) -> list[tuple[int, int]]:
    """(start, length) of the pieces a clip of `frames` frames is read in, `length` frames each
    and the last what remains (a piece of one frame joins the one before: a step needs two)."""
    starts = list(range(0, frames, length))
    pieces = [(start, min(length, frames - start)) for start in starts]
    if len(pieces) > 1 and pieces[-1][1] < 2:
        start, size = pieces[-2]
        pieces[-2:] = [(start, size + pieces[-1][1])]
    return pieces


@torch.no_grad()
def predict(
    model: TemporalPoseNet, data: dict[str, np.ndarray], kinds, window: int, batch_size: int = 4
) -> torch.Tensor:
    """The joints (N, T, J, 3) the model gives every frame of every clip, each clip read in
    pieces of `window` frames (the length it was trained on), each piece on its own."""
    model.eval()
    count, frames = data["frames"].shape[:2]
    predicted = []
    for first in range(0, count, batch_size):
        clips = np.arange(first, min(first + batch_size, count))
        pieces = []
        for start, length in chunks(frames, window):
            channels, _ = windows(data, kinds, clips, np.full(len(clips), start), length)
            pieces.append(clip_joints(model(channels)))
        predicted.append(torch.cat(pieces, dim=1))
    return torch.cat(predicted)


def frame_errors_mm(predicted: torch.Tensor, truth: torch.Tensor) -> dict[str, np.ndarray]:
    """Each frame's MPJPE and PA-MPJPE (mm) of joints (..., J, 3) against the truth."""
    flat, true = predicted.reshape(-1, *predicted.shape[-2:]), truth.reshape(-1, *truth.shape[-2:]).float()
    shape = predicted.shape[:-2]
    aligned = losses.procrustes_aligned(flat, true)
    return {
        "joint_error_mm": 1000 * losses.joint_distance(flat, true).reshape(shape).numpy(),
        "aligned_error_mm": 1000 * losses.joint_distance(aligned, true).reshape(shape).numpy(),
    }


def validation(model: TemporalPoseNet, data: dict[str, np.ndarray], kinds, window: int) -> dict[str, float]:
    errors = frame_errors_mm(predict(model, data, kinds, window), torch.from_numpy(data["joints"]))
    return {name: float(value.mean()) for name, value in errors.items()}


def subset(data: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {name: value[rows] for name, value in data.items()}


def mean_pose(data: dict[str, np.ndarray]) -> torch.Tensor:
    """(J, 3) the training frames' mean pelvis-relative joints: the constant guess."""
    return torch.from_numpy(data["joints"].reshape(-1, *data["joints"].shape[-2:]).mean(0)).float()


def start_at(model: TemporalPoseNet, pose: torch.Tensor) -> None:
    """Both heads' output layers: weights scaled down, bias the pose (J, 3), so that the model
    starts near the constant guess."""
    with torch.no_grad():
        for head in (model.current, model.next):
            head[-1].weight.mul_(0.01)
            head[-1].bias.copy_(pose.reshape(-1))


def train(
    name: str,
    model: TemporalPoseNet,
    kinds: tuple[str, ...],
    train_set: dict[str, np.ndarray],
    test_set: dict[str, np.ndarray],
    settings: Sim2RealTrainSettings,
    run=None,
    progress: bool = True,
) -> tuple[list[dict], list[dict]]:
    """Train `model` in place on `train_set` reading `kinds`; the history, one row per evaluation
    (the untrained model's first): the mean losses since the last, MPJPE and PA-MPJPE on
    `test_set` and on as many training clips, spread evenly over the set (`train_...`); and
    every step's losses."""
    count, frames = train_set["frames"].shape[:2]
    check_settings(settings, frames)
    torch.manual_seed(torch_seed(settings.seed, "sim2real train", name))
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    seen = subset(train_set, np.linspace(0, count - 1, min(count, len(test_set["frames"]))).round().astype(int))

    def step(iteration: int):
        rng = seeded_generator(settings.seed, "sim2real batch", name, iteration)
        clips = rng.integers(count, size=settings.batch_size)
        starts = rng.integers(frames - settings.window + 1, size=settings.batch_size)
        channels, joints = windows(train_set, kinds, clips, starts, settings.window)
        terms = weighted_terms(model(channels), joints, settings.weights)
        return sum(terms.values()), terms

    def evaluate() -> dict[str, float]:
        window = settings.window
        on_training = {f"{TRAINING_PREFIX}{k}": v for k, v in validation(model, seen, kinds, window).items()}
        return validation(model, test_set, kinds, window) | on_training

    return run_steps(name, model, optimiser, settings, step, evaluate, "examples_per_second", log, run, progress)
