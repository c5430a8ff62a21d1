"""Where should the realtime stream start looking for the person in a video's first frame?
On each test clip's first frame, the box `pipeline.realtime.stream.first_box` finds (its passes
started from the whole frame) against the same passes started from the search window the
network is surest of (`pipeline.datasets.surreal.search_boxes`, the mean of its joints'
confidences: how `pipeline.predict` picks BodyNet's crop), and the passes run from every window,
the box the network is surest of after them kept; each box's IoU with the truth's box
(BodyNet's crop of the true 2D joints) and how many reach IoU 0.5.

    python benchmarks/first_box.py --model results/realtime/vnect/model.pt \\
        --root results/surreal --split test [--threads 2] [--out benchmarks/results/first_box_cpu.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.clips import Clip, find_clips
from pipeline.datasets.surreal import search_boxes
from pipeline.realtime.__main__ import load_network
from pipeline.realtime.stream import first_box, joints_box, read_frame
from pipeline.tracking import git_state

ROOT = Path(__file__).resolve().parents[1]


def certainty(model, image: np.ndarray, box, size: int) -> float:
    """The mean of the network's joint confidences on the square crop of `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    centre, side = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(x1 - x0, y1 - y0)
    return float(read_frame(model, image, centre, side, size)[2].mean())


def from_search(model, image: np.ndarray, size: int) -> np.ndarray:
    """The first box's passes started from the search window whose crop the network is surest of."""
    best = max(search_boxes(*image.shape[:2]), key=lambda window: certainty(model, image, window, size))
    return first_box(model, image, size, start=np.array(best))


def after_passes(model, image: np.ndarray, size: int) -> np.ndarray:
    """The passes run from every search window, and the box the network is surest of after them."""
    settled = [first_box(model, image, size, start=np.array(window)) for window in search_boxes(*image.shape[:2])]
    return max(settled, key=lambda box: certainty(model, image, box, size))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a trained VNect (pipeline.realtime train)")
    parser.add_argument("--root", required=True, type=Path, help="the rendered clips' root")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/first_box_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, _, size = load_network(args.model)
    model.eval()
    overlaps = {"whole_frame": [], "search": [], "search_after_passes": []}
    with torch.no_grad():
        for info in tqdm(find_clips(args.root, args.split), desc="clips"):
            clip = Clip(info)
            image, truth = clip.rgb(0), joints_box(clip.info.joints2d[0])
            overlaps["whole_frame"].append(iou(first_box(model, image, size), truth))
            overlaps["search"].append(iou(from_search(model, image, size), truth))
            overlaps["search_after_passes"].append(iou(after_passes(model, image, size), truth))
    commit = git_state()[0][:7]
    result = {"commit": commit, "model": str(args.model), "clips": len(overlaps["search"])}
    for start, values in overlaps.items():
        values = np.array(values)
        result[start] = {"mean_iou": round(float(values.mean()), 3), "iou_at_least_half": int((values >= 0.5).sum())}
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
