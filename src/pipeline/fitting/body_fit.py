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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.atomic import atomic_output
from pipeline.body_model.skeleton import BODYNET_JOINTS
from pipeline.errors import InputError
from pipeline.fitting.choices import MATCHINGS, OBJECTIVES

JOINT_WEIGHT = 5.0  # BodyNet's λ
TORSO = [2, 3, 6, 7, 8, 12, 13]  # hips, pelvis, thorax, neck, shoulders (BodyNet's order)

DataTerm = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # vertices, joints → (B,)


class PosePrior:
    """A Gaussian mixture over the 69 joint rotations (axis-angle, the root excluded), learnt
    from motions, as SMPLify's pose prior is: the cost of a pose is that of its most likely
    component, −log(w_k N(θ; μ_k, Σ_k)), less the smallest such cost any pose has, so that 0
    is the most likely pose. K components."""

    def __init__(self, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> None:
        """weights (K,), means (K, 69), covariances (K, 69, 69)."""
        self.weights, self.covariances = np.asarray(weights, np.float64), np.asarray(covariances, np.float64)
        precisions = np.linalg.inv(covariances)
        self.means = torch.as_tensor(means, dtype=torch.float32)
        self.precision_factors = torch.as_tensor(np.linalg.cholesky(precisions), dtype=torch.float32)  # (K, 69, 69)
        log_det = np.linalg.slogdet(covariances)[1]
        constants = -np.log(weights) + 0.5 * log_det  # (K,)
        self.constants = torch.as_tensor(constants - constants.min(), dtype=torch.float32)

    @classmethod
    def fit(cls, poses: np.ndarray, components: int, seed: int) -> PosePrior:
        """Learn it from poses (N, 72) or (N, 69) by expectation-maximisation."""
        from sklearn.mixture import GaussianMixture

        poses = poses[:, 3:] if poses.shape[1] == 72 else poses
        mixture = GaussianMixture(components, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(poses)
        return cls(mixture.weights_, mixture.means_, mixture.covariances_)

    def save(self, path: str | Path) -> None:
        with atomic_output(Path(path)) as tmp, open(tmp, "wb") as file:
            np.savez(file, weights=self.weights, means=self.means.numpy(), covariances=self.covariances)

    @classmethod
    def load(cls, path: str | Path) -> PosePrior:
        try:
            with np.load(path) as arrays:
                weights, means, covariances = (arrays[key] for key in ("weights", "means", "covariances"))
        except (OSError, ValueError, KeyError) as error:
            raise InputError(f"{path}: not a pose prior (weights, means, covariances): {error}") from error
        count = len(weights)
        if means.shape != (count, 69) or covariances.shape != (count, 69, 69):
            raise InputError(
                f"{path}: a pose prior has means (K, 69) and covariances (K, 69, 69), got "
                f"{means.shape} and {covariances.shape}"
            )
        return cls(weights, means, covariances)

    def __call__(self, pose: torch.Tensor) -> torch.Tensor:
        """(B, 69) joint rotations → (B,) their cost."""
        offsets = pose[:, None, :] - self.means.to(pose)  # (B, K, 69)
        whitened = torch.einsum("kji,bkj->bki", self.precision_factors.to(pose), offsets)  # L_kᵀ(θ − μ_k)
        return (0.5 * whitened.square().sum(-1) + self.constants.to(pose)).min(dim=1).values


@dataclass
class FitSettings:
    """A body fit's settings. The fields without a default are the config's
    (`evaluation.fit.*`: docs/config.md says what each means and its value); those with one
    are the fit's own constants, or set by the methods that change them (SMPLify++'s)."""

    joint_steps: int  # initialisation: the target joints alone
    steps: int  # the whole objective
    max_vertices: int  # vertices used for correspondences (a fixed, even subset)
    objective: str  # one of OBJECTIVES. sum: Eq. 4.6's sums over vertices, points and joints; mean: each a mean
    # one of MATCHINGS. every_step: the surface's nearest neighbours found anew at every step, the
    # translation free; once: as BodyNet's fitting code, found once after the joint fit, the
    # translation held where that fit put it
    matching: str
    learning_rate: float = 0.03
    pose_prior_weight: float = 1e-3  # the pose cost's weight: per squared radian, or per unit of a learnt prior's cost
    shape_prior: float = 1e-3  # per squared β
    joint_weight: float = JOINT_WEIGHT
    learnt_prior: PosePrior | None = field(default=None, repr=False)  # the pose's cost; None: its squared angles

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.matching not in MATCHINGS:
            raise ValueError(f"matching must be one of {MATCHINGS}, got {self.matching!r}")


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
    settings: FitSettings,
    betas: torch.Tensor | None = None,
) -> FitResult:
    """Fit `model` (a BodyModel) to target joints (B, 16, 3) and `data_term`, all in one
    metric frame with camera axes. With `betas` (B, S) the shape is held at them."""
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
        prior = settings.learnt_prior
        pose_cost = prior(pose[:, 3:]) if prior is not None else pose[:, 3:].square().sum(1)
        loss = loss + settings.pose_prior_weight * pose_cost
        if not fixed_shape:
            loss = loss + settings.shape_prior * betas.square().sum(1)
        return loss, vertices, model_joints

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
