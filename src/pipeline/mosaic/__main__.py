"""Image mosaics (Rogez & Schmid, "Image-based Synthesis for Deep 3D Human Pose Estimation",
IJCV 2018), the 3D pose classifier and the regression baseline trained on them, on the real
crops, on renders of the same poses, or on mixes (`pipeline.mosaic.dataset`).

    python -m pipeline.mosaic make --pool results/bodynet/samples/train \\
        --poses results/bodynet/samples/train --count 4000 --size 112 --pool-images 2000 \\
        --sigma 14 --alpha 3.05 --beta 0.25 --blend --seed 0 --out results/mosaic/blended
    python -m pipeline.mosaic train --sources real+mosaic --mosaics results/mosaic/blended \\
        --real results/bodynet/samples/train --val results/bodynet/samples/test \\
        --head classification --classes 100 --percent 100 --width 0.25 --size 112 \\
        --iterations 2000 --batch-size 32 --learning-rate 1e-3 --seed 0 \\
        --out results/evaluation/mosaic/real+mosaic/classification
    python -m pipeline.mosaic references --mosaics results/mosaic/blended \\
        --real results/bodynet/samples/train --val results/bodynet/samples/test --classes 100 \\
        --size 112 --seed 0 --out results/evaluation/mosaic/reference

`pool` makes a pool of real images from the Leeds Sports Pose dataset (`pipeline.mosaic.pools`),
which `make --pool` takes in place of prepared samples. `make` writes a folder of arrays
(images.npy, joints3d.npy: torso-centred metres in each crop's camera frame, joints2d.npy,
visible.npy, rows.npy: the real crop whose pose and view each mosaic shows) and sheet.png (the
first mosaics). `train` clusters the poses of a share (--percent) of the mosaics into --classes
classes, trains the K-way classifier or the regression baseline (--head) on the images of
--sources showing those poses, and measures it on the --val crops: images.csv (per image: the
error in mm, torso-centred and Procrustes-aligned; the lower bound, the nearest class's; for
classification the best of the top five classes' and whether the top class is the nearest) and
summary.json, with model.pt and history.csv. `references` writes the tables' reference rows as
evaluations: constant/ (the training poses' mean) and oracle/ (the truth's nearest class).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli import command_parser, positive_int, run_command, settings_from
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.mosaic")


def drawn_pool(args: argparse.Namespace):
    """The pool `make` cuts from: --pool-images of --pool (prepared samples or a pool folder)
    drawn with the seed, at --size."""
    from pipeline.mosaic.dataset import pool_from, pool_of
    from pipeline.mosaic.pools import is_pool, load_pool
    from pipeline.seeding import seeded_generator
    from pipeline.training.samples import SampleSet

    rng = seeded_generator(args.seed, "mosaic pool")
    if is_pool(args.pool):
        return pool_from(load_pool(args.pool), args.pool_images, args.size, rng)
    return pool_of(SampleSet.load(args.pool), args.pool_images, args.size, rng)


def make(args: argparse.Namespace) -> None:
    import cv2
    import numpy as np

    from pipeline.atomic import atomic_output
    from pipeline.mosaic.dataset import make_mosaics, make_random_view_mosaics, save_arrays
    from pipeline.mosaic.engine import MosaicSettings
    from pipeline.seeding import seeded_generator
    from pipeline.training.samples import SampleSet

    settings = settings_from(MosaicSettings, args)
    if args.views == "random" and not (args.spacing or 0) > 0:
        raise InputError("--views random needs --spacing, a positive distance in metres")
    pose_samples = SampleSet.load(args.poses)
    params = {"pool": str(args.pool), "poses": str(args.poses), "count": args.count, "size": args.size}
    params |= {"views": args.views, "spacing": args.spacing}
    with stage_run("mosaic_make", params | vars(settings), args.rule, parse_wildcards(args.wildcard)):
        pool = drawn_pool(args)
        same = args.pool.resolve() == args.poses.resolve()
        rng = seeded_generator(args.seed, "mosaic poses")
        if args.views == "own":
            arrays = make_mosaics(pool, pose_samples, args.count, settings, rng, own_clips_excluded=same)
        else:
            arrays = make_random_view_mosaics(
                pool, pose_samples, args.count, args.spacing, settings, rng, own_clips_excluded=same
            )
        with atomic_output(args.out) as tmp:
            save_arrays(arrays, tmp)
            sheet = np.concatenate(list(arrays["images"][:8]), axis=1)
            cv2.imwrite(str(tmp / "sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    log.info(
        "%s: %d mosaics of %d pixels from %d pool images", args.out, len(arrays["rows"]), args.size, len(pool.images)
    )


def sheet(args: argparse.Namespace) -> None:
    from pipeline.mosaic.dataset import load
    from pipeline.mosaic.engine import MosaicSettings
    from pipeline.mosaic.figures import study_sheet
    from pipeline.training.samples import SampleSet

    settings = settings_from(MosaicSettings, args, blend=True)
    mosaics, unblended = load(args.mosaics), load(args.unblended)
    real, surreal = SampleSet.load(args.real), SampleSet.load(args.surreal)
    same = args.pool.resolve() == args.real.resolve()
    with stage_run(
        "mosaic_sheet", {"mosaics": str(args.mosaics), "shown": args.shown}, args.rule, parse_wildcards(args.wildcard)
    ) as run:
        study_sheet(mosaics, unblended, real, surreal, drawn_pool(args), settings, args.shown, args.out, same)
        run.log_artifact(args.out)
    log.info("%s: %d poses", args.out, args.shown)


def pool(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.mosaic.dataset import save_arrays
    from pipeline.mosaic.pools import POOL_ARRAYS, lsp_pool

    with stage_run("mosaic_pool", {"lsp": str(args.lsp), "size": args.size}, args.rule, parse_wildcards(args.wildcard)):
        found = lsp_pool(args.lsp, args.size)
        with atomic_output(args.out) as tmp:
            save_arrays(found, tmp, POOL_ARRAYS)
    log.info("%s: %d LSP images of %d pixels", args.out, len(found["images"]), args.size)


def write_measures(folder: Path, images: dict, record: dict) -> dict:
    """An evaluation of the pose measures `images` (column: values per test crop) in
    `folder`, as the tables read it (`pipeline.evaluation.records`); the figures."""
    import pandas as pd

    from pipeline.evaluation.records import write_evaluation

    return write_evaluation(folder, pd.DataFrame(images).rename_axis("image").reset_index(), record)


MOSAIC_SETS = ("mosaic", "unblended", "random", "random_unblended")  # the sources that are mosaic folders


def study_data(args: argparse.Namespace, sources: list[str], percent: int) -> dict:
    """The training set of `sources` (`pipeline.mosaic.dataset.training_set`) from the options' folders."""
    from pipeline.mosaic.dataset import load, training_set
    from pipeline.training.samples import SampleSet

    folders = {"mosaic": args.mosaics} | {name: getattr(args, name, None) for name in MOSAIC_SETS[1:]}
    folders["surreal"] = getattr(args, "surreal", None)
    missing = [f"--{name.replace('_', '-')}" for name in sources if name in folders and folders[name] is None]
    if missing:
        raise InputError(f"--sources {'+'.join(sources)} needs {', '.join(missing)}")
    sets = {
        name: load(folders[name])
        for name in MOSAIC_SETS
        if folders[name] is not None and (name in sources or name == "mosaic")
    }
    surreal = SampleSet.load(args.surreal) if "surreal" in sources else None
    return training_set(sources, sets, SampleSet.load(args.real), args.size, percent, args.seed, surreal=surreal)


