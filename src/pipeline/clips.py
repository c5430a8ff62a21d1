"""SURREAL's released file layout and formats: where each file of a clip lies, how this
project writes it, and how a clip (this project's or SURREAL's own) is read.

    <root>/cmu/<split>/run<r>/<seq>/<seq>_c<clip:04d>.mp4          RGB video, 30 fps
                                     <seq>_c<clip:04d>_info.mat      per-clip annotations
                                     <seq>_c<clip:04d>_segm.mat      segm_<t>   uint8 (240, 320)
                                     <seq>_c<clip:04d>_depth.mat     depth_<t>  float32 (240, 320)
                                     <seq>_c<clip:04d>_gtflow.mat    gtflow_<t> float32 (240, 320, 2)
                                     <seq>_c<clip:04d>_normal.mat    normal_<t> float32 (240, 320, 3)

Frame variables are 1-based (`segm_1` is the first frame). `_info.mat` holds the fields of
SURREAL's released files with their MATLAB classes and shapes: `sequence` (char),
`clipNo` (double), `source` (char), `bg` and `cloth` (1×T cells), `gender` (T×1 uint8,
0 = female, 1 = male), `light` (9×T single), `stride` (uint8), `camDist` (single),
`camLoc` (3×1 single), `joints2D` (2×24×T single), `joints3D` (3×24×T single), `pose`
(72×T single), `zrot` (T×1 single), `shape` (10×T single).

The camera. SURREAL saw every clip through one fixed camera (`SURREAL_FOCAL`,
`SURREAL_WORLD_TO_CAMERA`: 320×240 pixels, focal 600, looking along the world's −x from
`camLoc`; `pipeline.synthesis.camera` explains it), so its files store only `camLoc`. A clip
seen through any other camera (this project's action clips: other frame sizes and focal
lengths, cameras around the person) adds two fields, and only then:

    intrinsics   3×3 double   K, pixels: joints2D = round(K (R X + t)), x right, y down, 0-based
    extrinsics   3×4 double   [R | t], world → camera, with X in joints3D's world

`info_variables` compares the camera it is given with SURREAL's at the stored `camLoc` and
writes the fields only where they differ, rather than always: a clip seen through SURREAL's
camera keeps the bytes it had before the fields existed (nothing rendered has to be
rendered again) and stays laid out exactly as SURREAL's own files, which lack them, so
readers must rebuild SURREAL's camera from `camLoc` anyway. SURREAL's readers (its MATLAB
code, `scipy.io.loadmat`) skip fields they do not know: they read a clip with them, and
only these fields tell them that its joints were not seen through their fixed camera.
`ClipInfo` carries the clip's camera either way: the stored one, else SURREAL's at `camLoc`,
so SURREAL's released files read as before. Readers that project a clip's joints or move
them into the camera's frame use `ClipInfo.intrinsics`, `extrinsics`, `to_camera` and
`project`, never SURREAL's camera directly.

`read_info` checks what it reads: every field it needs present, numeric and finite, of its
MATLAB shape and of the clip's number of frames (`gender` and `zrot` may be one value for
all), `gender` 0 or 1, a stored camera whole (both fields) with a rotation for R; otherwise a
`ClipError` naming the file and the field.

Flow follows SURREAL's `gtflow` exactly: Blender's vector pass (R, G) at frame t, i.e. the
pixel motion to the previous frame in raster units with y pointing up: (x[t-1] − x[t],
−(y[t-1] − y[t])); the first frame is zero. Users of SURREAL negate the first channel to
get the motion from the previous frame. This project adds, beside it, the forward flow it
uses itself:

                                     <seq>_c<clip:04d>_flow.mat      flow_<t>  float32 (240, 320, 2)

with flow_t = (x[t+1] − x[t], y[t+1] − y[t]) in pixels (x right, y down) at frame t's pixels
(zero on the last frame and off the body). Files added by this project, which SURREAL
readers ignore: `_flow.mat`, `_voxels.mat` and `_partvoxels.mat` (BodyNet's occupancy and six
body parts, `voxels_<t>` and `partvoxels_<t>`; see `pipeline.synthesis.voxels`) and, with
lossless frames, `<seq>_c<clip:04d>_frames/` (PNG per frame).

Depth is the distance along the optical axis in metres (Blender's Z pass), 1e10 off the
body. Normals are world-frame unit vectors (Blender's Normal pass), 0 off the body.

Writing: `clip_directory`, `write_mat` of `info_variables` and `frame_variables`. Reading:
`find_clips` lists the clips under a root (a video without its `_info.mat` is an error);
`Clip` reads one clip's annotations and frames.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import scipy.io
from zlib_ng import zlib_ng

from pipeline.errors import InputError

SOURCE = "cmu"
# zlib-ng writes standard deflate streams several times faster than zlib; past level 6
# the body pixels' float32 values do not compress further
COMPRESSION_LEVEL = 6
MI_MATRIX, MI_COMPRESSED = 14, 15
MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created by: pipeline.synthesis"
FRAME_FILES = {"segm": "segm", "depth": "depth", "gtflow": "gtflow", "normal": "normal", "flow": "flow"}


# SURREAL's fixed camera (gulvarol/surreal, misc/3Dto2D): what a clip without a stored camera was seen through
SURREAL_WIDTH, SURREAL_HEIGHT = 320, 240
SURREAL_FOCAL = 600.0  # pixels: a 60 mm lens on a 32 mm sensor, 320 px wide
SURREAL_WORLD_TO_CAMERA = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
# a camera given to `info_variables` within these of SURREAL's is SURREAL's: camLoc is
# stored in single precision, so the translation rebuilt from it is off by ~1e-6 m
CAMERA_TOLERANCE = {"intrinsics": 1e-9, "extrinsics": 1e-5}


def surreal_intrinsics() -> np.ndarray:
    """SURREAL's K (3, 3): focal 600, principal point at the centre of 320×240 pixels."""
    return np.array(
        [[SURREAL_FOCAL, 0.0, SURREAL_WIDTH / 2], [0.0, SURREAL_FOCAL, SURREAL_HEIGHT / 2], [0.0, 0.0, 1.0]]
    )


