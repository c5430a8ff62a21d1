"""A trained BodyNet evaluated image by image, as the paper measures it, by one of four
methods:

    voxels            the body model fitted to the predicted voxels and 3D joints (Eq. 4.6)
    smplify           SMPLify++ on the predicted silhouette, 2D joints and 3D joints
    shape_regression  the regressed shape, posed by the predicted 3D joints
    tasks             no body: the intermediate tasks only (PCKh, part IoU and accuracy, 3D
                      joints, SURREAL's depth measures where the depth network is trained,
                      and the part voxels' intersections and unions where that network is)

The network may also be a reference predictor (`pipeline.evaluation.references`: a
constant, or the truth), measured and fitted the same way.

Per image: PCKh@0.5 (correct and visible joints), part intersections, unions and true pixels
(per part: the paper's part IoU and SURREAL's pixel accuracy are over the whole test set),
the depth RMSE and st-RMSE (mm), 3D joint error (root-centred, and
Procrustes-aligned, mm), and for the body methods the surface error (mm) of the fitted body
against the annotated one, the voxel IoU and the front silhouette's IoU/F1/accuracy (of the
network's voxels for `voxels`, of the fitted body voxelised as the ground truth is for the
baselines), and the true shape's deviation from the mean shape (which picks s20/s10).

Placement of the fitted body before its surface error is taken: `true_box` (the paper's:
moved and scaled into the true body's box, so that translation and scale are given) or
`crop` (as fitted: from the crop, the focal length and the true root depth).

Shapes: B images, D voxel size, s heatmap size, J = 16 joints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.cli import parse_pair
from pipeline.errors import InputError
from pipeline.evaluation.choices import METHODS, NEEDS, PLACEMENTS
from pipeline.evaluation.exemplars import PoseExemplars
from pipeline.evaluation.frames import (
    camera_to_image,
    crop_to_image,
    image_to_crop,
    mirror,
    place_in_true_box,
    true_body_camera,
    voxels_to_camera,
)
from pipeline.evaluation.measures import (
    PARTS,
    VOXEL_PART_NAMES,
    add_subsets,
    joint_measures,
    mask_iou,
    shape_deviation_mm,
    silhouette_scores,
    surface_error_mm,
)
from pipeline.fitting.body_fit import FitResult, FitSettings, fit_body
from pipeline.fitting.smplify import JOINT_3D_WEIGHT, contour_points, fit_smplify, normalised
from pipeline.fitting.voxel_fit import fit_to_voxels, pad_points, surface_points
from pipeline.models.bodynet import VOXEL_PART_CLASSES
from pipeline.synthesis.voxels import align_to_box, voxelize
from pipeline.training import metrics
from pipeline.training.samples import FLIP_JOINTS, FLIP_PARTS, FLIP_VOXEL_PARTS, SampleSet, inputs, make_batch

GENDERS = {0: "female", 1: "male"}


def body_models(items: list[str]) -> dict:
    """{gender: BodyModel} from `--body-model GENDER=PATH` items, each its own copy (float32)."""
    from pipeline.body_model.model import BodyModel

    models = {}
    for item in items:
        gender, path = parse_pair(item, "--body-model", keys=tuple(GENDERS.values()))
        models[gender] = copy.deepcopy(BodyModel.from_file(path)).float()
    return models


def check_genders(samples: SampleSet, models: dict, path, count: int | None = None) -> None:
    """An InputError naming `path` unless `models` holds every gender among the first
    `count` samples (all when None)."""
    genders = {GENDERS[int(g)] for g in set(samples.arrays["gender"][:count].tolist())}
    if genders - set(models):
        raise InputError(f"{path}: holds {sorted(genders)} bodies; give a --body-model for each")


@dataclass
class Evaluation:
    images: pd.DataFrame  # one row per image
    examples: list[dict] = field(default_factory=list)  # what the qualitative sheet shows


def method_for_stage(stage: str) -> str:
    """The evaluation a checkpoint of `stage` gets by default."""
    if stage == "shape_regression":
        return "shape_regression"
    return "voxels" if stage.startswith(("voxels", "end_to_end")) else "tasks"


def body_voxels(
    vertices: np.ndarray,
    faces: np.ndarray,
    resolution: int,
    crop_centre: np.ndarray,
    crop_side: float,
    focal: float,
    principal: np.ndarray,
) -> np.ndarray:
    """A camera-frame mesh (V, 3) voxelised as BodyNet's labels are (binvox-like, then
    placed under its silhouette's box in the crop's voxel grid): (D, D, D) bool."""
    grid = image_to_crop(camera_to_image(vertices, focal, principal), resolution, crop_centre, crop_side)
    low, high = np.ceil(grid.min(0)).astype(int), np.floor(grid.max(0)).astype(int)  # pixels whose centre it covers
    box = (int(low[0]), int(low[1]), int(high[0]), int(high[1]))
    return align_to_box(voxelize(vertices, faces, resolution), box, resolution)


class BodyFitter:
    """The body fit of one method for a batch's images of one gender."""

    def __init__(self, method: str, samples: SampleSet, settings: FitSettings) -> None:
        self.method, self.a = method, samples.arrays
        self.focal, self.principal = float(self.a["focal"]), np.asarray(self.a["principal"], np.float64)
        # SMPLify++'s objective is its own (means of its terms, its contour matched at every
        # step), whatever Eq. 4.6's form
        self.settings = (
            replace(settings, joint_weight=JOINT_3D_WEIGHT, objective="mean", matching="every_step")
            if method == "smplify"
            else settings
        )

    def __call__(
        self, model, chosen: list[int], indices: np.ndarray, outputs: dict, joints: torch.Tensor
    ) -> torch.Tensor:
        """Fitted vertices (b, V, 3) in the camera frame for images `chosen` of the batch."""
        return mirror(self.fit(model, chosen, indices, outputs, joints).vertices)

    def fit(self, model, chosen: list[int], indices: np.ndarray, outputs: dict, joints: torch.Tensor) -> FitResult:
        """The fit of images `chosen` of the batch (b of them), in the mirrored camera frame
        (`mirror`: x negated, where the body has its true handedness) in which it is made."""
        a, target = self.a, mirror(joints[chosen])
        if self.method == "voxels":
            probabilities = torch.sigmoid(outputs["voxels"][chosen].float()).numpy()
            resolution = probabilities.shape[-1]
            point_sets, weight_sets = [], []
            for k, p in zip(chosen, probabilities):
                i = indices[k]
                points, weights = surface_points(p)
                points = voxels_to_camera(
                    points,
                    resolution,
                    a["crop_centre"][i],
                    float(a["crop_side"][i]),
                    float(a["root_depth"][i]),
                    self.focal,
                    self.principal,
                )
                point_sets.append(mirror(points))
                weight_sets.append(weights)
            points, weights = pad_points(point_sets, weight_sets)
            fit = fit_to_voxels(model, points, weights, target, self.settings)
        elif self.method == "smplify":
            segm = torch.softmax(outputs["segm"][chosen].float(), dim=1).numpy()
            heat = metrics.peaks(outputs["pose2d"][chosen].float()).numpy()
            size = segm.shape[-1]
            contours, weights, joints2d = [], [], []
            for k, probabilities, peaks in zip(chosen, segm, heat):
                i = indices[k]
                to_image = lambda p: crop_to_image(p, size, a["crop_centre"][i], float(a["crop_side"][i]))  # noqa: E731
                contour = normalised(to_image(contour_points(1.0 - probabilities[0])), self.focal, self.principal)
                contours.append(contour * [-1.0, 1.0])  # mirrored
                weights.append(np.ones(len(contour), np.float32))
                joints2d.append(normalised(to_image(peaks), self.focal, self.principal) * [-1.0, 1.0])
            contour, contour_weights = pad_points(contours, weights)
            depth = torch.as_tensor(a["root_depth"][indices[chosen]])
            fit = fit_smplify(
                model, contour, contour_weights, torch.as_tensor(np.stack(joints2d)), target, depth, self.settings
            )
        else:
            betas = outputs["shape"][chosen].float()[:, : model.num_betas]
            fit = fit_body(model, target, None, self.settings, betas=betas)
        return fit


