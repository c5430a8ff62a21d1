"""BodyNet speed: training samples per second and inference milliseconds per image of each
network, at the default scale (config.yaml) and the paper's (workflow/configs/paper.yaml).

    python benchmarks/training.py [--scales default paper] [--device auto] [--steps 5]
                                  [--out benchmarks/results/training_<cpu|cuda>.json]

Inputs are random crops of the configured size (speed does not depend on the pixels).
"Network" means what it takes to produce that output from an image: the 3D-pose timing
includes the 2D networks it feeds on, the voxel timing all four. Training steps update
the networks its stage trains (the earlier ones frozen but run), with the configured batch;
`end_to_end` trains all four with the FV+SV loss. On CUDA the steps run in mixed precision
as the training does, and GPU utilisation is sampled with nvidia-smi while training.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import threading
import time
from pathlib import Path

import torch
import yaml

from pipeline.models.bodynet import BodyNet, BodyNetConfig
from pipeline.training import losses
from pipeline.training.loop import set_trainable, mixed_precision, pick_device
from pipeline.training.stages import stage

ROOT = Path(__file__).resolve().parents[1]
SCALES = {"default": [ROOT / "config.yaml"], "paper": [ROOT / "config.yaml", ROOT / "workflow/configs/paper.yaml"]}
NETWORKS = ("pose2d", "segm", "pose3d", "voxels", "end_to_end_fvsv")


def bodynet_settings(files: list[Path]) -> dict:
    settings: dict = {}
    for file in files:
        settings.update(yaml.safe_load(file.read_text())["bodynet"])
    return settings


def random_batch(config: BodyNetConfig, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    s, d = config.heatmap_size, config.voxel_size
    generator = torch.Generator().manual_seed(0)
    batch = {
        "rgb": torch.rand(size, 3, config.input_size, config.input_size, generator=generator),
        "heatmaps": torch.rand(size, 16, s, s, generator=generator),
        "parts": torch.randint(0, 15, (size, s, s), generator=generator),
        "volumes": torch.rand(size, 16, 19, s, s, generator=generator),
        "voxels": (torch.rand(size, d, d, d, generator=generator) > 0.7).float(),
        "silhouette_front": (torch.rand(size, d, d, generator=generator) > 0.7).float(),
        "silhouette_side": (torch.rand(size, d, d, generator=generator) > 0.7).float(),
    }
    return {k: v.to(device) for k, v in batch.items()}


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Utilisation:
    """GPU utilisation (%) sampled with nvidia-smi in a thread while the block runs."""

    def __init__(self, device: torch.device) -> None:
        self.active = device.type == "cuda"
        self.samples: list[float] = []

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5).stdout  # fmt: skip
                self.samples.append(float(out.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                return
            self._stop.wait(0.2)

    def __enter__(self) -> "Utilisation":
        if self.active:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            self._stop.set()
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def training_speed(model: BodyNet, name: str, batch_size: int, steps: int, device: torch.device) -> dict:
    current = stage(name)
    parameters = set_trainable(model, current)
    optimiser = torch.optim.RMSprop(parameters, lr=1e-3)
    amp, dtype = mixed_precision(device)
    scaler = torch.amp.GradScaler(enabled=amp and dtype == torch.float16)
    batch = random_batch(model.config, batch_size, device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            outputs = model(batch["rgb"], current.wanted)
        terms = losses.terms(outputs, batch, list(current.weights))
        loss = sum(current.weights[k] * v for k, v in terms.items())
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()

    for _ in range(2):
        step()
    synchronise(device)
    with Utilisation(device) as utilisation:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronise(device)
        seconds = time.perf_counter() - start
    return {"batch_size": batch_size, "seconds_per_step": seconds / steps,
            "samples_per_second": batch_size * steps / seconds, "gpu_utilisation_percent": utilisation.mean}  # fmt: skip


@torch.no_grad()
def inference_speed(model: BodyNet, name: str, batch_size: int, repeats: int, device: torch.device) -> dict:
    model.eval()
    wanted = ("voxels",) if name == "end_to_end_fvsv" else (name,)
    rgb = torch.rand(batch_size, 3, model.config.input_size, model.config.input_size, device=device)
    amp, dtype = mixed_precision(device)
    with torch.autocast(device.type, dtype=dtype, enabled=amp):
        model(rgb, wanted)
        synchronise(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model(rgb, wanted)
        synchronise(device)
    return {"batch_size": batch_size, "ms_per_image": 1000 * (time.perf_counter() - start) / (repeats * batch_size)}


def bench_scale(scale: str, device: torch.device, steps: int) -> dict:
    settings = bodynet_settings(SCALES[scale])
    config = BodyNetConfig(settings["input_size"], settings["heatmap_size"], settings["voxel_size"],
                           hourglass=settings["hourglass"])  # fmt: skip
    torch.manual_seed(0)
    model = BodyNet(config).to(device)
    result = {"model": config.as_dict(), "networks": {}}
    for name in NETWORKS:
        batch = settings["end_to_end_batch_size" if name.startswith("end_to_end") else "batch_size"]
        row = {"train": training_speed(model, name, batch, steps, device)}
        if name != "end_to_end_fvsv":
            repeats = max(2, steps)
            row["inference_batch_1"] = inference_speed(model, name, 1, repeats, device)
            row["inference_batch_16"] = inference_speed(model, name, 16, max(1, repeats // 2), device)
        result["networks"][name] = row
        print(scale, name, json.dumps(row), flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", nargs="+", choices=list(SCALES), default=list(SCALES))
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per network")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/training_<cpu|cuda>.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    machine = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
               "threads": torch.get_num_threads(), "torch": torch.__version__}  # fmt: skip
    results = {"machine": machine, "scales": {scale: bench_scale(scale, device, args.steps) for scale in args.scales}}
    out = args.out or ROOT / f"benchmarks/results/training_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