def surreal_extrinsics(cam_loc: np.ndarray) -> np.ndarray:
    """SURREAL's [R | t] (3, 4), world → camera, of its camera at `cam_loc` (3,): t = −R camLoc."""
    rotation = SURREAL_WORLD_TO_CAMERA
    return np.column_stack([rotation, -rotation @ np.asarray(cam_loc, dtype=np.float64).reshape(3)])


def clip_stem(sequence: str, clip: int) -> str:
    return f"{sequence}_c{clip:04d}"


def clip_directory(root: Path, split: str, run: int, sequence: str) -> Path:
    return Path(root) / SOURCE / split / f"run{run}" / sequence


# MATLAB v5 codes of the numeric arrays this project writes: numpy dtype → (class, data type)
_NUMERIC = {"uint8": (9, 2), "int32": (12, 5), "uint32": (13, 6), "float32": (7, 7), "float64": (6, 9)}


def _padded(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 8)


def _numeric_element(name: str, array: np.ndarray) -> bytes:
    """The uncompressed miMATRIX element of a real numeric array (2+ axes), as scipy writes it."""
    mclass, mdtype = _NUMERIC[array.dtype.name]
    dims = np.asarray(array.shape, dtype="<i4").tobytes()
    label = name.encode("ascii")
    data = np.asfortranarray(array).tobytes(order="F")
    body = b"".join(
        (
            struct.pack("<IIII", 6, 8, mclass, 0),  # array flags (miUINT32)
            struct.pack("<II", 5, len(dims)) + _padded(dims),  # dimensions (miINT32)
            struct.pack("<II", 1, len(label)) + _padded(label)
            if len(label) > 4
            else struct.pack("<HH", 1, len(label)) + label.ljust(4, b"\x00"),  # name (miINT8)
            struct.pack("<II", mdtype, len(data)) + _padded(data),  # real part
        )
    )
    return struct.pack("<II", MI_MATRIX, len(body)) + body


