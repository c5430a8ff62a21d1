"""Fitting the body model to predicted voxels, as BodyNet does (Eq. 4.6).

The predicted occupancy is thresholded at 0.5 and its isosurface extracted by marching
cubes: points V_n, each with the confidence w_n of the voxel it lies in. The body model's
pose θ, shape β and translation t minimise

    Σ_n w_n min_v ‖V_n − v‖²  +  Σ_v min_n w_n ‖V_n − v‖²  +  λ_J Σ_j ‖J_j − Ĵ_j‖²  +  priors

(the two-way confidence-weighted nearest-neighbour distances between the isosurface and
the model's vertices v, plus λ_J = 5 times the distance between the model's 16 joints and
the predicted ones Ĵ), with the correspondences recomputed at every iteration. The pose
starts from a fit to the predicted joints alone (the body first turned and placed onto
the torso's joints), the shape at zero. Everything is batched
over images and runs on whichever device the tensors are on.

Shapes: B images, N surface points (padded; `weights` 0 on padding), V vertices, J = 16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage import measure

from pipeline.body_model.skeleton import BODYNET_JOINTS

JOINT_WEIGHT = 5.0  # BodyNet's λ
TORSO = [2, 3, 6, 7, 8, 12, 13]  # hips, pelvis, thorax, neck, shoulders (BodyNet's order)


@dataclass
class FitSettings:
    joint_steps: int = 40  # initialisation: the predicted joints alone
    steps: int = 60  # the full objective
    learning_rate: float = 0.03
    pose_prior: float = 1e-3  # per squared radian, keeps limbs plausible
    shape_prior: float = 1e-3  # per squared β
    max_vertices: int = 800  # vertices used for the correspondences (a fixed, even subset)


@dataclass
class FitResult:
    pose: torch.Tensor  # (B, 72)
    betas: torch.Tensor  # (B, S)
    transl: torch.Tensor  # (B, 3)
    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, 16, 3), BodyNet's order
    loss: torch.Tensor  # (B,) the objective at the end


def surface_points(probabilities: np.ndarray, spacing: float = 1.0, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(D, D, D) probabilities indexed (z, y, x) → isosurface points (N, 3) as (x, y, z)
    times `spacing`, and their confidences (N,): the probability of the voxel each lies in.
    Empty (N = 0) when no voxel passes the threshold."""
    if not (probabilities > threshold).any():
        return np.zeros((0, 3), np.float32), np.zeros(0, np.float32)
    padded = np.pad(probabilities.astype(np.float32), 1)  # closes surfaces at the border
    verts, _, _, _ = measure.marching_cubes(padded, level=threshold)
    verts -= 1.0
    index = np.clip(np.round(verts).astype(np.int64), 0, np.array(probabilities.shape) - 1)
    confidence = probabilities[index[:, 0], index[:, 1], index[:, 2]].astype(np.float32)
    points = verts[:, ::-1] * spacing  # (z, y, x) → (x, y, z)
    return points.astype(np.float32), np.maximum(confidence, threshold)