# How each output is mirrored back: its left/right channels exchanged (a permutation of dim 1,
# or None) and its last axis (x, in image and voxel grids alike) reversed.
MIRRORED_CHANNELS = {
    "pose2d": FLIP_JOINTS,
    "segm": FLIP_PARTS,
    "depth": None,
    "pose3d": FLIP_JOINTS,
    "voxels": None,
    "part_voxels": FLIP_VOXEL_PARTS,
}


def predict(
    network, batch: dict[str, torch.Tensor], wanted: tuple[str, ...], mirrored: bool = False
) -> dict[str, torch.Tensor]:
    """{subnetwork: last stack's output on the CPU} of a BodyNet or a reference predictor.
    With `mirrored`, a BodyNet also reads the mirror image of each crop, and each output is
    the mean of the two, the mirror's mirrored back (Newell et al.'s test-time flip; the
    networks train on mirrored crops); the shape parameters are the crop's own."""
    if hasattr(network, "predict"):
        return network.predict(batch, wanted)
    device = next(network.parameters()).device

    def last_stacks(fed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v[-1].cpu() for k, v in network(**inputs(fed, device), wanted=wanted).items()}

    outputs = last_stacks(batch)
    if not mirrored:
        return outputs
    seen = last_stacks(mirror_inputs(batch))
    for name, channels in MIRRORED_CHANNELS.items():
        if name in outputs:
            back = seen[name].flip(-1)
            if channels is not None:
                back = back[:, torch.as_tensor(channels, dtype=torch.long)]
            outputs[name] = (outputs[name] + back) / 2
    return outputs


