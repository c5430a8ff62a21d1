"""VNect in real time on this machine: frames per second end to end (Mehta's thesis §5.3 in kind).

    python benchmarks/realtime.py [--model results/realtime/vnect/model.pt] [--video CLIP.mp4]
        [--frames 100] [--threads 2] [--repeats 20] [--passes 5] [--device cpu]
        [--out benchmarks/results/realtime_cpu.json]

Two measurements, each precision in the same run:
  network   batch 1 at the checkpoint's crop side (128 at the default config): the network as
            trained, with its BatchNorms folded into the convolutions, and the thesis' size of
            it (SelecSLS-60 at full width, folded; random weights), float32 and bfloat16
            autocast (where the CPU computes it natively, or on CUDA), each the median of
            `repeats`; ratios to the unfolded float32 network.
  stream    `pipeline.realtime.stream.PoseStream` over the video's first `frames` frames,
            BatchNorm folded: crop, network, read-out and box tracker (network_ms), then the
            1 Euro filters and the kinematic fit (fit_ms); frames/s is 1000 over their sum.
            Decoding the video is left out (it is the camera's work in a live system), and the
            first frame's box is the truth's where the video is a rendered clip, else found;
            the median of `passes` passes over the frames.

The thesis reports about 33 frames/s for the whole system on a GPU (a Titan X), its CNN
alone at 100 Hz; the aim here is 30 frames/s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.models.folding import fold_batchnorm
from pipeline.realtime.__main__ import load_network
from pipeline.realtime.stream import PoseStream
from pipeline.realtime.track import open_video
from pipeline.realtime.train import VNectSettings, build_network
from pipeline.sparsity.cost import latencies_ms
from pipeline.training.loop import cpu_has_bf16, pick_device

ROOT = Path(__file__).resolve().parents[1]
THESIS = {"system_fps_gpu": 33.0, "cnn_fps_gpu": 100.0}
# the thesis' own network: SelecSLS-60 at its full width, 128 features in the head
THESIS_SIZE = {"head": "location_maps", "depth": "60", "width": 1.0, "features": 128}
FILLER = dict.fromkeys(
    (
        "iterations",
        "batch_size",
        "learning_rate",
        "lr_drop",
        "intermediate_weight",
        "scale",
        "eval_every",
        "eval_samples",
        "seed",
    )
)  # training's settings, which building the network does not read


def precisions(device: torch.device) -> dict[str, torch.dtype | None]:
    found = {"fp32": None}
    if device.type == "cuda" or cpu_has_bf16():
        found["bf16"] = torch.bfloat16
    return found


def network_times(model, size: int, device: torch.device, repeats: int) -> dict:
    thesis = build_network(
        VNectSettings(**{**THESIS_SIZE, **FILLER}), size
    )  # random weights: latency does not depend on them
    networks = {
        "as_trained": model.to(device).eval(),
        "folded": fold_batchnorm(model).to(device),
        "thesis_size_folded": fold_batchnorm(thesis).to(device),
    }
    crop = (torch.rand(1, 3, size, size, device=device),)
    result, reference = {}, None
    for precision, dtype in precisions(device).items():
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            times = latencies_ms(list(networks.values()), crop, repeats=repeats)
        reference = reference or times[0]
        for name, ms in zip(networks, times):
            result[f"{name}_{precision}"] = {"ms": round(ms, 2), "ratio_to_as_trained_fp32": round(ms / reference, 3)}
    return result


def first_box(video: Path) -> np.ndarray | None:
    """The truth's first box where `video` is a rendered clip beside its annotations, else None."""
    from pipeline.clips import Clip
    from pipeline.realtime.stream import joints_box

    info = video.with_name(video.stem + "_info.mat")
    return joints_box(Clip(info).info.joints2d[0]) if info.is_file() else None


def stream_times(model, size: int, video: Path, count: int, device: torch.device, passes: int) -> dict:
    rate, frames = open_video(video, count)
    frames = list(frames)
    height, width = frames[0].shape[:2]
    principal = np.array([(width - 1) / 2, (height - 1) / 2])
    result = {}
    for precision, dtype in precisions(device).items():
        runs = []
        for _ in range(passes):  # a fresh stream each pass; the median pass by its wall time
            stream = PoseStream(model.to(device), size, float(max(height, width)), principal, rate, dtype)
            stream.start(frames[0], first_box(video))
            began = time.perf_counter()
            poses = [pose for frame in frames for pose in stream.push(frame)] + stream.finish()
            runs.append((time.perf_counter() - began, poses))
        wall, poses = sorted(runs, key=lambda run: run[0])[passes // 2]
        network = float(np.mean([p.network_ms for p in poses]))
        fit = float(np.mean([p.fit_ms for p in poses]))
        result[precision] = {
            "frames": len(poses),
            "passes": passes,
            "network_ms": round(network, 2),
            "fit_ms": round(fit, 2),
            "frames_per_second": round(1e3 / (network + fit), 1),
            "wall_frames_per_second": round(len(poses) / wall, 1),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "results/realtime/vnect/model.pt")
    parser.add_argument("--video", type=Path, help="default: the first rendered test clip under results/surreal")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--passes", type=int, default=5, help="passes over the video, each precision")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/realtime_cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    video = args.video or sorted((ROOT / "results/surreal/cmu/test").rglob("*.mp4"))[0]
    model, settings, size = load_network(args.model)
    record = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "threads": args.threads,
            "device": str(device),
        },
        "torch": torch.__version__,
        "model": {"path": str(args.model), "depth": settings.depth, "width": settings.width, "crop": size},
        "video": str(video),
        "network": network_times(model, size, device, args.repeats),
        "stream": stream_times(model, size, video, args.frames, device, args.passes),
        "thesis": THESIS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
