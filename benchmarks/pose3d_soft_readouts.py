"""Do the joint volumes hold more than their peaks? A trained 3D-pose network's softmax volumes
read five ways on the test split: the peaks (BodyNet's); each volume's expectation (soft-argmax,
as Sun et al., "Integral Human Pose Regression", 2018, read theirs) over the whole volume and
within ±2 cells of the peak; the config's exemplar readout of the peaks (the training poses
nearest to them); and exemplars chosen by the volumes themselves: the training poses, placed at
the peaks' pelvis, whose joints the volumes find likeliest (each joint's log-probability, floored
so that one joint cannot outvote the others). Then three that take the image plane from the
2D-pose network instead: its heatmaps' peaks, each at the depth bin its joint's volume finds
likeliest in the column under it, as they are and through the exemplars; and two oracles that
bound the exemplar readout: the true 2D joints at the volumes' depth, and the true points
themselves (what the training poses can represent of the test poses at best). MPJPE and
PA-MPJPE (mm) per readout, the crops read as they are and with the mirror test
(`evaluation.mirror_test`).

    python benchmarks/pose3d_soft_readouts.py --model results/bodynet/pose3d/model.pt \\
        --train results/bodynet/samples/train --val results/bodynet/samples/test \\
        [--threads 2] [--out benchmarks/results/pose3d_soft_readouts_cpu.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from pipeline.datasets.surreal import DEPTH_BINS
from pipeline.evaluation.exemplars import ExemplarSettings, PoseExemplars
from pipeline.evaluation.measures import joint_measures
from pipeline.evaluation.network import predict
from pipeline.models.bodynet import BodyNetConfig
from pipeline.models.checkpoint import build_model, load_checkpoint
from pipeline.tracking import git_state
from pipeline.training import metrics
from pipeline.training.metrics import PELVIS
from pipeline.training.samples import SampleSet, make_batch

ROOT = Path(__file__).resolve().parents[1]
LOG_PROBABILITY_FLOOR = -12.0


def expectation(volumes: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """(B, J, Z, s, s) volume logits → (B, J, 3) each joint's expected (x, y, z bin) under its
    softmax, over the whole volume or within `window` cells of its peak."""
    count, joints, bins, size, _ = volumes.shape
    probability = volumes.flatten(2).softmax(-1).view_as(volumes)
    if window is not None:
        peak = metrics.volume_peaks(volumes).round().long()  # (B, J, 3) x, y, z
        grids = [torch.arange(n) for n in (size, size, bins)]
        near = [(grid[None, None, :] - peak[..., axis, None]).abs() <= window for axis, grid in enumerate(grids)]
        probability = probability * (
            near[2][..., :, None, None] & near[1][..., None, :, None] & near[0][..., None, None, :]
        )
    probability = probability / probability.sum(dim=(2, 3, 4), keepdim=True)
    x = (probability.sum(dim=(2, 3)) * torch.arange(size)).sum(-1)
    y = (probability.sum(dim=(2, 4)) * torch.arange(size)).sum(-1)
    z = (probability.sum(dim=(3, 4)) * torch.arange(bins)).sum(-1)
    return torch.stack([x, y, z], dim=-1)


def likeliest_exemplars(volumes: torch.Tensor, library: PoseExemplars, neighbours: int) -> torch.Tensor:
    """(B, J, Z, s, s) volume logits → (B, J, 3): the mean of the `neighbours` library poses,
    placed at the peaks' pelvis, whose joints the volumes find likeliest."""
    count, joints, bins, size, _ = volumes.shape
    log_probability = volumes.flatten(2).log_softmax(-1).view_as(volumes).double()
    pelvis = metrics.volume_peaks(volumes)[:, PELVIS].double()
    joint = torch.arange(joints)[None, :]
    chosen = []
    for k in range(count):
        placed = library.poses + pelvis[k]  # (N, J, 3)
        cell = placed.round().long()
        x, y, z = cell[..., 0].clamp(0, size - 1), cell[..., 1].clamp(0, size - 1), cell[..., 2].clamp(0, bins - 1)
        score = log_probability[k][joint, z, y, x].clamp(min=LOG_PROBABILITY_FLOOR).sum(-1)
        chosen.append(placed[score.topk(neighbours).indices].mean(0))
    return torch.stack(chosen).float()