def pad_points(point_sets: list[np.ndarray], weight_sets: list[np.ndarray],
               max_points: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-image point sets into (B, N, 3) with zero weights on the padding; a set
    larger than `max_points` keeps an even subset of them."""
    keep = [np.linspace(0, len(p) - 1, min(len(p), max_points)).astype(int) for p in point_sets]
    point_sets = [p[k] for p, k in zip(point_sets, keep)]
    weight_sets = [w[k] for w, k in zip(weight_sets, keep)]
    count = max(max(len(p) for p in point_sets), 1)
    points = torch.zeros(len(point_sets), count, 3)
    weights = torch.zeros(len(point_sets), count)
    for i, (p, w) in enumerate(zip(point_sets, weight_sets)):
        points[i, : len(p)] = torch.as_tensor(p)
        weights[i, : len(w)] = torch.as_tensor(w)
    return points, weights


@torch.no_grad()
def nearest(a: torch.Tensor, b: torch.Tensor, b_valid: torch.Tensor) -> torch.Tensor:
    """For each of a (B, P, 3), the index of the nearest valid of b (B, Q, 3): (B, P)."""
    # ‖a‖² − 2a·b + ‖b‖², one batched matrix product (several times faster than cdist)
    distance = torch.baddbmm(b.square().sum(-1)[:, None, :], a, b.transpose(1, 2), alpha=-2)
    return distance.masked_fill(~b_valid[:, None, :], float("inf")).argmin(dim=2)


def _gather(points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return points.gather(1, index[..., None].expand(-1, -1, 3))


def surface_terms(vertices: torch.Tensor, points: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B,) the two-way weighted squared nearest-neighbour distances, each direction a
    weighted mean. Correspondences are found anew on every call (without gradient); the
    distances to them carry it."""
    valid = weights > 0
    every_vertex = torch.ones(vertices.shape[:2], dtype=torch.bool, device=vertices.device)
    to_vertex = (points - _gather(vertices, nearest(points, vertices, every_vertex))).square().sum(-1)
    points_term = (weights * to_vertex).sum(1) / weights.sum(1).clamp_min(1e-9)
    index = nearest(vertices, points, valid)
    to_point = (vertices - _gather(points, index)).square().sum(-1)
    vertex_weights = weights.gather(1, index)
    vertices_term = (vertex_weights * to_point).sum(1) / vertex_weights.sum(1).clamp_min(1e-9)
    return points_term + vertices_term


def orient_to_joints(model, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Global rotation (B, 3, axis-angle) and translation (B, 3) that best place the rest
    body's torso joints on the given ones (B, 16, 3): Kabsch, rotations only (no mirror)."""
    from scipy.spatial.transform import Rotation

    with torch.no_grad():
        rest = model(torch.zeros(1, model.num_betas), torch.zeros(1, 72)).joints[0].double().numpy()
    root = rest[0]
    source = rest[BODYNET_JOINTS][TORSO]
    orient, transl = [], []
    for target in joints.detach().double().cpu().numpy()[:, TORSO]:
        s, t = source - source.mean(0), target - target.mean(0)
        u, _, vt = np.linalg.svd(s.T @ t)
        d = np.sign(np.linalg.det(vt.T @ u.T))
        rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
        orient.append(Rotation.from_matrix(rotation).as_rotvec())
        transl.append(target.mean(0) - rotation @ (source.mean(0) - root) - root)
    as_tensor = lambda a: torch.as_tensor(np.array(a), dtype=joints.dtype, device=joints.device)  # noqa: E731
    return as_tensor(orient), as_tensor(transl)


def fit_to_voxels(
    model,
    points: torch.Tensor,
    weights: torch.Tensor,
    joints: torch.Tensor,
    settings: FitSettings | None = None,
    init_pose: torch.Tensor | None = None,
) -> FitResult:
    """Fit `model` (a BodyModel) to surface points (B, N, 3) with confidences (B, N) and
    predicted joints (B, 16, 3), all in the same metric frame (camera axes)."""
    settings = settings or FitSettings()
    batch, device = points.shape[0], points.device
    dtype = torch.float32
    points, weights, joints = points.to(dtype), weights.to(dtype), joints.to(dtype)
    pose = (init_pose.clone() if init_pose is not None else torch.zeros(batch, 72, device=device)).to(dtype)
    betas = torch.zeros(batch, model.num_betas, device=device, dtype=dtype)
    orient, transl = orient_to_joints(model, joints)
    if init_pose is None:
        pose[:, :3] = orient
    subset = torch.linspace(0, model.num_vertices - 1, min(settings.max_vertices, model.num_vertices)).long()
    pose.requires_grad_(True)
    betas.requires_grad_(True)
    transl.requires_grad_(True)

    def posed():
        output = model(betas, pose, transl)
        return output.vertices.to(dtype), output.joints[:, BODYNET_JOINTS].to(dtype)

    def priors() -> torch.Tensor:
        return settings.pose_prior * pose[:, 3:].square().sum(1) + settings.shape_prior * betas.square().sum(1)

    # 1. the predicted joints alone: global rotation, translation and pose
    optimiser = torch.optim.Adam([pose, transl], lr=settings.learning_rate)
    for _ in range(settings.joint_steps):
        _, model_joints = posed()
        loss = JOINT_WEIGHT * (model_joints - joints).square().sum(-1).mean(-1) + priors()
        optimiser.zero_grad()
        loss.sum().backward()
        optimiser.step()
    # 2. BodyNet's objective: surface both ways, joints, priors
    optimiser = torch.optim.Adam([pose, betas, transl], lr=settings.learning_rate)
    for _ in range(settings.steps):
        vertices, model_joints = posed()
        loss = (surface_terms(vertices[:, subset], points, weights)
                + JOINT_WEIGHT * (model_joints - joints).square().sum(-1).mean(-1) + priors())  # fmt: skip
        optimiser.zero_grad()
        loss.sum().backward()
        optimiser.step()
    with torch.no_grad():
        vertices, model_joints = posed()
        loss = (surface_terms(vertices[:, subset], points, weights)
                + JOINT_WEIGHT * (model_joints - joints).square().sum(-1).mean(-1) + priors())  # fmt: skip
    return FitResult(pose.detach(), betas.detach(), transl.detach(), vertices.detach(), model_joints.detach(), loss)