def _elements(variables: dict[str, object]):
    """Each variable's uncompressed element: numeric arrays directly, the rest through scipy."""
    for name, value in variables.items():
        if isinstance(value, np.ndarray) and value.ndim >= 2 and value.dtype.name in _NUMERIC:
            yield _numeric_element(name, value)
            continue
        buffer = io.BytesIO()
        scipy.io.savemat(buffer, {name: value}, do_compression=False, oned_as="column")
        yield buffer.getvalue()[128:]


def mat_bytes(variables: dict[str, object]) -> bytes:
    """A compressed MATLAB v5 file whose bytes depend on the variables only.

    Each variable's element is deflated into a miCOMPRESSED element, as MATLAB's and scipy's
    own compressed files are laid out; the header holds a fixed text instead of a date.
    """
    header = MAT_HEADER.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0100) + b"IM"
    parts = [header]
    for element in _elements(variables):
        packed = zlib_ng.compress(element, COMPRESSION_LEVEL)
        parts.append(struct.pack("<II", MI_COMPRESSED, len(packed)) + packed)
    return b"".join(parts)


def write_mat(path: Path, variables: dict[str, object]) -> None:
    Path(path).write_bytes(mat_bytes(variables))


def frame_variables(name: str, frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{name}_{index + 1}": frame for index, frame in enumerate(frames)}


def cell(strings: list[str]) -> np.ndarray:
    """A 1×N MATLAB cell array of char."""
    out = np.empty((1, len(strings)), dtype=object)
    out[0, :] = strings
    return out


def info_variables(
    sequence: str,
    clip: int,
    backgrounds: list[str],
    gender: int,
    light: np.ndarray,
    stride: int,
    cam_dist: float,
    cam_loc: np.ndarray,
    joints2d: np.ndarray,
    joints3d: np.ndarray,
    pose: np.ndarray,
    zrot: float,
    cloths: list[str],
    shape: np.ndarray,
    intrinsics: np.ndarray | None = None,
    extrinsics: np.ndarray | None = None,
) -> dict[str, object]:
    """`_info.mat`'s fields for a clip of T frames; joints are (T, 24, 2|3), pose (T, 72).

    `intrinsics` (3, 3) and `extrinsics` (3, 4, world → camera) are the camera `joints2d`
    were projected with (None: SURREAL's at `cam_loc`); they are stored where they are not
    SURREAL's camera at the stored `camLoc` (the module's docstring says why)."""
    frames = len(pose)
    f32 = np.float32
    cam_loc = np.asarray(cam_loc, f32).reshape(3, 1)
    return {
        "sequence": clip_stem(sequence, clip),
        "clipNo": np.float64(clip),
        "source": SOURCE,
        "bg": cell(backgrounds),
        "gender": np.full((frames, 1), gender, dtype=np.uint8),
        "light": np.repeat(np.asarray(light, f32)[:, None], frames, axis=1),
        "stride": np.uint8(stride),
        "camDist": f32(cam_dist),
        "camLoc": cam_loc,
        # before the joints: a file cut short that loses the camera loses what it projects too
        **stored_camera(cam_loc, intrinsics, extrinsics),
        "joints2D": np.ascontiguousarray(np.transpose(joints2d, (2, 1, 0)), dtype=f32),
        "joints3D": np.ascontiguousarray(np.transpose(joints3d, (2, 1, 0)), dtype=f32),
        "pose": np.ascontiguousarray(np.asarray(pose, f32).T),
        "zrot": np.full((frames, 1), zrot, dtype=f32),
        "cloth": cell(cloths),
        "shape": np.repeat(np.asarray(shape, f32)[:, None], frames, axis=1),
    }


def stored_camera(cam_loc: np.ndarray, intrinsics: np.ndarray | None, extrinsics: np.ndarray | None) -> dict:
    """The `intrinsics` and `extrinsics` fields of a clip's camera, or none where it is
    SURREAL's at `cam_loc` (as `read_info` rebuilds it)."""
    given = {
        "intrinsics": surreal_intrinsics() if intrinsics is None else np.asarray(intrinsics, np.float64),
        "extrinsics": surreal_extrinsics(cam_loc) if extrinsics is None else np.asarray(extrinsics, np.float64),
    }
    surreal = {"intrinsics": surreal_intrinsics(), "extrinsics": surreal_extrinsics(cam_loc)}
    if given["intrinsics"].shape != (3, 3) or given["extrinsics"].shape != (3, 4):
        raise ValueError(
            f"a camera is K (3, 3) and [R | t] (3, 4), not {given['intrinsics'].shape} and {given['extrinsics'].shape}"
        )
    if all(np.allclose(given[name], surreal[name], rtol=0, atol=CAMERA_TOLERANCE[name]) for name in given):
        return {}
    return given


# --- reading ---------------------------------------------------------------------------------


class ClipError(InputError):
    """A clip whose files are missing or malformed."""


def find_clips(root: str | Path, split: str, runs: list[int] | None = None) -> list[Path]:
    """`_info.mat` paths of the clips of a split (of the runs given, else of every run), sorted.
    A video without its `_info.mat` is an error, not a clip to skip: a copy of the release
    cut short must not quietly shrink a test set."""
    base = Path(root) / "cmu" / split
    if not base.is_dir():
        raise ClipError(f"{base}: no such split folder")
    if runs is None:
        folders = sorted(base.glob("run*"))
    else:
        folders = [base / f"run{r}" for r in runs]
        missing = [folder for folder in folders if not folder.is_dir()]
        if missing:
            raise ClipError(f"{missing[0]}: no such run folder")
    clips = []
    for folder in folders:
        clips += folder.glob("*/*_info.mat")
        for video in folder.glob("*/*.mp4"):
            if not video.with_name(f"{video.stem}_info.mat").exists():
                raise ClipError(f"{video}: no {video.stem}_info.mat beside it (a clip copied or rendered in part)")
    return sorted(clips)


@dataclass
class ClipInfo:
    """`_info.mat`, with MATLAB's shapes flattened: arrays are per frame first.

    The camera is the clip's own: the one the file stores, else SURREAL's at `cam_loc`."""

    joints2d: np.ndarray  # (T, 24, 2) pixels, 0-based
    joints3d: np.ndarray  # (T, 24, 3) world, metres (SURREAL's: y down)
    pose: np.ndarray  # (T, 72)
    shape: np.ndarray  # (T, 10)
    gender: np.ndarray  # (T,) 0 female, 1 male
    zrot: np.ndarray  # (T,)
    cam_loc: np.ndarray  # (3,)
    cam_dist: float
    light: np.ndarray  # (T, 9)
    intrinsics: np.ndarray  # (3, 3) K, pixels
    extrinsics: np.ndarray  # (3, 4) [R | t], world → camera

    @property
    def frames(self) -> int:
        return len(self.pose)

    @property
    def rotation(self) -> np.ndarray:
        """World → camera rotation (3, 3); SURREAL's and this project's are reflections (det −1)."""
        return self.extrinsics[:, :3]

    @property
    def translation(self) -> np.ndarray:
        """World → camera translation (3,), metres."""
        return self.extrinsics[:, 3]

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) in pixels of the image whose centre is the principal point, as with
        every camera SURREAL and this project use."""
        return round(2 * self.intrinsics[0, 2]), round(2 * self.intrinsics[1, 2])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in the camera's frame (x right, y down, z forward), metres."""
        return np.asarray(points, dtype=np.float64) @ self.rotation.T + self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """Pixel coordinates (..., 2) of world points (..., 3), before rounding."""
        pixels = self.to_camera(points) @ self.intrinsics.T
        return pixels[..., :2] / pixels[..., 2:3]


