"""The predict command's speed: images per second end to end, and the seconds each part takes
per image (finding the person, the networks, the fit, writing the outputs), on copies of a
real photograph (scikit-image's astronaut), at batch 1 and batch 8.

    python benchmarks/predict.py --model results/bodynet/end_to_end_fvsv/model.pt \\
        --body-model resources/body_models/anny/smpl_neutral.pkl \\
        [--pose-prior results/fitting/pose_prior.npz] [--images 16] [--threads 2] \\
        [--out benchmarks/results/predict_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

from pipeline.body_model.model import BodyModel
from pipeline.fitting.body_fit import FitSettings, PosePrior
from pipeline.fitting.options import project_fit_section, section_fit_settings
from pipeline.models.bodynet import BodyNetConfig
from pipeline.models.checkpoint import build_model, load_checkpoint
from pipeline.predict.body import REFINEMENTS, crop, find_person, predict_bodies, run_networks
from pipeline.predict.write import write_prediction


def measure(network, model, images: list[np.ndarray], settings: FitSettings, batch: int) -> dict:
    count = len(images)
    start = time.perf_counter()
    boxes = [find_person(network, image)[0] for image in images]
    detection = time.perf_counter() - start
    size = network.config.input_size
    crops = np.stack([crop(image, box, size)[0] for image, box in zip(images, boxes)])
    start = time.perf_counter()
    for first in range(0, count, batch):
        run_networks(network, crops[first : first + batch])
    networks = (time.perf_counter() - start) * (1 + len(REFINEMENTS))  # a first look, then each refinement
    start = time.perf_counter()
    predictions = []
    for first in range(0, count, batch):
        chunk = slice(first, first + batch)
        predictions += predict_bodies(
            network, model, images[chunk], boxes[chunk], [None] * len(images[chunk]), settings
        )
    predicted = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for k, (image, prediction) in enumerate(zip(images, predictions)):
            write_prediction(Path(folder), f"image{k}", image, prediction, model, "body model")
        writing = time.perf_counter() - start
    total = detection + predicted + writing
    return {
        "batch": batch,
        "images": count,
        "images_per_second": count / total,
        "seconds_per_image": {
            "finding the person (detector boxes and search windows, read by the 2D-pose network)": detection / count,
            "networks (a first look and each refinement of the crop)": networks / count,
            "fit (with the networks' time taken out)": max(predicted - networks, 0.0) / count,
            "writing (JSON, meshes, parts, the rendered overlay)": writing / count,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--body-model", required=True, type=Path)
    parser.add_argument("--pose-prior", type=Path)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/predict_cpu.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.model)
    network = build_model(BodyNetConfig(**checkpoint["config"]), [args.model]).eval()
    model = BodyModel.from_file(args.body_model).float()
    settings = section_fit_settings(
        project_fit_section([]), learnt_prior=PosePrior.load(args.pose_prior) if args.pose_prior else None
    )
    images = [data.astronaut()] * args.images
    results = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "model": str(args.model),
        "input_size": network.config.input_size,
        "runs": [measure(network, model, images, settings, batch) for batch in (1, 8)],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
