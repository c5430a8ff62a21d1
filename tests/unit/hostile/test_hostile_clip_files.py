"""Structured files from outside: a clip's `_info.mat` says which camera its joints were
projected with, and the readers of `_info.mat` and of motion `.npz` files read what they are
given or refuse it with an InputError naming the file, whatever the bytes."""

import io
import pickle
import re
import zipfile

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import clips
from pipeline.clips import read_info
from pipeline.errors import InputError
from pipeline.synthesis import camera, motion
from synthetic_clips import action_like_info, main_like_info

# --- the camera a clip was seen through --------------------------------------------------


def test_an_orbiting_camera_is_stored_and_projects_the_joints_again(tmp_path):
    variables, k, extrinsics = action_like_info(azimuth=90.0, frames=3)
    path = tmp_path / "walk_c0002_info.mat"
    clips.write_mat(path, variables)
    info = read_info(path)
    assert np.allclose(info.intrinsics, k) and np.allclose(info.extrinsics, extrinsics)
    pixels = info.project(info.joints3d)
    assert np.abs(pixels - info.joints2d).max() <= 0.5 + 1e-3  # joints2D are rounded pixels
    # SURREAL's fixed camera at camLoc puts them far away: the file alone says which is right
    assert np.abs(camera.project(info.joints3d, info.cam_loc) - info.joints2d).max() > 10
    raw = scipy.io.loadmat(path)
    assert raw["intrinsics"].shape == (3, 3) and raw["extrinsics"].shape == (3, 4)


def test_a_clip_seen_through_surreals_camera_keeps_surreals_bytes_and_reads_its_camera(tmp_path):
    variables, k, extrinsics = main_like_info(frames=3)
    assert "intrinsics" not in variables and "extrinsics" not in variables
    path = tmp_path / "run_c0001_info.mat"
    clips.write_mat(path, variables)
    info = read_info(path)
    assert np.allclose(info.intrinsics, camera.intrinsics()) and np.allclose(info.extrinsics, extrinsics, atol=1e-5)
    assert np.abs(info.project(info.joints3d) - info.joints2d).max() <= 0.5 + 1e-3
    expected = info.joints3d[0] @ extrinsics[:, :3].T + extrinsics[:, 3]
    assert np.allclose(info.to_camera(info.joints3d[0]), expected, atol=1e-5)  # camLoc is single precision


# --- `_info.mat` from anywhere -------------------------------------------------------------

READ = ("joints2D", "joints3D", "pose", "shape", "gender", "zrot", "camLoc", "camDist", "light")
OPTIONAL = ("camDist", "light")
CAMERA = ("intrinsics", "extrinsics")
CORRUPTIONS = ("none", "missing", "shape", "frames", "dtype", "nan", "gender", "truncate")


def valid_info(frames: int, seed: int, orbiting: bool) -> dict:
    rng = np.random.default_rng(seed)
    if orbiting:
        return action_like_info(float(rng.uniform(0, 360)), frames, rng)[0]
    return main_like_info(frames, rng)[0]


