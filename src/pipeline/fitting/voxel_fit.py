"""Fitting the body model to predicted voxels, as BodyNet does (Eq. 4.6).

The predicted occupancy is thresholded at 0.5 and its isosurface extracted by marching
cubes: points V_n, each with the confidence w_n of the voxel it lies in. The body model's
pose θ, shape β and translation t minimise

    Σ_n w_n min_v ‖V_n − v‖²  +  Σ_v min_n w_n ‖V_n − v‖²  +  λ_J Σ_j ‖J_j − Ĵ_j‖²  +  priors

(the two-way confidence-weighted nearest-neighbour distances between the isosurface and
the model's vertices v, summed over the whole surface, plus λ_J = 5 times the distances
between the model's 16 joints and the predicted ones Ĵ: the joints weigh little against
thousands of surface points, as the thesis intends), with the correspondences recomputed at
every iteration (or, as BodyNet's fitting code does, once after the joint fit, the
translation then held: FitSettings.matching). BodyNet's fitting code squares the weights (w² and 25 for the joints); the
thesis's Eq. 4.6, followed here, does not. The pose
starts from a fit to the predicted joints alone (the body first turned and placed onto
the torso's joints), the shape at zero (`pipeline.fitting.body_fit`). Everything is
batched over images and runs on whichever device the tensors are on.

Shapes: B images, N surface points (padded; `weights` 0 on padding), V vertices, J = 16.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage import measure

from pipeline.fitting.body_fit import FitResult, FitSettings, fit_body


def surface_points(
    probabilities: np.ndarray, spacing: float = 1.0, threshold: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
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


def pad_points(
    point_sets: list[np.ndarray], weight_sets: list[np.ndarray], max_points: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack per-image point sets (N, C) into (B, N, C) with zero weights on the padding; a
    set larger than `max_points` keeps an even subset of them."""
    keep = [np.linspace(0, len(p) - 1, min(len(p), max_points)).astype(int) for p in point_sets]
    point_sets = [p[k] for p, k in zip(point_sets, keep)]
    weight_sets = [w[k] for w, k in zip(weight_sets, keep)]
    count = max(max(len(p) for p in point_sets), 1)
    points = torch.zeros(len(point_sets), count, point_sets[0].shape[1])
    weights = torch.zeros(len(point_sets), count)
    for i, (p, w) in enumerate(zip(point_sets, weight_sets)):
        points[i, : len(p)] = torch.as_tensor(p)
        weights[i, : len(w)] = torch.as_tensor(w)
    return points, weights


@torch.no_grad()
def nearest(a: torch.Tensor, b: torch.Tensor, b_valid: torch.Tensor) -> torch.Tensor:
    """For each of a (B, P, 3), the index of the nearest valid of b (B, Q, 3): (B, P)."""
    # ‖a‖² − 2a·b + ‖b‖², one batched matrix product (several times faster than cdist); the
    # invalid points of b are pushed out of reach through ‖b‖² rather than by masking the matrix
    far = b.square().sum(-1).masked_fill(~b_valid, float("inf"))
    return torch.baddbmm(far[:, None, :], a, b.transpose(1, 2), alpha=-2).argmin(dim=2)


def _gather(points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return points.gather(1, index[..., None].expand(-1, -1, 3))


def match(vertices: torch.Tensor, points: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest neighbours both ways between the model's vertices (B, V, 3) and the
    isosurface's points (B, N, 3) (weights (B, N), 0 on padding): for each point its vertex
    (B, N), for each vertex its valid point (B, V)."""
    every_vertex = torch.ones(vertices.shape[:2], dtype=torch.bool, device=vertices.device)
    return nearest(points, vertices, every_vertex), nearest(vertices, points, weights > 0)


def surface_terms(
    vertices: torch.Tensor,
    points: torch.Tensor,
    weights: torch.Tensor,
    objective: str = "sum",
    vertex_count: int | None = None,
    point_counts: torch.Tensor | None = None,
    matches: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """(B,) the two-way confidence-weighted squared nearest-neighbour distances between the
    model's vertices (B, V, 3) and the isosurface's points (B, N, 3).

    objective 'sum' (Eq. 4.6): Σ over the vertices of w·d² to the nearest point plus Σ over the
    points of w·d² to the nearest vertex, each sum taken over the whole surface: a subset of
    the model's `vertex_count` vertices, or of an image's `point_counts` points, stands for
    all of them (its sum scaled by the ratio). 'mean': each direction's weighted mean.
    The correspondences are `matches` (from `match`), else found anew (without gradient);
    the distances to them carry it."""
    valid = weights > 0
    vertex_index, index = matches if matches is not None else match(vertices, points, weights)
    to_vertex = (points - _gather(vertices, vertex_index)).square().sum(-1)
    to_point = (vertices - _gather(points, index)).square().sum(-1)
    vertex_weights = weights.gather(1, index)
    if objective == "mean":
        points_term = (weights * to_vertex).sum(1) / weights.sum(1).clamp_min(1e-9)
        vertices_term = (vertex_weights * to_point).sum(1) / vertex_weights.sum(1).clamp_min(1e-9)
        return points_term + vertices_term
    kept = valid.sum(1).clamp_min(1)
    point_scale = (point_counts.to(kept.dtype) / kept) if point_counts is not None else 1.0
    vertex_scale = (vertex_count or vertices.shape[1]) / vertices.shape[1]
    return point_scale * (weights * to_vertex).sum(1) + vertex_scale * (vertex_weights * to_point).sum(1)


def fit_to_voxels(
    model,
    points: torch.Tensor,
    weights: torch.Tensor,
    joints: torch.Tensor,
    settings: FitSettings,
    point_counts: torch.Tensor | None = None,
) -> FitResult:
    """Fit `model` (a BodyModel) to surface points (B, N, 3) with confidences (B, N) and
    predicted joints (B, 16, 3), all in the same metric frame (camera axes). `point_counts`
    (B,): how many points each image's isosurface had before it was thinned to N."""
    points, weights = points.float(), weights.float()
    subset = torch.linspace(0, model.num_vertices - 1, min(settings.max_vertices, model.num_vertices)).long()
    found: list[tuple[torch.Tensor, torch.Tensor]] = []  # the matches, when found only once

    def data_term(vertices: torch.Tensor, _) -> torch.Tensor:
        vertices = vertices[:, subset]
        matches = found[0] if found else match(vertices, points, weights)
        if settings.matching == "once" and not found:
            found.append(matches)
        return surface_terms(vertices, points, weights, settings.objective, model.num_vertices, point_counts, matches)

    return fit_body(model, joints, data_term, settings)
