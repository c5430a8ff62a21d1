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
