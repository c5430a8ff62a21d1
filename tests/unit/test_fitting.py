"""Fitting the body model to voxels (BodyNet's Eq. 4.6)."""

import copy

import numpy as np
import pytest
import torch

from conftest import fit_settings
from pipeline.body_model.model import BodyModel
from pipeline.body_model.skeleton import BODYNET_JOINTS
from pipeline.fitting.voxel_fit import fit_to_voxels, pad_points, surface_points
from pipeline.synthesis.voxels import voxelize
from toy_models import toy_arrays


def test_surface_points_lie_on_the_half_level_with_their_confidences():
    grid = np.zeros((8, 8, 8), np.float32)
    grid[2:6, 3:5, 1:7] = 0.9  # z 2..5, y 3..4, x 1..6
    points, confidence = surface_points(grid, spacing=2.0)
    assert len(points) > 0 and np.all(confidence >= 0.5) and np.isclose(confidence.max(), 0.9)
    x, y, z = points[:, 0] / 2, points[:, 1] / 2, points[:, 2] / 2
    assert x.min() >= 0.5 - 1e-6 and x.max() <= 6.5 + 1e-6  # half a voxel beyond the centres
    assert y.min() >= 2.5 - 1e-6 and y.max() <= 4.5 + 1e-6
    assert z.min() >= 1.5 - 1e-6 and z.max() <= 5.5 + 1e-6
    assert surface_points(np.zeros((4, 4, 4)))[0].shape == (0, 3)


@pytest.mark.slow
def test_fitting_to_voxels_recovers_the_body_better_than_its_joints_alone(built_female):
    model = copy.deepcopy(BodyModel.from_file(built_female[0])).float()
    rng = np.random.default_rng(0)
    count, resolution = 2, 32
    pose = torch.zeros(count, 72)
    pose[:, 0] = np.pi  # upright in the camera's frame (y down)
    pose[:, 3:] = torch.as_tensor(rng.normal(0, 0.25, (count, 69)), dtype=torch.float32)
    betas = torch.as_tensor(rng.normal(0, 1, (count, 10)), dtype=torch.float32)
    with torch.no_grad():
        truth = model(betas, pose)
    point_sets, weight_sets = [], []
    for vertices in truth.vertices.numpy():
        low, size = vertices.min(0), (vertices.max(0) - vertices.min(0)).max() / resolution
        voxels = voxelize(vertices, model.faces.astype(np.int64), resolution).astype(np.float32)
        points, weights = surface_points(voxels)
        depth = voxels.shape[0]  # voxel z counts towards the camera: back to the camera's z
        metric = np.stack(
            [
                low[0] + (points[:, 0] + 0.5) * size,
                low[1] + (points[:, 1] + 0.5) * size,
                low[2] + (depth - 1 - points[:, 2] + 0.5) * size,
            ],
            axis=1,
        )
        point_sets.append(metric)
        weight_sets.append(weights)
    points, weights = pad_points(point_sets, weight_sets)
    joints = truth.joints[:, BODYNET_JOINTS] + torch.as_tensor(rng.normal(0, 0.02, (count, 16, 3)), dtype=torch.float32)

    def surface_error_mm(result):
        return 1000 * (result.vertices - truth.vertices).norm(dim=-1).mean(1)

    joints_only = fit_to_voxels(model, points, weights, joints, fit_settings(steps=0))
    fitted = fit_to_voxels(model, points, weights, joints, fit_settings())
    assert torch.isfinite(fitted.loss).all()
    # 32³ voxels are 5 cm wide and the isosurface sits ~3 cm outside the body: far from exact,
    # but the surface terms must clearly beat the joints alone (86 → 52 mm when written)
    assert (surface_error_mm(fitted) < 0.75 * surface_error_mm(joints_only)).all()
    assert surface_error_mm(fitted).mean() < 65
    assert fitted.joints.shape == (count, 16, 3) and fitted.pose.shape == (count, 72)


