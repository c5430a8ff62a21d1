"""SURREAL's frames as a PyTorch dataset: each frame of each clip of a SURREAL-layout folder
(this project's `results/surreal`, or the SURREAL release itself), with the passes asked for
and its annotations.

    from torch.utils.data import DataLoader
    from pipeline.datasets.frames import SurrealFrames

    frames = SurrealFrames("results/surreal", "train", passes=("segm", "depth"))
    for batch in DataLoader(frames, batch_size=8, num_workers=2):
        batch["rgb"]        # (8, 240, 320, 3) uint8
        batch["segm"]       # (8, 240, 320) uint8: 0 background, 1..24 SMPL's parts
        batch["depth"]      # (8, 240, 320) float32 metres from the camera; background 1e10
        batch["joints2d"]   # (8, 24, 2) pixels; joints3d (8, 24, 3) SURREAL's world, metres

BodyNet's crops and targets of the same frames: `pipeline.datasets.surreal.BodyNetDataset`.

A clip's passes are stored one `.mat` file per pass and its frames as one video, read whole:
a frame read after another of the same clip costs little, a frame of another clip a file
read. The dataset keeps the last `cached_clips` clips it read, so frames in clip order (the
default order, and a sampler that shuffles clips, not frames) read each file once.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from pipeline.clips import Clip, ClipError, find_clips

PASSES = ("segm", "depth", "gtflow", "normal")  # SURREAL's per-frame passes


class SurrealFrames(Dataset):
    """The frames of a split (`all` of each clip, or its `middle` one: SURREAL's test
    protocol for segmentation and depth), as dicts of numpy arrays:

        rgb (H, W, 3) uint8; one array per pass in `passes`: segm (H, W) uint8, depth (H, W)
        float32, gtflow (H, W, 2) float32 as stored (Blender's vector pass, y up), normal
        (H, W, 3) float32; joints2d (24, 2), joints3d (24, 3), pose (72,), shape (10,),
        zrot (), gender () int64 (0 female, 1 male), camera_location (3,), and the clip's
        camera (`ClipInfo`: the stored one, else SURREAL's): camera_matrix (3, 3) and
        camera_extrinsics (3, 4, world → camera) float32; clip (its stem) and frame (0-based).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        runs: list[int] | None = None,
        passes: tuple[str, ...] = ("segm", "depth"),
        frames: str = "all",
        cached_clips: int = 4,
    ) -> None:
        unknown = [name for name in passes if name not in PASSES]
        if unknown:
            raise ValueError(f"passes: {unknown[0]!r} is not one of {', '.join(PASSES)}")
        if frames not in ("all", "middle"):
            raise ValueError(f"frames: {frames!r} is neither 'all' nor 'middle'")
        self.passes, self.cached_clips = tuple(passes), cached_clips
        self.info_paths = find_clips(root, split, runs)
        if not self.info_paths:
            raise ClipError(f"{Path(root) / 'cmu' / split}: no complete clip (a clip's _info.mat)")
        self.clips = [Clip(path) for path in self.info_paths]
        self.index: list[tuple[int, int]] = []  # (clip, frame)
        for number, clip in enumerate(self.clips):
            count = clip.info.frames
            chosen = range(count) if frames == "all" else [(count - 1) // 2]
            self.index += [(number, t) for t in chosen]
        self.held: OrderedDict[int, None] = OrderedDict()  # the clips whose files are held, the latest last

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        number, t = self.index[item]
        clip = self._clip(number)
        info = clip.info
        frame = {"rgb": clip.rgb(t)}
        for name in self.passes:
            frame[name] = self._pass(clip, name, t, frame["rgb"].shape[:2])
        return frame | {
            "joints2d": info.joints2d[t].astype(np.float32),
            "joints3d": info.joints3d[t].astype(np.float32),
            "pose": info.pose[t].astype(np.float32),
            "shape": info.shape[t].astype(np.float32),
            "zrot": np.float32(info.zrot[t]),
            "gender": np.int64(info.gender[t]),
            "camera_location": info.cam_loc.astype(np.float32),
            "camera_matrix": info.intrinsics.astype(np.float32),
            "camera_extrinsics": info.extrinsics.astype(np.float32),
            "clip": clip.stem,
            "frame": t,
        }

    def _clip(self, number: int) -> Clip:
        """The clip; past `cached_clips` clips read, the least recently read forgets its files."""
        self.held[number] = None
        self.held.move_to_end(number)
        if len(self.held) > self.cached_clips:
            oldest, _ = self.held.popitem(last=False)
            self.clips[oldest].forget()
        return self.clips[number]

    @staticmethod
    def _pass(clip: Clip, name: str, t: int, size: tuple[int, int]) -> np.ndarray:
        """Frame t of a pass, checked against the frame's size (H, W)."""
        array = clip.surreal_gtflow(t) if name == "gtflow" else getattr(clip, name)(t)
        if array.shape[:2] != size:
            raise ClipError(f"{clip.file(f'_{name}.mat')}: frame {t + 1} is {array.shape[:2]}, the video's {size}")
        return array.astype(np.uint8 if name == "segm" else np.float32)
