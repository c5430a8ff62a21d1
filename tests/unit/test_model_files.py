import pickle
import subprocess
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch

from pipeline.body_model.model import (
    BodyModel,
    BodyModelError,
    check_model_arrays,
    read_model_file,
    write_model_file,
)
from toy_models import toy_arrays


def random_inputs(batch: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    betas = torch.randn(batch, 10, generator=generator, dtype=torch.float64)
    pose = 0.4 * torch.randn(batch, 72, generator=generator, dtype=torch.float64)
    return betas, pose


def test_written_file_loads_in_smplx_and_poses_like_our_model(tmp_path):
    import smplx

    path = tmp_path / "smpl_toy.pkl"
    # smplx picks extra keypoints at SMPL's vertex ids, so the toy needs SMPL's vertex count
    write_model_file(path, toy_arrays(num_vertices=6890))
    betas, pose = random_inputs(3)
    theirs = smplx.SMPL(model_path=str(path), dtype=torch.float64)(
        betas=betas, global_orient=pose[:, :3], body_pose=pose[:, 3:]
    )
    ours = BodyModel.from_file(path)(betas, pose)
    # smplx rounds the arrays it loads to float32
    assert torch.allclose(theirs.vertices, ours.vertices, atol=1e-5)
    assert torch.allclose(theirs.joints[:, :24], ours.joints, atol=1e-5)
    # a real pose moves the vertices, so the comparison above is not vacuous
    rest = BodyModel.from_file(path)(betas, torch.zeros_like(pose))
    assert (rest.vertices - ours.vertices).abs().max() > 1e-2


def test_npz_files_load_too(tmp_path):
    arrays = toy_arrays()
    path = tmp_path / "smpl_toy.npz"
    dense = {key: value.toarray() if hasattr(value, "toarray") else value for key, value in arrays.items()}
    np.savez(path, **dense)
    model = BodyModel.from_file(path)
    assert model.num_vertices == 72 and model.num_betas == 10


def test_joints_are_the_regressor_applied_to_the_shaped_mesh(tmp_path):
    path = tmp_path / "smpl_toy.pkl"
    write_model_file(path, toy_arrays())
    model = BodyModel.from_file(path)
    betas, _ = random_inputs(2)
    out = model(betas, torch.zeros(2, 72, dtype=torch.float64))
    expected = torch.einsum("jv,bvc->bjc", model.j_regressor, model.shaped(betas))
    assert torch.allclose(out.joints, expected, atol=1e-12)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere" / "SMPL_NEUTRAL.pkl"
    with pytest.raises(BodyModelError, match="SMPL_NEUTRAL.pkl: body model file not found"):
        BodyModel.from_file(path)


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "smpl_toy.pkl"
    write_model_file(path, toy_arrays())
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(BodyModelError, match="smpl_toy.pkl: not a readable SMPL model file"):
        BodyModel.from_file(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("weights", None, "missing key\\(s\\) 'weights'"),
        ("shapedirs", np.zeros((72, 3, 4)), "'shapedirs' has shape \\(72, 3, 4\\)"),
        ("J_regressor", np.zeros((23, 72)), "'J_regressor' has shape \\(23, 72\\)"),
        ("f", np.array([[0, 1, 500]]), "'f' must be \\(F, 3\\) vertex indices below 72"),
        ("v_template", np.full((72, 3), np.nan), "'v_template' contains NaN"),
        ("kintree_table", np.zeros((2, 24), dtype=np.int64), "'kintree_table' is not SMPL's 24-joint tree"),
        ("posedirs", np.zeros((72, 3, 10)), "'posedirs' has shape"),
    ],
)
def test_malformed_arrays_name_file_and_key(tmp_path, key, value, message):
    arrays = toy_arrays()
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    path = tmp_path / "broken.pkl"
    write_model_file(path, arrays)
    with pytest.raises(BodyModelError, match=f"broken.pkl: {message}"):
        BodyModel.from_file(path)