def train(args: argparse.Namespace) -> None:
    import pandas as pd
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.models.checkpoint import save_checkpoint
    from pipeline.mosaic.classify import ClassifierSettings, PoseClasses, measure
    from pipeline.mosaic.classify import train as train_network
    from pipeline.mosaic.dataset import rendered
    from pipeline.training.samples import SampleSet

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_from(ClassifierSettings, args)
    sources = args.sources.split("+")
    data = study_data(args, sources, args.percent)
    test = rendered(SampleSet.load(args.val), args.size)
    if settings.classes > len(data["poses"]):
        raise InputError(
            f"--classes {settings.classes}: --percent {args.percent} of the mosaics holds {len(data['poses'])} poses"
        )
    params = {"sources": args.sources, "mosaics": str(args.mosaics), "real": str(args.real), "val": str(args.val)}
    params |= {"percent": args.percent, "size": args.size} | vars(settings)
    with stage_run("mosaic_train", params, args.rule, parse_wildcards(args.wildcard)) as run:
        classes = PoseClasses.fit(data["poses"], settings.classes, settings.seed)
        model, history = train_network(data["images"], data["joints3d"], classes, settings)
        measures = measure(model, classes, settings.head, test["images"], test["joints3d"])
        with atomic_output(args.out) as tmp:
            tmp.mkdir(parents=True)
            payload = {"state": model.state_dict(), "settings": vars(settings), "centres": classes.centres}
            save_checkpoint(tmp / "model.pt", payload)
            pd.DataFrame(history).to_csv(tmp / "history.csv", index=False, float_format="%.6g")
            extra = {"sources": args.sources, "train_images": len(data["images"]), "poses": len(data["poses"])}
            summary = write_measures(
                tmp, measures, extra | {"trained_run_id": run.run_id, "evaluation_run_id": run.run_id}
            )
        run.log_metrics(summary)
    log.info("%s: %s", args.out, ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))


