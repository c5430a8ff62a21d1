"""Synthesis speed: frames of full ground truth per second, voxel grids per second, and
Blender Cycles (the renderer SURREAL used) on the same posed meshes, in the same run.

    python benchmarks/synthesis.py [--clips 24] [--clip-length 100] [--workers 1 2]
                                   [--blender-frames 10] [--out benchmarks/results/synthesis.json]

Needs the built body models (`snakemake resources/body_models/anny/smpl_female.pkl
resources/body_models/anny/smpl_male.pkl`) and, for the comparison, Debian's `blender`.
Frames per second count posing, rendering every pass (RGB, depth, segmentation, normals,
both flows) and writing the clip's files (mp4 and compressed .mat) — everything but voxels,
which are timed on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from pipeline.body_model.model import BodyModel
from pipeline.synthesis import generate
from pipeline.synthesis.appearance import SURREAL_LIGHT
from pipeline.synthesis.backgrounds import collect, crop_to, package_photos, read_rgb
from pipeline.synthesis.motion import deepmimic_files, load_deepmimic, mirror
from pipeline.synthesis.voxels import voxelize

ROOT = Path(__file__).resolve().parents[1]


def surreal_settings(clip_length: int, people: int) -> generate.SynthesisSettings:
    """A benchmark render's settings: SURREAL's light, every pass, mp4 only, seed 0, `people`
    shapes and outfits, and the camera distance of the project's config."""
    distance = yaml.safe_load((ROOT / "config.yaml").read_text())["synthesis"]["camera_distance"]
    return generate.SynthesisSettings(
        seed=0,
        clip_length=clip_length,
        shapes=people,
        outfits=people,
        passes=generate.PASSES,
        lossless=False,
        light=SURREAL_LIGHT,
        camera_distance=tuple(distance),
    )


def render_throughput(models, motions, photos: list[Path], clips: int, clip_length: int, workers: int) -> dict:
    settings = surreal_settings(clip_length, people=20)
    job = generate.RenderJob("train", 0, motions, photos, None, models, settings)
    plans = generate.plan_clips(motions, "train", 0, settings, sorted(models), len(job.backgrounds))
    chosen = {p.sequence for p in plans[:clips]}
    job.motions = [m for m in motions if m.name in chosen]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        rows = generate.render_job(job, Path(folder), resume=False, progress=False, workers=workers)
        seconds = time.perf_counter() - start
    frames = sum(row["frames"] for row in rows)
    return {
        "workers": workers,
        "clips": len(rows),
        "frames": frames,
        "seconds": seconds,
        "frames_per_second": frames / seconds,
    }


def voxel_throughput(model: BodyModel, poses: np.ndarray, resolution: int) -> dict:
    with torch.no_grad():
        vertices = model(torch.zeros(len(poses), 10), torch.as_tensor(poses)).vertices.numpy()
    faces = model.faces.astype(np.int64)
    voxelize(vertices[0], faces, resolution)
    start = time.perf_counter()
    for frame in vertices:
        voxelize(frame, faces, resolution)
    seconds = time.perf_counter() - start
    return {"resolution": resolution, "grids": len(vertices), "grids_per_second": len(vertices) / seconds}


def blender_comparison(models, motion, frames: int, samples: list[int]) -> dict:
    """Both renderers on the same posed meshes, camera and photograph."""
    renderer = generate.ClipRenderer(
        models,
        surreal_settings(frames, people=1),
    )
    plan = generate.plan_clips([motion], "train", 0, renderer.settings, sorted(models), 1)[0]
    betas = np.zeros(10)
    outfit = generate.outfit_bank(0, "train", 1)[0]
    photo = read_rgb(package_photos("train")[0])
    vertices, _, cam_loc = renderer.pose(plan, motion, betas)
    # SURREAL's camera reflects; Blender's cannot, so Blender gets the camera-frame vertices
    # (reflection applied) and a camera at the origin: the same image.
    camera_vertices = generate.camera_frame(vertices.numpy(), cam_loc)
    with tempfile.TemporaryDirectory() as folder:
        scene = Path(folder) / "scene.npz"
        crop = crop_to(photo, 320, 240, np.random.default_rng(plan.crop_seed))
        np.savez(
            scene,
            vertices=camera_vertices,
            faces=renderer.faces.numpy(),
            face_parts=generate.face_parts(renderer.models[plan.gender]),
            photo=crop,
            rotation=np.eye(3),
            translation=np.zeros(3),
        )
        blender_seconds = {}
        for count in samples:
            command = [
                "blender",
                "-b",
                "--factory-startup",
                "--python",
                str(ROOT / "benchmarks/blender_cycles.py"),
                "--",
                str(scene),
                str(Path(folder) / f"exr{count}"),
                str(count),
            ]
            result = subprocess.run(command, capture_output=True, text=True)
            line = [text for text in result.stdout.splitlines() if text.startswith("BLENDER_SECONDS_PER_FRAME")]
            if result.returncode != 0 or not line:
                raise RuntimeError(f"blender failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            blender_seconds[count] = float(line[0].split()[1])
        exr_files = len(list((Path(folder) / f"exr{samples[0]}").glob("*.exr")))
        # ours: the same frames, all passes, and the clip's files written
        start = time.perf_counter()
        for _ in range(3):
            clip = renderer.render(plan, motion, betas, outfit, photo, "photo.jpg")
            generate.write_clip(clip, Path(folder) / "ours", renderer.settings)
        ours_seconds = (time.perf_counter() - start) / (3 * plan.frames)
    return {
        "frames": plan.frames,
        "blender_exr_files_per_run": exr_files,
        "ours_seconds_per_frame": ours_seconds,
        "cycles": [
            {"samples": count, "blender_seconds_per_frame": seconds, "speedup": seconds / ours_seconds}
            for count, seconds in blender_seconds.items()
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "resources/body_models/anny")
    parser.add_argument("--clips", type=int, default=48, help="at least this many clips per throughput measurement")
    parser.add_argument("--clip-length", type=int, default=100, help="frames per clip (SURREAL: 100)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--voxel-resolutions", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--blender-frames", type=int, default=10)
    parser.add_argument(
        "--cycles-samples",
        type=int,
        nargs="+",
        default=[128, 16],
        help="Cycles samples per pixel: SURREAL left Blender 2.78's default (128)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/synthesis.json")
    args = parser.parse_args()

    models = {g: BodyModel.from_file(args.models / f"smpl_{g}.pkl") for g in ("female", "male")}
    scratch = Path(tempfile.mkdtemp())
    collect(package_photos("train"), scratch / "backgrounds", 640)  # as the pipeline prepares them
    photos = sorted((scratch / "backgrounds").iterdir())
    files = {p.stem.removeprefix("humanoid3d_"): p for p in deepmimic_files()}
    base = [load_deepmimic(path, min_seconds=6) for path in files.values()]
    motions = base + [mirror(m) for m in base]
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
        "render": [render_throughput(models, motions, photos, args.clips, args.clip_length, w) for w in args.workers],
        "voxels": [voxel_throughput(models["female"], motions[0].pose[:20], r) for r in args.voxel_resolutions],
    }
    if shutil.which("blender"):
        walk = next(m for m in motions if m.name == "walk")
        results["blender"] = blender_comparison(models, walk, args.blender_frames, args.cycles_samples)
    else:
        results["blender"] = "blender not installed (Debian: apt-get install blender)"
    shutil.rmtree(scratch)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
