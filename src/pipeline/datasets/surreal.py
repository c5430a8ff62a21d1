"""Reading SURREAL-layout clips (this project's and SURREAL's own) and making BodyNet samples.

`find_clips` lists the complete clips under a root (`<root>/cmu/<split>/run<r>/<seq>/`,
complete = its `_info.mat` exists). `Clip` reads one clip's annotations and frames.
`BodyNetDataset` yields BodyNet's training samples from a clip list, as BodyNet's loaders
prepare them (gulvarol/bodynet, training/util): a person-centred crop around the 2D joints,
16 joint heatmaps, 14-part segmentation, 3D joint volumes of 19 depth bins, voxels placed
under the silhouette box, and front and side silhouettes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import scipy.io

from pipeline.body_model.skeleton import BODYNET_JOINTS, SMPL_TO_BODYNET_PART
from pipeline.errors import InputError
from pipeline.synthesis import camera
from pipeline.synthesis.voxels import align_to_box

DEPTH_BINS = 19
DEPTH_BIN_SIZE = 0.045  # metres per 3D-pose depth bin, root in the middle bin
GAUSSIAN_SIGMA = 1.75  # BodyNet's 7×7 kernel (torch's image.gaussian(7)) at 64 px heatmaps
BACKGROUND_DEPTH_LIMIT = 1e3  # SURREAL's loaders: foreground where depth <= 1e3


class ClipError(InputError):
    """A clip whose files are missing or malformed."""


def find_clips(root: str | Path, split: str, runs: list[int] | None = None) -> list[Path]:
    """`_info.mat` paths of the complete clips of a split, sorted."""
    base = Path(root) / "cmu" / split
    if not base.is_dir():
        raise ClipError(f"{base}: no such split folder")
    runs_glob = [f"run{r}" for r in runs] if runs is not None else ["run*"]
    return sorted(p for pattern in runs_glob for p in base.glob(f"{pattern}/*/*_info.mat"))


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


# --- BodyNet samples -----------------------------------------------------------------------


@dataclass
class SampleSizes:
    """Resolutions of a sample (paper scale: 256 input, 64 heatmaps, 128 voxels)."""

    input: int = 256
    heatmap: int = 64
    voxels: int = 128

    @property
    def sigma(self) -> float:
        """BodyNet's Gaussian at 64-pixel heatmaps, scaled with the heatmaps but never below a
        pixel (a narrower peak is a single pixel: nothing left to regress)."""
        return max(GAUSSIAN_SIGMA * self.heatmap / 64, 1.0)


def crop_box(joints2d: np.ndarray) -> tuple[np.ndarray, float]:
    """BodyNet's crop of a person: centre (2,) and side (pixels) from its 2D joints (24, 2).

    The joints' box widened by a quarter of its width on each side, 35 % of its height above
    and 25 % below; the crop is a square of side 200/240 of that box's longer side.
    """
    low, high = joints2d.min(axis=0), joints2d.max(axis=0)
    width, height = high - low
    left, right = low[0] - 0.25 * width, high[0] + 0.25 * width
    top, bottom = low[1] - 0.35 * height, high[1] + 0.25 * height
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    side = max(right - left, bottom - top) * 200.0 / 240.0
    return centre, max(side, 1.0)


def crop_transform(centre: np.ndarray, side: float, size: int) -> np.ndarray:
    """2×3 affine map from image pixels to a size×size crop (pixel centres at integers)."""
    scale = size / side
    return np.array([[scale, 0.0, size / 2 - 0.5 - scale * (centre[0] - 0.5)],
                     [0.0, scale, size / 2 - 0.5 - scale * (centre[1] - 0.5)]])  # fmt: skip


def warp(image: np.ndarray, transform: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(image, transform, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def gaussian_heatmaps(points: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(N, size, size) maps with a Gaussian of peak 1 at each point (N, 2); none off the map."""
    grid = np.arange(size, dtype=np.float32)
    dx = grid[None, None, :] - points[:, 0, None, None]
    dy = grid[None, :, None] - points[:, 1, None, None]
    maps = np.exp(-(dx**2 + dy**2) / (2 * sigma**2)).astype(np.float32)
    inside = np.all((points >= -0.5) & (points <= size - 0.5), axis=1)
    maps[~inside] = 0.0
    maps[maps < np.exp(-(3.5**2) / 2)] = 0.0  # BodyNet draws a 7×7 kernel: nothing beyond ±3
    return maps


def depth_bins(joints3d: np.ndarray) -> np.ndarray:
    """BodyNet's depth bin (0..18, the root's is 9) of each of SMPL's 24 joints (24, 3),
    nearer = higher.

    Depth is along SURREAL's world x, which points towards the camera: bin = round((x_j −
    x_pelvis) / 45 mm), clamped to ±9.
    """
    relative = joints3d[:, 0] - joints3d[0, 0]
    return np.clip(np.round(relative / DEPTH_BIN_SIZE), -9, 9).astype(np.int64) + 9


