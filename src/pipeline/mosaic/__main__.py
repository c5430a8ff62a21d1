"""Image mosaics (Rogez & Schmid, "Image-based Synthesis for Deep 3D Human Pose Estimation",
IJCV 2018) and the 3D pose classifier trained on them or on rendered crops.

    python -m pipeline.mosaic make --pool results/bodynet/samples/train \\
        --poses results/bodynet/samples/train --count 4000 --size 112 --pool-images 2000 \\
        --sigma 14 --alpha 3.05 --beta 0.25 --blend --seed 0 --out results/mosaic/train
    python -m pipeline.mosaic train --train results/mosaic/train \\
        --val results/bodynet/samples/test --head classification --classes 100 --width 0.25 \\
        --size 112 --iterations 2000 --batch-size 32 --learning-rate 1e-4 --seed 0 \\
        --out results/mosaic/classifier/mosaic_classification

`make` writes a folder of arrays (images.npy, joints3d.npy: torso-centred metres in each
view's camera frame, joints2d.npy, visible.npy, sources.npy: the pose each mosaic shows) and
sheet.png (the first mosaics). `train` takes a mosaic folder or prepared samples (the rendered
crops) as --train, clusters its 3D poses into --classes classes, trains the K-way classifier
or the regression baseline (--head), and measures them on the --val crops: images.csv (per
image: the error in mm, the constant's (the training set's mean pose), the best of the top five
classes' and the lower bound, the nearest class's) and summary.json, with model.pt and
history.csv.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli import command_parser, positive_int, run_command, settings_from
from pipeline.errors import InputError
from pipeline.tracking import add_tracking_arguments, parse_wildcards, stage_run

log = logging.getLogger("pipeline.mosaic")


def make(args: argparse.Namespace) -> None:
    import cv2
    import numpy as np

    from pipeline.atomic import atomic_output
    from pipeline.mosaic.dataset import make_mosaics, pool_of, save
    from pipeline.mosaic.engine import MosaicSettings
    from pipeline.seeding import seeded_generator
    from pipeline.training.samples import SampleSet

    settings = MosaicSettings(sigma=args.sigma, alpha=args.alpha, beta=args.beta, blend=args.blend)
    pool_samples, pose_samples = SampleSet.load(args.pool), SampleSet.load(args.poses)
    params = {"pool": str(args.pool), "poses": str(args.poses), "count": args.count, "size": args.size}
    with stage_run("mosaic_make", params | vars(settings), args.rule, parse_wildcards(args.wildcard)):
        pool = pool_of(pool_samples, args.pool_images, args.size, seeded_generator(args.seed, "mosaic pool"))
        arrays = make_mosaics(pool, pose_samples, args.count, settings, seeded_generator(args.seed, "mosaic poses"))
        with atomic_output(args.out) as tmp:
            save(arrays, tmp)
            sheet = np.concatenate(list(arrays["images"][:8]), axis=1)
            cv2.imwrite(str(tmp / "sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    log.info("%s: %d mosaics of %d pixels from %d pool images", args.out, args.count, args.size, len(pool.images))


def training_set(path: Path, size: int) -> dict:
    """A mosaic folder, or prepared samples (the rendered crops)."""
    from pipeline.mosaic.dataset import load, rendered
    from pipeline.training.samples import SampleSet

    if (path / "images.npy").exists():
        found = load(path)
        if found["images"].shape[1] != size:
            raise InputError(f"{path}: mosaics of {found['images'].shape[1]} pixels, --size is {size}")
        return found
    return rendered(SampleSet.load(path), size)


def train(args: argparse.Namespace) -> None:
    import json

    import numpy as np
    import pandas as pd
    import torch

    from pipeline.atomic import atomic_output
    from pipeline.models.checkpoint import save_checkpoint
    from pipeline.mosaic.classify import ClassifierSettings, measure
    from pipeline.mosaic.classify import train as train_network
    from pipeline.mosaic.dataset import rendered
    from pipeline.training.samples import SampleSet

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = settings_from(ClassifierSettings, args)
    data = training_set(args.train, args.size)
    test = rendered(SampleSet.load(args.val), args.size)
    if settings.classes > len(data["joints3d"]):
        raise InputError(f"--classes {settings.classes}: {args.train} holds {len(data['joints3d'])} poses")
    params = {"train": str(args.train), "val": str(args.val), "size": args.size} | vars(settings)
    with stage_run("mosaic_train", params, args.rule, parse_wildcards(args.wildcard)) as run:
        model, classes, history = train_network(data["images"], data["joints3d"], settings)
        mean_pose = data["joints3d"].mean(0)
        measures = measure(model, classes, settings.head, test["images"], test["joints3d"], mean_pose)
        summary = {name: float(np.mean(values)) for name, values in measures.items()}
        with atomic_output(args.out) as tmp:
            tmp.mkdir(parents=True)
            payload = {"state": model.state_dict(), "settings": vars(settings), "centres": classes.centres}
            save_checkpoint(tmp / "model.pt", payload)
            pd.DataFrame(history).to_csv(tmp / "history.csv", index=False, float_format="%.6g")
            pd.DataFrame(measures).to_csv(tmp / "images.csv", index_label="image", float_format="%.6g")
            record = {"train": str(args.train), "train_images": len(data["images"]), "measures": summary}
            (tmp / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
        run.log_metrics(summary)
    log.info("%s: %s", args.out, ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))


def build_parser() -> argparse.ArgumentParser:
    """The entry point's parser: its commands and their options."""
    parser, commands = command_parser("python -m pipeline.mosaic", __doc__)

    p = commands.add_parser("make", help="mosaics for the 3D poses of a split, stitched from a pool of crops")
    p.add_argument("--pool", type=Path, required=True, help="prepared samples: the images and 2D joints cut from")
    p.add_argument("--poses", type=Path, required=True, help="prepared samples: the 3D poses shown")
    p.add_argument("--count", type=positive_int, required=True, help="mosaics made")
    p.add_argument("--size", type=positive_int, required=True, help="their side (pixels)")
    p.add_argument("--pool-images", type=positive_int, required=True, help="pool crops drawn (all where fewer)")
    p.add_argument("--sigma", type=float, required=True, help="pixels: the probability maps' exp(-d²/σ²)")
    p.add_argument("--alpha", type=float, required=True, help="pixels: the blending window's side on the skeleton")
    p.add_argument("--beta", type=float, required=True, help="the window's growth with the distance to it")
    p.add_argument("--blend", action=argparse.BooleanOptionalAction, required=True, help="the pose-aware blend")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="folder: the arrays and sheet.png")
    add_tracking_arguments(p)
    p.set_defaults(func=make)

    p = commands.add_parser("train", help="the K-way pose classifier or the regression baseline, and its test")
    p.add_argument("--train", type=Path, required=True, help="a `make` folder, or prepared samples (rendered crops)")
    p.add_argument("--val", type=Path, required=True, help="prepared samples: the test crops")
    p.add_argument("--head", required=True, choices=["classification", "regression"])
    p.add_argument("--classes", type=positive_int, required=True, help="K: k-means classes of the training poses")
    p.add_argument("--width", type=float, required=True, help="AlexNet's channels scaled")
    p.add_argument("--size", type=positive_int, required=True, help="the images' side (pixels)")
    p.add_argument("--iterations", type=positive_int, required=True)
    p.add_argument("--batch-size", type=positive_int, required=True)
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--out", type=Path, required=True, help="folder: model.pt, history.csv, images.csv, summary.json")
    add_tracking_arguments(p)
    p.set_defaults(func=train)
    return parser


def main(argv: list[str] | None = None) -> None:
    run_command(build_parser(), argv)


if __name__ == "__main__":
    main()