def wrong_dtype(value: np.ndarray, choice: int):
    """A value MATLAB could hold where numbers are expected: text, a cell, a struct, complex."""
    return [
        "not numbers",
        clips.cell(["a"] * max(1, value.size // 10)),
        {"x": np.float64(1.0)},
        np.asarray(value, np.float64) * (1 + 1j),
    ][choice]


@st.composite
def info_files(draw):
    """(bytes of an `_info.mat`, the corruption applied, the valid variables it came from)."""
    frames = draw(st.integers(1, 4))
    variables = valid_info(frames, draw(st.integers(0, 2**32 - 1)), draw(st.booleans()))
    corruption = draw(st.sampled_from(CORRUPTIONS))
    fields = [name for name in (*READ, *CAMERA) if name in variables]
    name = draw(st.sampled_from(fields))
    broken = dict(variables)
    value = np.asarray(broken.get(name))
    if corruption == "missing":
        del broken[name]
    elif corruption == "shape":  # one row more or fewer
        value = np.atleast_2d(value)  # camDist is a scalar
        rows = value.shape[0] + draw(st.sampled_from([-1, 1]))
        if name in ("gender", "zrot") and rows == 1:  # one value for every frame is allowed
            rows = value.shape[0] + 1
        broken[name] = np.resize(value, (rows, *value.shape[1:])) if rows else np.zeros((0, 0), value.dtype)
    elif corruption == "frames":  # a per-frame field with another number of frames
        name = draw(st.sampled_from(["joints2D", "joints3D", "shape", "light", "zrot", "gender"]))
        value = np.asarray(broken[name])
        axis = 0 if name in ("zrot", "gender") else value.ndim - 1
        broken[name] = np.concatenate([value, np.take(value, [0], axis=axis)], axis=axis)
    elif corruption == "dtype":
        broken[name] = wrong_dtype(value, draw(st.integers(0, 3)))
    elif corruption == "nan":
        name = draw(st.sampled_from([f for f in fields if f != "gender"]))
        value = np.array(broken[name], np.float64)
        value.reshape(-1)[draw(st.integers(0, value.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        broken[name] = value
    elif corruption == "gender":
        broken["gender"] = np.full_like(variables["gender"], draw(st.sampled_from([2, 7, 255])))
    data = clips.mat_bytes(broken)
    if corruption == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    return data, corruption, name, variables


def assert_read_as_written(info, variables):
    frames = variables["pose"].shape[1]
    assert info.frames == frames
    assert np.array_equal(info.joints2d, np.transpose(variables["joints2D"], (2, 1, 0)))
    assert np.array_equal(info.joints3d, np.transpose(variables["joints3D"], (2, 1, 0)))
    assert np.array_equal(info.pose, variables["pose"].T) and np.array_equal(info.shape, variables["shape"].T)
    assert np.array_equal(info.gender, variables["gender"][:, 0]) and np.array_equal(info.zrot, variables["zrot"][:, 0])
    assert np.array_equal(info.cam_loc, variables["camLoc"][:, 0])
    if "intrinsics" in variables:
        assert np.array_equal(info.intrinsics, variables["intrinsics"])
        assert np.array_equal(info.extrinsics, variables["extrinsics"])
    else:
        assert np.allclose(info.intrinsics, camera.intrinsics())
        assert np.allclose(info.extrinsics[:, :3], camera.WORLD_TO_CAMERA)


def assert_consistent(info):
    """What a reader may rely on in any ClipInfo read_info returns."""
    frames = info.frames
    assert frames >= 1
    assert info.joints2d.shape == (frames, 24, 2) and info.joints3d.shape == (frames, 24, 3)
    assert info.pose.shape == (frames, 72) and info.shape.shape == (frames, 10) and info.light.shape == (frames, 9)
    assert info.gender.shape == (frames,) and set(np.unique(info.gender)) <= {0, 1}
    assert info.zrot.shape == (frames,) and info.cam_loc.shape == (3,)
    assert info.intrinsics.shape == (3, 3) and info.extrinsics.shape == (3, 4)
    for array in (info.joints2d, info.joints3d, info.pose, info.shape, info.zrot, info.intrinsics, info.extrinsics):
        assert np.isfinite(array).all()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile_info")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=info_files())
def test_read_info_reads_a_file_or_refuses_it_by_name(scratch, case):
    data, corruption, name, variables = case
    path = scratch / "x_c0001_info.mat"
    path.write_bytes(data)
    try:
        info = read_info(path)
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        assert corruption != "none", f"a valid file refused: {error}"
        return
    assert corruption not in ("nan", "gender", "frames"), f"{corruption} in {name} read without a word"
    if corruption in ("missing", "shape", "dtype"):
        assert name in OPTIONAL, f"{corruption} in {name} read without a word"
    assert_consistent(info)
    if corruption in ("none", "truncate"):  # a cut file that reads lost nothing it needs
        assert_read_as_written(info, variables)


def test_a_stored_camera_needs_both_halves_and_a_rotation(tmp_path):
    variables = valid_info(2, 0, orbiting=True)
    path = tmp_path / "x_c0001_info.mat"
    clips.write_mat(path, {k: v for k, v in variables.items() if k != "extrinsics"})
    with pytest.raises(InputError, match=re.escape(str(path))):
        read_info(path)
    skewed = dict(variables, extrinsics=variables["extrinsics"] * [[2.0], [1.0], [1.0]])
    clips.write_mat(path, skewed)
    with pytest.raises(InputError, match="extrinsics"):
        read_info(path)


# --- motion files: user input ------------------------------------------------------------

UNPICKLED = []


def _record_unpickling():
    UNPICKLED.append(True)
    return 0.0


class Trap:
    """An object whose unpickling leaves a trace."""

    def __reduce__(self):
        return _record_unpickling, ()


def npz_bytes(arrays: dict, compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


MOTION_CORRUPTIONS = (
    "none",
    "no_trans",
    "pose_shape",
    "trans_shape",
    "empty",
    "dtype",
    "pickled",
    "nan",
    "fps",
    "name",
    "truncate",
    "flip",
    "npy",
    "pickle",
    "no_motion",
)


@st.composite
def motion_files(draw):
    """(bytes of a motion file, the corruption applied, the valid motions it came from)."""
    names = draw(
        st.lists(st.from_regex(r"[a-z0-9][a-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=3, unique=True)
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    arrays = {}
    for name in names:
        frames = draw(st.integers(1, 5))
        arrays[f"pose_{name}"] = rng.normal(0, 0.3, (frames, 72)).astype(dtype)
        arrays[f"trans_{name}"] = rng.normal(0, 1, (frames, 3)).astype(dtype)
    if draw(st.booleans()):
        arrays["fps"] = np.float64(draw(st.sampled_from([30.0, 60.0, 120.0])))
    valid = dict(arrays)
    corruption = draw(st.sampled_from(MOTION_CORRUPTIONS))
    name = draw(st.sampled_from(names))
    pose, trans = f"pose_{name}", f"trans_{name}"
    if corruption == "no_trans":
        del arrays[trans]
    elif corruption == "pose_shape":
        arrays[pose] = draw(st.sampled_from([arrays[pose][:, :71], arrays[pose][0], arrays[pose][..., None]]))
    elif corruption == "trans_shape":
        arrays[trans] = draw(st.sampled_from([arrays[trans][:, :2], arrays[trans][:-1], arrays[trans][..., None]]))
    elif corruption == "empty":
        arrays[pose], arrays[trans] = arrays[pose][:0], arrays[trans][:0]
    elif corruption == "dtype":
        arrays[pose] = draw(st.sampled_from([arrays[pose].astype(str), arrays[pose].astype(complex)]))
    elif corruption == "pickled":
        arrays[pose] = np.array([Trap()] * 72, dtype=object)[None]
    elif corruption == "nan":
        arrays[draw(st.sampled_from([pose, trans]))].reshape(-1)[0] = draw(st.sampled_from([np.nan, np.inf]))
    elif corruption == "fps":
        arrays["fps"] = draw(st.sampled_from([np.float64(0), np.float64(np.nan), np.float64(-30), np.arange(2.0), "x"]))
    elif corruption == "name":
        bad = draw(st.sampled_from(["../escape", ".hidden", "a/b", "", "sp ace"]))
        arrays[f"pose_{bad}"], arrays[f"trans_{bad}"] = arrays.pop(pose), arrays.pop(trans)
    elif corruption == "no_motion":
        arrays = {"fps": np.float64(30.0)}
    data = npz_bytes(arrays, draw(st.booleans()))
    if corruption == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif corruption == "flip":
        start = draw(st.integers(0, len(data) - 1))
        data = data[:start] + bytes(255 - b for b in data[start : start + 16]) + data[start + 16 :]
    elif corruption == "npy":
        buffer = io.BytesIO()
        np.save(buffer, arrays[pose])
        data = buffer.getvalue()
    elif corruption == "pickle":
        data = pickle.dumps({pose: Trap(), trans: Trap()})
    return data, corruption, valid


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=motion_files())
def test_load_motions_reads_a_file_or_refuses_it_by_name_and_never_unpickles(scratch, case):
    data, corruption, valid = case
    path = scratch / "motions.npz"
    path.write_bytes(data)
    UNPICKLED.clear()
    try:
        motions = motion.load_motions(path)
    except InputError as error:
        assert str(path) in str(error) and "\n" not in str(error)
        assert corruption != "none", f"a valid file refused: {error}"
        return
    finally:
        assert not UNPICKLED, "the reader unpickled an object"
    assert corruption in ("none", "flip"), f"{corruption} read without a word"
    if corruption == "none":
        expected = sorted(key.removeprefix("pose_") for key in valid if key.startswith("pose_"))
        assert [m.name for m in motions] == expected
        fps = float(valid["fps"]) if "fps" in valid else motion.FPS
        for m in motions:
            assert m.fps == fps
            assert np.array_equal(m.pose, valid[f"pose_{m.name}"]) and np.array_equal(m.trans, valid[f"trans_{m.name}"])
    for m in motions:
        assert m.pose.ndim == 2 and m.pose.shape[1] == 72 and m.trans.shape == (len(m), 3) and len(m) >= 1
        assert np.isfinite(m.pose).all() and np.isfinite(m.trans).all() and np.isfinite(m.fps) and m.fps > 0
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", m.name)


def test_the_motion_reader_refuses_pickles_outright(tmp_path):
    """np.load unpickles only when told to: the reader never tells it."""
    path = tmp_path / "motions.npz"
    with zipfile.ZipFile(path, "w") as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.array([Trap()], dtype=object), allow_pickle=True)
        archive.writestr("pose_walk.npy", buffer.getvalue())
    UNPICKLED.clear()
    with pytest.raises(InputError, match=re.escape(str(path))):
        motion.load_motions(path)
    assert not UNPICKLED
