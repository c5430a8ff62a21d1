"""Crafted and damaged body-model files and network checkpoints: reading one never runs code
from it, and each fails with one line naming the file (and the key, where one is at fault)."""

import io
import pathlib
import pickle
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import BODYNET_CHOICES
from pipeline.body_model.model import REQUIRED_KEYS, BodyModel, BodyModelError
from pipeline.errors import InputError
from pipeline.models.bodynet import BodyNet, BodyNetConfig, HourglassConfig
from pipeline.models.checkpoint import build_model, load_checkpoint, save_model
from toy_models import toy_arrays

TINY = BodyNetConfig(32, 8, 16, HourglassConfig(stacks=1, features=8, modules=1, depth=2), **BODYNET_CHOICES)


class Touch:
    """Unpickles as `pathlib.Path.touch(marker)`: a file appears if the reader runs what a file says."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def dense_toy_arrays() -> dict[str, np.ndarray]:
    """The toy model as an `.npz` holds it: plain dense arrays."""
    return {
        key: value.toarray() if hasattr(value, "toarray") else np.asarray(value) for key, value in toy_arrays().items()
    }


def assert_one_line_naming(error: pytest.ExceptionInfo, path: pathlib.Path) -> None:
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message


# body model files: .pkl and .npz


@pytest.mark.parametrize("protocol", [2, 4])  # 2: via builtins.getattr; 4: 'pathlib' 'Path.touch' directly
def test_a_pickled_model_file_cannot_run_code(tmp_path, protocol):
    marker, path = tmp_path / "marker", tmp_path / "smpl.pkl"
    path.write_bytes(pickle.dumps({**toy_arrays(), "v_template": Touch(marker)}, protocol=protocol))
    with pytest.raises(BodyModelError, match="refuses to load '[a-z_.]*(getattr|Path.touch)'") as error:
        BodyModel.from_file(path)
    assert_one_line_naming(error, path)
    assert not marker.exists()


def test_a_refused_class_anywhere_in_the_file_is_named(tmp_path):
    path = tmp_path / "smpl.pkl"
    path.write_bytes(pickle.dumps({**toy_arrays(), "extra": {"nested": [zipfile.ZipInfo("x")]}}, protocol=2))
    with pytest.raises(BodyModelError, match="refuses to load 'zipfile.ZipInfo' \\(not part of an SMPL model file\\)"):
        BodyModel.from_file(path)


@pytest.mark.parametrize("key", ["v_template", "bodynet_joints"])  # one the model needs, one it does not
def test_an_npz_object_array_is_never_unpickled(tmp_path, key):
    marker, path = tmp_path / "marker", tmp_path / "smpl.npz"
    np.savez(path, **{**dense_toy_arrays(), key: np.array([Touch(marker)], dtype=object)})
    if key in REQUIRED_KEYS:
        with pytest.raises(BodyModelError, match=f"'{key}' is not a plain array") as error:
            BodyModel.from_file(path)
        assert_one_line_naming(error, path)
    else:  # SMPL-X-style extras kept as objects are skipped: the model needs none of them
        assert BodyModel.from_file(path).num_vertices == 72
    assert not marker.exists()


@pytest.mark.parametrize("payload", ["pickle", "npy"])
def test_an_npz_that_is_not_a_zip_is_refused(tmp_path, payload):
    marker, path = tmp_path / "marker", tmp_path / "smpl.npz"
    if payload == "pickle":  # np.load reads a non-zip file as a pickle
        path.write_bytes(pickle.dumps({"v_template": Touch(marker)}, protocol=2))
    else:
        with path.open("wb") as handle:
            np.save(handle, np.zeros(3))
    with pytest.raises(BodyModelError, match="not a zip archive") as error:
        BodyModel.from_file(path)
    assert_one_line_naming(error, path)
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_a_truncated_model_file_is_named(tmp_path, keep):
    path = tmp_path / "smpl.pkl"
    data = pickle.dumps(toy_arrays(), protocol=2)
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BodyModelError, match="not a readable SMPL model file") as error:
        BodyModel.from_file(path)
    assert_one_line_naming(error, path)


# checkpoints


@pytest.fixture(scope="module")
def tiny_network() -> BodyNet:
    torch.manual_seed(0)
    return BodyNet(TINY)


def test_a_crafted_checkpoint_cannot_run_code(tmp_path):
    marker, path = tmp_path / "marker", tmp_path / "model.pt"
    torch.save({"config": TINY.as_dict(), "state": {"pose2d": Touch(marker)}, "stage": "pose2d"}, path)
    with pytest.raises(InputError, match="refuses to load") as error:
        load_checkpoint(path)
    assert_one_line_naming(error, path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda config: config | {"colour": "red"}, "'colour'"),
        (lambda config: config | {"hourglass": config["hourglass"] | {"width": 3}}, "'hourglass.width'"),
        (lambda config: config | {"input_size": "256"}, "input_size must be a positive integer"),
        (lambda config: config | {"voxel_inputs": ["rgb", 7]}, "voxel_inputs must be a non-empty subset"),
        (lambda config: config | {"hourglass": None}, "hourglass must be a dict"),
    ],
)
def test_a_checkpoint_config_with_a_bad_key_names_it(tmp_path, tiny_network, change, key):
    path = tmp_path / "model.pt"
    save_model(path, tiny_network, "pose2d", ["pose2d"], 1)
    checkpoint = torch.load(path, weights_only=True)
    torch.save(checkpoint | {"config": change(checkpoint["config"])}, path)
    with pytest.raises(InputError, match=key) as error:
        load_checkpoint(path)
    assert_one_line_naming(error, path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_caught_when_the_checkpoint_loads(tmp_path, value):
    network = BodyNet(TINY)
    with torch.no_grad():
        next(network.segm.parameters()).view(-1)[3] = value
    path = tmp_path / "model.pt"
    save_model(path, network, "segm", ["pose2d", "segm"], 1)
    with pytest.raises(InputError, match="holds non-finite weights \\(subnetwork segm") as error:
        build_model(TINY, [path])
    assert_one_line_naming(error, path)


def test_a_checkpoint_holding_an_unknown_subnetwork_is_named(tmp_path, tiny_network):
    path = tmp_path / "model.pt"
    torch.save({"config": TINY.as_dict(), "state": {"config": tiny_network.pose2d.state_dict()}}, path)
    with pytest.raises(InputError, match="unknown subnetwork 'config'") as error:
        build_model(TINY, [path])
    assert_one_line_naming(error, path)


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.99])
def test_a_truncated_checkpoint_is_named(tmp_path, tiny_network, keep):
    path = tmp_path / "model.pt"
    save_model(path, tiny_network, "pose2d", ["pose2d"], 1)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="not a readable checkpoint") as error:
        load_checkpoint(path)
    assert_one_line_naming(error, path)


def test_checkpoints_hold_only_plain_values(tmp_path, tiny_network):
    """What writers add (numpy numbers from metrics, paths) is stored as plain values, so the
    file loads with `weights_only=True`; so is a config built from numpy integers."""
    config = BodyNetConfig(
        np.int64(32),
        np.int64(8),
        16,
        {"stacks": np.int64(1), "features": 8, "modules": 1, "depth": 2},
        **BODYNET_CHOICES,
    )
    assert all(type(value) in (int, str, tuple, dict) for value in config.as_dict().values())
    assert all(type(value) is int for value in config.as_dict()["hourglass"].values())
    path = tmp_path / "model.pt"
    extra = {"history": [{"pckh": np.float64(0.5), "iteration": np.int64(2)}], "init": [tmp_path / "a.pt"]}
    save_model(path, tiny_network, "pose2d", ["pose2d"], 2, extra)
    saved = torch.load(path, weights_only=True)
    assert saved["history"] == [{"pckh": 0.5, "iteration": 2}] and saved["init"] == [str(tmp_path / "a.pt")]
    assert type(saved["history"][0]["pckh"]) is float


def test_an_action_network_checkpoint_cannot_run_code(tmp_path):
    from pipeline.actions.__main__ import load_ltc_checkpoint

    marker, path = tmp_path / "marker", tmp_path / "model.pt"
    torch.save({"state": Touch(marker), "settings": {}, "classes": 2}, path)
    with pytest.raises(InputError, match="refuses to load") as error:
        load_ltc_checkpoint(path)
    assert_one_line_naming(error, path)
    assert not marker.exists()
    torch.save({"state": {}, "classes": 2}, path)
    with pytest.raises(InputError, match="not an LTC checkpoint") as error:
        load_ltc_checkpoint(path)
    assert_one_line_naming(error, path)


def test_an_action_network_checkpoint_round_trips_as_plain_values(tmp_path):
    """What `python -m pipeline.actions train` writes loads back without unpickling anything else."""
    from pipeline.actions.__main__ import load_ltc_checkpoint
    from pipeline.actions.network import LTC
    from pipeline.actions.train import LTCSettings
    from pipeline.models.checkpoint import save_checkpoint

    settings = LTCSettings(4, 10, 1 / 16, 0.0, 2, 2, "adam", 1e-3, 0.9, 0.0, 1.0, 3, 0, 2, (1, 2), 0.1, 1.0)
    model = LTC(2, 3, settings.extent, settings.size, settings.width)
    path = tmp_path / "model.pt"
    save_checkpoint(path, {"state": model.state_dict(), "settings": vars(settings), "classes": np.int64(3)})
    checkpoint = load_ltc_checkpoint(path)
    assert LTCSettings(**checkpoint["settings"]) == settings and checkpoint["classes"] == 3
    LTC(2, 3, settings.extent, settings.size, settings.width).load_state_dict(checkpoint["state"])


# whatever a model file holds, reading it fails with a BodyModelError or not at all

plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)
matrices = st.lists(st.lists(st.integers() | st.floats(), max_size=3), max_size=3)
keys = st.sampled_from([*REQUIRED_KEYS, "posedirs"])
model_like = st.dictionaries(keys | st.text(max_size=3), matrices | plain_values)
one_key_changed = st.tuples(keys, matrices | plain_values)  # a valid toy model with one value replaced


def as_array(value) -> np.ndarray:
    """`value` as numpy stores it: a numeric array where it can be one, else an object array."""
    try:
        return np.asarray(value)
    except (ValueError, OverflowError):  # ragged lists
        array = np.empty(1, dtype=object)
        array[0] = value
        return array


def savez_bytes(content: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{key: as_array(value) for key, value in content.items()})
    return buffer.getvalue()


file_contents = st.one_of(
    st.binary(max_size=64),
    st.tuples(st.integers(0, 5), plain_values | model_like).map(lambda p: pickle.dumps(p[1], p[0])),
    st.tuples(st.integers(0, 5), one_key_changed).map(lambda p: pickle.dumps(toy_arrays() | dict([p[1]]), p[0])),
    model_like.map(savez_bytes),
    one_key_changed.map(lambda change: savez_bytes(dense_toy_arrays() | dict([change]))),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=file_contents, suffix=st.sampled_from([".pkl", ".npz"]))
@example(content=pickle.dumps(toy_arrays() | {"f": [[]]}, 2), suffix=".pkl")  # no faces: no index range
@example(content=pickle.dumps(toy_arrays() | {"kintree_table": [[2**64]]}, 2), suffix=".pkl")  # beyond int64
def test_any_model_file_fails_only_with_a_body_model_error(tmp_path, content, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(content)
    try:
        BodyModel.from_file(path)
    except BodyModelError as error:
        assert str(error).startswith(f"{path}: ")
