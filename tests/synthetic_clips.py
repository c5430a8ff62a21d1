"""Tiny synthetic clips rendered by the tests themselves."""

from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline import clips
from pipeline.actions import dataset
from pipeline.body_model.model import BodyModel
from pipeline.synthesis import appearance, backgrounds, camera, generate, motion

# The action clips' camera at the project's settings: 96×72 frames, focal 180
ACTION_SETTINGS = dataset.ActionSettings(
    seed=0,
    actions=("walk", "punch"),
    performances=1,
    azimuths=(0.0, 45.0, 90.0),
    frames=8,
    width=96,
    height=72,
    focal=180.0,
    cam_dist=(7.0, 0.5),
    speed=(0.8, 1.25),
    jitter=0.1,
    mirror=0.5,
    shapes=3,
    outfits=3,
)


def tiny_motions() -> list[motion.Motion]:
    files = {path.stem.removeprefix("humanoid3d_"): path for path in motion.deepmimic_files()}
    walk = motion.load_deepmimic(files["walk"], min_seconds=1.0)
    punch = motion.load_deepmimic(files["punch"])
    return [replace(m, pose=m.pose[:16], trans=m.trans[:16]) for m in (walk, punch)]


def toy_synthesis(clip_length: int, shapes: int, outfits: int, **fields) -> generate.SynthesisSettings:
    """Synthesis settings of a toy render: every pass, mp4 only, SURREAL's light, seed 0,
    unless `fields` say otherwise."""
    defaults = {
        "seed": 0,
        "passes": generate.PASSES,
        "lossless": False,
        "light": appearance.SURREAL_LIGHT,
        "camera_distance": (8.0, 1.0),
    }
    return generate.SynthesisSettings(clip_length=clip_length, shapes=shapes, outfits=outfits, **(defaults | fields))


def render_tiny(root: Path, model_path: Path, lossless: bool = True, seed: int = 0) -> list[dict]:
    settings = toy_synthesis(8, 3, 3, seed=seed, lossless=lossless)
    job = generate.RenderJob(
        split="train",
        run=0,
        motions=tiny_motions(),
        backgrounds=backgrounds.package_photos("train")[:2],
        background_root=None,
        models={"female": BodyModel.from_file(model_path)},
        settings=settings,
        voxel_resolution=32,
        voxel_which="all",
    )
    return generate.render_job(job, root, progress=False)


def toy_joints(frames: int, rng: np.random.Generator) -> np.ndarray:
    """(T, 24, 3) joints of a person-sized cloud standing in SURREAL's world (y down), moving a little."""
    pelvis = np.array([rng.uniform(-1, 1), -0.9, rng.uniform(-1, 1)])
    body = rng.uniform([-0.3, -0.8, -0.2], [0.3, 0.9, 0.2], size=(24, 3))
    body[0] = 0.0
    steps = np.cumsum(rng.normal(0, 0.02, size=(frames, 1, 3)), axis=0)
    return pelvis + body + steps


def action_like_info(azimuth: float, frames: int, rng: np.random.Generator | None = None):
    """An action clip's `_info.mat` variables as `actions.dataset` writes them (a camera
    orbiting the person, 96×72 frames, focal 180), its intrinsics (3, 3) and extrinsics (3, 4)."""
    rng = rng or np.random.default_rng(0)
    settings = replace(ACTION_SETTINGS, frames=frames)
    performance = dataset.plan_performances(settings, "train", ["female"], 1)[0]
    joints3d = toy_joints(frames, rng)
    front = dataset.facing(joints3d[0])
    view = dataset.view_camera(joints3d[:, 0].mean(axis=0), front, azimuth, performance.cam_dist, settings)
    pose = rng.normal(0, 0.2, (frames, 72))
    betas = rng.normal(0, 1, 10)
    info = dataset.view_info(performance, 1, view, joints3d, pose, betas, "outfit_000", "room.jpg")
    return info, view.intrinsics, np.column_stack([view.rotation, view.translation])


def main_like_info(frames: int, rng: np.random.Generator | None = None):
    """A main clip's `_info.mat` variables as the renderer writes them (SURREAL's camera 8 m
    from the first pelvis), SURREAL's intrinsics (3, 3) and the extrinsics (3, 4)."""
    rng = rng or np.random.default_rng(0)
    joints3d = toy_joints(frames, rng)
    cam_loc = camera.camera_location(joints3d[0, 0], 8.0)
    rotation, translation = camera.extrinsics(cam_loc)
    k = camera.intrinsics()
    extrinsics = np.column_stack([rotation, translation])
    info = clips.info_variables(
        sequence="run",
        clip=1,
        backgrounds=["room.jpg"] * frames,
        gender=int(rng.integers(2)),
        light=rng.normal(0, 1, 9),
        stride=frames,
        cam_dist=8.0,
        cam_loc=cam_loc,
        joints2d=np.round(camera.project(joints3d, cam_loc, k)),
        joints3d=joints3d,
        pose=rng.normal(0, 0.2, (frames, 72)),
        zrot=float(rng.uniform(0, 2 * np.pi)),
        cloths=["outfit_000"] * frames,
        shape=rng.normal(0, 1, 10),
        intrinsics=k,
        extrinsics=extrinsics,
    )
    return info, k, extrinsics
