"""SMPLify++, BodyNet's optimisation baseline (Table 4.2, row 2).

SMPLify (Bogo et al. 2016) extended with the 3D joints and the silhouette, as BodyNet
describes it: pose θ, shape β and translation t minimise

    Σ_n min_v ‖c_n − π(v)‖²  +  100 Σ_j ‖J_j − Ĵ_j‖²  +  Σ_j ‖π(J_j) − ĵ_j‖²  +  priors

the one-directional Chamfer distance from the predicted silhouette's contour points c_n to
the projected vertices π(v) (every contour point is explained by the body; a body grown
beyond the silhouette is not penalised by this term), 100 × the predicted 3D joints Ĵ, and
the predicted 2D joints ĵ. Image distances are taken in normalised image coordinates
(x/z, y/z) times the root's depth, i.e. in metres at the body, so that every term is
measured in the same unit.

Shapes: B images, N contour points (padded; `contour_weights` 0 on padding), V vertices,
J = 16 joints.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage import measure

from pipeline.fitting.body_fit import FitResult, FitSettings, fit_body
from pipeline.fitting.voxel_fit import nearest

JOINT_3D_WEIGHT = 100.0


def contour_points(foreground: np.ndarray, threshold: float = 0.5, max_points: int = 400) -> np.ndarray:
    """(H, W) foreground probabilities → (N, 2) sub-pixel (x, y) points on the boundary of
    the region above `threshold` (an even subset of at most `max_points`)."""
    padded = np.pad(np.asarray(foreground, dtype=np.float64), 1)  # closes contours at the border
    contours = measure.find_contours(padded, threshold)
    if not contours:
        return np.zeros((0, 2))
    points = np.concatenate(contours)[:, ::-1] - 1.0  # (row, col) → (x, y)
    keep = np.linspace(0, len(points) - 1, min(len(points), max_points)).astype(int)
    return points[keep]


def normalised(pixels: np.ndarray, focal: float, principal: np.ndarray) -> np.ndarray:
    """Image pixels (..., 2) → normalised image coordinates (x/z, y/z)."""
    return (np.asarray(pixels, dtype=np.float64) - np.asarray(principal)) / focal


def project(points: torch.Tensor) -> torch.Tensor:
    """(B, P, 3) camera-frame points → (B, P, 2) normalised image coordinates."""
    return points[..., :2] / points[..., 2:3].clamp_min(1e-3)


def fit_smplify(
    model,
    contour: torch.Tensor,
    contour_weights: torch.Tensor,
    joints2d: torch.Tensor,
    joints: torch.Tensor,
    depth: torch.Tensor,
    settings: FitSettings,
) -> FitResult:
    """Fit `model` to contour points (B, N, 2) and 2D joints (B, 16, 2), both in normalised
    image coordinates, and 3D joints (B, 16, 3), in the camera frame; `depth` (B,) is the
    root's depth that turns image distances into metres."""
    contour, contour_weights = contour.float(), contour_weights.float()
    joints2d, scale = joints2d.float(), depth.float().square()
    subset = torch.linspace(0, model.num_vertices - 1, min(settings.max_vertices, model.num_vertices)).long()
    valid_vertices = torch.ones(contour.shape[0], len(subset), dtype=torch.bool)

    def data_term(vertices: torch.Tensor, model_joints: torch.Tensor) -> torch.Tensor:
        projected = project(vertices[:, subset])
        flat = lambda p: torch.nn.functional.pad(p, (0, 1))  # noqa: E731 (2D points for `nearest`)
        index = nearest(flat(contour), flat(projected), valid_vertices)
        to_vertex = (contour - projected.gather(1, index[..., None].expand(-1, -1, 2))).square().sum(-1)
        chamfer = (contour_weights * to_vertex).sum(1) / contour_weights.sum(1).clamp_min(1e-9)
        joints_2d = (project(model_joints) - joints2d).square().sum(-1).mean(-1)
        return scale * (chamfer + joints_2d)

    return fit_body(model, joints, data_term, settings)