def references(args: argparse.Namespace) -> None:
    from pipeline.atomic import atomic_output
    from pipeline.mosaic.classify import PoseClasses
    from pipeline.mosaic.classify import references as reference_measures
    from pipeline.mosaic.dataset import rendered
    from pipeline.training.samples import SampleSet

    data = study_data(args, ["mosaic"], 100)
    test = rendered(SampleSet.load(args.val), args.size)
    if args.classes > len(data["poses"]):
        raise InputError(f"--classes {args.classes}: the mosaics hold {len(data['poses'])} poses")
    params = {"mosaics": str(args.mosaics), "real": str(args.real), "val": str(args.val), "classes": args.classes}
    with stage_run("mosaic_references", params, args.rule, parse_wildcards(args.wildcard)) as run:
        classes = PoseClasses.fit(data["poses"], args.classes, args.seed)
        rows = reference_measures(classes, data["poses"].mean(0), test["joints3d"])
        with atomic_output(args.out) as tmp:
            for name, measures in rows.items():
                summary = write_measures(tmp / name, measures, {"reference": name, "evaluation_run_id": run.run_id})
                run.log_metrics({f"{name}.{key}": value for key, value in summary.items()})
    log.info("%s: the constant and the nearest class of %d", args.out, args.classes)


def engine_arguments(p: argparse.ArgumentParser) -> None:
    """The pool and the engine's settings, which `make` and `sheet` share."""
    p.add_argument("--size", type=positive_int, required=True, help="the mosaics' side (pixels)")
    p.add_argument("--pool-images", type=positive_int, required=True, help="pool crops drawn (all where fewer)")
    p.add_argument("--sigma", type=float, required=True, help="pixels: the probability maps' exp(-d²/σ²)")
    p.add_argument("--alpha", type=float, required=True, help="pixels: the blending window's side on the skeleton")
    p.add_argument("--beta", type=float, required=True, help="the window's growth with the distance to it")
    p.add_argument("--seed", type=int, required=True)


