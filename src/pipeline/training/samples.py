"""BodyNet's training samples, prepared once from the clips, memory-mapped, batched.

Preparing reads every chosen frame of the clips through `pipeline.datasets.surreal` (the
crop, segmentation, joints, depth bins and voxels exactly as BodyNet's loaders make them)
and stores the compact parts: the RGB crop, the 14-part labels, each pixel's depth class
(SURREAL's depth network's target), the joints in heatmap pixels, their depth bins, the
voxels (bit-packed), the part voxels (their six parts' ids as three bit-packed planes), the
silhouette, and what the evaluation needs to go back to metres and to SMPL (root depth,
camera-frame joints, the camera's rotation, crop, pose, shape), all through each clip's own
camera (`pipeline.clips.ClipInfo`); the focal length and principal point are the set's, one
camera matrix that every clip of it shares.
Heatmaps and 3D volumes are drawn from the joints when a batch is made.

Shapes: N samples, S input size, s heatmap size, D voxel size, J = 16 joints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from pipeline.atomic import atomic_output
from pipeline.body_model.skeleton import BODYNET_JOINTS
from pipeline.clips import Clip, find_clips
from pipeline.datasets.surreal import (
    DEPTH_BIN_SIZE,
    DEPTH_BINS,
    BodyNetDataset,
    SampleSizes,
    VoxelSource,
    crop_box,
    crop_transform,
    depth_bins,
    warp,
)
from pipeline.errors import InputError
from pipeline.models.bodynet import BETAS, PART_CLASSES

# BodyNet's left/right pairs: joints (MPII order) and parts (1-based, 0 = background)
FLIP_JOINTS = np.array([5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10])
FLIP_PARTS = np.array([0, 1, 2, 6, 7, 8, 3, 4, 5, 12, 13, 14, 9, 10, 11])
FLIP_VOXEL_PARTS = np.array([0, 1, 2, 4, 3, 6, 5], np.uint8)
PART_VOXEL_BITS = 3  # ids 0..6
HEAD, NECK = 9, 8  # MPII slots of SMPL's head and neck joints


def prepare(
    root: Path,
    split: str,
    sizes: SampleSizes,
    frames: str,
    voxels: VoxelSource | None,
    out: Path,
    progress: bool = True,
    flow=None,
) -> int:
    """Write the samples of a split's clips to the folder `out`, one .npy file per array,
    streamed to disk (memory stays flat at any scale); returns their number. With `flow`
    (a `pipeline.flow.storage.FlowSource`), each sample's forward flow too, cropped as the
    image is and in the crop's pixels."""
    dataset = BodyNetDataset(find_clips(root, split), sizes, frames=frames, voxel_source=voxels)
    count = len(dataset)
    if count == 0:
        raise InputError(f"{root}: no usable frame in split {split!r}")
    k = shared_intrinsics(dataset.clips)
    s, d = sizes.heatmap, sizes.voxels
    layout = {
        "rgb": ((sizes.input, sizes.input, 3), np.uint8),
        "parts": ((s, s), np.uint8),
        "depth": ((s, s), np.uint8),
        "joints": ((16, 2), np.float32),
        "bins": ((16,), np.int8),
        "voxels": ((d, d, (d + 7) // 8), np.uint8),
        "part_voxels": ((PART_VOXEL_BITS, d, d, (d + 7) // 8), np.uint8),
        "silhouette": ((d, d), np.uint8),
        "joints_camera": ((16, 3), np.float32),
        "camera_rotation": ((3, 3), np.float32),  # world → camera, to place the annotated body
        "root_depth": ((), np.float32),
        "crop_centre": ((2,), np.float32),
        "crop_side": ((), np.float32),
        "pose": ((72,), np.float32),
        "shape": ((10,), np.float32),
        "gender": ((), np.int8),
        "zrot": ((), np.float32),
        "clip": ((), np.int32),
        "frame": ((), np.int32),
    }
    if flow is not None:
        layout["flow"] = ((sizes.input, sizes.input, 2), np.float16)
    clips = {clip.stem: index for index, clip in enumerate(dataset.clips)}
    with atomic_output(out) as tmp:
        tmp.mkdir()
        columns = {
            name: np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=(count, *shape))
            for name, (shape, dtype) in layout.items()
        }
        previous = None
        for row, (clip, t) in enumerate(
            tqdm(dataset.index, desc=f"{split} samples", unit="frame", disable=not progress)
        ):
            if previous is not None and previous is not clip:
                previous.forget()  # one decoded video in memory at a time
            previous = clip
            sample = dataset.sample_of(clip, t, dense_targets=False)  # drawn again per batch
            for name in ("voxels", "part_voxels"):
                if name not in sample:
                    what = name.replace("_", " ")
                    raise InputError(f"{clip.info_path}: no {what} for frame {t + 1} (and no body model to make them)")
            info = clip.info
            centre, side = crop_box(info.joints2d[t])
            joints_camera = info.to_camera(info.joints3d[t])
            values = {
                "rgb": (sample["rgb"].transpose(1, 2, 0) * 255).round(),
                "parts": sample["segmentation"],
                "depth": sample["depth_classes"],
                "joints": sample["joints2d_crop"],
                "bins": depth_bins(info.joints3d[t], info.rotation)[BODYNET_JOINTS],
                "voxels": np.packbits(sample["voxels"] > 0.5, axis=-1),
                "part_voxels": pack_part_voxels(sample["part_voxels"]),
                "silhouette": sample["silhouette_front"],
                "joints_camera": joints_camera[BODYNET_JOINTS],
                "camera_rotation": info.rotation,
                "root_depth": joints_camera[0, 2],
                "crop_centre": centre,
                "crop_side": side,
                "pose": info.pose[t],
                "shape": info.shape[t],
                "gender": info.gender[t],
                "zrot": info.zrot[t],
                "clip": clips[clip.stem],
                "frame": t,
            }
            if flow is not None:
                values["flow"] = crop_flow(flow(clip, t), centre, side, sizes.input)
            for name, value in values.items():
                columns[name][row] = value
        for column in columns.values():
            column.flush()
        del columns
        constants = {
            "clip_names": np.array(list(clips)),
            "sizes": np.array([sizes.input, sizes.heatmap, sizes.voxels]),
            "focal": np.float32(k[0, 0]),
            "principal": k[:2, 2].astype(np.float32),
        }
        for name, value in constants.items():
            np.save(tmp / f"{name}.npy", value)
    return count


def shared_intrinsics(clips: list[Clip]) -> np.ndarray:
    """The camera matrix (3, 3) of every clip: prepared samples hold one focal length and one
    principal point, so clips seen through other cameras are refused, not mixed."""
    first = clips[0].info.intrinsics
    for clip in clips[1:]:
        if not np.allclose(clip.info.intrinsics, first, rtol=0, atol=1e-6):
            raise InputError(
                f"{clip.info_path}: its camera matrix differs from {clips[0].info_path}'s; "
                "prepare clips of one camera together"
            )
    return first


@dataclass
class SampleSet:
    """Prepared samples: the per-sample arrays memory-mapped from disk, the rest in memory."""

    arrays: dict[str, np.ndarray]
    rows: np.ndarray | None = None  # the samples' positions in `arrays` (a share of the clips); None: all

    @classmethod
    def load(cls, path: str | Path) -> SampleSet:
        path = Path(path)
        files = sorted(path.glob("*.npy")) if path.is_dir() else []
        if not files:
            raise InputError(f"{path}: not a folder of prepared samples (no .npy files)")
        arrays = {}
        for file in files:
            try:
                array = np.load(file, mmap_mode="r")
                arrays[file.stem] = np.array(array) if array.nbytes < 1 << 20 else array  # small ones in memory
            except Exception as error:
                raise InputError(f"{file}: not a readable array ({error})") from error
        missing = {"rgb", "parts", "depth", "joints", "bins", "voxels", "sizes", "focal", "principal"} - set(arrays)
        if missing:
            raise InputError(f"{path}: prepared samples lack {', '.join(sorted(missing))}")
        lengths = {
            name: len(a) for name, a in arrays.items() if a.ndim and name not in ("sizes", "principal", "clip_names")
        }
        if len(set(lengths.values())) != 1:
            raise InputError(f"{path}: arrays of different lengths ({lengths}); prepare the samples again")
        return cls(arrays)

    def save(self, path: str | Path) -> None:
        """Write the samples as `load` reads them."""
        arrays = (self if self.rows is None else self._rows(np.arange(len(self)))).arrays
        with atomic_output(path) as tmp:
            tmp.mkdir()
            for name, value in arrays.items():
                np.save(tmp / f"{name}.npy", value)

    def __len__(self) -> int:
        return len(self.arrays["rgb"]) if self.rows is None else len(self.rows)

    @property
    def sizes(self) -> SampleSizes:
        return SampleSizes(*map(int, self.arrays["sizes"]))

    def of_clips(self, share: float, seed: int) -> SampleSet:
        """The samples of a seeded random `share` (0 < share ≤ 1) of the clips, at least one:
        every frame of each chosen clip, as SURREAL's data study draws its subsets."""
        if not 0 < share <= 1:
            raise InputError(f"a share of the clips must be in (0, 1], got {share}")
        clips = np.unique(self.arrays["clip"])
        if share == 1:
            return self
        count = max(1, round(share * len(clips)))
        chosen = np.sort(np.random.default_rng(seed).choice(clips, count, replace=False))
        return SampleSet(self.arrays, np.flatnonzero(np.isin(self.arrays["clip"], chosen)))  # read in place

    @property
    def positions(self) -> np.ndarray:
        """(n,) the samples' positions in `arrays`: `rows`, or every one."""
        return self.rows if self.rows is not None else np.arange(len(self.arrays["rgb"]))

    @property
    def clips(self) -> np.ndarray:
        """The clip index of each sample."""
        return self.arrays["clip"] if self.rows is None else self.arrays["clip"][self.rows]

    def subset(self, count: int, seed: int) -> SampleSet:
        """A fixed random subset, in memory (for validation during training)."""
        chosen = np.arange(len(self))
        if count < len(self):
            chosen = np.sort(np.random.default_rng(seed).choice(len(self), count, replace=False))
        return self._rows(chosen)

    def _rows(self, chosen: np.ndarray) -> SampleSet:
        """The samples at the indices `chosen`, in memory."""
        if self.rows is not None:
            chosen = self.rows[chosen]
        count = len(self.arrays["rgb"])
        per_sample = {k: v for k, v in self.arrays.items() if v.ndim and len(v) == count and k != "clip_names"}
        return SampleSet({**self.arrays, **{k: np.asarray(v[chosen]) for k, v in per_sample.items()}})


def pack_part_voxels(labels: np.ndarray) -> np.ndarray:
    """(D, D, D) part ids 0..6 → (3, D, D, ⌈D/8⌉) bit planes, least significant first."""
    planes = (np.asarray(labels, np.uint8)[None] >> np.arange(PART_VOXEL_BITS, dtype=np.uint8)[:, None, None, None]) & 1
    return np.packbits(planes.astype(bool), axis=-1)


def unpack_part_voxels(packed: np.ndarray, size: int) -> np.ndarray:
    """(B, 3, D, D, ⌈D/8⌉) bit planes → (B, D, D, D) uint8 part ids."""
    planes = np.unpackbits(packed, axis=-1, count=size)
    shifts = np.arange(PART_VOXEL_BITS, dtype=np.uint8)[None, :, None, None, None]
    return (planes << shifts).sum(1, dtype=np.uint8)


FLOW_DIVISOR = 20.0  # Doersch & Zisserman's flow scaling, at 256-pixel crops


def crop_flow(flow: np.ndarray, centre: np.ndarray, side: float, size: int) -> np.ndarray:
    """A frame's flow (H, W, 2), image pixels → the crop's (size, size, 2), vectors scaled
    with the crop."""
    transform = crop_transform(centre, side, size)
    return warp(flow.astype(np.float32), transform, size, nearest=False) * np.float32(size / side)


def flow_channels(flow: np.ndarray, input_size: int) -> np.ndarray:
    """(B, S, S, 2) crop flow → (B, 3, S, S): u, v and the length, divided by 20 at 256-pixel
    crops (Doersch & Zisserman's scaling)."""
    scaled = flow.astype(np.float32) / (FLOW_DIVISOR * input_size / 256)
    magnitude = np.linalg.norm(scaled, axis=-1, keepdims=True)
    return np.concatenate([scaled, magnitude], axis=-1).transpose(0, 3, 1, 2)


def inputs(
    batch: dict[str, torch.Tensor],
    device: torch.device | str = "cpu",
    layout: torch.memory_format = torch.contiguous_format,
    oracle: tuple[str, ...] = (),
) -> dict[str, object]:
    """What a BodyNet reads of a batch (keyword arguments): the image, and the flow where
    the samples hold it, on `device` in the networks' memory `layout`; with `oracle` ('pose2d',
    'segm'), the truth of those networks in place of their predictions (`given`; a batch for
    'pose2d' must hold the heatmaps: `ORACLE_TARGETS`)."""
    fed: dict[str, object] = {
        name: batch[name].to(device, memory_format=layout) for name in ("rgb", "flow") if name in batch
    }
    truth = {
        "pose2d": lambda: batch["heatmaps"],
        "segm": lambda: F.one_hot(batch["parts"], PART_CLASSES).movedim(-1, 1).float(),
    }
    if oracle:
        fed["given"] = {name: truth[name]().to(device) for name in oracle}
    return fed


# The targets a batch must hold for each oracle input.
ORACLE_TARGETS = {"pose2d": ("heatmaps",), "segm": ()}


def gaussian_maps(points: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, J, size, size) Gaussians of peak 1 at points (B, J, 2), zero beyond 3 pixels or off
    the map (BodyNet's 7×7 kernel)."""
    grid = torch.arange(size, dtype=points.dtype, device=points.device)
    dx = grid[None, None, None, :] - points[..., 0, None, None]
    dy = grid[None, None, :, None] - points[..., 1, None, None]
    maps = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    maps = maps * ((dx.abs() <= 3.5) & (dy.abs() <= 3.5))
    inside = ((points >= -0.5) & (points <= size - 0.5)).all(-1)
    return maps * inside[..., None, None]


def joint_volumes(points: torch.Tensor, bins: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, J, 19, size, size): each joint's Gaussian spread over its depth bin's neighbours."""
    z = torch.arange(19, dtype=points.dtype, device=points.device)
    offset = z[None, None, :] - bins[..., None].to(points.dtype)
    weights = torch.exp(-(offset**2) / (2 * sigma**2)) * (offset.abs() <= 3)
    return gaussian_maps(points, size, sigma)[:, :, None] * weights[..., None, None]


# What each target of a batch is made from, so that a batch draws only what is asked of it.
TARGETS = (
    "heatmaps",
    "parts",
    "depth_classes",
    "volumes",
    "voxels",
    "part_voxels",
    "silhouette_front",
    "silhouette_side",
    "betas",
)


def geometric_transforms(
    rng: np.random.Generator, count: int, rotation: float, scale: float, sizes: tuple[int, ...]
) -> list[np.ndarray]:
    """Per crop size (side in pixels), (count, 2, 3) affine maps of a crop onto itself: the
    same rotation ~ U(±rotation) degrees and scale ~ U(1 ± scale) about the crop's centre at
    every size (Newell et al.'s augmentation)."""
    angles = rng.uniform(-rotation, rotation, count)
    factors = rng.uniform(1.0 - scale, 1.0 + scale, count)
    return [
        np.stack(
            [
                cv2.getRotationMatrix2D((size / 2 - 0.5, size / 2 - 0.5), angle, factor)
                for angle, factor in zip(angles, factors)
            ]
        )
        for size in sizes
    ]


@dataclass
class Crops:
    """The image-plane arrays of a batch, as augmentation leaves them."""

    rgb: np.ndarray  # (B, S, S, 3) uint8
    parts: np.ndarray  # (B, H, H) part labels
    depth: np.ndarray | None  # (B, H, H) depth classes, when asked for
    joints: np.ndarray  # (B, J, 2) on the heatmap
    bins: np.ndarray  # (B, J) depth bins
    head: np.ndarray  # (B,) head size on the heatmap (PCKh's reference)
    flipped: np.ndarray  # (B,) bool: mirrored


def augmented_crops(
    samples: SampleSet,
    indices: np.ndarray,
    rng: np.random.Generator | None,
    flip: bool,
    rotation: float,
    scale: float,
    with_depth: bool,
) -> Crops:
    """The samples' crops, mirrored half the time (`flip`: left and right exchanged), turned
    and zoomed (`rotation` degrees, `scale`) about their centre when `rng` is given."""
    a, sizes = samples.arrays, samples.sizes
    count = len(indices)
    rgb = np.array(a["rgb"][indices])
    parts = np.array(a["parts"][indices])
    depth = np.array(a["depth"][indices]) if with_depth else None
    joints = np.array(a["joints"][indices])
    bins = a["bins"][indices].astype(np.int64)
    head = np.linalg.norm(joints[:, HEAD] - joints[:, NECK], axis=-1)
    augment = rng is not None
    flipped = rng.random(count) < 0.5 if augment and flip else np.zeros(count, bool)
    if flipped.any():
        rgb[flipped] = rgb[flipped, :, ::-1]
        parts[flipped] = FLIP_PARTS[parts[flipped, :, ::-1]]
        if depth is not None:
            depth[flipped] = depth[flipped, :, ::-1]
        joints[flipped] = joints[flipped][:, FLIP_JOINTS]
        joints[flipped, :, 0] = sizes.heatmap - 1 - joints[flipped, :, 0]
        bins[flipped] = bins[flipped][:, FLIP_JOINTS]
    if augment and (rotation or scale):
        to_input, to_heatmap = geometric_transforms(rng, count, rotation, scale, (sizes.input, sizes.heatmap))
        for k, (big, transform) in enumerate(zip(to_input, to_heatmap)):
            rgb[k] = cv2.warpAffine(rgb[k], big, (sizes.input, sizes.input), flags=cv2.INTER_LINEAR)
            parts[k] = cv2.warpAffine(parts[k], transform, (sizes.heatmap, sizes.heatmap), flags=cv2.INTER_NEAREST)
            if depth is not None:
                depth[k] = cv2.warpAffine(depth[k], transform, (sizes.heatmap, sizes.heatmap), flags=cv2.INTER_NEAREST)
            joints[k] = joints[k] @ transform[:, :2].T.astype(np.float32) + transform[:, 2].astype(np.float32)
        # the head's size follows the zoom (PCKh's reference), not its original length
        head = np.linalg.norm(joints[:, HEAD] - joints[:, NECK], axis=-1)
    return Crops(rgb, parts, depth, joints, bins, head, flipped)


def voxel_targets(samples: SampleSet, indices: np.ndarray, flipped: np.ndarray, wanted: set[str]) -> dict:
    """The voxel grids and silhouettes asked for (as numpy arrays), mirrored with their crops."""
    a, size = samples.arrays, samples.sizes.voxels
    found = {}
    if wanted & {"voxels", "silhouette_side"}:
        voxels = np.unpackbits(a["voxels"][indices], axis=-1, count=size)  # (B, z, y, x)
        voxels[flipped] = voxels[flipped, :, :, ::-1]
        found["voxels"] = voxels
    if "part_voxels" in wanted and "part_voxels" in a:  # samples prepared before part voxels lack them
        labels = unpack_part_voxels(a["part_voxels"][indices], size)  # (B, z, y, x)
        labels[flipped] = FLIP_VOXEL_PARTS[labels[flipped, :, :, ::-1]]
        found["part_voxels"] = labels
    if "silhouette_front" in wanted:
        silhouette = np.array(a["silhouette"][indices])
        silhouette[flipped] = silhouette[flipped, :, ::-1]
        found["silhouette_front"] = silhouette
    return found


def make_batch(
    samples: SampleSet,
    indices: np.ndarray,
    rng: np.random.Generator | None = None,
    flip: bool = False,
    jitter: bool = False,
    rotation: float = 0.0,
    scale: float = 0.0,
    targets: tuple[str, ...] = TARGETS,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Tensors on `device` for the samples at `indices`: the inputs, what the measures need,
    and the `targets` asked for (all by default).

    Augmentation (when `rng` is given): `jitter` scales each colour channel by U(0.6, 1.4)
    (BodyNet's); `flip` mirrors image, labels and joints half the time, left and right
    exchanged; `rotation` (degrees) and `scale` turn and zoom the crop about its centre (for
    the 2D tasks only: 3D targets are not turned with it). The image is (B, 3, S, S) in the
    channels-last layout it is stored in.
    """
    a = samples.arrays
    sizes = samples.sizes
    if samples.rows is not None:
        indices = samples.rows[indices]
    wanted = set(targets)
    crops = augmented_crops(samples, indices, rng, flip, rotation, scale, "depth_classes" in wanted)
    image = torch.from_numpy(crops.rgb).to(torch.float32).div_(255.0)
    if rng is not None and jitter:
        gains = torch.from_numpy(rng.uniform(0.6, 1.4, size=(len(indices), 1, 1, 3)).astype(np.float32))
        image = image.mul_(gains).clamp_(0.0, 1.0)
    batch = {
        "rgb": image.permute(0, 3, 1, 2),  # channels last in memory
        "parts": torch.from_numpy(crops.parts.astype(np.int64)),
        "joints": torch.from_numpy(crops.joints),
        "bins": torch.from_numpy(crops.bins),
        "head_size": torch.from_numpy(crops.head.astype(np.float32)),
        "joints_camera": torch.from_numpy(np.array(a["joints_camera"][indices])),
        "root_depth": torch.from_numpy(np.array(a["root_depth"][indices])),
        "crop_centre": torch.from_numpy(np.array(a["crop_centre"][indices])),
        "crop_side": torch.from_numpy(np.array(a["crop_side"][indices])),
        "betas": torch.from_numpy(np.array(a["shape"][indices][:, :BETAS])),
    }
    if crops.depth is not None:
        batch["depth_classes"] = torch.from_numpy(crops.depth.astype(np.int64))
    batch |= {
        name: torch.from_numpy(grid) for name, grid in voxel_targets(samples, indices, crops.flipped, wanted).items()
    }
    if "voxels" in batch:
        batch["silhouette_side"] = batch["voxels"].amax(dim=3)  # (z, y): max over x
    if "flow" in a:
        flow = a["flow"][indices].astype(np.float32)
        flow[crops.flipped] = flow[crops.flipped, :, ::-1] * np.float32([-1.0, 1.0])
        batch["flow"] = torch.from_numpy(flow_channels(flow, sizes.input))
    batch = {name: value.to(device, non_blocking=True) for name, value in batch.items()}
    for name in ("voxels", "silhouette_front", "silhouette_side"):
        if name in batch:
            batch[name] = batch[name].float()  # converted on the device: a quarter of the transfer
    if "part_voxels" in batch:
        batch["part_voxels"] = batch["part_voxels"].long()
    return batch | dense_targets(batch, wanted, sizes)


def dense_targets(batch: dict[str, torch.Tensor], wanted: set[str], sizes: SampleSizes) -> dict[str, torch.Tensor]:
    """The heatmaps and joint volumes asked for, drawn from the batch's joints where the
    network runs (on its device)."""
    found = {}
    if "heatmaps" in wanted:
        found["heatmaps"] = gaussian_maps(batch["joints"], sizes.heatmap, sizes.sigma)
    if "volumes" in wanted:
        found["volumes"] = joint_volumes(batch["joints"], batch["bins"], sizes.heatmap, sizes.sigma)
        found["joint_cells"] = joint_cells(batch)
    return found


def joint_cells(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, J, 3) each joint's position in its volume's cells: x, y on the heatmap and the depth
    bin, continuous (the bins' 45 mm steps around the pelvis's bin 9, nearer = higher), for the
    3D-pose network's soft-argmax loss."""
    bins = DEPTH_BINS // 2 + (batch["root_depth"][:, None] - batch["joints_camera"][..., 2]) / DEPTH_BIN_SIZE
    return torch.cat([batch["joints"], bins.clamp(0, DEPTH_BINS - 1)[..., None]], dim=-1)
