"""Training and measuring VNect's location-map network on the pipeline's prepared crops, and
the direct regression the thesis compares it with.

Shapes: B batch, J = 16 joints, S×S input crops, s×s = S/8 × S/8 maps.

The loss is the thesis' (§5.2): the heatmaps' squared error against Gaussians at the joints,
and each location map's squared error weighted by its joint's true heatmap,
‖H_gt ⊙ (X − X_gt)‖² (and Y, Z), so that only the values near the joint are learnt; the
parent-relative maps are supervised the same way (both in decimetres), with a weight tapered linearly over
training (intermediate supervision). Crops are zoomed at random about their centre by a factor
in 1 ± `scale` (the 2D targets follow; the 3D ones are the body's and do not). The direct
regression (`head` "regression", `PoseRegression`) is trained on the same crops, zoomed alike,
with the squared error of its pelvis-relative joints (decimetres) as its loss.

Measured (`joint_measures`): MPJPE, PA-MPJPE, 3DPCK at 150 mm and its AUC, and the heatmap
peaks' 2D error where there are heatmaps. Table 5.2's inexact crops are emulated by `jittered`:
each corner of the crop moved by up to a share of its side, the box resampled to the crop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import InputError
from pipeline.evaluation.measures import joint_measures as evaluation_joint_measures
from pipeline.meters import run_steps
from pipeline.models.selecsls import SelecSLSConfig
from pipeline.models.vnect import PELVIS, PoseRegression, VNect, parent_relative, read_out
from pipeline.seeding import seeded_generator, torch_seed
from pipeline.training.samples import SampleSet, gaussian_maps

log = logging.getLogger("pipeline.realtime")

HEADS = ("location_maps", "regression")
STRIDE = 8  # input pixels per map pixel
HEATMAP_SIGMA = 1.0  # map pixels: a 3×3 core at s = S/8, as BodyNet's 7×7 at S/4
# metres per location-map unit: in decimetres the masked location error weighs as much as the
# heatmaps' (in metres its gradient is a hundredth, and 64 crops take thousands of steps to learn)
LOCATION_UNIT = 0.1


@dataclass(frozen=True)
class VNectSettings:
    """How the network is built and trained (the config's `realtime` section)."""

    head: str  # "location_maps" (VNect) or "regression" (the thesis' direct regression)
    depth: str  # SelecSLS's levels: "42", "60" or "84"
    width: float  # the levels' widths, scaled (1.0: the thesis')
    features: int  # the head's channels
    iterations: int
    batch_size: int
    learning_rate: float
    lr_drop: float  # the share of iterations after which the rate is a tenth
    intermediate_weight: tuple[float, float]  # the parent-relative maps' weight, first and last iteration
    scale: float  # crops zoomed by a factor in 1 ± scale
    eval_every: int
    eval_samples: int
    seed: int


def build_network(settings: VNectSettings, size: int) -> VNect | PoseRegression:
    """The network `settings.head` names, for crops of side `size`, its weights drawn from the
    seed alone."""
    torch.manual_seed(torch_seed(settings.seed, "vnect init"))
    backbone = SelecSLSConfig(depth=settings.depth, width=settings.width, grouped=True)
    if settings.head == "regression":
        return PoseRegression(backbone, size, features=settings.features)
    return VNect(backbone, features=settings.features)


def check_settings(settings: VNectSettings, samples: SampleSet) -> None:
    if settings.head not in HEADS:
        raise InputError(f"realtime: head {settings.head!r} is not one of {', '.join(HEADS)}")
    size = samples.sizes.input
    if size % (2 * STRIDE):
        raise InputError(f"realtime: the crops ({size} px) must be a multiple of {2 * STRIDE} pixels")
    if settings.width * 32 < 4:
        raise InputError(f"realtime.width: {settings.width} leaves the stem under 4 channels")


def batch_arrays(samples: SampleSet, rows: np.ndarray) -> dict[str, torch.Tensor]:
    """The crops (B, 3, S, S) in [0, 1], the joints at map scale (B, J, 2) and the pelvis-relative
    camera-frame joints (B, J, 3) of the samples at `rows`."""
    a = samples.arrays
    rows = np.sort(rows) if samples.rows is None else samples.rows[np.sort(rows)]
    rgb = torch.from_numpy(np.asarray(a["rgb"][rows])).permute(0, 3, 1, 2).float() / 255
    sizes = samples.sizes
    ratio = sizes.input / STRIDE / sizes.heatmap  # map pixels a heatmap pixel, pixel centres kept aligned
    points = (torch.from_numpy(np.asarray(a["joints"][rows], np.float32)) + 0.5) * ratio - 0.5
    camera = torch.from_numpy(np.asarray(a["joints_camera"][rows], np.float32))
    return {"rgb": rgb, "points": points, "joints": camera - camera[:, PELVIS : PELVIS + 1], "camera": camera}


def zoomed(batch: dict[str, torch.Tensor], factors: torch.Tensor) -> dict[str, torch.Tensor]:
    """The crops zoomed about their centre by `factors` (B,) (> 1: larger), the 2D points with them."""
    b, _, size, _ = batch["rgb"].shape
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / factors
    grid = F.affine_grid(theta, list(batch["rgb"].shape), align_corners=False)
    rgb = F.grid_sample(batch["rgb"], grid, align_corners=False, padding_mode="zeros")
    centre = size / STRIDE / 2 - 0.5  # the map's centre, in map pixels
    points = (batch["points"] - centre) * factors[:, None, None] + centre
    return {**batch, "rgb": rgb, "points": points}


def jittered(batch: dict[str, torch.Tensor], offsets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The crops (B, 3, S, S) with the corners x0, y0, x1, y1 of their box moved by `offsets`
    (B, 4, shares of the side; > 0: right, down) and the moved box resampled to S×S (its
    outside black), the 2D points (map pixels) with them."""
    b, _, size, _ = batch["rgb"].shape
    offsets = offsets.float()
    scale = torch.stack([1 + offsets[:, 2] - offsets[:, 0], 1 + offsets[:, 3] - offsets[:, 1]], dim=1)  # (B, 2)
    shift = torch.stack([offsets[:, 0] + offsets[:, 2], offsets[:, 1] + offsets[:, 3]], dim=1)  # normalised units
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale[:, 0], scale[:, 1]
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(batch["rgb"].shape), align_corners=False)
    rgb = F.grid_sample(batch["rgb"], grid, align_corners=False, padding_mode="zeros")
    maps = size / STRIDE
    normalised = (batch["points"] + 0.5) / maps * 2 - 1
    moved = (normalised - shift[:, None]) / scale[:, None]
    return {**batch, "rgb": rgb, "points": (moved + 1) / 2 * maps - 0.5}


def regression_loss(outputs: dict[str, torch.Tensor], joints: torch.Tensor) -> dict[str, torch.Tensor]:
    """The direct regression's loss: the squared error of its joints (decimetres), summed over
    the coordinates and meaned over the batch and joints."""
    return {"joints": ((outputs["joints"].float() - joints / LOCATION_UNIT) ** 2).sum(-1).mean()}


def vnect_loss(
    outputs: dict[str, torch.Tensor], points: torch.Tensor, joints: torch.Tensor, intermediate: float
) -> dict[str, torch.Tensor]:
    """The loss terms (each a mean over the batch and joints of a sum over the map):
    'heatmaps', 'locations' (X, Y, Z weighted by the true heatmaps) and 'deltas' (the
    parent-relative maps, likewise, times `intermediate`)."""
    size = outputs["heatmaps"].shape[-1]
    truth = gaussian_maps(points, size, HEATMAP_SIGMA)  # (B, J, s, s)
    weight = truth[:, :, None]

    def masked(maps: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return ((weight * (maps.float() - values[..., None, None])) ** 2).sum((-3, -2, -1)).mean()

    joints = joints / LOCATION_UNIT
    terms = {
        "heatmaps": ((outputs["heatmaps"].float() - truth) ** 2).sum((-2, -1)).mean(),
        "locations": masked(outputs["locations"], joints),
        "deltas": intermediate * masked(outputs["deltas"], parent_relative(joints)),
    }
    return terms


def tapered(settings: VNectSettings, iteration: int) -> float:
    """The parent-relative maps' weight at `iteration` (0-based): linear from first to last."""
    first, last = settings.intermediate_weight
    return first + (last - first) * iteration / max(settings.iterations - 1, 1)


@torch.no_grad()
def predict(
    model: VNect | PoseRegression,
    samples: SampleSet,
    rows: np.ndarray,
    batch_size: int = 32,
    jitter: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The network's pelvis-relative joints (N, J, 3) for the samples at `rows`, and with
    location maps its 2D peaks (N, J, 2, map pixels), the truth beside them; `jitter` (N, 4):
    each crop's corners moved first (`jittered`)."""
    model.eval()
    parts: dict[str, list] = {"joints": [], "points": [], "truth": [], "truth_points": []}
    for start in range(0, len(rows), batch_size):
        batch = batch_arrays(samples, rows[start : start + batch_size])
        if jitter is not None:
            batch = jittered(batch, torch.from_numpy(jitter[start : start + batch_size]))
        outputs = model(batch["rgb"])
        if "heatmaps" in outputs:
            points, joints = read_out(outputs["heatmaps"].float(), outputs["locations"].float() * LOCATION_UNIT)
            parts["points"].append(points.float())
            parts["truth_points"].append(batch["points"])
        else:
            joints = outputs["joints"].float() * LOCATION_UNIT
        parts["joints"].append(joints - joints[:, PELVIS : PELVIS + 1])
        parts["truth"].append(batch["joints"])
    return {name: torch.cat(values).numpy() for name, values in parts.items() if values}


def joint_measures(predicted: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per image: the evaluation's 3D-joint measures (`pipeline.evaluation.measures.joint_measures`)
    and, where there are heatmaps, the 2D peaks' mean error (map px)."""
    result = evaluation_joint_measures(torch.from_numpy(predicted["joints"]), torch.from_numpy(predicted["truth"]))
    if "points" in predicted:
        result["peak_error_px"] = np.linalg.norm(predicted["points"] - predicted["truth_points"], axis=-1).mean(axis=1)
    return result


def measures(model: VNect, samples: SampleSet, rows: np.ndarray) -> dict[str, float]:
    return {name: float(values.mean()) for name, values in joint_measures(predict(model, samples, rows)).items()}


def train(
    name: str, model: VNect, train_set: SampleSet, test_set: SampleSet, settings: VNectSettings, run=None, progress=True
) -> tuple[list[dict], list[dict]]:
    """Train `model` in place; returns the history (one row per evaluation: the mean losses
    since the last, the test crops' measures and a fixed subset of training crops', prefixed
    `train_`; the untrained network's first) and every iteration's losses."""
    check_settings(settings, train_set)
    torch.manual_seed(torch_seed(settings.seed, "vnect train", name))
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    pick = seeded_generator(settings.seed, "vnect evaluation", name)
    tested = np.sort(pick.choice(len(test_set), min(settings.eval_samples, len(test_set)), replace=False))
    seen = np.sort(pick.choice(len(train_set), min(settings.eval_samples, len(train_set)), replace=False))

    def evaluated() -> dict[str, float]:
        row = measures(model, test_set, tested)
        return row | {f"train_{k}": v for k, v in measures(model, train_set, seen).items()}

    def step(iteration: int):
        rng = seeded_generator(settings.seed, "vnect batch", name, iteration)
        batch = batch_arrays(train_set, rng.choice(len(train_set), settings.batch_size, replace=False))
        if settings.scale:
            factors = torch.from_numpy(rng.uniform(1 - settings.scale, 1 + settings.scale, settings.batch_size))
            batch = zoomed(batch, factors.float())
        outputs = model(batch["rgb"])
        if settings.head == "regression":
            terms = regression_loss(outputs, batch["joints"])
        else:
            terms = vnect_loss(outputs, batch["points"], batch["joints"], tapered(settings, iteration))
        return sum(terms.values()), terms

    return run_steps(name, model, optimiser, settings, step, evaluated, "samples_per_second", log, run, progress)