def mirror_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch's network inputs (B, C, S, S) seen in a mirror: x reversed, and the flow's
    horizontal component (channel 0) negated."""
    mirrored = {"rgb": batch["rgb"].flip(-1)}
    if "flow" in batch:
        flow = batch["flow"].flip(-1).clone()
        flow[:, 0] = -flow[:, 0]
        mirrored["flow"] = flow
    return mirrored


@torch.no_grad()
def evaluate_network(
    network,
    samples: SampleSet,
    models: dict,
    method: str,
    settings: FitSettings | None = None,
    batch_size: int = 8,
    examples: int = 0,
    progress: bool = True,
    placement: str = "true_box",
    exemplars: PoseExemplars | None = None,
    mirrored: bool = False,
) -> Evaluation:
    """Measure `network` (a BodyNet, or a reference predictor; `network.trained` names its
    trained subnetworks) on every image of `samples`; keep what the qualitative sheet needs
    for the first `examples` images. The 3D joints measured are the joint volumes' peaks, or
    with `exemplars` the training poses nearest to them; the body fit reads the peaks. With
    `mirrored`, a BodyNet reads each crop and its mirror image (`predict`)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    if method != "tasks" and placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; one of {PLACEMENTS}")
    if method != "tasks" and settings is None:
        raise ValueError(f"method {method!r} fits a body: it needs the fit's settings")
    trained = set(getattr(network, "trained", {"pose2d", "segm", "pose3d", "voxels", "shape"}))
    missing = NEEDS[method] - trained
    if missing:
        raise ValueError(f"method {method!r} needs a trained {', '.join(sorted(missing))}")
    wanted = tuple(sorted((NEEDS[method] | {"pose2d", "segm", "pose3d", "depth", "part_voxels"}) & trained))
    if isinstance(network, torch.nn.Module):
        network.eval()
    a = samples.arrays
    focal, principal = float(a["focal"]), torch.as_tensor(a["principal"])
    fitter = BodyFitter(method, samples, settings) if method != "tasks" else None
    result = Evaluation(pd.DataFrame())
    rows = []
    for start in tqdm(range(0, len(samples), batch_size), desc="images", unit="batch", disable=not progress):
        indices = np.arange(start, min(start + batch_size, len(samples)))
        batch = make_batch(samples, indices)
        outputs = predict(network, batch, wanted, mirrored)
        measures: dict[str, np.ndarray] = {}
        for name, measure in TASK_MEASURES.items():
            if name in outputs:
                measures |= measure(outputs[name].float(), batch)
        joints = None
        if "pose3d" in outputs:
            joints, measured = read_joints(outputs["pose3d"].float(), batch, focal, principal, exemplars)
            measures |= joint_measures(measured, batch["joints_camera"])
        if fitter is not None:
            shown = max(0, min(examples - start, len(indices)))  # the batch's images on the sheet
            fitted, sheet = body_measures(fitter, models, samples, indices, batch, outputs, joints, placement, shown)
            measures |= fitted
            result.examples += sheet
        rows += image_rows(samples, indices, measures)
    result.images = add_subsets(pd.DataFrame(rows))
    return result


