"""Flow on disk, two ways, and what a network reads from it.

Lossless: one `<stem>.npz` per clip, `flow` (T-1, H, W, 2) float32 (frame t → t+1).
LTC's format (Varol et al., long-term temporal convolutions): per frame, x and y as
8-bit JPEGs (`<stem>/x_00001.jpg`, `y_00001.jpg`, quality 95) after min–max normalisation
of each, and `<stem>_minmax.txt` with `minx maxx miny maxy` per frame, to decode them.

Shapes: T frames, H × W pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipeline.atomic import atomic_output
from pipeline.errors import InputError

FORMATS = ("lossless", "ltc")


def write_lossless(folder: Path, stem: str, flow: np.ndarray) -> None:
    with atomic_output(folder / f"{stem}.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, flow=flow.astype(np.float32))


def write_ltc(folder: Path, stem: str, flow: np.ndarray, quality: int = 95) -> None:
    """Each frame's x and y min–max normalised to 0–255 and JPEG-encoded."""
    with atomic_output(folder / stem) as tmp:
        tmp.mkdir()
        lines = []
        for t, frame in enumerate(flow, start=1):
            limits = []
            for axis, name in ((0, "x"), (1, "y")):
                channel = frame[..., axis]
                low, high = float(channel.min()), float(channel.max())
                scaled = np.round((channel - low) / max(high - low, 1e-12) * 255).astype(np.uint8)
                cv2.imwrite(str(tmp / f"{name}_{t:05d}.jpg"), scaled, [cv2.IMWRITE_JPEG_QUALITY, quality])
                limits += [low, high]
            lines.append(" ".join(f"{v:.6g}" for v in limits))
        with atomic_output(folder / f"{stem}_minmax.txt") as text:
            text.write_text("\n".join(lines) + "\n")


def read_flow(folder: str | Path, stem: str, storage: str = "lossless") -> np.ndarray:
    """(T-1, H, W, 2) float32 flow of a clip, from either format."""
    folder = Path(folder)
    if storage == "lossless":
        path = folder / f"{stem}.npz"
        try:
            with np.load(path) as data:
                return data["flow"].astype(np.float32)
        except (OSError, KeyError, ValueError) as error:
            raise InputError(f"{path}: not a readable flow file ({error})") from error
    if storage != "ltc":
        raise ValueError(f"unknown flow storage {storage!r}; one of {FORMATS}")
    minmax = folder / f"{stem}_minmax.txt"
    try:
        limits = np.loadtxt(minmax, ndmin=2)
    except (OSError, ValueError) as error:
        raise InputError(f"{minmax}: not a readable min-max file ({error})") from error
    frames = []
    for t, (low_x, high_x, low_y, high_y) in enumerate(limits, start=1):
        channels = []
        for name, low, high in (("x", low_x, high_x), ("y", low_y, high_y)):
            path = folder / stem / f"{name}_{t:05d}.jpg"
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise InputError(f"{path}: missing or not an image")
            channels.append(image.astype(np.float32) / 255 * (high - low) + low)
        frames.append(np.stack(channels, axis=-1))
    return np.stack(frames)


def resize_flow(flow: np.ndarray, width: int, height: int) -> np.ndarray:
    """(..., H, W, 2) → (..., height, width, 2), the vectors scaled with the image (a flow of
    one pixel at full size is half a pixel at half size)."""
    shape = flow.shape
    frames = flow.reshape(-1, *shape[-3:])
    scale = np.float32([width / shape[-2], height / shape[-3]])
    resized = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR) for f in frames]) * scale
    return resized.reshape(*shape[:-3], height, width, 2)


def subtract_mean(flow: np.ndarray) -> np.ndarray:
    """Each frame's mean flow removed (camera motion, as LTC's preprocessing)."""
    return flow - flow.mean(axis=(-3, -2), keepdims=True)


class FlowSource:
    """A frame's forward flow for sample preparation: the clips' rendered flow
    (`rendered`), or the flow a method stored losslessly in a folder, with each frame's mean
    flow removed when `mean_subtracted`. The last frame of a clip, which has no next frame,
    gets zero flow (as the rendered flow has)."""

    def __init__(self, source: str | Path, mean_subtracted: bool = False) -> None:
        self.source = str(source)
        self.mean_subtracted = mean_subtracted
        self._stem, self._flows = None, None

    def __call__(self, clip, t: int) -> np.ndarray:
        flow = self._frame(clip, t)
        return subtract_mean(flow) if self.mean_subtracted else flow

    def _frame(self, clip, t: int) -> np.ndarray:
        if self.source == "rendered":
            return clip.forward_flow(t).astype(np.float32)
        if self._stem != clip.stem:
            self._stem, self._flows = clip.stem, read_flow(self.source, clip.stem)
        if t < len(self._flows):
            return self._flows[t]
        return np.zeros_like(self._flows[0])
