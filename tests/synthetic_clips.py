"""Tiny synthetic clips rendered by the tests themselves."""

from dataclasses import replace
from pathlib import Path

from pipeline.body_model.model import BodyModel
from pipeline.synthesis import backgrounds, generate, motion


def tiny_motions() -> list[motion.Motion]:
    files = {path.stem.removeprefix("humanoid3d_"): path for path in motion.deepmimic_files()}
    walk = motion.load_deepmimic(files["walk"], min_seconds=1.0)
    punch = motion.load_deepmimic(files["punch"])
    return [replace(m, pose=m.pose[:16], trans=m.trans[:16]) for m in (walk, punch)]


def render_tiny(root: Path, model_path: Path, lossless: bool = True, seed: int = 0) -> list[dict]:
    settings = generate.SynthesisSettings(seed=seed, clip_length=8, shapes=3, outfits=3, lossless=lossless)
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
