"""Body-model fitting: seconds per image and surface error of each evaluation method, fed
with perfect network outputs (the test images' true voxels, segmentation, 2D and 3D
joints, shape), so that what is measured is the fit alone.

    python benchmarks/fitting.py [--samples results/bodynet/samples/test] [--images 32]
        [--body-model female=resources/body_models/anny/smpl_female.pkl ...]
        [--threads 1 2] [--out benchmarks/results/fitting_cpu.json]

For each method and thread count: the default settings (config.yaml's `evaluation.fit`) at
batch 8 and at batch 1 (the ratio is what batching buys), and the paper-scale settings
(workflow/configs/paper.yaml) at batch 8 (the ratio is what they cost). Needs the prepared
test samples and the body models: `snakemake --cores 2 results/bodynet/samples/test`.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from pipeline.body_model.model import BodyModel
from pipeline.evaluation.network import BodyFitter, fit_batch
from pipeline.fitting.body_fit import FitSettings
from pipeline.fitting.options import section_fit_settings
from pipeline.training.samples import SampleSet, make_batch

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("voxels", "smplify", "shape_regression")


def fit_settings(files: list[Path]) -> FitSettings:
    fit: dict = {}
    for file in files:
        fit.update(yaml.safe_load(file.read_text()).get("evaluation", {}).get("fit", {}))
    return section_fit_settings(fit)


def oracle_outputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What a perfect BodyNet would predict for a batch: logits and maps from the truth."""
    segm = torch.nn.functional.one_hot(batch["parts"], 15).permute(0, 3, 1, 2).float() * 20 - 10
    return {"voxels": batch["voxels"] * 20 - 10, "segm": segm, "pose2d": batch["heatmaps"], "shape": batch["betas"]}


def measure(method: str, samples: SampleSet, models: dict, settings: FitSettings, batch_size: int, images: int) -> dict:
    fitter = BodyFitter(method, samples, settings)
    surface, elapsed = [], 0.0
    for start in range(0, images, batch_size):
        indices = np.arange(start, min(start + batch_size, images))
        batch = make_batch(samples, indices)
        joints = batch["joints_camera"].float()
        measures: dict = {}
        began = time.perf_counter()
        fit_batch(fitter, models, indices, oracle_outputs(batch), joints, samples, measures)
        elapsed += time.perf_counter() - began
        surface.append(measures["surface_error_mm"])
    return {"seconds_per_image": elapsed / images, "surface_error_mm": float(np.concatenate(surface).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=ROOT / "results/bodynet/samples/test")
    parser.add_argument(
        "--body-model",
        action="append",
        metavar="GENDER=PATH",
        default=[f"{g}={ROOT}/resources/body_models/anny/smpl_{g}.pkl" for g in ("female", "male")],
    )
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fitting_cpu.json")
    args = parser.parse_args()

    samples = SampleSet.load(args.samples)
    models = {
        item.split("=")[0]: copy.deepcopy(BodyModel.from_file(item.split("=", 1)[1])).float()
        for item in args.body_model
    }
    images = min(args.images, len(samples))
    default = fit_settings([ROOT / "config.yaml"])
    paper = fit_settings([ROOT / "config.yaml", ROOT / "workflow/configs/paper.yaml"])
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for method in METHODS:
            batched = measure(method, samples, models, default, 8, images)
            single = measure(method, samples, models, default, 1, images)
            large = measure(method, samples, models, paper, 8, images)
            row = {
                "method": method,
                "threads": threads,
                "default_batch8": batched,
                "default_batch1": single,
                "paper_settings_batch8": large,
                "batching_speedup": single["seconds_per_image"] / batched["seconds_per_image"],
                "paper_settings_cost": large["seconds_per_image"] / batched["seconds_per_image"],
            }
            results.append(row)
            print(
                f"{method:17s} {threads} thread(s): {batched['seconds_per_image']:.3f} s/image at batch 8 "
                f"({row['batching_speedup']:.2f}× batch 1), {batched['surface_error_mm']:.1f} mm; paper settings "
                f"{large['seconds_per_image']:.3f} s ({row['paper_settings_cost']:.1f}×), "
                f"{large['surface_error_mm']:.1f} mm"
            )
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "images": images,
        "resolution": samples.sizes.voxels,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