def pckh_measures(heatmaps: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Per image (B,): PCKh (BodyNet's and the head-normalised), with its correct and visible
    joint counts, of 2D heatmaps (B, J, s, s)."""
    measures = {}
    for name, reference in (("pckh", "bodynet"), ("pckh_head", "head")):
        correct, visible = metrics.pckh_per_image(heatmaps, batch, reference)
        measures[name] = correct / np.maximum(visible, 1)
        measures[f"{name}_correct"], measures[f"{name}_visible"] = correct, visible
    return measures


def part_measures(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Per image (B,): each part's pixel intersection, union and true pixels, of part logits
    (B, 15, s, s)."""
    i, u = (c.numpy() for c in metrics.part_counts_per_image(logits, batch["parts"]))
    truth = metrics.class_pixels(batch["parts"]).numpy()
    measures = {}
    for c in PARTS:
        measures[f"part_intersection_{c}"], measures[f"part_union_{c}"] = i[:, c], u[:, c]
        measures[f"part_truth_{c}"] = truth[:, c]
    return measures


def depth_measures(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Per image (B,): depth RMSE and st-RMSE (mm) of depth logits (B, 20, s, s)."""
    rmse, st_rmse = metrics.depth_errors_mm(logits, batch["depth_classes"])
    return {"depth_rmse_mm": rmse.numpy(), "depth_st_rmse_mm": st_rmse.numpy()}


def read_joints(
    volumes: torch.Tensor,
    batch: dict[str, torch.Tensor],
    focal: float,
    principal: torch.Tensor,
    exemplars: PoseExemplars | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, J, Z, s, s) joint volumes → camera-frame joints (B, J, 3): the fit's (the peaks:
    the body model and its pose prior are the fit's prior) and those measured (the peaks, or
    with `exemplars` the training poses nearest to them)."""
    peaks = metrics.volume_peaks(volumes)
    size, bins = volumes.shape[-1], volumes.shape[2]
    fitted = metrics.volume_to_camera(peaks, batch, size, bins, focal, principal)
    if exemplars is None:
        return fitted, fitted
    return fitted, metrics.volume_to_camera(exemplars(peaks), batch, size, bins, focal, principal)


def body_measures(
    fitter: BodyFitter,
    models: dict,
    samples: SampleSet,
    indices: np.ndarray,
    batch: dict[str, torch.Tensor],
    outputs: dict,
    joints: torch.Tensor,
    placement: str,
    shown: int,
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Per image (B,): the fitted body's surface error, shape deviation, voxel IoU and
    silhouette scores; and the first `shown` images' examples for the sheet."""
    measures: dict[str, np.ndarray] = {}
    voxels, fitted_sets, true_sets = fit_batch(fitter, models, indices, outputs, joints, samples, measures, placement)
    true_voxels = batch["voxels"].numpy() > 0.5
    measures["voxel_iou"] = mask_iou(voxels, true_voxels)
    front = voxels.any(axis=1)
    for name, value in silhouette_scores(front, batch["silhouette_front"].numpy() > 0.5).items():
        measures[f"silhouette_{name}"] = value
    sheet = [
        _example(samples, indices[k], voxels[k], true_voxels[k], fitted_sets[k], true_sets[k]) for k in range(shown)
    ]
    return measures, sheet


def image_rows(samples: SampleSet, indices: np.ndarray, measures: dict[str, np.ndarray]) -> list[dict]:
    """One row per image of the batch: which image it is, and its measures."""
    a = samples.arrays
    return [
        {
            "image": int(i),
            "clip": str(a["clip_names"][a["clip"][i]]),
            "frame": int(a["frame"][i]),
            "gender": GENDERS[int(a["gender"][i])],
            **{name: float(values[k]) for name, values in measures.items()},
        }
        for k, i in enumerate(indices)
    ]


def part_voxel_counts(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """Per image, each class's and the foreground's voxel intersection and union (B,) of part
    voxel logits (B, 7, D, D, D) against the true labels (B, D, D, D)."""
    i, u = (c.numpy() for c in metrics.part_counts_per_image(logits, labels, VOXEL_PART_CLASSES))
    counts = {}
    for c, name in enumerate(VOXEL_PART_NAMES):
        counts[f"part_voxel_intersection_{name}"], counts[f"part_voxel_union_{name}"] = i[:, c], u[:, c]
    predicted, truth = logits.argmax(dim=1) > 0, labels > 0
    counts["part_voxel_intersection_foreground"] = (predicted & truth).flatten(1).sum(1).numpy()
    counts["part_voxel_union_foreground"] = (predicted | truth).flatten(1).sum(1).numpy()
    return counts


# Each task's per-image measures, from its output and the batch.
TASK_MEASURES = {
    "pose2d": pckh_measures,
    "segm": part_measures,
    "depth": depth_measures,
    "part_voxels": lambda logits, batch: part_voxel_counts(logits, batch["part_voxels"]),
}


def fit_batch(
    fitter: BodyFitter,
    models: dict,
    indices: np.ndarray,
    outputs: dict,
    joints: torch.Tensor,
    samples: SampleSet,
    measures: dict,
    placement: str = "true_box",
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Fit each gender's images; fills surface error and shape deviation into `measures`,
    returns the voxels the measures compare ((B, D, D, D) bool) and the fitted and true
    vertices in the camera frame."""
    a = samples.arrays
    count, resolution = len(indices), samples.sizes.voxels
    surface, deviation = np.full(count, np.nan), np.full(count, np.nan)
    fitted_sets: list[np.ndarray] = [np.zeros((0, 3))] * count
    true_sets: list[np.ndarray] = [np.zeros((0, 3))] * count
    if fitter.method == "voxels":
        voxels = torch.sigmoid(outputs["voxels"].float()).numpy() > 0.5
    else:
        voxels = np.zeros((count, resolution, resolution, resolution), dtype=bool)
    for gender_code, gender in GENDERS.items():
        chosen = [k for k, i in enumerate(indices) if int(a["gender"][i]) == gender_code]
        if not chosen:
            continue
        model = models[gender]
        with torch.enable_grad():
            fitted = fitter(model, chosen, indices, outputs, joints)
        truths = [
            true_body_camera(
                model,
                a["pose"][indices[k]],
                a["shape"][indices[k]],
                float(a["zrot"][indices[k]]),
                a["joints_camera"][indices[k]].astype(np.float64),
                a["camera_rotation"][indices[k]] if "camera_rotation" in a else None,
            )[0]
            for k in chosen
        ]
        if placement == "true_box":
            placed = [place_in_true_box(v.double().numpy(), t) for v, t in zip(fitted, truths)]
            fitted = torch.as_tensor(np.stack(placed), dtype=torch.float32)
        surface[chosen] = surface_error_mm(fitted, torch.as_tensor(np.stack(truths), dtype=torch.float32)).numpy()
        pose = torch.as_tensor(a["pose"][indices[chosen]], dtype=torch.float32)
        betas = torch.as_tensor(a["shape"][indices[chosen], : model.num_betas], dtype=torch.float32)
        deviation[chosen] = shape_deviation_mm(model, pose, betas).numpy()
        for row, k in enumerate(chosen):
            fitted_sets[k], true_sets[k] = fitted[row].double().numpy(), truths[row]
            if fitter.method != "voxels":
                i = indices[k]
                voxels[k] = body_voxels(
                    fitted_sets[k],
                    model.faces.astype(np.int64),
                    resolution,
                    a["crop_centre"][i],
                    float(a["crop_side"][i]),
                    fitter.focal,
                    fitter.principal,
                )
    measures["surface_error_mm"], measures["shape_deviation_mm"] = surface, deviation
    return voxels, fitted_sets, true_sets


def _example(
    samples: SampleSet, i: int, voxels: np.ndarray, true_voxels: np.ndarray, fitted: np.ndarray, truth: np.ndarray
) -> dict:
    """An image's crop, the voxels measured and the true ones, and the fitted and true
    bodies in crop pixels."""
    a = samples.arrays
    size = samples.sizes.input
    focal, principal = float(a["focal"]), np.asarray(a["principal"], np.float64)

    def to_crop(vertices: np.ndarray) -> np.ndarray:
        return image_to_crop(
            camera_to_image(vertices, focal, principal), size, a["crop_centre"][i], float(a["crop_side"][i])
        )

    return {
        "rgb": np.asarray(a["rgb"][i]),
        "voxels": voxels,
        "true_voxels": true_voxels,
        "fitted": to_crop(fitted),
        "truth": to_crop(truth),
    }
