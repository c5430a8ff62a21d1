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
) -> dict[str, object]:
    """`_info.mat`'s fields for a clip of T frames; joints are (T, 24, 2|3), pose (T, 72)."""
    frames = len(pose)
    f32 = np.float32
    return {
        "sequence": clip_stem(sequence, clip),
        "clipNo": np.float64(clip),
        "source": SOURCE,
        "bg": cell(backgrounds),
        "gender": np.full((frames, 1), gender, dtype=np.uint8),
        "light": np.repeat(np.asarray(light, f32)[:, None], frames, axis=1),
        "stride": np.uint8(stride),
        "camDist": f32(cam_dist),
        "camLoc": np.asarray(cam_loc, f32).reshape(3, 1),
        "joints2D": np.ascontiguousarray(np.transpose(joints2d, (2, 1, 0)), dtype=f32),
        "joints3D": np.ascontiguousarray(np.transpose(joints3d, (2, 1, 0)), dtype=f32),
        "pose": np.ascontiguousarray(np.asarray(pose, f32).T),
        "zrot": np.full((frames, 1), zrot, dtype=f32),
        "cloth": cell(cloths),
        "shape": np.repeat(np.asarray(shape, f32)[:, None], frames, axis=1),
    }


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


def _column(values, length: int | None = None) -> np.ndarray:
    """A MATLAB vector (T×1, 1×T or a scalar) as a flat array."""
    array = np.asarray(values).reshape(-1)
    return array if length is None or len(array) == length else np.resize(array, length)


@dataclass
class ClipInfo:
    """`_info.mat`, with MATLAB's shapes flattened: arrays are per frame first."""

    joints2d: np.ndarray  # (T, 24, 2) pixels, 0-based
    joints3d: np.ndarray  # (T, 24, 3) SURREAL world, metres
    pose: np.ndarray  # (T, 72)
    shape: np.ndarray  # (T, 10)
    gender: np.ndarray  # (T,) 0 female, 1 male
    zrot: np.ndarray  # (T,)
    cam_loc: np.ndarray  # (3,)
    cam_dist: float
    light: np.ndarray  # (T, 9)

    @property
    def frames(self) -> int:
        return len(self.pose)


def read_info(path: str | Path) -> ClipInfo:
    path = Path(path)
    try:
        raw = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises several types on corrupt files
        raise ClipError(f"{path}: not a readable MATLAB file ({error})") from error
    missing = [k for k in ("joints2D", "joints3D", "pose", "shape", "gender", "zrot", "camLoc") if k not in raw]
    if missing:
        raise ClipError(f"{path}: missing field(s) {', '.join(missing)}")
    joints2d = np.asarray(raw["joints2D"], dtype=np.float64)
    joints3d = np.asarray(raw["joints3D"], dtype=np.float64)
    if joints2d.ndim == 2:  # a one-frame clip loses its last axis in MATLAB
        joints2d, joints3d = joints2d[..., None], joints3d[..., None]
    pose = np.asarray(raw["pose"], dtype=np.float64).reshape(72, -1).T
    frames = len(pose)
    return ClipInfo(
        joints2d=joints2d.transpose(2, 1, 0),
        joints3d=joints3d.transpose(2, 1, 0),
        pose=pose,
        shape=np.asarray(raw["shape"], dtype=np.float64).reshape(-1, frames).T,
        gender=_column(raw["gender"], frames).astype(np.int64),
        zrot=_column(raw["zrot"], frames).astype(np.float64),
        cam_loc=_column(raw["camLoc"]).astype(np.float64),
        cam_dist=float(_column(raw.get("camDist", [np.nan]))[0]),
        light=np.asarray(raw.get("light", np.zeros((9, frames))), dtype=np.float64).reshape(9, -1).T,
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