def test_weights_must_be_a_partition_of_unity():
    arrays = toy_arrays()
    arrays["weights"] = arrays["weights"] * 0.5
    with pytest.raises(BodyModelError, match="rows of 'weights' must sum to 1"):
        check_model_arrays(arrays, "toy.pkl")


def chumpy_pickle(arrays: dict, monkeypatch, protocol: int) -> bytes:
    """`arrays` pickled as SMPL's original files hold them: the arrays chumpy objects (a plain
    object whose state holds the array in 'x', like chumpy's Ch), pickled where chumpy is
    importable; the caller then reads them where it is not."""
    chumpy, chumpy_ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch = Ch
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "chumpy", chumpy)
        patch.setitem(sys.modules, "chumpy.ch", chumpy_ch)
        wrapped = {
            key: Ch(value) if key in ("v_template", "shapedirs", "posedirs", "weights") else value
            for key, value in arrays.items()
        }
        return pickle.dumps(wrapped, protocol=protocol)


def test_smpls_chumpy_pickles_load_without_chumpy(tmp_path, monkeypatch):
    """SMPL's original files store arrays as chumpy objects; they load without chumpy."""
    arrays = toy_arrays()
    path = tmp_path / "basicModel_f_lbs.pkl"
    path.write_bytes(chumpy_pickle(arrays, monkeypatch, protocol=2))
    raw = read_model_file(path)
    assert np.array_equal(raw["v_template"], arrays["v_template"])
    assert BodyModel.from_file(path).num_vertices == 72


@pytest.mark.parametrize("protocol", [0, 2])
def test_python_2_era_smpl_pickles_load(tmp_path, monkeypatch, protocol):
    """SMPL's files were pickled by Python 2 with numpy 1.x and an older scipy: they name
    `numpy.core.multiarray`, `scipy.sparse.csc` and `copy_reg`, which still resolve."""
    arrays = toy_arrays()
    data = chumpy_pickle(arrays, monkeypatch, protocol)
    for new, old in ((b"numpy._core.", b"numpy.core."), (b"scipy.sparse._csc", b"scipy.sparse.csc")):
        assert new in data
        data = data.replace(new, old)
    path = tmp_path / "basicModel_m_lbs_10_207_0_v1.0.0.pkl"
    path.write_bytes(data)
    raw = read_model_file(path)
    assert scipy.sparse.isspmatrix_csc(raw["J_regressor"])
    assert np.array_equal(raw["J_regressor"].toarray(), arrays["J_regressor"].toarray())
    assert np.array_equal(raw["shapedirs"], arrays["shapedirs"]) and raw["bs_style"] == "lbs"
    assert BodyModel.from_file(path).num_vertices == 72


def test_a_sparse_regressor_with_indices_out_of_range_is_refused(tmp_path):
    arrays = toy_arrays()
    arrays["J_regressor"].indices[3] = 10_000  # densifying would write outside the array
    path = tmp_path / "smpl.pkl"
    write_model_file(path, arrays)
    with pytest.raises(BodyModelError, match="smpl.pkl: 'J_regressor' is not a readable sparse matrix"):
        BodyModel.from_file(path)


def test_npz_files_with_pickled_extras_load(tmp_path):
    """SMPL-X's .npz files keep some dicts as object arrays; the model needs none of them."""
    arrays = toy_arrays()
    dense = {key: value.toarray() if hasattr(value, "toarray") else value for key, value in arrays.items()}
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(path, **dense, joint2num=np.array({"pelvis": 0}, dtype=object))
    raw = read_model_file(path)
    assert "joint2num" not in raw and np.array_equal(raw["f"], arrays["f"])
    assert BodyModel.from_file(path).num_vertices == 72


def test_cli_reports_a_bad_model_in_one_line(tmp_path):
    path = tmp_path / "empty.pkl"
    path.write_bytes(b"")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.body_model",
            "plot",
            "--model",
            str(path),
            "--out",
            str(tmp_path / "figure.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"error: {path}: not a readable SMPL model file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "figure.png").exists()
