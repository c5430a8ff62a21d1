"""What the LTC networks read: a split's clips as RGB or optical flow at the network's
resolution, and the crops of their frames that make batches.

LTC's preprocessing (Varol, Laptev & Schmid 2018, §3.2): frames resized; flow resized with its
vectors scaled by the same factor (a motion of 2 pixels is 1 pixel at half size), each
frame's mean flow subtracted (camera motion), then divided by `flow_scale`; RGB mapped to
[−1, 1]. A clip of T rendered frames gives T − 1 inputs of either kind, frame t paired with
the flow from t to t + 1, so RGB and flow windows line up for late fusion.

Shapes: N clips, C channels, T frames, H × W pixels, B batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from pipeline.clips import Clip
from pipeline.errors import InputError
from pipeline.flow.storage import read_flow, resize_flow, subtract_mean

RGB = "rgb"


@dataclass
class ActionSet:
    """A split's clips loaded for a network."""

    clips: np.ndarray  # (N, C, T, H, W) float16
    labels: np.ndarray  # (N,) int64
    views: np.ndarray  # (N,) int64, 1-based
    performances: np.ndarray  # (N,) int64, index into `names`
    names: list[str]  # performance names
    stems: list[str]  # clip stems

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, mask: np.ndarray) -> ActionSet:
        keep = np.flatnonzero(mask)
        return ActionSet(
            self.clips[keep],
            self.labels[keep],
            self.views[keep],
            self.performances[keep],
            self.names,
            [self.stems[i] for i in keep],
        )


def rgb_frames(info_path: Path, width: int, height: int) -> np.ndarray:
    """(3, T-1, H, W) float16 in [−1, 1]: the clip's frames but the last, resized."""
    video = Clip(info_path).video()[:-1]
    resized = np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in video])
    return (resized.transpose(3, 0, 1, 2) / 127.5 - 1.0).astype(np.float16)


def flow_frames(folder: Path, stem: str, width: int, height: int, flow_scale: float) -> np.ndarray:
    """(2, T-1, H, W) float16: a method's stored flow, resized and scaled, mean removed per frame."""
    flow = subtract_mean(resize_flow(read_flow(folder, stem), width, height)) / flow_scale
    return flow.transpose(3, 0, 1, 2).astype(np.float16)


def load_set(
    manifest: pd.DataFrame,
    root: Path,
    source: str,
    flow_folder: Path | None,
    width: int,
    height: int,
    flow_scale: float,
    progress: bool = True,
) -> ActionSet:
    """Every clip of a manifest as `source` reads it: `rgb`, or the flow stored under `flow_folder`."""
    from tqdm import tqdm

    if source != RGB and flow_folder is None:
        raise InputError(f"input {source!r} needs the folder of its flow")
    arrays = []
    for row in tqdm(manifest.itertuples(), total=len(manifest), desc=f"loading {source}", disable=not progress):
        if source == RGB:
            arrays.append(rgb_frames(Path(root) / row.info, width, height))
        else:
            arrays.append(flow_frames(Path(flow_folder), row.stem, width, height, flow_scale))
    lengths = {a.shape[1] for a in arrays}
    if len(lengths) != 1:
        raise InputError(
            f"{root}: the clips have different lengths {sorted(lengths)}; the manifest's frames must agree"
        )
    names = sorted(set(manifest["performance"]))
    index = {name: i for i, name in enumerate(names)}
    return ActionSet(
        clips=np.stack(arrays),
        labels=manifest["label"].to_numpy(np.int64),
        views=manifest["view"].to_numpy(np.int64),
        performances=np.array([index[name] for name in manifest["performance"]], dtype=np.int64),
        names=names,
        stems=list(manifest["stem"]),
    )


def crop(clips: np.ndarray, starts: np.ndarray, tops: np.ndarray, lefts: np.ndarray, frames: int, size: int):
    """(B, C, T, H, W) → (B, C, frames, size, size) float32 tensor, each clip cut at its own
    start frame and corner."""
    out = np.empty((len(clips), clips.shape[1], frames, size, size), dtype=np.float32)
    for b, (clip, t, y, x) in enumerate(zip(clips, starts, tops, lefts)):
        out[b] = clip[:, t : t + frames, y : y + size, x : x + size]
    return torch.from_numpy(out)


def random_windows(rng: np.random.Generator, count: int, shape: tuple[int, ...], frames: int, size: int):
    """Random clipping and cropping (LTC's training augmentation): start frames, tops and lefts (count,)."""
    _, length, height, width = shape
    if length < frames or height < size or width < size:
        raise InputError(f"clips of {length} frames of {height}×{width} cannot give {frames} frames of {size}×{size}")
    return (
        rng.integers(0, length - frames + 1, count),
        rng.integers(0, height - size + 1, count),
        rng.integers(0, width - size + 1, count),
    )


def evaluation_windows(length: int, frames: int, stride: int) -> list[int]:
    """Start frames of the clips a test video is cut into: every `stride` frames, and the last
    window, so that the whole video is seen."""
    if length < frames:
        raise InputError(f"videos of {length} frames are shorter than the network's {frames}")
    starts = list(range(0, length - frames + 1, stride))
    return starts if starts[-1] == length - frames else [*starts, length - frames]
