"""The mesh-video clips: rendered here, read back as tensors.

Each performance plays one of the split's motions (`resources/motions/<split>.npz`: the
embedded captures, their variants and, where the config asks, interpolations between two of
them), or for the transitions clips one of the poses interpolated between two of them made
here (Liu et al.'s §3.2, their own seed stream, the split's people and backdrops), and is
seen by synchronised cameras at `azimuths` degrees from the world's east (the paper's four:
east, north, west and south of the person), the person turned at random about the vertical,
so that every view of the person is drawn. The cameras follow the pelvis with
a telephoto lens (180 mm on a 32 mm sensor: a focal length of 180/32 of the frame's width), so
the person fills the frame the same way in every frame and the projection is nearly
orthographic. The renderer, clothes, backgrounds and lights are the action clips'
(`pipeline.actions.dataset`, `tracked`); cloth physics, which the paper simulates, is not.

Read back (`load_clips`), every frame has, in the camera's frame made proper (SURREAL's camera is
a reflection, `pipeline.clips`; the x axis is turned over so that a rotation describes the body
in it, and turned back to project):

    images     (N, T, S, S, 3) uint8, the frames resized to S×S
    rotations  (N, T, 24, 3, 3) SMPL's joint rotations, the first the body's in the camera's frame
    betas      (N, 10)
    joints     (N, T, 24, 3) pelvis-relative, metres
    points     (N, T, 24, 2) the 2D joints, in [-1, 1] across the frame
    visible    (N, T, 24) a joint inside the frame

N clips (a view of a performance), T frames, S pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from pipeline.body_model.model import BodyModel
from pipeline.clips import Clip, read_info
from pipeline.errors import InputError
from pipeline.synthesis import camera
from pipeline.synthesis.motion import interpolations, load_motions

SENSOR_MM = 32.0
FLIP_X = np.diag([-1.0, 1.0, 1.0])  # SURREAL's camera frame <-> a proper (right-handed) one
GENDERS = ("female", "male")  # `_info.mat`'s gender codes


def telephoto_focal(lens_mm: float, width: int) -> float:
    """The focal length in pixels of a `lens_mm` lens on a 32 mm sensor `width` pixels wide."""
    return lens_mm / SENSOR_MM * width


@dataclass(frozen=True)
class MeshClipSettings:
    """How one split's clips are drawn (the config's `video_mesh.dataset`)."""

    seed: int
    performances: int  # per motion of the split
    azimuths: tuple[float, ...]  # degrees from the world's east
    frames: int
    size: int  # the frames' side, pixels
    lens: float  # millimetres, on a 32 mm sensor
    cam_dist: tuple[float, float]  # metres: mean and standard deviation
    speed: tuple[float, float]
    jitter: float
    mirror: float
    shapes: int
    outfits: int


def action_settings(settings: MeshClipSettings, motions: list[str]):
    """The action clips' settings that render these clips: each motion an 'action', the cameras
    following the pelvis, no flow."""
    from pipeline.actions.dataset import ActionSettings

    return ActionSettings(
        seed=settings.seed,
        actions=tuple(motions),
        performances=settings.performances,
        azimuths=settings.azimuths,
        frames=settings.frames,
        width=settings.size,
        height=settings.size,
        focal=telephoto_focal(settings.lens, settings.size),
        cam_dist=settings.cam_dist,
        speed=settings.speed,
        jitter=settings.jitter,
        mirror=settings.mirror,
        shapes=settings.shapes,
        outfits=settings.outfits,
        passes=("segm",),
        tracked=True,
        world_azimuths=True,
    )


def render(
    split: str,
    settings: MeshClipSettings,
    motions_file: Path,
    models: dict[str, BodyModel],
    backgrounds: list[Path],
    root: Path,
    transitions: int = 0,
    transition_step: float | None = None,
) -> pd.DataFrame:
    """Render every view of every performance of a split under `root` (SURREAL's layout); the
    manifest (`pipeline.actions.dataset.MANIFEST_COLUMNS`, the motion as the action).

    `transitions` > 0: instead of the split's motions, that many poses interpolated between two
    of them (`pipeline.synthesis.motion.interpolations`, at most `transition_step` radians of
    summed joint angle a frame), performed by the split's people over its backgrounds."""
    from pipeline.actions.dataset import render_split

    loaded = load_motions(motions_file)
    if transitions:
        if transition_step is None:
            raise InputError("transitions need their step (--transition-step)")
        # their own seed stream: a synthesis that already interpolated this split draws others
        loaded = interpolations(loaded, transitions, transition_step, settings.seed, f"{split} transitions")
    motions = {motion.name: motion for motion in loaded}
    if not motions:
        raise InputError(f"{motions_file}: no motion to perform")
    return render_split(split, action_settings(settings, sorted(motions)), models, backgrounds, root, motions=motions)


@dataclass
class MeshClips:
    """Clips read back as tensors (the module's docstring has the shapes)."""

    images: torch.Tensor
    rotations: torch.Tensor
    betas: torch.Tensor
    joints: torch.Tensor
    points: torch.Tensor
    visible: torch.Tensor
    genders: list[str]
    stems: list[str]
    performances: list[str]

    def __len__(self) -> int:
        return len(self.stems)

    @property
    def frames(self) -> int:
        return self.images.shape[1]

    def take(self, rows) -> MeshClips:
        """The clips at `rows` (a sequence of indices)."""
        rows = list(rows)
        values = {}
        for field in fields(self):
            value = getattr(self, field.name)
            values[field.name] = [value[r] for r in rows] if isinstance(value, list) else value[rows]
        return MeshClips(**values)


def proper_rotation(world_to_camera: np.ndarray) -> np.ndarray:
    """The camera's rotation (3, 3) with its x axis turned over: a rotation (det +1)."""
    return FLIP_X @ world_to_camera


def camera_pose(pose: np.ndarray, zrot: np.ndarray, world_to_camera: np.ndarray) -> np.ndarray:
    """SMPL's rotations (T, 24, 3, 3) of a clip's poses (T, 72) with the body's own (the first)
    turned into the proper camera frame: the renderer's world takes the body by
    `camera.body_to_world(zrot)` (`generate.ClipRenderer.pose`)."""
    from scipy.spatial.transform import Rotation

    rotations = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(len(pose), 24, 3, 3)
    turn = proper_rotation(world_to_camera)
    for t in range(len(pose)):
        rotations[t, 0] = turn @ camera.body_to_world(float(zrot[t])) @ rotations[t, 0]
    return rotations


def read_clip(info_path: Path, size: int) -> dict[str, np.ndarray | str]:
    """One clip's frames and annotations (the module's docstring), not yet batched."""
    info = read_info(info_path)
    video = Clip(info_path).video()
    if len(video) != info.frames:
        raise InputError(f"{info_path}: {info.frames} annotated frames, {len(video)} in the video")
    width, height = info.image_size
    images = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) for frame in video])
    turn = proper_rotation(info.rotation)
    world = np.asarray(info.joints3d, np.float64)
    joints = (world - world[:, :1]) @ turn.T
    pixels = info.project(world)
    points = np.stack([pixels[..., 0] / width, pixels[..., 1] / height], -1) * 2 - 1
    return {
        "images": images,
        "rotations": camera_pose(info.pose, info.zrot, info.rotation),
        "betas": info.shape[0],
        "joints": joints,
        "points": points,
        "visible": (np.abs(points) <= 1).all(-1),
        "gender": GENDERS[int(info.gender[0])],
    }


def load_clips(root: Path, manifest: pd.DataFrame, size: int) -> MeshClips:
    """Every clip of a manifest (rows in order) under `root`, frames resized to `size`."""
    from tqdm import tqdm

    read = [read_clip(Path(root) / info, size) for info in tqdm(manifest["info"], desc="clips", unit="clip")]
    lengths = {len(clip["images"]) for clip in read}
    if len(lengths) != 1:
        raise InputError(f"{root}: clips of different lengths {sorted(lengths)}; the mesh-video clips share one")

    def stacked(name: str, dtype) -> torch.Tensor:
        return torch.as_tensor(np.stack([clip[name] for clip in read]), dtype=dtype)

    return MeshClips(
        images=stacked("images", torch.uint8),
        rotations=stacked("rotations", torch.float32),
        betas=stacked("betas", torch.float32),
        joints=stacked("joints", torch.float32),
        points=stacked("points", torch.float32),
        visible=stacked("visible", torch.bool),
        genders=[clip["gender"] for clip in read],
        stems=list(manifest["stem"]),
        performances=list(manifest["performance"]),
    )