def test_matching_once_keeps_the_joint_fits_translation_and_its_first_matches(monkeypatch):
    """BodyNet's fitting code: the surface's nearest neighbours found once, after the fit to
    the joints, the translation held where that fit put it; every_step moves both."""
    from pipeline.body_model.model import check_model_arrays
    from pipeline.fitting import voxel_fit

    model = BodyModel(check_model_arrays(toy_arrays(), "toy.pkl"))
    rng = np.random.default_rng(0)
    with torch.no_grad():
        body = model(torch.zeros(1, 10), torch.zeros(1, 72))
    joints = body.joints[:, BODYNET_JOINTS]
    points = body.vertices + torch.tensor([0.05, 0.0, 0.1])  # the surface away from the joints
    points = points + torch.as_tensor(rng.normal(0, 0.01, points.shape), dtype=torch.float32)
    weights = torch.ones(points.shape[:2])
    calls = []

    def counted(*args, match=voxel_fit.match):
        calls.append(1)
        return match(*args)

    monkeypatch.setattr(voxel_fit, "match", counted)

    def fit(**settings):
        calls.clear()
        settings = fit_settings(joint_steps=20, max_vertices=72, **settings)
        result = fit_to_voxels(model, points, weights, joints, settings)
        return result, len(calls)

    joint_fit, _ = fit(steps=0)
    once, once_calls = fit(steps=10, matching="once")
    every, every_calls = fit(steps=10)
    assert once_calls == 1 and every_calls == 11  # 10 steps and the final objective
    assert torch.allclose(once.transl, joint_fit.transl)
    assert not torch.allclose(every.transl, joint_fit.transl)
    with pytest.raises(ValueError, match="matching"):
        fit_settings(matching="sometimes")
    with pytest.raises(ValueError, match="objective"):
        fit_settings(objective="median")


def test_a_learnt_pose_prior_prefers_the_poses_it_was_learnt_from_and_round_trips(tmp_path):
    from pipeline.errors import InputError
    from pipeline.fitting.body_fit import PosePrior

    rng = np.random.default_rng(0)
    bent, straight = np.zeros(69), np.zeros(69)
    bent[9] = 1.2  # two clusters of poses: one joint bent, or not
    poses = np.concatenate(
        [bent + 0.05 * rng.standard_normal((200, 69)), straight + 0.05 * rng.standard_normal((200, 69))]
    )
    prior = PosePrior.fit(np.concatenate([np.zeros((400, 3)), poses], axis=1), components=2, seed=0)
    halfway, elsewhere = 0.5 * bent, np.zeros(69)
    elsewhere[30] = 1.2
    costs = prior(torch.as_tensor(np.stack([bent, straight, halfway, elsewhere]), dtype=torch.float32))
    assert costs[:2].max() < 1.0 and costs.min() >= 0  # either cluster's centre is likely
    assert costs[2] > 10 * costs[:2].max() and costs[3] > costs[2]  # between them less so, off both much less
    prior.save(tmp_path / "prior.npz")
    again = PosePrior.load(tmp_path / "prior.npz")
    assert torch.equal(
        again(torch.as_tensor(poses[:5], dtype=torch.float32)), prior(torch.as_tensor(poses[:5], dtype=torch.float32))
    )
    np.savez(tmp_path / "other.npz", weights=np.ones(2), means=np.zeros((2, 3)), covariances=np.zeros((2, 3, 3)))
    with pytest.raises(InputError, match="other.npz: a pose prior has means"):
        PosePrior.load(tmp_path / "other.npz")
    with pytest.raises(InputError, match="missing.npz: not a pose prior"):
        PosePrior.load(tmp_path / "missing.npz")


def test_the_learnt_prior_is_the_fits_pose_cost(built_female):
    """With a prior learnt around a bent elbow, a fit to the rest pose's joints alone bends
    that elbow a little; without it, nothing pulls it away from the rest pose."""
    from pipeline.body_model.model import BodyModel as Model
    from pipeline.fitting.body_fit import PosePrior, fit_body

    model = copy.deepcopy(Model.from_file(built_female[0])).float()
    with torch.no_grad():
        joints = model(torch.zeros(1, model.num_betas), torch.zeros(1, 72)).joints[:, BODYNET_JOINTS]
    elbow = 18 * 3 + 2 - 3  # the left elbow's z angle, among the 69 joint rotations
    mean = np.zeros((1, 69))
    mean[0, elbow] = 1.0
    prior = PosePrior(np.ones(1), mean, np.eye(69)[None] * 0.01)
    settings = dict(joint_steps=30, pose_prior_weight=1.0)
    plain = fit_body(model, joints, None, fit_settings(**settings))
    learnt = fit_body(model, joints, None, fit_settings(**settings, learnt_prior=prior))
    assert abs(float(plain.pose[0, 3 + elbow])) < 0.05
    assert float(learnt.pose[0, 3 + elbow]) > 0.2
