"""SMPL-format body models: reading, checking, writing and posing.

A model file holds SMPL's arrays under SMPL's names (`v_template`, `f`, `J_regressor`,
`weights`, `kintree_table`, `shapedirs`, `posedirs`), so `smplx.SMPL` loads the files
this project writes and this module loads the files SMPL's authors distribute (`.pkl`,
chumpy or not, and `.npz`). Posing uses smplx's `lbs`.

Shapes: B batch, V vertices, F faces, J = 24 joints, S shape coefficients.
"""

from __future__ import annotations

import codecs
import copyreg
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse
import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues, blend_shapes, vertices2joints

from pipeline.atomic import atomic_output
from pipeline.body_model.skeleton import (
    NUM_JOINTS,
    NUM_POSE_BASIS,
    NUM_POSE_PARAMS,
    SMPL_PARENTS,
    bodynet_part_labels,
    kintree_table,
    smpl_part_labels,
)
from pipeline.errors import InputError

REQUIRED_KEYS = ("v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs")
MIN_SHAPE_COEFFICIENTS = 10


class BodyModelError(InputError):
    """A body model file that is missing, unreadable or not in SMPL's format."""


class _ChumpyStandIn:
    """Takes the place of chumpy's classes so SMPL's original pickles load without chumpy."""

    def __init__(self, *args, **kwargs) -> None:
        self.args = args

    def __setstate__(self, state) -> None:
        self.state = state

    def to_array(self, key: str, path: Path) -> np.ndarray:
        state = getattr(self, "state", None)
        if isinstance(state, dict) and "x" in state:
            return np.asarray(state["x"])
        raise BodyModelError(
            f"{path}: '{key}' is a derived chumpy expression; convert the file with chumpy "
            "installed (np.array of each value) and try again"
        )


class _SparseStandIn:
    """Takes the place of a scipy compressed sparse matrix (SMPL's `J_regressor` is one): the
    pickled state is kept here, and only its arrays reach scipy, whose constructor and full
    format check vet them (the file never touches scipy's classes themselves)."""

    matrix: type = scipy.sparse.csc_matrix

    def __setstate__(self, state) -> None:
        self.state = state

    def to_matrix(self, key: str, path: Path) -> scipy.sparse.spmatrix:
        state = getattr(self, "state", None)
        try:
            shape = state.get("_shape", state.get("shape"))  # older scipy kept `shape`
            parts = tuple(np.asarray(state[name]) for name in ("data", "indices", "indptr"))
            matrix = self.matrix(parts, shape=shape)
            matrix.check_format(full_check=True)  # indices in range: densifying trusts them
        except Exception as error:
            raise BodyModelError(f"{path}: '{key}' is not a readable sparse matrix ({_reason(error)})") from error
        return matrix


def _sparse_stand_ins() -> dict[tuple[str, str], type]:
    """Stand-ins for scipy's CSC and CSR classes under the names pickles give them: their
    public one, the deprecated `scipy.sparse.csc` (SMPL's files) and scipy ≥ 1.8's private one."""
    stand_ins = {}
    for form, matrix in (("csc", scipy.sparse.csc_matrix), ("csr", scipy.sparse.csr_matrix)):
        stand_in = type(f"_{form.title()}StandIn", (_SparseStandIn,), {"matrix": matrix})
        for module in ("scipy.sparse", f"scipy.sparse.{form}", f"scipy.sparse._{form}"):
            stand_ins |= {(module, f"{form}_matrix"): stand_in, (module, f"{form}_array"): stand_in}
    return stand_ins


def _numpy_globals() -> dict[tuple[str, str], object]:
    """numpy's arrays, dtypes and the functions its pickles rebuild them with (taken from what
    numpy's own reductions name, so that they hold for numpy 1.x and 2.x), under the modules
    of numpy 1.x (`numpy.core`, SMPL's files) and 2.x (`numpy._core`)."""
    array = np.zeros(1)
    rebuild = {
        "multiarray": {"_reconstruct": array.__reduce__()[0], "scalar": np.float64(0).__reduce__()[0]},
        "numeric": {"_frombuffer": array.__reduce_ex__(5)[0]},
    }
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        for module, functions in rebuild.items():
            allowed |= {(f"{package}.{module}", name): function for name, function in functions.items()}
    return allowed


