"""From BodyNet's crops back to the camera: where predicted voxels and the true body lie
in metres, and the mirror that SURREAL's camera puts between them and a body model.

BodyNet's voxel grid covers the person's crop: D voxels across the crop's side, isotropic,
the body centred in depth. With the focal length and the root's depth known (as the paper
assumes), a voxel is (side / D) · depth / focal metres wide, and its centre's pixel places
it in the camera's frame. SURREAL's camera reflects the world (its rotation has determinant
−1), so bodies seen through it are mirror images: a body model is fitted to the points with
x negated, and its result negated back.

Shapes: N points, V vertices, J = 16 joints (BodyNet's order).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.body_model.skeleton import BODYNET_JOINTS
from pipeline.synthesis import camera

PELVIS = 6  # BodyNet's (MPII's) slot of the root
MIRROR = np.diag([-1.0, 1.0, 1.0])  # camera frame ↔ a frame where bodies have their true handedness


def crop_to_image(points: np.ndarray, resolution: int, crop_centre: np.ndarray, crop_side: float) -> np.ndarray:
    """(N, 2) pixel coordinates in a crop `resolution` pixels wide (pixel centres at
    integers) → the full image's pixel coordinates."""
    scale = resolution / crop_side  # crop pixels per image pixel
    return (np.asarray(points, dtype=np.float64) - resolution / 2 + 0.5) / scale + np.asarray(crop_centre) - 0.5


def image_to_crop(points: np.ndarray, resolution: int, crop_centre: np.ndarray, crop_side: float) -> np.ndarray:
    """The inverse of `crop_to_image`."""
    scale = resolution / crop_side
    return (np.asarray(points, dtype=np.float64) - np.asarray(crop_centre) + 0.5) * scale + resolution / 2 - 0.5


def camera_to_image(points: np.ndarray, focal: float, principal: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points → (N, 2) image pixels (pinhole)."""
    points = np.asarray(points, dtype=np.float64)
    return points[:, :2] / points[:, 2:3] * focal + np.asarray(principal, dtype=np.float64)


def voxels_to_camera(
    points: np.ndarray,
    resolution: int,
    crop_centre: np.ndarray,
    crop_side: float,
    root_depth: float,
    focal: float,
    principal: np.ndarray,
) -> np.ndarray:
    """(N, 3) voxel coordinates (x, y, z: z counted towards the camera, voxel centres at
    integers) → camera-frame metres, the grid's depth centre at the root's depth."""
    points = np.asarray(points, dtype=np.float64)
    u, v = crop_to_image(points[:, :2], resolution, crop_centre, crop_side).T
    metres_per_voxel = root_depth * crop_side / (focal * resolution)
    depth = root_depth - (points[:, 2] - (resolution - 1) / 2) * metres_per_voxel
    return np.stack([(u - principal[0]) * root_depth / focal, (v - principal[1]) * root_depth / focal, depth], axis=1)


def box_similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """(scale, shift) of the map p ↦ scale · p + shift that brings the box of the points
    `source` (N, 3) onto the box of the points `target` (M, 3): their longest sides equal,
    their centres together."""
    low, high = source.min(axis=0), source.max(axis=0)
    true_low, true_high = target.min(axis=0), target.max(axis=0)
    scale = float((true_high - true_low).max() / max((high - low).max(), 1e-9))
    return scale, (true_low + true_high) / 2 - scale * (low + high) / 2


def place_in_true_box(vertices: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """A fitted body (V, 3) moved and scaled into the true body's box (BodyNet's evaluation
    places its voxels' iso-surface in the true mesh's box, so translation and scale are given)."""
    scale, shift = box_similarity(vertices, truth)
    return scale * vertices + shift


def true_body_camera(
    model,
    pose: np.ndarray,
    shape: np.ndarray,
    zrot: float,
    joints_camera: np.ndarray,
    world_to_camera: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The annotated body in the camera's frame: vertices (V, 3) and BodyNet's 16 joints,
    placed so that its root lands on the annotated root (`joints_camera`, (16, 3)). The
    camera's rotation `world_to_camera` (3, 3) is the clip's (prepared samples'
    `camera_rotation`); None: SURREAL's."""
    with torch.no_grad():
        out = model(torch.as_tensor(shape[None, : model.num_betas]), torch.as_tensor(pose[None]))
    rotation = camera.WORLD_TO_CAMERA if world_to_camera is None else np.asarray(world_to_camera, np.float64)
    to_camera = rotation @ camera.body_to_world(zrot)
    vertices = out.vertices[0].double().numpy() @ to_camera.T
    joints = out.joints[0].double().numpy()[BODYNET_JOINTS] @ to_camera.T
    offset = joints_camera[PELVIS] - joints[PELVIS]
    return vertices + offset, joints + offset


def mirror(points: np.ndarray | torch.Tensor):
    """Negate x (its own inverse): camera frame ↔ true handedness."""
    if isinstance(points, torch.Tensor):
        return points * torch.tensor([-1.0, 1.0, 1.0], dtype=points.dtype, device=points.device)
    return np.asarray(points) @ MIRROR
