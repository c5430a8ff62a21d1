"""One trained BodyNet evaluated image by image, as the paper measures it.

For each test image: voxel IoU, 3D joint error (root-centred, mm), PCKh@0.5, the front
view's silhouette IoU/F1/accuracy against the true silhouette, and the body model fitted to
the predicted voxels and 3D joints (`pipeline.fitting.voxel_fit`, through
`pipeline.evaluation.frames`) with its surface error against the annotated body; plus each
image's true-shape deviation from the mean shape, from which s20/s10 are chosen.

Shapes: B images, D voxel size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.evaluation.frames import mirror, true_body_camera, voxels_to_camera
from pipeline.evaluation.measures import shape_deviation_mm, silhouette_scores, surface_error_mm
from pipeline.fitting.voxel_fit import FitSettings, fit_to_voxels, pad_points, surface_points
from pipeline.training import losses, metrics
from pipeline.training.samples import SampleSet, make_batch

GENDERS = {0: "female", 1: "male"}


def fit_batch(voxel_logits: torch.Tensor, joints: np.ndarray, indices: np.ndarray, samples: SampleSet,
              models: dict, settings: FitSettings) -> tuple[np.ndarray, np.ndarray]:
    """Surface error (mm) of the body fitted to predicted voxels (B, D, D, D) and camera-frame
    joints (B, 16, 3), and the true shape's deviation (mm), per image."""
    a = samples.arrays
    focal = float(a["focal"])
    probabilities = torch.sigmoid(voxel_logits.float()).numpy()
    resolution = probabilities.shape[-1]
    surface, deviation = np.full(len(indices), np.nan), np.full(len(indices), np.nan)
    for gender_code, gender in GENDERS.items():
        chosen = [k for k, i in enumerate(indices) if int(a["gender"][i]) == gender_code]
        if not chosen:
            continue
        model = models[gender]
        point_sets, weight_sets, truths = [], [], []
        for k in chosen:
            i = indices[k]
            points, weights = surface_points(probabilities[k])
            camera_points = voxels_to_camera(points, resolution, a["crop_centre"][i], float(a["crop_side"][i]),
                                             float(a["root_depth"][i]), focal, a["principal"])  # fmt: skip
            point_sets.append(mirror(camera_points))
            weight_sets.append(weights)
            truths.append(true_body_camera(model, a["pose"][i], a["shape"][i], float(a["zrot"][i]),
                                           a["joints_camera"][i].astype(np.float64))[0])  # fmt: skip
        points, weights = pad_points(point_sets, weight_sets)
        target = torch.as_tensor(mirror(joints[chosen]), dtype=torch.float32)
        fitted = mirror(fit_to_voxels(model, points, weights, target, settings).vertices)
        truth = torch.as_tensor(np.stack(truths), dtype=torch.float32)
        surface[chosen] = surface_error_mm(fitted, truth).numpy()
        pose = torch.as_tensor(a["pose"][indices[chosen]], dtype=torch.float32)
        betas = torch.as_tensor(a["shape"][indices[chosen], : model.num_betas], dtype=torch.float32)
        deviation[chosen] = shape_deviation_mm(model, pose, betas).numpy()
    return surface, deviation


@torch.no_grad()
def evaluate_network(network, samples: SampleSet, models: dict, settings: FitSettings | None = None,
                     batch_size: int = 8, progress: bool = True) -> pd.DataFrame:
    """One row per image of `samples` (a BodyNet whose voxel network is trained)."""
    settings = settings or FitSettings()
    network.eval()
    device = next(network.parameters()).device
    focal = float(samples.arrays["focal"])
    principal = torch.as_tensor(samples.arrays["principal"])
    rows = []
    starts = range(0, len(samples), batch_size)
    for start in tqdm(starts, desc="images", unit="batch", disable=not progress):
        indices = np.arange(start, min(start + batch_size, len(samples)))
        batch = make_batch(samples, indices)
        predictions = {k: [o.cpu() for o in v] for k, v in network(batch["rgb"].to(device), ("voxels", "pose3d", "pose2d")).items()}
        joints = metrics.volume_joints_camera(predictions["pose3d"][-1].float(), batch, focal, principal)
        front = (losses.front_view(predictions["voxels"][-1]) > 0.5).numpy()
        silhouettes = silhouette_scores(front, batch["silhouette_front"].numpy() > 0.5)
        with torch.enable_grad():
            surface, deviation = fit_batch(predictions["voxels"][-1], joints.numpy(), indices, samples, models, settings)
        correct, visible = metrics.pckh_per_image(predictions["pose2d"][-1].float(), batch)
        for k, i in enumerate(indices):
            rows.append({
                "image": int(i), "clip": str(samples.arrays["clip_names"][samples.arrays["clip"][i]]),
                "frame": int(samples.arrays["frame"][i]), "gender": GENDERS[int(samples.arrays["gender"][i])],
                "voxel_iou": float(metrics.voxel_iou(predictions["voxels"][-1][k : k + 1], batch["voxels"][k : k + 1])),
                "surface_error_mm": surface[k],
                "joint_error_mm": float(metrics.joint_error_mm(joints[k : k + 1], batch["joints_camera"][k : k + 1])),
                "pckh": correct[k] / max(visible[k], 1),
                "silhouette_iou": silhouettes["iou"][k], "silhouette_f1": silhouettes["f1"][k],
                "silhouette_accuracy": silhouettes["accuracy"][k], "shape_deviation_mm": deviation[k],
            })  # fmt: skip
    return pd.DataFrame(rows)