def _builtin_globals() -> dict[tuple[str, str], object]:
    """What pickle itself needs for byte strings, sets and protocol 0/1 objects, under the
    module names of Python 2 (as SMPL's files were written) and 3."""
    allowed: dict[tuple[str, str], object] = {("_codecs", "encode"): codecs.encode}
    for module in ("copy_reg", "copyreg"):
        allowed[module, "_reconstructor"] = copyreg._reconstructor
    for module in ("__builtin__", "builtins"):
        allowed |= {(module, kind.__name__): kind for kind in (object, set, frozenset)}
    return allowed


# Everything an SMPL model file may refer to; any other global (a function, a class) could be
# called by the pickle with arguments of its choosing, so it is refused.
_SMPL_GLOBALS = _numpy_globals() | _sparse_stand_ins() | _builtin_globals()


class _SmplUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, path: Path) -> None:
        super().__init__(io.BytesIO(data), encoding="latin1")  # latin1: Python 2's numpy buffers
        self.path = path

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "chumpy":
            return _ChumpyStandIn
        allowed = _SMPL_GLOBALS.get((module, name))
        if allowed is None:
            raise BodyModelError(f"{self.path}: refuses to load '{module}.{name}' (not part of an SMPL model file)")
        return allowed


# What `check_model_arrays` reads: in an .npz, any other entry that is not a plain array is skipped.
MODEL_KEYS = (*REQUIRED_KEYS, "posedirs")
_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end record


def _reason(error: BaseException) -> str:
    """The first line of an error's message, for a one-line report."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _read_npz(path: Path) -> dict[str, object]:
    """The plain arrays of an `.npz`. Object arrays are pickles and are never loaded: one the
    model needs is an error, others (SMPL-X keeps dicts so) are left out."""
    with path.open("rb") as handle:
        if handle.read(4) not in _ZIP_STARTS:  # np.load would read it as a pickle or a bare .npy
            raise BodyModelError(f"{path}: not a zip archive, so not an .npz file (numpy.savez writes zip archives)")
    arrays = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            try:
                arrays[key] = data[key]
            except ValueError as error:
                if key in MODEL_KEYS:
                    raise BodyModelError(f"{path}: '{key}' is not a plain array ({_reason(error)})") from error
    return arrays


def _unwrap(key: object, value: object, path: Path) -> object:
    if isinstance(value, _ChumpyStandIn):
        return value.to_array(key, path)
    if isinstance(value, _SparseStandIn):
        return value.to_matrix(key, path)
    return value


def read_model_file(path: str | Path) -> dict[str, object]:
    """The raw arrays of a `.pkl` or `.npz` SMPL-format file. Reading one runs nothing from it:
    a pickle may refer to numpy's and scipy's array types only (and chumpy's, read without
    chumpy), an `.npz` is read without pickles."""
    path = Path(path)
    if not path.is_file():
        raise BodyModelError(f"{path}: body model file not found")
    try:
        raw = _read_npz(path) if path.suffix == ".npz" else _SmplUnpickler(path.read_bytes(), path).load()
    except BodyModelError:
        raise
    except Exception as error:  # any unpickling or zip failure means a corrupt file
        raise BodyModelError(f"{path}: not a readable SMPL model file ({_reason(error)})") from error
    if not isinstance(raw, dict):
        raise BodyModelError(f"{path}: expected a dict of arrays, found {type(raw).__name__}")
    return {key: _unwrap(key, value, path) for key, value in raw.items()}


def _array(raw: dict, key: str, path: Path, ndim: int, dtype=np.float64) -> np.ndarray:
    value = raw[key]
    try:
        array = np.asarray(value.toarray() if scipy.sparse.issparse(value) else value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError, MemoryError) as error:  # OverflowError: a huge Python int
        raise BodyModelError(f"{path}: '{key}' is not numeric ({_reason(error)})") from error
    if array.ndim != ndim:
        raise BodyModelError(f"{path}: '{key}' has shape {array.shape}, expected {ndim} axes")
    if not np.all(np.isfinite(array)):
        raise BodyModelError(f"{path}: '{key}' contains NaN or infinite values")
    if np.issubdtype(dtype, np.integer):  # indices: whole numbers that fit (through float64, exact below 2**53)
        if not np.array_equal(array, np.round(array)) or np.any(np.abs(array) >= 2**53):
            raise BodyModelError(f"{path}: '{key}' must hold integers")
    return array.astype(dtype)


def check_model_arrays(raw: dict, path: str | Path) -> dict[str, np.ndarray]:
    """SMPL's arrays, checked against each other, as float64/int64 numpy arrays."""
    path = Path(path)
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise BodyModelError(f"{path}: missing key(s) {', '.join(map(repr, missing))}")
    v_template = _array(raw, "v_template", path, 2)
    num_vertices = v_template.shape[0]
    if v_template.shape[1] != 3:
        raise BodyModelError(f"{path}: 'v_template' has shape {v_template.shape}, expected (V, 3)")
    faces = _array(raw, "f", path, 2, dtype=np.int64)
    if faces.shape[1] != 3 or not faces.size or faces.min() < 0 or faces.max() >= num_vertices:
        span = f" with range [{faces.min()}, {faces.max()}]" if faces.size else ""
        raise BodyModelError(
            f"{path}: 'f' must be (F, 3) vertex indices below {num_vertices}, got shape {faces.shape}{span}"
        )
    expected = {
        "J_regressor": (NUM_JOINTS, num_vertices),
        "weights": (num_vertices, NUM_JOINTS),
    }
    arrays = {"v_template": v_template, "f": faces}
    for key, shape in expected.items():
        arrays[key] = _array(raw, key, path, 2)
        if arrays[key].shape != shape:
            raise BodyModelError(f"{path}: '{key}' has shape {arrays[key].shape}, expected {shape}")
    if not np.allclose(arrays["weights"].sum(axis=1), 1.0, atol=1e-3):
        raise BodyModelError(f"{path}: rows of 'weights' must sum to 1")
    tree = _array(raw, "kintree_table", path, 2, dtype=np.int64)
    if tree.shape != (2, NUM_JOINTS) or not np.array_equal(tree[0, 1:], SMPL_PARENTS[1:]):
        raise BodyModelError(f"{path}: 'kintree_table' is not SMPL's 24-joint tree")
    shapedirs = _array(raw, "shapedirs", path, 3)
    if shapedirs.shape[:2] != (num_vertices, 3) or shapedirs.shape[2] < MIN_SHAPE_COEFFICIENTS:
        raise BodyModelError(
            f"{path}: 'shapedirs' has shape {shapedirs.shape}, "
            f"expected ({num_vertices}, 3, >= {MIN_SHAPE_COEFFICIENTS})"
        )
    arrays.update(kintree_table=tree, shapedirs=shapedirs)
    if "posedirs" in raw:
        arrays["posedirs"] = _array(raw, "posedirs", path, 3)
        if arrays["posedirs"].shape != (num_vertices, 3, NUM_POSE_BASIS):
            raise BodyModelError(
                f"{path}: 'posedirs' has shape {arrays['posedirs'].shape}, "
                f"expected ({num_vertices}, 3, {NUM_POSE_BASIS})"
            )
    else:
        arrays["posedirs"] = np.zeros((num_vertices, 3, NUM_POSE_BASIS))
    return arrays


