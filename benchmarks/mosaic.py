"""How fast does the mosaic engine (Rogez & Schmid's image-based synthesis, `pipeline.mosaic`)
make training images, and what do they look like? The pool is a prepared split's crops and 2D
joints (the stand-in for MPII/LSP), the query poses another split's 3D joints seen from random
views; mosaics per second on one core, with the pose-aware blend and without, and a figure:
test crops beside the mosaic of their own pose and view and its index map, then mosaics of
random views.

    python benchmarks/mosaic.py --pool results/bodynet/samples/train \\
        --queries results/bodynet/samples/test [--pool-size 2000] [--size 112] [--count 40] \\
        [--out benchmarks/results/mosaic_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.mosaic.dataset import pool_of
from pipeline.mosaic.engine import MosaicSettings, Pool, synthesise
from pipeline.mosaic.views import query_pose, view_of
from pipeline.training.samples import SampleSet

ROOT = Path(__file__).resolve().parents[1]
PAPER_SIZE = 220  # the paper's α = 6 px and β = 0.25 are at this side


def timed(queries, pool: Pool, settings: MosaicSettings) -> tuple[float, list]:
    """Mosaics per second over `queries`, and the mosaics."""
    start = time.perf_counter()
    mosaics = [synthesise(q.pixels, q.visible, pool, settings) for q in queries]
    return len(queries) / (time.perf_counter() - start), mosaics


def index_image(index: np.ndarray) -> np.ndarray:
    import matplotlib

    colours = (matplotlib.colormaps["tab20"](np.arange(20))[:, :3] * 255).astype(np.uint8)
    return colours[index % 20]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", type=Path, default=ROOT / "results/bodynet/samples/train")
    parser.add_argument("--queries", type=Path, default=ROOT / "results/bodynet/samples/test")
    parser.add_argument("--pool-size", type=int, default=2000)
    parser.add_argument("--size", type=int, default=112, help="the mosaics' side (pixels)")
    parser.add_argument("--count", type=int, default=40, help="mosaics timed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/mosaic_cpu.json")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(args.seed)
    pool = pool_of(SampleSet.load(args.pool), args.pool_size, args.size, rng)
    targets = SampleSet.load(args.queries)
    joints = np.asarray(targets.arrays["joints_camera"], np.float64)
    picked = rng.choice(len(joints), args.count, replace=len(joints) < args.count)
    queries = [query_pose(joints[k], rng, args.size) for k in picked]
    scale = args.size / PAPER_SIZE
    settings = MosaicSettings(sigma=args.size / 8, alpha=6 * scale, beta=0.25, blend=True)
    synthesise(queries[0].pixels, queries[0].visible, pool, settings)  # warm up
    rate, mosaics = timed(queries, pool, settings)
    unblended, _ = timed(queries, pool, MosaicSettings(settings.sigma, settings.alpha, settings.beta, False))

    # the figure: test crops, the mosaic of their own pose and view, its index map; random views
    own = []
    for k in range(6):
        view = view_of(joints[k], 0.0, 0.0, args.size)
        crop = cv2.resize(np.asarray(targets.arrays["rgb"][k]), (args.size, args.size), interpolation=cv2.INTER_AREA)
        mosaic = synthesise(view.pixels, view.visible, pool, settings)
        own.append(np.concatenate([crop, mosaic.image, index_image(mosaic.index)], axis=0))
    sheet = np.concatenate(
        [np.concatenate(own, axis=1), np.concatenate([m.image for m in mosaics[:6]], axis=1)], axis=0
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out.with_suffix(".png")), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    result = {
        "commit": commit.stdout.strip(),
        "size": args.size,
        "pool_images": len(pool.images),
        "mosaics": args.count,
        "threads": 1,
        "mosaics_per_second": round(rate, 1),
        "mosaics_per_second_unblended": round(unblended, 1),
        "visible_joints_mean": float(np.mean([q.visible.sum() for q in queries])),
        "settings": {"sigma": settings.sigma, "alpha": settings.alpha, "beta": settings.beta},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