REQUIRED_FIELDS = ("joints2D", "joints3D", "pose", "shape", "gender", "zrot", "camLoc")


class _Fields:
    """An `_info.mat`'s variables, each read as a finite float64 array of its MATLAB shape
    or refused with a ClipError naming the file and the field."""

    def __init__(self, path: Path, raw: dict) -> None:
        self.path, self.raw = path, raw

    def error(self, name: str, problem: str) -> ClipError:
        return ClipError(f"{self.path}: field {name} {problem}")

    def numbers(self, name: str) -> np.ndarray:
        value = self.raw[name]
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise self.error(name, f"holds {kind}, not real numbers")
        array = value.astype(np.float64)
        if not np.isfinite(array).all():
            raise self.error(name, "holds NaN or infinite values")
        return array

    def shaped(self, name: str, *shapes: tuple[int, ...]) -> np.ndarray:
        """The field, of one of `shapes` (the first is the one returned; the others are
        MATLAB's forms of it, which hold the same values in the same order)."""
        array = self.numbers(name)
        if array.shape not in shapes:
            raise self.error(name, f"is {'×'.join(map(str, array.shape)) or 'a scalar'}, not {_shape_text(shapes[0])}")
        return array.reshape(shapes[0])

    def per_frame(self, name: str, frames: int) -> np.ndarray:
        """A T×1 (or 1×T) vector, or one value for every frame, as (T,)."""
        array = self.numbers(name)
        if array.ndim > 2 or (array.ndim == 2 and 1 not in array.shape) or array.size not in (1, frames):
            raise self.error(name, f"is {'×'.join(map(str, array.shape))}, not {frames}×1")
        return np.resize(array.reshape(-1), frames)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape)


