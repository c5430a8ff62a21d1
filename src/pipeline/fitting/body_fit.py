"""The optimisation every fit of the body model shares.

A fit minimises, over pose θ, shape β and translation t,

    data(vertices, joints)  +  λ_J Σ_j ‖J_j − Ĵ_j‖²  +  priors(θ, β)

where Ĵ are the 16 target joints (BodyNet's λ_J = 5) and `data` is the method's own term
(the voxel surface, a silhouette's contour and 2D joints, or nothing). Objective 'sum' is
BodyNet's Eq. 4.6: sums over all joints and the whole surface, so that the joints weigh
little; it is divided by the vertex count, which leaves its minimiser alone and keeps the
priors' weight. 'mean' (the default, a declared deviation) takes means instead: the joints
then weigh as much as the whole surface, which recovers bodies better from perfect inputs
(tests/unit/test_evaluation.py measures both). It starts with the
body turned and placed onto the targets' torso joints (Kabsch), then fits pose and
translation to the joints alone, then everything to the whole objective, with Adam. The
shape starts at zero, or stays at given values (the shape-regression baseline).

Shapes: B images, V vertices, S shape coefficients, J = 16 joints (BodyNet's order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.body_model.skeleton import BODYNET_JOINTS

JOINT_WEIGHT = 5.0  # BodyNet's λ
TORSO = [2, 3, 6, 7, 8, 12, 13]  # hips, pelvis, thorax, neck, shoulders (BodyNet's order)

DataTerm = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # vertices, joints → (B,)


OBJECTIVES = ("sum", "mean")
MATCHINGS = ("every_step", "once")


@dataclass
class FitSettings:
    joint_steps: int = 40  # initialisation: the target joints alone
    steps: int = 60  # the whole objective
    learning_rate: float = 0.03
    pose_prior: float = 1e-3  # per squared radian, keeps limbs plausible
    shape_prior: float = 1e-3  # per squared β
    max_vertices: int = 800  # vertices used for correspondences (a fixed, even subset)
    joint_weight: float = JOINT_WEIGHT
    objective: str = (
        "mean"  # one of OBJECTIVES. sum: Eq. 4.6's sums over vertices, points and joints; mean: each a mean
    )
    # one of MATCHINGS. every_step: the surface's nearest neighbours found anew at every step, the
    # translation free; once: as BodyNet's fitting code, found once after the joint fit, the
    # translation held where that fit put it
    matching: str = "every_step"


@dataclass
class FitResult:
    pose: torch.Tensor  # (B, 72)
    betas: torch.Tensor  # (B, S)
    transl: torch.Tensor  # (B, 3)
    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, 16, 3), BodyNet's order
    loss: torch.Tensor  # (B,) the objective at the end


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


def fit_body(
    model,
    joints: torch.Tensor,
    data_term: DataTerm | None,
    settings: FitSettings | None = None,
    betas: torch.Tensor | None = None,
) -> FitResult:
    """Fit `model` (a BodyModel) to target joints (B, 16, 3) and `data_term`, all in one
    metric frame with camera axes. With `betas` (B, S) the shape is held at them."""
    settings = settings or FitSettings()
    dtype = torch.float32
    joints = joints.to(dtype)
    batch, device = joints.shape[0], joints.device
    orient, transl = orient_to_joints(model, joints)
    pose = torch.zeros(batch, 72, device=device, dtype=dtype)
    pose[:, :3] = orient
    fixed_shape = betas is not None
    betas = betas.to(dtype).clone() if fixed_shape else torch.zeros(batch, model.num_betas, device=device, dtype=dtype)
    pose.requires_grad_(True)
    transl.requires_grad_(True)
    betas.requires_grad_(not fixed_shape)

    def objective(with_data: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        output = model(betas, pose, transl)
        vertices, model_joints = output.vertices.to(dtype), output.joints[:, BODYNET_JOINTS].to(dtype)
        joint_distances = (model_joints - joints).square().sum(-1)
        if settings.objective == "sum" and with_data:
            loss = settings.joint_weight * joint_distances.sum(-1) + data_term(vertices, model_joints)
            loss = loss / model.num_vertices  # Eq. 4.6 per vertex: the same minimiser, the priors keep their weight
        else:
            loss = settings.joint_weight * joint_distances.mean(-1)
            if with_data:
                loss = loss + data_term(vertices, model_joints)
        loss = loss + settings.pose_prior * pose[:, 3:].square().sum(1)
        if not fixed_shape:
            loss = loss + settings.shape_prior * betas.square().sum(1)
        return loss, vertices, model_joints

    if settings.matching not in MATCHINGS:
        raise ValueError(f"matching must be one of {MATCHINGS}, got {settings.matching!r}")
    phases = [([pose, transl], settings.joint_steps, False)]
    if data_term is not None:
        placed = [] if settings.matching == "once" else [transl]
        phases.append(([pose, *placed] + ([] if fixed_shape else [betas]), settings.steps, True))
    for parameters, steps, with_data in phases:
        optimiser = torch.optim.Adam(parameters, lr=settings.learning_rate)
        for _ in range(steps):
            loss = objective(with_data)[0]
            optimiser.zero_grad()
            loss.sum().backward()
            optimiser.step()
    with torch.no_grad():
        loss, vertices, model_joints = objective(data_term is not None)
    return FitResult(pose.detach(), betas.detach(), transl.detach(), vertices, model_joints, loss)
