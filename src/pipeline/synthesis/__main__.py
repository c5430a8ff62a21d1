"""Synthesis stage: motions, backgrounds, and SURREAL-style clips with full ground truth.

    python -m pipeline.synthesis motions --split train --names walk run --out train.npz
    python -m pipeline.synthesis backgrounds --split train --out resources/backgrounds/train
    python -m pipeline.synthesis render --split train --run 0 --motions train.npz \\
        --backgrounds resources/backgrounds/train --model female=f.pkl --model male=m.pkl \\
        --root results/surreal --manifest results/surreal/train_run0.csv
    python -m pipeline.synthesis sheet --root results/surreal --split train --out sheet.png \\
        --animation clips.png
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path

from pipeline.cli import command_parser, parse_pair, run_command, settings_from
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.synthesis")


def motions(args: argparse.Namespace) -> None:
    from pipeline.synthesis.motion import (
        Variation,
        deepmimic_files,
        interpolations,
        load_deepmimic,
        load_motions,
        mirror,
        resample,
        save_motions,
        variants,
    )

    params = {
        "split": args.split,
        "source": args.source,
        "names": args.names,
        "file": str(args.file),
        "min_seconds": args.min_seconds,
        "mirror": args.mirror,
        "variants": args.variants,
        "speed": args.speed,
        "blend": args.blend,
        "jitter": args.jitter,
        "interpolations": args.interpolations,
        "interpolation_step": args.interpolation_step,
        "seed": args.seed,
    }
    with stage_run("synthesis_motions", params, args.rule, parse_wildcards(args.wildcard)) as run:
        if args.source == "embedded":
            files = {path.stem.removeprefix("humanoid3d_"): path for path in deepmimic_files()}
            unknown = sorted(set(args.names or []) - set(files))
            if unknown or not args.names:
                raise InputError(f"--names: unknown or no motion(s) {unknown}; available: {sorted(files)}")
            loaded = [load_deepmimic(files[name], min_seconds=args.min_seconds) for name in args.names]
        else:
            if args.file is None:
                raise InputError("--source file needs --file")
            loaded = [resample(motion, args.file_fps) for motion in load_motions(args.file, fps=args.file_fps)]
            if args.names:
                loaded = [motion for motion in loaded if motion.name in set(args.names)]
        if args.mirror:
            loaded += [mirror(motion) for motion in loaded]
        if args.variants:
            missing = [f"--{key}" for key in ("speed", "blend", "jitter", "seed") if getattr(args, key) is None]
            if missing:
                raise InputError(f"--variants {args.variants} needs {', '.join(missing)}")
            variation = Variation(tuple(args.speed), args.blend, args.jitter)
            loaded += variants(loaded, args.variants, variation, args.seed, args.split)
        if args.interpolations:
            missing = [
                f"--{key.replace('_', '-')}" for key in ("interpolation_step", "seed") if getattr(args, key) is None
            ]
            if missing:
                raise InputError(f"--interpolations {args.interpolations} needs {', '.join(missing)}")
            loaded += interpolations(loaded, args.interpolations, args.interpolation_step, args.seed, args.split)
        save_motions(args.out, loaded)
        frames = sum(len(motion) for motion in loaded)
        run.log_metrics({"motions": len(loaded), "frames": frames, "seconds": frames / 30.0})
        log.info("%d motions, %d frames at 30 fps", len(loaded), frames)


def backgrounds(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.listing import write_listing
    from pipeline.synthesis.backgrounds import SOURCES_LISTING, collect, list_images, package_photos

    if args.source == "package":
        sources, names = package_photos(args.split), None
    else:
        sources = list_images(args.folder)
        names = ["_".join(path.relative_to(args.folder).parts) for path in sources]
    params = {"split": args.split, "source": args.source, "folder": str(args.folder)}
    with stage_run("synthesis_backgrounds", params, args.rule, parse_wildcards(args.wildcard)) as run:
        with atomic_output(args.out) as tmp:
            # at most twice the render's size: enough for any crop, quick to decode
            collect(sources, tmp, 2 * max(args.width, args.height), names)
            read = [str(path.relative_to(args.folder)) if names else path.name for path in sources]
            write_listing(tmp / SOURCES_LISTING, sources, read)
        run.log_metrics({"images": len(sources)})
        log.info("%d background photographs for %s", len(sources), args.split)


def render(args: argparse.Namespace) -> None:
    import pandas as pd

    from pipeline.atomic import atomic_output
    from pipeline.body_model.model import BodyModel
    from pipeline.synthesis.appearance import LightRange
    from pipeline.synthesis.backgrounds import list_images
    from pipeline.synthesis.generate import RenderJob, SynthesisSettings, render_job
    from pipeline.synthesis.motion import load_motions

    mean, std = args.camera_distance
    if not (0 < mean < math.inf and 0 <= std < math.inf):  # a camera on or behind the pelvis sees no person
        raise InputError(f"--camera-distance {mean:g} {std:g}: the mean must be above 0 m, the deviation 0 m or more")
    models = {}
    for item in args.model:
        gender, path = parse_pair(item, "--model", keys=("female", "male"))
        models[gender] = BodyModel.from_file(path)
    settings = settings_from(
        SynthesisSettings,
        args,
        camera_distance=tuple(args.camera_distance),
        light=LightRange(tuple(args.light_ambient), tuple(args.light_from_above), args.light_others),
    )
    job = RenderJob(
        split=args.split,
        run=args.run,
        motions=load_motions(args.motions),
        backgrounds=list_images(args.backgrounds),
        background_root=args.backgrounds.parent,
        models=models,
        settings=settings,
        voxel_resolution=args.voxels,
        voxel_which=args.voxel_frames,
    )
    params = {
        **asdict(settings),
        "split": args.split,
        "run": args.run,
        "voxels": args.voxels,
        "voxel_frames": args.voxel_frames,
        "motions": str(args.motions),
    }
    with stage_run("synthesis_render", params, args.rule, parse_wildcards(args.wildcard)) as run:
        start = time.perf_counter()
        rows = render_job(job, args.root, resume=not args.no_resume, workers=args.workers)
        seconds = time.perf_counter() - start
        table = pd.DataFrame(rows)
        with atomic_output(args.manifest) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        frames = int(table["frames"].sum()) if len(table) else 0
        run.log_metrics(
            {
                "clips": len(table),
                "frames": frames,
                "seconds": seconds,
                "frames_per_second": frames / seconds if seconds else 0.0,
            }
        )
        run.log_artifact(args.manifest)
        log.info(
            "%d clips, %d frames in %.1f s (%.1f frames/s)", len(table), frames, seconds, frames / max(seconds, 1e-9)
        )


def sheet(args: argparse.Namespace) -> None:
    from pipeline.clips import Clip, find_clips
    from pipeline.synthesis.sheet import clip_animation, contact_sheet

    clips = [Clip(path) for path in find_clips(args.root, args.split)]
    if not clips:
        raise InputError(f"{args.root}: no complete clip in split {args.split!r}")
    step = max(1, len(clips) // args.clips)
    chosen = clips[::step][: args.clips]
    params = {"root": str(args.root), "split": args.split, "clips": [c.stem for c in chosen]}
    with stage_run("synthesis_sheet", params, args.rule, parse_wildcards(args.wildcard)) as run:
        contact_sheet(chosen, args.out)
        run.log_artifact(args.out)
        if args.animation:
            clip_animation(chosen, args.animation)
            run.log_artifact(args.animation)


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.synthesis", __doc__)

    p = commands.add_parser("motions", help="retarget the embedded motion capture to SMPL poses")
    p.add_argument("--split", required=True)
    p.add_argument(
        "--source",
        choices=["embedded", "file"],
        required=True,
        help="embedded: pybullet's DeepMimic clips; file: an SMPL motion npz",
    )
    p.add_argument("--names", nargs="+", help="motions to take (embedded: e.g. walk run)")
    p.add_argument("--file", type=Path, help="with --source file: npz with pose_<name>, trans_<name>")
    p.add_argument(
        "--file-fps",
        type=float,
        default=None,
        help="frame rate of --file when it has no 'fps' key (SURREAL's smpl_data.npz: 120)",
    )
    p.add_argument("--min-seconds", type=float, required=True, help="repeat looping clips to this length")
    p.add_argument("--mirror", action="store_true", help="add each motion's mirror image")
    p.add_argument(
        "--variants",
        type=int,
        help="add this many new motions made of the split's own (re-timed, blended, jittered; they need "
        "--speed, --blend, --jitter and --seed)",
    )
    p.add_argument(
        "--speed",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="variants: range of the play-back speed factor",
    )
    p.add_argument("--blend", type=float, help="variants: chance of another motion's upper body")
    p.add_argument("--jitter", type=float, help="variants: std (radians) of each joint's offset")
    p.add_argument(
        "--interpolations",
        type=int,
        help="add this many new motions, each the poses between two of the split's motions (captured, "
        "mirrored or variants) where they differ most (they need --interpolation-step and --seed)",
    )
    p.add_argument(
        "--interpolation-step",
        type=float,
        help="interpolations: the most the summed joint angle moves a frame (radians)",
    )
    p.add_argument("--seed", type=int, help="seeds the variants and interpolations")
    p.add_argument("--out", required=True, type=Path, help="motion file to write (.npz)")
    add_tracking_arguments(p)
    p.set_defaults(func=motions)

    p = commands.add_parser("backgrounds", help="collect a split's background photographs")
    p.add_argument("--split", required=True)
    p.add_argument(
        "--source",
        choices=["package", "folder"],
        required=True,
        help="package: the embedded interior photographs; folder: --folder's images",
    )
    p.add_argument("--folder", type=Path, help="with --source folder: images to use (searched recursively)")
    p.add_argument("--out", required=True, type=Path, help="folder to fill")
    p.add_argument("--width", type=int, default=320, help="render width the photographs serve")
    p.add_argument("--height", type=int, default=240, help="render height the photographs serve")
    add_tracking_arguments(p)
    p.set_defaults(func=backgrounds)

    p = commands.add_parser("render", help="render a split's clips in SURREAL's layout")
    p.add_argument("--split", required=True)
    p.add_argument("--run", type=int, required=True, help="SURREAL's run: 0, 1, 2 overlap clips by 50, 70, 30 %%")
    p.add_argument("--motions", required=True, type=Path)
    p.add_argument("--backgrounds", required=True, type=Path, help="folder of photographs")
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="GENDER=PATH",
        help="SMPL-format model per gender (female=..., male=...)",
    )
    p.add_argument("--root", required=True, type=Path, help="root of the SURREAL layout")
    p.add_argument("--manifest", required=True, type=Path, help="CSV: one row per clip")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--clip-length", type=int, required=True)
    p.add_argument("--shapes", type=int, required=True, help="body shapes per gender in the split's bank")
    p.add_argument("--outfits", type=int, required=True, help="outfits in the split's bank")
    p.add_argument(
        "--outfits-used",
        type=int,
        default=0,
        help="only the bank's first N outfits (a clip's drawn outfit modulo N; all else as drawn); 0: all",
    )
    p.add_argument("--camera-distance", type=float, nargs=2, required=True, metavar=("MEAN", "STD"))
    p.add_argument(
        "--passes",
        nargs="*",
        required=True,
        choices=["segm", "depth", "gtflow", "flow", "normal"],
    )
    p.add_argument("--lossless", action="store_true", help="also write PNG frames")
    p.add_argument(
        "--light-ambient",
        type=float,
        nargs=2,
        required=True,
        metavar=("LOW", "HIGH"),
        help="range of the ambient light coefficient sh[0] (SURREAL's: 0.5 1.4)",
    )
    p.add_argument(
        "--light-from-above",
        type=float,
        nargs=2,
        required=True,
        metavar=("LOW", "HIGH"),
        help="range of the light from above, −sh[1] (SURREAL's: 0 0.7)",
    )
    p.add_argument(
        "--light-others", type=float, required=True, help="the other seven coefficients ~ U(−x, x) (SURREAL's: 0.7)"
    )
    p.add_argument("--voxels", type=int, required=True, help="voxel resolution (0: no voxels)")
    p.add_argument("--voxel-frames", choices=["all", "middle", "none"], required=True)
    p.add_argument("--no-resume", action="store_true", help="render clips that already exist again")
    p.add_argument("--workers", type=int, default=1, help="processes rendering in parallel")
    add_tracking_arguments(p)
    p.set_defaults(func=render)

    p = commands.add_parser("sheet", help="contact sheet: every pass for a few clips, and the clips playing")
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--split", required=True)
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--animation", type=Path, help="the same clips playing: RGB, segmentation, depth (animated PNG)")
    add_tracking_arguments(p)
    p.set_defaults(func=sheet)

    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
