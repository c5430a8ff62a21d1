"""Optical flow: frames per second of each method at 320×240 on this machine, with its
end-point error on the body against the rendered flow, and the speed ratio to Farnebäck
(LTC's method) measured in the same run.

    python benchmarks/flow.py [--root results/surreal] [--split test] [--clips 4]
        [--threads 1] [--out benchmarks/results/flow_cpu.json]

Needs rendered clips (`snakemake --cores 2 results/surreal/test_run0.csv`). The default
method is the best error on the body at ≥ 30 frames/s.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from pipeline.clips import Clip, find_clips
from pipeline.flow import score
from pipeline.flow.methods import METHODS, estimator

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT / "results/surreal")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads")
    parser.add_argument("--min-fps", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/flow_cpu.json")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    clips = [Clip(p) for p in find_clips(args.root, args.split)[: args.clips]]
    videos = [clip.video() for clip in clips]
    truths = [np.stack([c.forward_flow(t) for t in range(len(v) - 1)]) for c, v in zip(clips, videos)]
    bodies = [np.stack([c.segm(t) > 0 for t in range(len(v) - 1)]) for c, v in zip(clips, videos)]
    results = {}
    for method in METHODS:
        flow_function = estimator(method)
        flow_function(videos[0][0], videos[0][1])  # warm-up
        sums, seconds, pairs = [], 0.0, 0
        for video, truth, body in zip(videos, truths, bodies):
            began = time.perf_counter()
            flow = np.stack([flow_function(video[t], video[t + 1]) for t in range(len(video) - 1)])
            seconds += time.perf_counter() - began
            pairs += len(flow)
            sums.append(score.flow_error_sums(flow, truth, body))
        results[method] = {"frames_per_second": pairs / seconds, **score.summarise(sums)}
    reference = results["farneback"]["frames_per_second"]
    for method, row in results.items():
        row["speed_vs_farneback"] = row["frames_per_second"] / reference
        print(
            f"{method:14s} {row['frames_per_second']:8.1f} frames/s ({row['speed_vs_farneback']:6.2f}× Farnebäck), "
            f"EPE {row['epe']:.3f} px, on the body {row['epe_body']:.3f} px, outliers on the body "
            f"{100 * row['outlier_rate_body']:.1f} %"
        )
    fast = {m: r for m, r in results.items() if r["frames_per_second"] >= args.min_fps}
    default = min(fast, key=lambda m: fast[m]["epe_body"]) if fast else None
    print(f"best error on the body at ≥ {args.min_fps:g} frames/s: {default}")
    height, width = videos[0].shape[1:3]
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "opencv": cv2.__version__,
        "threads": args.threads,
        "size": [width, height],
        "clips": len(clips),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "default": default, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