def depth_at(volumes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, J, Z, s, s) volume logits, (B, J, 2) heatmap points (x, y) → (B, J, 3): each point
    with the depth bin its joint's volume finds likeliest in the column under it."""
    count, joints, bins, size, _ = volumes.shape
    cell = points.round().long().clamp(0, size - 1)
    batch, joint = torch.arange(count)[:, None], torch.arange(joints)[None, :]
    column = volumes[batch, joint, :, cell[..., 1], cell[..., 0]]  # (B, J, Z)
    return torch.cat([points.float(), column.argmax(-1, keepdim=True).float()], dim=-1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a checkpoint holding a trained 3D-pose network")
    parser.add_argument("--train", required=True, type=Path, help="prepared training samples (the exemplars)")
    parser.add_argument("--val", required=True, type=Path, help="prepared test samples")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pose3d_soft_readouts_cpu.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    readout = yaml.safe_load((ROOT / "config.yaml").read_text())["evaluation"]["pose3d_readout"]
    train, test = SampleSet.load(args.train), SampleSet.load(args.val)
    library = PoseExemplars.from_samples(train, ExemplarSettings(readout["neighbours"], readout["truncation"]))
    checkpoint = load_checkpoint(args.model)
    network = build_model(BodyNetConfig.from_dict(checkpoint["config"]), [args.model]).eval()
    focal, principal = float(test.arrays["focal"]), torch.as_tensor(test.arrays["principal"])
    # each readout: (volumes, the 2D network's heatmaps, the batch) → (B, J, 3) volume points
    readouts = {
        "peak": lambda v, h, b: metrics.volume_peaks(v),
        "expectation": lambda v, h, b: expectation(v),
        "expectation within 2 cells of the peak": lambda v, h, b: expectation(v, 2),
        "exemplars of the peaks (the config's)": lambda v, h, b: library(metrics.volume_peaks(v)),
        "likeliest exemplars": lambda v, h, b: likeliest_exemplars(v, library, readout["neighbours"]),
        "the 2D network's peaks at the volumes' depth": lambda v, h, b: depth_at(v, metrics.peaks(h)),
        "exemplars of the 2D network's peaks at the volumes' depth": lambda v, h, b: library(
            depth_at(v, metrics.peaks(h))
        ),
        "oracle: exemplars of the true 2D joints at the volumes' depth": lambda v, h, b: library(
            depth_at(v, b["joints"].float())
        ),
        "oracle: exemplars of the true points (the readout's floor)": lambda v, h, b: library(
            torch.cat([b["joints"].float(), b["bins"].float()[..., None]], -1)
        ),
    }
    result = {}
    with torch.no_grad():
        for mirrored in (False, True):
            errors = {name: [] for name in readouts}
            for start in range(0, len(test), 16):
                batch = make_batch(test, np.arange(start, min(start + 16, len(test))), targets=("volumes",))
                outputs = predict(network, batch, ("pose2d", "pose3d"), mirrored)
                volumes, heatmaps = outputs["pose3d"].float(), outputs["pose2d"].float()
                for name, read in readouts.items():
                    camera = metrics.volume_to_camera(
                        read(volumes, heatmaps, batch), batch, test.sizes.heatmap, DEPTH_BINS, focal, principal
                    )
                    measured = joint_measures(camera, batch["joints_camera"])
                    errors[name].append(np.stack([measured["joint_error_mm"], measured["pa_joint_error_mm"]], 1))
            for name, values in errors.items():
                mpjpe, pa_mpjpe = np.concatenate(values).mean(0)
                label = f"{name}{', mirror test' if mirrored else ''}"
                result[label] = {"mpjpe": round(float(mpjpe), 1), "pa_mpjpe": round(float(pa_mpjpe), 1)}
                print(label, result[label], flush=True)
    commit = git_state()[0][:7]
    document = {
        "commit": commit,
        "model": str(args.model),
        "test_samples": len(test),
        "readouts": result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
