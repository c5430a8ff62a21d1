"""The losses of the mesh-video networks (Liu, Akhtar & Mian, 2019, §4.1), each on a batch of
frames (B) or clips (B, T) flattened to frames, and the body the parameters pose.

    reprojection   the visible joints' 2D error, the pelvis-relative joints taken to the frame
                   by the predicted weak-perspective camera (squared, frame units [-1, 1])
    joints         the pelvis-relative 3D joints' squared error (metres)
    smpl           the rotation matrices' and shape coefficients' squared error
    smoothness     the squared change of β between consecutive frames of a clip

`has_3d` (B,) switches the 3D and SMPL terms off for frames without them (the paper's switch
for 2D-only data); every synthetic clip has them. The paper gives neither its weights nor its
norms: squared errors, weighted by the config's `video_mesh.train.weights`, are this
project's choice.
"""

from __future__ import annotations

import torch

from pipeline.body_model.model import BodyModel
from pipeline.video_mesh.data import FLIP_X

LOSSES = ("reprojection", "joints", "smpl", "smoothness")


def posed(model: BodyModel, rotations: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pelvis-relative vertices (B, V, 3) and joints (B, 24, 3) of rotations (B, 24, 3, 3) and
    shapes (B, 10), in the model's dtype."""
    vertices, joints = model.lbs_rotations(betas, rotations)
    pelvis = joints[:, :1]
    return vertices - pelvis, joints - pelvis


def posed_joints(model: BodyModel, rotations: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """`posed`'s joints alone (B, 24, 3), the mesh not skinned."""
    joints = model.posed_joints(betas, rotations)
    return joints - joints[:, :1]


def project(joints: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Pelvis-relative joints (B, J, 3) in the proper camera frame through weak-perspective
    cameras (B, 3: s, tx, ty) -> (B, J, 2) frame coordinates in [-1, 1]."""
    image = joints[..., :2] * torch.from_numpy(FLIP_X.diagonal()[:2].copy()).to(joints)
    return camera[:, None, :1] * image + camera[:, None, 1:]


def reprojection_loss(joints: torch.Tensor, camera: torch.Tensor, points: torch.Tensor, visible: torch.Tensor):
    """Mean over the visible joints of the squared 2D error; joints (B, J, 3), points (B, J, 2),
    visible (B, J)."""
    error = ((project(joints, camera) - points) ** 2).sum(-1)
    weight = visible.to(error)
    return (weight * error).sum() / weight.sum().clamp(min=1.0)


def joints_loss(joints: torch.Tensor, truth: torch.Tensor, has_3d: torch.Tensor) -> torch.Tensor:
    """Mean over frames with 3D (B,) and joints of the squared 3D error (metres²)."""
    error = ((joints - truth) ** 2).sum(-1).mean(-1)
    weight = has_3d.to(error)
    return (weight * error).sum() / weight.sum().clamp(min=1.0)


def smpl_loss(
    rotations: torch.Tensor, betas: torch.Tensor, true_rotations: torch.Tensor, true_betas: torch.Tensor, has_3d
) -> torch.Tensor:
    """Mean over frames with 3D of the squared error of the 24·9 matrix entries and 10 shape
    coefficients, each meaned over its values."""
    error = ((rotations - true_rotations) ** 2).flatten(1).mean(-1) + ((betas - true_betas) ** 2).mean(-1)
    weight = has_3d.to(error)
    return (weight * error).sum() / weight.sum().clamp(min=1.0)


def smoothness_loss(betas: torch.Tensor) -> torch.Tensor:
    """Mean squared change of the shape between consecutive frames; betas (B, T, 10)."""
    if betas.shape[1] < 2:
        return betas.new_zeros(())
    return ((betas[:, 1:] - betas[:, :-1]) ** 2).sum(-1).mean()