def study_arguments(p: argparse.ArgumentParser, out: str) -> None:
    """The options `train` and `references` share."""
    p.add_argument("--mosaics", type=Path, required=True, help="a `make` folder: the poses and views studied")
    p.add_argument("--real", type=Path, required=True, help="prepared samples: the crops the mosaics show")
    p.add_argument("--val", type=Path, required=True, help="prepared samples: the test crops")
    p.add_argument("--size", type=positive_int, required=True, help="the images' side (pixels)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help=out)
    add_tracking_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.mosaic", __doc__)

    p = commands.add_parser("make", help="mosaics for the 3D poses of a split, stitched from a pool of crops")
    p.add_argument("--pool", type=Path, required=True, help="prepared samples or a `pool` folder: the images cut from")
    p.add_argument("--poses", type=Path, required=True, help="prepared samples: the 3D poses shown")
    p.add_argument("--count", type=positive_int, required=True, help="mosaics made")
    p.add_argument(
        "--views",
        choices=["own", "random"],
        required=True,
        help="own: each crop's pose from its view; random: thinned poses, random views",
    )
    p.add_argument("--spacing", type=float, help="metres: random views' poses differ by this at some joint (needed)")
    engine_arguments(p)
    p.add_argument("--blend", action=argparse.BooleanOptionalAction, required=True, help="the pose-aware blend")
    p.add_argument("--out", type=Path, required=True, help="folder: the arrays and sheet.png")
    add_tracking_arguments(p)
    p.set_defaults(func=make)

    p = commands.add_parser("sheet", help="a figure: real crops, their renders and mosaics, the pool crops used")
    p.add_argument("--mosaics", type=Path, required=True, help="a `make` folder of the real crops' views")
    p.add_argument("--unblended", type=Path, required=True, help="the same made with --no-blend")
    p.add_argument("--real", type=Path, required=True, help="prepared samples: the crops the mosaics show")
    p.add_argument("--surreal", type=Path, required=True, help="prepared samples: their clips rendered again")
    p.add_argument("--pool", type=Path, required=True, help="the --pool the mosaics were made from")
    engine_arguments(p)  # as the mosaics were made: the sheet makes them again from the same pool
    p.add_argument("--shown", type=positive_int, default=5, help="poses, a row each")
    p.add_argument("--out", type=Path, required=True, help="the figure (.png)")
    add_tracking_arguments(p)
    p.set_defaults(func=sheet)

    p = commands.add_parser("pool", help="a pool of real 2D-annotated images: LSP, cropped as the renders are")
    p.add_argument("--lsp", type=Path, required=True, help="an unpacked LSP archive (joints.mat, images/)")
    p.add_argument("--size", type=positive_int, required=True, help="the crops' side (pixels)")
    p.add_argument("--out", type=Path, required=True, help="folder: images.npy, joints.npy")
    add_tracking_arguments(p)
    p.set_defaults(func=pool)

    p = commands.add_parser("train", help="the K-way pose classifier or the regression baseline, and its test")
    p.add_argument(
        "--sources", required=True, help="+-joined: real, mosaic, surreal, unblended (pipeline.mosaic.dataset)"
    )
    p.add_argument(
        "--percent", type=positive_int, required=True, help="the share of the mosaics' poses trained on (%%)"
    )
    p.add_argument("--head", required=True, choices=["classification", "regression"])
    p.add_argument("--classes", type=positive_int, required=True, help="K: k-means classes of the training poses")
    p.add_argument("--width", type=float, required=True, help="AlexNet's channels scaled")
    p.add_argument("--iterations", type=positive_int, required=True)
    p.add_argument("--batch-size", type=positive_int, required=True)
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    study_arguments(p, "folder: model.pt, history.csv, images.csv, summary.json")
    p.add_argument("--surreal", type=Path, help="prepared samples: the real crops' clips rendered again")
    p.add_argument("--unblended", type=Path, help="a `make --no-blend` folder of the --mosaics' poses")
    p.add_argument("--random", type=Path, help="a `make --views random` folder")
    p.add_argument("--random-unblended", type=Path, help="a `make --views random --no-blend` folder of its poses")
    p.set_defaults(func=train)

    p = commands.add_parser("references", help="the constant and the nearest class on the test crops")
    p.add_argument("--classes", type=positive_int, required=True, help="K: k-means classes of the mosaics' poses")
    study_arguments(p, "folder: constant/ and oracle/, each images.csv and summary.json")
    p.set_defaults(func=references)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
