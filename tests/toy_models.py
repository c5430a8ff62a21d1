"""Small SMPL-format models written by the tests themselves."""

import numpy as np

from pipeline.body_model.model import smpl_arrays


def toy_arrays(num_vertices: int = 72, seed: int = 0, posedirs_scale: float = 0.01) -> dict:
    """A random but consistent SMPL-format model: each vertex hangs on one or two joints."""
    rng = np.random.default_rng(seed)
    v_template = rng.normal(0.0, 0.3, size=(num_vertices, 3))
    faces = rng.integers(0, num_vertices, size=(2 * num_vertices, 3))
    weights = np.zeros((num_vertices, 24))
    for vertex in range(num_vertices):
        first, second = vertex % 24, (vertex * 7 + 3) % 24
        share = rng.uniform(0.5, 1.0)
        weights[vertex, first] += share
        weights[vertex, second] += 1.0 - share
    regressor = np.zeros((24, num_vertices))
    for joint in range(24):
        regressor[joint, [joint, joint + 24]] = 0.5
    return smpl_arrays(
        v_template=v_template,
        faces=faces,
        j_regressor=regressor,
        weights=weights,
        shapedirs=rng.normal(0.0, 0.02, size=(num_vertices, 3, 10)),
        posedirs=rng.normal(0.0, posedirs_scale, size=(num_vertices, 3, 207)),
        extras={},
    )