def _frames_of(fields: _Fields) -> int:
    pose = fields.numbers("pose")
    if pose.ndim != 2 or pose.shape[0] != 72 or pose.shape[1] < 1:
        raise fields.error("pose", f"is {_shape_text(pose.shape)}, not 72×T with T ≥ 1")
    return pose.shape[1]


def _joints(fields: _Fields, name: str, size: int, frames: int) -> np.ndarray:
    """(T, 24, size) from MATLAB's size×24×T (size×24 for one frame: MATLAB drops the last axis)."""
    shapes = [(size, 24, frames)] + ([(size, 24)] if frames == 1 else [])
    return fields.shaped(name, *shapes).transpose(2, 1, 0)


def _camera(fields: _Fields, cam_loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stored intrinsics and extrinsics, else SURREAL's camera at `cam_loc`."""
    present = [name for name in ("intrinsics", "extrinsics") if name in fields.raw]
    if not present:
        return surreal_intrinsics(), surreal_extrinsics(cam_loc)
    if len(present) == 1:
        other = ({"intrinsics", "extrinsics"} - set(present)).pop()
        raise fields.error(other, f"is missing beside {present[0]}: a stored camera has both")
    k = fields.shaped("intrinsics", (3, 3))
    if not (np.array_equal(k[2], [0.0, 0.0, 1.0]) and k[0, 0] > 0 and k[1, 1] > 0):
        raise fields.error("intrinsics", "is not a camera matrix (positive focal lengths, last row 0 0 1)")
    extrinsics = fields.shaped("extrinsics", (3, 4))
    rotation = extrinsics[:, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-5):
        raise fields.error("extrinsics", "does not begin with a rotation (R Rᵀ ≠ I)")
    return k, extrinsics


def read_info(path: str | Path) -> ClipInfo:
    """A clip's `_info.mat` (this project's or SURREAL's own), checked; a ClipError naming the
    file and the field otherwise."""
    path = Path(path)
    try:
        raw = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises many types on corrupt files
        reason = " ".join(str(error).split())  # one line, whatever scipy wrote
        raise ClipError(f"{path}: not a readable MATLAB file ({reason})") from error
    missing = [k for k in REQUIRED_FIELDS if k not in raw]
    if missing:
        raise ClipError(f"{path}: missing field(s) {', '.join(missing)}")
    fields = _Fields(path, raw)
    frames = _frames_of(fields)
    gender = fields.per_frame("gender", frames)
    if not np.isin(gender, (0, 1)).all():
        raise fields.error("gender", "holds values other than 0 (female) and 1 (male)")
    cam_loc = fields.shaped("camLoc", (3,), (3, 1), (1, 3))
    light = fields.shaped("light", (9, frames), (9, 1)) if "light" in raw else np.zeros((9, 1))
    intrinsics, extrinsics = _camera(fields, cam_loc)
    return ClipInfo(
        joints2d=_joints(fields, "joints2D", 2, frames),
        joints3d=_joints(fields, "joints3D", 3, frames),
        pose=fields.numbers("pose").T,
        shape=fields.shaped("shape", (10, frames)).T,
        gender=gender.astype(np.int64),
        zrot=fields.per_frame("zrot", frames),
        cam_loc=cam_loc,
        cam_dist=fields.shaped("camDist", (), (1, 1), (1,)).item() if "camDist" in raw else float("nan"),
        light=np.broadcast_to(light, (9, frames)).T.copy(),
        intrinsics=intrinsics,
        extrinsics=extrinsics,
    )


class Clip:
    """One clip: its annotations, and its frames and passes read on demand."""

    def __init__(self, info_path: str | Path) -> None:
        self.info_path = Path(info_path)
        self.stem = self.info_path.name.removesuffix("_info.mat")
        self.folder = self.info_path.parent
        self._video: np.ndarray | None = None
        self._passes: dict[str, dict] = {}  # whole `.mat` files read so far, by pass

    @cached_property
    def info(self) -> ClipInfo:
        return read_info(self.info_path)

    def file(self, suffix: str) -> Path:
        return self.folder / f"{self.stem}{suffix}"

    def frame_variable(self, name: str, t: int) -> np.ndarray:
        """`<name>_<t+1>` of `<stem>_<name>.mat` (t is 0-based). The file is read whole on
        first use and kept until `forget` (reading one variable costs a scan of the file)."""
        path = self.file(f"_{name}.mat")
        key = f"{name}_{t + 1}"
        if name not in self._passes:
            try:
                self._passes[name] = scipy.io.loadmat(path)
            except FileNotFoundError:
                raise ClipError(f"{path}: not found") from None
            except Exception as error:
                raise ClipError(f"{path}: not a readable MATLAB file ({error})") from error
        data = self._passes[name]
        if key not in data:
            raise ClipError(f"{path}: no variable {key}")
        return data[key]

    def rgb(self, t: int) -> np.ndarray:
        """Frame t as RGB uint8 (H, W, 3): from the lossless PNGs if present, else the mp4
        (decoded whole on first use and kept until `forget`)."""
        png = self.file("_frames") / f"{t + 1:04d}.png"
        if png.exists():
            image = cv2.imread(str(png), cv2.IMREAD_COLOR)
            if image is None:
                raise ClipError(f"{png}: cannot read the image")
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if self._video is None:
            self._video = self.video()
        if t >= len(self._video):
            raise ClipError(f"{self.file('.mp4')}: no frame {t + 1} (it has {len(self._video)})")
        return self._video[t]

    def forget(self) -> None:
        """Drop the decoded video and the passes read."""
        self._video, self._passes = None, {}

    def video(self) -> np.ndarray:
        """All frames (T, H, W, 3) uint8, RGB."""
        capture = cv2.VideoCapture(str(self.file(".mp4")))
        frames = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        capture.release()
        if not frames:
            raise ClipError(f"{self.file('.mp4')}: no frame could be read")
        return np.stack(frames)

    def segm(self, t: int) -> np.ndarray:
        return self.frame_variable("segm", t)

    def depth(self, t: int) -> np.ndarray:
        return self.frame_variable("depth", t)

    def forward_flow(self, t: int) -> np.ndarray:
        """(du, dv) to frame t+1, pixels, from this project's `_flow.mat`."""
        return self.frame_variable("flow", t)

    def surreal_gtflow(self, t: int) -> np.ndarray:
        """SURREAL's `gtflow` as stored: Blender's vector pass to the previous frame, y up."""
        return self.frame_variable("gtflow", t)

    def backward_flow(self, t: int) -> np.ndarray:
        """(du, dv) to frame t-1 in image pixels (y down), from `gtflow` (SURREAL's or ours)."""
        return self.surreal_gtflow(t) * np.float32([1.0, -1.0])

    def normal(self, t: int) -> np.ndarray:
        return self.frame_variable("normal", t)

    def voxels(self, t: int) -> np.ndarray:
        return self.frame_variable("voxels", t).astype(bool)

    def part_voxels(self, t: int) -> np.ndarray:
        """(Z, Y, X) uint8: 0 outside the body, else its part (`skeleton.VOXEL_PARTS`, 1-based)."""
        return self.frame_variable("partvoxels", t).astype(np.uint8)
