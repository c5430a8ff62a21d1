"""BodyNet's evaluation measures."""

import numpy as np
import pytest
import torch

from pipeline.evaluation.measures import extreme_shapes, shape_deviation_mm, silhouette_scores, surface_error_mm
from toy_models import toy_arrays


def test_surface_error_is_the_mean_vertex_distance_in_mm():
    truth = torch.zeros(2, 4, 3)
    moved = truth.clone()
    moved[0, :, 0] = 0.01  # every vertex 1 cm away
    moved[1, 0, 2] = 0.04  # one of four vertices 4 cm away
    assert surface_error_mm(moved, truth).tolist() == pytest.approx([10.0, 10.0])
    with pytest.raises(ValueError, match="different shapes"):
        surface_error_mm(moved[:, :3], truth)


def test_extreme_shapes_are_the_farthest_fraction():
    deviation = np.array([5.0, 50.0, 7.0, 30.0, 1.0, 9.0, 2.0, 3.0, 4.0, 6.0])
    assert np.flatnonzero(extreme_shapes(deviation, 0.2)).tolist() == [1, 3]
    assert np.flatnonzero(extreme_shapes(deviation, 0.1)).tolist() == [1]
    assert extreme_shapes(deviation[:3], 0.1).sum() == 1  # never empty
    with pytest.raises(ValueError, match="fraction"):
        extreme_shapes(deviation, 0.0)


def test_mean_shape_deviates_by_nothing_and_grows_with_beta():
    from pipeline.body_model.model import BodyModel, check_model_arrays

    model = BodyModel(check_model_arrays(toy_arrays(), "toy.pkl"))
    pose = torch.zeros(3, 72)
    betas = torch.zeros(3, model.num_betas)
    betas[1, 0], betas[2, 0] = 1.0, 2.0
    deviation = shape_deviation_mm(model, pose, betas)
    assert deviation[0] == 0 and 0 < deviation[1] < deviation[2]
    assert float(deviation[2]) == pytest.approx(2 * float(deviation[1]), rel=1e-6)  # linear in β at rest


def test_silhouette_scores():
    truth = np.zeros((2, 4, 4), bool)
    truth[:, :2] = True  # 8 of 16 pixels
    predicted = truth.copy()
    predicted[1, 2] = True  # 4 false positives
    scores = silhouette_scores(predicted, truth)
    assert scores["iou"].tolist() == pytest.approx([1.0, 8 / 12])
    assert scores["f1"].tolist() == pytest.approx([1.0, 16 / 20])
    assert scores["accuracy"].tolist() == pytest.approx([1.0, 12 / 16])
    empty = silhouette_scores(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))
    assert empty["iou"][0] == 1.0 and empty["f1"][0] == 1.0


@pytest.fixture(scope="module")
def test_samples(tiny_clips, tmp_path_factory):
    from pipeline.datasets.surreal import SampleSizes, VoxelSource
    from pipeline.training.samples import SampleSet, prepare

    root, _, _ = tiny_clips
    out = tmp_path_factory.mktemp("samples") / "test"
    prepare(root, "train", SampleSizes(64, 16, 32), "middle", VoxelSource(), out, progress=False)
    return SampleSet.load(out)


@pytest.mark.slow
def test_true_voxels_and_joints_fit_back_to_the_true_body(test_samples, built_female):
    """The whole way back from a crop: voxels to camera metres, through the mirror, fitted,
    and compared with the annotated body placed on its annotated joints."""
    import copy

    from pipeline.body_model.model import BodyModel
    from pipeline.evaluation.frames import mirror, true_body_camera, voxels_to_camera
    from pipeline.fitting.voxel_fit import FitSettings, fit_to_voxels, pad_points, surface_points

    model = copy.deepcopy(BodyModel.from_file(built_female[0])).float()
    a, resolution = test_samples.arrays, test_samples.sizes.voxels
    point_sets, weight_sets, joints, truths = [], [], [], []
    for i in range(len(test_samples)):
        vertices, body_joints = true_body_camera(model, a["pose"][i], a["shape"][i], float(a["zrot"][i]),
                                                 a["joints_camera"][i].astype(np.float64))  # fmt: skip
        assert np.abs(body_joints - a["joints_camera"][i]).max() < 1e-4  # the annotation's own joints
        voxels = np.unpackbits(a["voxels"][i], axis=-1, count=resolution).astype(np.float32)
        points, weights = surface_points(voxels)
        camera_points = voxels_to_camera(points, resolution, a["crop_centre"][i], float(a["crop_side"][i]),
                                         float(a["root_depth"][i]), float(a["focal"]), a["principal"])  # fmt: skip
        point_sets.append(mirror(camera_points))
        weight_sets.append(weights)
        joints.append(mirror(a["joints_camera"][i]))
        truths.append(vertices)
    points, weights = pad_points(point_sets, weight_sets)
    joints = torch.as_tensor(np.stack(joints), dtype=torch.float32)
    truth = torch.as_tensor(np.stack(truths), dtype=torch.float32)
    joints_only = surface_error_mm(mirror(fit_to_voxels(model, points, weights, joints, FitSettings(steps=0)).vertices), truth)
    fitted = surface_error_mm(mirror(fit_to_voxels(model, points, weights, joints).vertices), truth)
    # measured when written: 48 mm on average at 32³ voxels (the joints alone: 78 mm)
    assert fitted.mean() < 0.85 * joints_only.mean()
    assert fitted.mean() < 70


@pytest.mark.slow
def test_a_network_is_evaluated_image_by_image(test_samples, built_female):
    import copy

    from pipeline.body_model.model import BodyModel
    from pipeline.evaluation.network import evaluate_network
    from pipeline.fitting.voxel_fit import FitSettings
    from pipeline.models.bodynet import BodyNet, BodyNetConfig

    torch.manual_seed(0)
    network = BodyNet(BodyNetConfig(64, 16, 32, hourglass={"stacks": 1, "features": 8, "modules": 1, "depth": 4}))
    model = copy.deepcopy(BodyModel.from_file(built_female[0])).float()
    table = evaluate_network(network, test_samples, {"female": model, "male": model},
                             FitSettings(joint_steps=5, steps=5), batch_size=4, progress=False)  # fmt: skip
    assert len(table) == len(test_samples) and table["image"].tolist() == list(range(len(test_samples)))
    for column in ("voxel_iou", "pckh", "silhouette_iou", "silhouette_f1", "silhouette_accuracy"):
        assert table[column].between(0, 1).all(), column
    assert (table["surface_error_mm"] > 0).all() and np.isfinite(table["surface_error_mm"]).all()
    assert (table["joint_error_mm"] > 0).all() and (table["shape_deviation_mm"] > 0).all()
    assert set(table["gender"]) == {"female"}


def test_evaluation_cli_names_bad_inputs(tmp_path, tracking_env):
    from pipeline.evaluation.__main__ import main

    with pytest.raises(SystemExit, match="--body-model expects female=PATH or male=PATH"):
        main(["network", "--model", "m.pt", "--samples", "s", "--body-model", "child=x.pkl", "--out", "o.csv"])
    with pytest.raises(SystemExit, match="x.pkl"):
        main(["network", "--model", "m.pt", "--samples", "s", "--body-model", f"female={tmp_path / 'x.pkl'}",
              "--out", "o.csv"])  # fmt: skip
