"""BodyNet samples from SURREAL-layout clips (this project's and SURREAL's own, read by
`pipeline.clips`).

`BodyNetDataset` yields BodyNet's training samples from a clip list, as BodyNet's loaders
prepare them (gulvarol/bodynet, training/util): a person-centred crop around the 2D joints,
16 joint heatmaps, 14-part segmentation, 3D joint volumes of 19 depth bins, voxels and part
voxels (six parts) placed under the silhouette box, and front and side silhouettes; and,
for SURREAL's depth network (Varol et al., "Learning from Synthetic Humans", 2017), each
pixel's depth class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.body_model.skeleton import BODYNET_JOINTS, SMPL_TO_BODYNET_PART, voxel_part_labels
from pipeline.clips import Clip, ClipError, ClipInfo
from pipeline.synthesis import camera
from pipeline.synthesis.voxels import align_to_box

DEPTH_BINS = 19
DEPTH_BIN_SIZE = 0.045  # metres per 3D-pose depth bin, root in the middle bin
GAUSSIAN_SIGMA = 1.75  # BodyNet's 7×7 kernel (torch's image.gaussian(7)) at 64 px heatmaps
BACKGROUND_DEPTH_LIMIT = 1e3  # SURREAL's loaders: foreground where depth <= 1e3
DEPTH_CLASSES = DEPTH_BINS + 1  # SURREAL's depth network: background and the 19 bins


@dataclass
class SampleSizes:
    """Resolutions of a sample (`bodynet.input_size`, `heatmap_size`, `voxel_size`; the
    paper's: 256 input, 64 heatmaps, 128 voxels)."""

    input: int
    heatmap: int
    voxels: int

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
    return np.array(
        [
            [scale, 0.0, size / 2 - 0.5 - scale * (centre[0] - 0.5)],
            [0.0, scale, size / 2 - 0.5 - scale * (centre[1] - 0.5)],
        ]
    )


def warp(image: np.ndarray, transform: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(image, transform, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


# A person looked for in a whole image without a box is looked for in square windows of these
# shares of the image's longer side (`search_boxes`), from one window over the whole image to
# people a third of its height.
SEARCH_SCALES = (1.0, 0.7, 0.5, 0.35)


def search_boxes(height: int, width: int, scales: tuple[float, ...] = SEARCH_SCALES) -> list[tuple]:
    """Square person boxes (x0, y0, x1, y1) over an image (H, W): at each scale, of that share
    of the image's longer side, laid half a side apart and evenly over each axis."""
    boxes = []
    for scale in scales:
        side = scale * max(height, width)
        for y in _starts(height, side):
            for x in _starts(width, side):
                boxes.append((float(x), float(y), float(x + side), float(y + side)))
    return boxes


def _starts(length: int, side: float) -> np.ndarray:
    """Where windows of `side` start along an axis of `length` pixels, at most half a side
    apart, the first and last flush with its ends (centred where one window overhangs it)."""
    if side >= length:
        return np.array([(length - side) / 2])
    return np.linspace(0.0, length - side, int(np.ceil((length - side) / (side / 2))) + 1)


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


def depth_bins(joints3d: np.ndarray, world_to_camera: np.ndarray | None = None) -> np.ndarray:
    """BodyNet's depth bin (0..18, the root's is 9) of each of SMPL's 24 joints (24, 3, world),
    nearer = higher, seen by a camera of rotation `world_to_camera` (3, 3; the clip's,
    `ClipInfo.rotation`; None: SURREAL's).

    bin = round((z_pelvis − z_j) / 45 mm), clamped to ±9, z along the optical axis: with
    SURREAL's camera, along the world's x, which points towards it (x_j − x_pelvis).
    """
    axis = (camera.WORLD_TO_CAMERA if world_to_camera is None else np.asarray(world_to_camera))[2]
    relative = -((joints3d - joints3d[0]) @ axis)
    return np.clip(np.round(relative / DEPTH_BIN_SIZE), -9, 9).astype(np.int64) + 9


def depth_classes(depth: np.ndarray, root_depth: float) -> np.ndarray:
    """SURREAL's depth labels (H, W) uint8 of a frame's depth (H, W, metres along the optical
    axis): 0 off the body, else 1 + the 45 mm bin of the depth around the pelvis's
    `root_depth` (the pelvis's is 10), nearer = higher as the joints' bins, clamped to ±9."""
    bins = np.clip(np.round((root_depth - depth.astype(np.float64)) / DEPTH_BIN_SIZE), -9, 9) + 10
    return np.where(depth <= BACKGROUND_DEPTH_LIMIT, bins, 0).astype(np.uint8)


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


def body_camera_vertices(
    model, pose: np.ndarray, shape: np.ndarray, zrot: float, world_to_camera: np.ndarray | None = None
) -> np.ndarray:
    """An SMPL body of SURREAL's annotations in the camera's frame (V, 3), up to translation:
    the rotations that place it in SURREAL's world, then the clip's camera (`world_to_camera`,
    3×3, `ClipInfo.rotation`; None: SURREAL's, which reflects)."""
    import torch

    with torch.no_grad():
        out = model(torch.as_tensor(shape[None, :10]), torch.as_tensor(pose[None]))
    world = out.vertices[0].numpy() @ camera.body_to_world(zrot).T
    return world @ (camera.WORLD_TO_CAMERA if world_to_camera is None else np.asarray(world_to_camera)).T


class VoxelSource:
    """A frame's voxels and part voxels: from the clip's `_voxels.mat` and `_partvoxels.mat`
    when it has them, else computed from the clip's SMPL annotations with the given body
    models (as BodyNet preprocesses real SURREAL clips), else none."""

    def __init__(self, models: dict | None = None, resolution: int = 128) -> None:
        self.models = models or {}
        self.resolution = resolution
        self._last: tuple | None = None  # (clip, t, part voxels) of the last frame computed

    def __call__(self, clip: Clip, t: int) -> np.ndarray | None:
        """(Z, Y, X) bool occupancy, cropped to the body."""
        stored = self._stored(clip, "_voxels.mat", clip.voxels, t)
        if stored is not None:
            return stored
        labels = self._computed(clip, t)
        return None if labels is None else labels > 0

    def parts(self, clip: Clip, t: int) -> np.ndarray | None:
        """(Z, Y, X) uint8: 0 outside the body, else BodyNet's six parts (`VOXEL_PARTS`)."""
        stored = self._stored(clip, "_partvoxels.mat", clip.part_voxels, t)
        return stored if stored is not None else self._computed(clip, t)

    @staticmethod
    def _stored(clip: Clip, suffix: str, read, t: int) -> np.ndarray | None:
        if clip.file(suffix).exists():
            try:
                return read(t)
            except ClipError:
                pass  # stored for other frames only
        return None

    def _computed(self, clip: Clip, t: int) -> np.ndarray | None:
        """The frame's part voxels from its annotations (occupancy: those above 0), once per
        frame however many of the two are asked for."""
        from pipeline.synthesis.voxels import voxelize

        if self._last is not None and self._last[:2] == (clip, t):
            return self._last[2]
        gender = {0: "female", 1: "male"}[int(clip.info.gender[t])]
        model = self.models.get(gender)
        if model is None:
            return None
        info = clip.info
        vertices = body_camera_vertices(model, info.pose[t], info.shape[t], info.zrot[t], info.rotation)
        labels = voxelize(vertices, model.faces.astype(np.int64), self.resolution, voxel_part_labels(model.smpl_parts))
        self._last = (clip, t, labels)
        return labels


def bodynet_sample(
    clip: Clip, t: int, sizes: SampleSizes, voxel_source: VoxelSource | None = None, dense_targets: bool = True
) -> dict[str, np.ndarray]:
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
    root_depth = float(info.to_camera(info.joints3d[t][0])[2])
    depth = depth_classes(clip.depth(t), root_depth)
    sample = {
        "rgb": rgb.transpose(2, 0, 1).astype(np.float32) / 255.0,
        "segmentation": warp(parts, to_heatmap, sizes.heatmap, nearest=True).astype(np.int64),
        "depth_classes": warp(depth, to_heatmap, sizes.heatmap, nearest=True).astype(np.int64),
        "silhouette_front": silhouette.astype(np.float32),
        "joints2d_crop": heatmap_points.astype(np.float32),
        "joints3d": (info.joints3d[t][BODYNET_JOINTS] - info.joints3d[t][0]).astype(np.float32),
        "pose": info.pose[t].astype(np.float32),
        "shape": info.shape[t].astype(np.float32),
        "gender": np.int64(info.gender[t]),
    }
    if dense_targets:
        sample["heatmaps"] = gaussian_heatmaps(heatmap_points, sizes.heatmap, sizes.sigma)
        bins = depth_bins(info.joints3d[t], info.rotation)[BODYNET_JOINTS]
        sample["joints3d_volume"] = joint_volumes(heatmap_points, bins, sizes.heatmap, sizes.sigma)
    box = silhouette_box(silhouette)
    voxels = voxel_source(clip, t) if voxel_source is not None else None
    if voxels is not None and box is not None:
        placed = align_to_box(voxels, box, sizes.voxels)
        sample["voxels"] = placed.astype(np.float32)
        sample["silhouette_side"] = placed.max(axis=2).astype(np.float32)  # (z, y): max over x
        parts = voxel_source.parts(clip, t)
        if parts is not None:
            sample["part_voxels"] = align_to_box(parts, box, sizes.voxels).astype(np.int64)
    return sample


def usable(info: ClipInfo, t: int, width: int | None = None, height: int | None = None) -> bool:
    """BodyNet skips frames whose crop centre falls outside the image (of the clip's camera
    unless `width` and `height` are given)."""
    centre, _ = crop_box(info.joints2d[t])
    if width is None or height is None:
        width, height = info.image_size
    return bool(0 <= centre[0] < width and 0 <= centre[1] < height)


FRAME_CHOICES = ("all", "middle", "middle_clip")


def middle_clips(clips: list[Clip]) -> list[Clip]:
    """The middle clip of each sequence (a `run<r>/<sequence>` folder), in their order."""
    sequences: dict[Path, list[Clip]] = {}
    for clip in clips:
        sequences.setdefault(clip.folder, []).append(clip)
    return [group[(len(group) - 1) // 2] for group in sequences.values()]


class BodyNetDataset:
    """BodyNet samples of the frames of a list of clips (a torch-style map dataset).

    `frames`: 'all' frames of each clip; its 'middle' frame (SURREAL's test images); or the
    middle frame of each sequence's middle clip, 'middle_clip' (BodyNet's test images on
    SURREAL: 507).
    """

    def __init__(
        self,
        info_paths: list[Path],
        sizes: SampleSizes,
        frames: str = "all",
        voxel_source: VoxelSource | None = None,
    ) -> None:
        if frames not in FRAME_CHOICES:
            raise ValueError(f"frames: {frames!r} is not one of {', '.join(FRAME_CHOICES)}")
        self.sizes, self.voxel_source = sizes, voxel_source
        self.clips = [Clip(path) for path in sorted(info_paths)]
        if frames == "middle_clip":
            self.clips = middle_clips(self.clips)
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