def write_model_file(path: str | Path, arrays: dict[str, object]) -> None:
    """Write a model as SMPL does (a latin-1 compatible pickle), atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as handle:
            pickle.dump(arrays, handle, protocol=2)


@dataclass
class BodyOutput:
    vertices: torch.Tensor  # (B, V, 3)
    joints: torch.Tensor  # (B, J, 3)


class BodyModel(torch.nn.Module):
    """An SMPL-format body model posed with smplx's linear blend skinning."""

    def __init__(self, arrays: dict[str, np.ndarray], path: Path | None = None) -> None:
        super().__init__()
        self.path = path
        num_vertices = arrays["v_template"].shape[0]
        self.faces = arrays["f"]
        self.smpl_parts = smpl_part_labels(arrays["weights"])
        self.bodynet_parts = bodynet_part_labels(self.smpl_parts)
        f64 = torch.float64
        self.register_buffer("v_template", torch.as_tensor(arrays["v_template"], dtype=f64))
        self.register_buffer("shapedirs", torch.as_tensor(arrays["shapedirs"], dtype=f64))
        self.has_pose_correctives = bool(np.any(arrays["posedirs"]))
        # all-zero correctives (the anny-derived models) are not kept: 66 MB for nothing
        posedirs = arrays["posedirs"].reshape(num_vertices * 3, NUM_POSE_BASIS).T
        posedirs = posedirs if self.has_pose_correctives else np.zeros((NUM_POSE_BASIS, 0))
        self.register_buffer("posedirs", torch.as_tensor(posedirs, dtype=f64).contiguous())
        self.register_buffer("j_regressor", torch.as_tensor(arrays["J_regressor"], dtype=f64))
        self.register_buffer("lbs_weights", torch.as_tensor(arrays["weights"], dtype=f64))
        self.register_buffer("parents", torch.as_tensor(SMPL_PARENTS, dtype=torch.long))

    @classmethod
    def from_file(cls, path: str | Path) -> BodyModel:
        path = Path(path)
        return cls(check_model_arrays(read_model_file(path), path), path=path)

    @property
    def num_betas(self) -> int:
        return self.shapedirs.shape[-1]

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    def forward(
        self,
        betas: torch.Tensor,
        pose: torch.Tensor,
        transl: torch.Tensor | None = None,
    ) -> BodyOutput:
        """Pose the model: betas (B, <= S), pose (B, 72) axis-angle, transl (B, 3)."""
        if pose.shape[-1] != NUM_POSE_PARAMS:
            raise ValueError(f"pose must have {NUM_POSE_PARAMS} values, got {pose.shape[-1]}")
        dtype = self.v_template.dtype
        vertices, joints = self.lbs(betas.to(dtype), pose.to(dtype).contiguous())
        if transl is not None:
            vertices = vertices + transl.to(dtype)[:, None]
            joints = joints + transl.to(dtype)[:, None]
        return BodyOutput(vertices=vertices, joints=joints)

    def lbs(self, betas: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SMPL's linear blend skinning, as smplx's `lbs`, but computing the shaped mesh once
        when one shape (1, S) serves a batch of poses (B, 72), and skipping pose correctives
        that are all zero (the anny-derived models have none)."""
        rotations = batch_rodrigues(pose.reshape(-1, 3)).reshape(pose.shape[0], -1, 3, 3)
        return self.lbs_rotations(betas, rotations)

    def lbs_rotations(self, betas: torch.Tensor, rotations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`lbs` from each joint's rotation matrix (B, 24, 3, 3) rather than its axis-angle, for
        networks that predict matrices -> vertices (B, V, 3) and joints (B, 24, 3), in the
        model's dtype."""
        batch = rotations.shape[0]
        dtype = self.v_template.dtype
        betas, rotations = betas.to(dtype), rotations.to(dtype)
        v_shaped = self.v_template + blend_shapes(betas, self.shapedirs[..., : betas.shape[-1]])
        joints = vertices2joints(self.j_regressor, v_shaped)
        v_posed = v_shaped.expand(batch, -1, -1)
        if self.has_pose_correctives:
            eye = torch.eye(3, dtype=dtype, device=rotations.device)
            features = (rotations[:, 1:] - eye).reshape(batch, -1)
            v_posed = v_posed + (features @ self.posedirs).reshape(batch, -1, 3)
        posed_joints, transforms = batch_rigid_transform(
            rotations, joints.expand(batch, -1, -1), self.parents, dtype=dtype
        )
        per_vertex = (self.lbs_weights @ transforms.reshape(batch, -1, 16)).reshape(batch, -1, 4, 4)
        vertices = (per_vertex[..., :3, :3] @ v_posed[..., None])[..., 0] + per_vertex[..., :3, 3]
        return vertices, posed_joints

    def posed_joints(self, betas: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
        """The joints (B, 24, 3) of `lbs_rotations` alone, without skinning the mesh: what a
        loss on joints needs, at a fraction of the cost."""
        dtype = self.v_template.dtype
        betas, rotations = betas.to(dtype), rotations.to(dtype)
        v_shaped = self.v_template + blend_shapes(betas, self.shapedirs[..., : betas.shape[-1]])
        joints = vertices2joints(self.j_regressor, v_shaped)
        posed, _ = batch_rigid_transform(rotations, joints.expand(len(rotations), -1, -1), self.parents, dtype=dtype)
        return posed

    def shaped(self, betas: torch.Tensor) -> torch.Tensor:
        """Rest-pose vertices (B, V, 3) for shape coefficients (B, <= S)."""
        directions = self.shapedirs[..., : betas.shape[-1]]
        return self.v_template + torch.einsum("bs,vcs->bvc", betas.to(self.v_template.dtype), directions)


def smpl_arrays(
    v_template: np.ndarray,
    faces: np.ndarray,
    j_regressor: scipy.sparse.spmatrix,
    weights: np.ndarray,
    shapedirs: np.ndarray,
    posedirs: np.ndarray,
    extras: dict[str, object],
) -> dict[str, object]:
    """The dict an SMPL `.pkl` holds, with the kinematic tree filled in."""
    return {
        "v_template": v_template,
        "f": faces.astype(np.uint32),
        "J_regressor": scipy.sparse.csc_matrix(j_regressor),
        "weights": weights,
        "kintree_table": kintree_table(),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "bs_type": "lrotmin",
        "bs_style": "lbs",
        **extras,
    }