def joint_volumes(points: np.ndarray, bins: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(N, 19, size, size): a 3D Gaussian per joint at its pixel (N, 2) and depth bin (N,)."""
    planes = gaussian_heatmaps(points, size, sigma)
    z = np.arange(DEPTH_BINS, dtype=np.float32)
    weights = np.exp(-((z[None, :] - bins[:, None]) ** 2) / (2 * sigma**2))
    weights[np.abs(z[None, :] - bins[:, None]) > 3] = 0.0
    return planes[:, None] * weights[:, :, None, None]


def silhouette_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return None
    return int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())


def body_camera_vertices(model, pose: np.ndarray, shape: np.ndarray, zrot: float) -> np.ndarray:
    """An SMPL body of SURREAL's annotations in the camera's frame (V, 3), up to translation:
    the rotations that place it in SURREAL's world, then SURREAL's (reflecting) camera."""
    import torch

    with torch.no_grad():
        out = model(torch.as_tensor(shape[None, :10]), torch.as_tensor(pose[None]))
    world = out.vertices[0].numpy() @ camera.body_to_world(zrot).T
    return world @ camera.WORLD_TO_CAMERA.T


class VoxelSource:
    """A frame's voxels: from the clip's `_voxels.mat` when it has them, else computed from
    the clip's SMPL annotations with the given body models (as BodyNet preprocesses real
    SURREAL clips), else none."""

    def __init__(self, models: dict | None = None, resolution: int = 128) -> None:
        self.models = models or {}
        self.resolution = resolution

    def __call__(self, clip: Clip, t: int) -> np.ndarray | None:
        from pipeline.synthesis.voxels import voxelize

        if clip.file("_voxels.mat").exists():
            try:
                return clip.voxels(t)
            except ClipError:
                pass  # voxels for other frames only
        gender = {0: "female", 1: "male"}[int(clip.info.gender[t])]
        model = self.models.get(gender)
        if model is None:
            return None
        vertices = body_camera_vertices(model, clip.info.pose[t], clip.info.shape[t], clip.info.zrot[t])
        return voxelize(vertices, model.faces.astype(np.int64), self.resolution)


def bodynet_sample(clip: Clip, t: int, sizes: SampleSizes, voxel_source: VoxelSource | None = None,
                   dense_targets: bool = True) -> dict[str, np.ndarray]:
    """One BodyNet training sample of frame t of a clip (numpy arrays, channels first).
    Without `dense_targets` the joint heatmaps and 3D volumes (drawable from the joints,
    and the bulk of a sample) are left out."""
    info = clip.info
    joints2d = info.joints2d[t]
    centre, side = crop_box(joints2d)
    to_input = crop_transform(centre, side, sizes.input)
    to_heatmap = crop_transform(centre, side, sizes.heatmap)
    to_voxels = crop_transform(centre, side, sizes.voxels)
    rgb = warp(clip.rgb(t), to_input, sizes.input, nearest=False)
    segm = clip.segm(t).astype(np.uint8)
    parts = np.concatenate([[0], SMPL_TO_BODYNET_PART]).astype(np.uint8)[segm]
    joints = joints2d[BODYNET_JOINTS]
    heatmap_points = joints @ to_heatmap[:, :2].T + to_heatmap[:, 2]
    silhouette = warp((segm > 0).astype(np.uint8), to_voxels, sizes.voxels, nearest=True)
    sample = {
        "rgb": rgb.transpose(2, 0, 1).astype(np.float32) / 255.0,
        "segmentation": warp(parts, to_heatmap, sizes.heatmap, nearest=True).astype(np.int64),
        "silhouette_front": silhouette.astype(np.float32),
        "joints2d_crop": heatmap_points.astype(np.float32),
        "joints3d": (info.joints3d[t][BODYNET_JOINTS] - info.joints3d[t][0]).astype(np.float32),
        "pose": info.pose[t].astype(np.float32),
        "shape": info.shape[t].astype(np.float32),
        "gender": np.int64(info.gender[t]),
    }
    if dense_targets:
        sample["heatmaps"] = gaussian_heatmaps(heatmap_points, sizes.heatmap, sizes.sigma)
        bins = depth_bins(info.joints3d[t])[BODYNET_JOINTS]
        sample["joints3d_volume"] = joint_volumes(heatmap_points, bins, sizes.heatmap, sizes.sigma)
    box = silhouette_box(silhouette)
    voxels = voxel_source(clip, t) if voxel_source is not None else None
    if voxels is not None and box is not None:
        placed = align_to_box(voxels, box, sizes.voxels)
        sample["voxels"] = placed.astype(np.float32)
        sample["silhouette_side"] = placed.max(axis=2).astype(np.float32)  # (z, y): max over x
    return sample


def usable(info: ClipInfo, t: int, width: int = camera.WIDTH, height: int = camera.HEIGHT) -> bool:
    """BodyNet skips frames whose crop centre falls outside the image."""
    centre, _ = crop_box(info.joints2d[t])
    return bool(0 <= centre[0] < width and 0 <= centre[1] < height)


class BodyNetDataset:
    """BodyNet samples of the frames of a list of clips (a torch-style map dataset).

    `frames`: 'all' frames of each clip, or its 'middle' frame (BodyNet's test images).
    """

    def __init__(
        self,
        info_paths: list[Path],
        sizes: SampleSizes,
        frames: str = "all",
        voxel_source: VoxelSource | None = None,
    ) -> None:
        self.sizes, self.voxel_source = sizes, voxel_source
        self.clips = [Clip(path) for path in info_paths]
        self.index = []
        for clip in self.clips:
            count = clip.info.frames
            chosen = range(count) if frames == "all" else [(count - 1) // 2]
            self.index += [(clip, t) for t in chosen if usable(clip.info, t)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, np.ndarray]:
        return self.sample_of(*self.index[item])

    def sample_of(self, clip: Clip, t: int, dense_targets: bool = True) -> dict[str, np.ndarray]:
        return bodynet_sample(clip, t, self.sizes, self.voxel_source, dense_targets)
