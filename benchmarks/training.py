"""BodyNet's training step, measured: samples per second, achieved GFLOP/s against this
machine's own peak, bytes moved, the time spent outside the network, and inference speed.

    python benchmarks/training.py [--scales before default paper] [--threads 1 2]
                                  [--modes fp32 bf16 ...] [--steps 8] [--device auto]
                                  [--out benchmarks/results/training_<cpu|cuda>.json]

Scales: `before` is the default scale this project had before its training step was
measured (64-pixel crops, 1 × 32 hourglass, batch 6), kept as the reference the others are
compared with; `default` is config.yaml; `paper` adds workflow/configs/paper.yaml.

Modes, each a forward + backward + RMSprop step on random inputs of the scale's sizes
(speed does not depend on the pixels): `fp32`; `bf16` (autocast to bfloat16); `fp32_cl` and
`bf16_cl` (channels-last activations); `bf16_cl_flush` (denormals flushed to zero, too);
`bf16_cl_compile` (the same through `torch.compile`, its compile time reported apart).
"Network" means what its stage runs: the 3D-pose step includes the frozen 2D networks it
feeds on, the voxel step all three, `end_to_end_fvsv` trains all four (batch of the
end-to-end stages).

For each step the FLOPs are counted (torch's FLOP counter: convolutions and matrix
products, forward and backward) and the bytes every operator reads and writes are summed (an
upper bound of the memory traffic, no cache reuse assumed): FLOP per byte well under the
machine's ratio of peak FLOP/s to memory bandwidth (tens on a CPU) means a memory-bound
step. The peak is a large matrix product in float32 and in bfloat16 on the same threads, in
the same run. `data` times the batches the loop makes (crops, jitter, flips, turns,
heatmaps, volumes, voxels) on samples of the scale's sizes, as a share of the step.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from pipeline.datasets.surreal import SampleSizes
from pipeline.models.bodynet import BEFORE_CHOICES, BodyNet, BodyNetConfig
from pipeline.training import losses
from pipeline.training.loop import autocast_dtype, cpu_has_bf16, network_config, pick_device, set_trainable
from pipeline.training.samples import SampleSet, make_batch
from pipeline.training.stages import stage

ROOT = Path(__file__).resolve().parents[1]
BEFORE = {
    "input_size": 64,
    "heatmap_size": 16,
    "voxel_size": 32,
    "batch_size": 6,
    "end_to_end_batch_size": 4,
    "hourglass": {"stacks": 1, "features": 32, "modules": 1, "depth": 4},
    **BEFORE_CHOICES,
}
NETWORKS = ("pose2d", "segm", "pose3d", "voxels", "end_to_end_fvsv")
MODES = {  # name: (autocast to bfloat16, channels last, flush denormals, compile)
    "fp32": (False, False, False, False),
    "bf16": (True, False, False, False),
    "fp32_cl": (False, True, False, False),
    "bf16_cl": (True, True, False, False),
    "bf16_cl_flush": (True, True, True, False),
    "bf16_cl_compile": (True, True, False, True),
}


def scale_settings(scale: str) -> dict:
    if scale == "before":
        return BEFORE
    settings = yaml.safe_load((ROOT / "config.yaml").read_text())["bodynet"]
    if scale == "paper":
        settings.update(yaml.safe_load((ROOT / "workflow/configs/paper.yaml").read_text())["bodynet"])
    return settings


def synthetic_samples(config: BodyNetConfig, count: int = 64) -> SampleSet:
    """Prepared samples of the model's sizes with random content (what make_batch reads)."""
    rng = np.random.default_rng(0)
    s, d, size = config.heatmap_size, config.voxel_size, config.input_size
    arrays = {
        "rgb": rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8),
        "parts": rng.integers(0, 15, (count, s, s), dtype=np.uint8),
        "joints": rng.uniform(0, s - 1, (count, 16, 2)).astype(np.float32),
        "bins": rng.integers(0, 19, (count, 16), dtype=np.int8),
        "voxels": rng.integers(0, 256, (count, d, d, (d + 7) // 8), dtype=np.uint8),
        "silhouette": rng.integers(0, 2, (count, d, d), dtype=np.uint8),
        "joints_camera": rng.normal(size=(count, 16, 3)).astype(np.float32),
        "root_depth": np.full(count, 8.0, np.float32),
        "crop_centre": np.full((count, 2), 160.0, np.float32),
        "crop_side": np.full(count, 150.0, np.float32),
        "shape": rng.normal(size=(count, 10)).astype(np.float32),
        "sizes": np.array([size, s, d]),
        "focal": np.float32(600.0),
        "principal": np.array([160.0, 120.0], np.float32),
    }
    return SampleSet(arrays)


class ByteCounter(TorchDispatchMode):
    """Sums the bytes of every tensor each operator reads and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
        self.bytes += sum(t.numel() * t.element_size() for t in tensors)
        return out


def peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 6) -> float:
    """GFLOP/s of a large square matrix product on the current threads."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def make_step(model: BodyNet, name: str, batch: dict, device: torch.device, mode: str):
    bf16, channels_last, _, compiled = MODES[mode]
    current = stage(name)
    parameters = set_trainable(model, current)
    optimiser = torch.optim.RMSprop(parameters, lr=1e-3)
    dtype = autocast_dtype(device, "bf16") if bf16 else None
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    rgb = batch["rgb"].to(device, memory_format=layout)
    forward = torch.compile(model) if compiled else model
    scaler = torch.amp.GradScaler(enabled=dtype == torch.float16)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            outputs = forward(rgb, current.wanted)
        terms = losses.terms(outputs, batch, list(current.weights))
        loss = sum(current.weights[k] * v for k, v in terms.items())
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()

    return step


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_step(
    model: BodyNet, name: str, batch: dict, device: torch.device, mode: str, steps: int, peaks: dict[str, float]
) -> dict:
    flush = MODES[mode][2]
    torch.set_flush_denormal(flush)
    step = make_step(model, name, batch, device, mode)
    start = time.perf_counter()
    step()  # the first step compiles, allocates, picks kernels
    synchronise(device)
    first = time.perf_counter() - start
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronise(device)
    seconds = (time.perf_counter() - start) / steps
    torch.set_flush_denormal(False)
    size = len(batch["rgb"])
    row = {"seconds_per_step": seconds, "samples_per_second": size / seconds, "first_step_seconds": first}
    peak = peaks["bf16" if MODES[mode][0] else "fp32"]
    row["gflops"] = peaks["step_gflop"][name] / seconds
    row["percent_of_peak"] = 100 * row["gflops"] / peak
    return row


def count_step(model: BodyNet, name: str, batch: dict, device: torch.device) -> dict:
    """FLOPs and bytes of one float32 step."""
    step = make_step(model, name, batch, device, "fp32")
    with FlopCounterMode(display=False) as flops, ByteCounter() as moved:
        step()
    return {
        "gflop_per_step": flops.get_total_flops() / 1e9,
        "gbytes_per_step": moved.bytes / 1e9,
        "flop_per_byte": flops.get_total_flops() / max(moved.bytes, 1),
    }


def measure_data(samples: SampleSet, name: str, batch_size: int, repeats: int = 20) -> float:
    """Milliseconds to make one training batch of the stage, with its augmentation."""
    current = stage(name)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(repeats):
        indices = rng.choice(len(samples), batch_size)
        make_batch(
            samples,
            indices,
            rng,
            flip=current.flip,
            jitter=True,
            rotation=30.0 * current.flip,
            scale=0.25 * current.flip,
            targets=current.targets,
        )
    return 1000 * (time.perf_counter() - start) / repeats


@torch.no_grad()
def inference_ms(model: BodyNet, name: str, batch_size: int, repeats: int, device: torch.device) -> dict:
    model.eval()
    wanted = ("voxels",) if name == "end_to_end_fvsv" else (name,)
    size = model.config.input_size
    rgb = torch.rand(batch_size, 3, size, size, device=device).to(memory_format=torch.channels_last)
    model.to(memory_format=torch.channels_last)
    result = {}
    for precision in ("fp32", "bf16"):
        dtype = autocast_dtype(device, precision)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model(rgb, wanted)
            synchronise(device)
            start = time.perf_counter()
            for _ in range(repeats):
                model(rgb, wanted)
            synchronise(device)
        result[precision] = 1000 * (time.perf_counter() - start) / (repeats * batch_size)
    model.train()
    return result


def bench_scale(scale: str, device: torch.device, args: argparse.Namespace, peaks: dict) -> dict:
    settings = scale_settings(scale)
    sizes = SampleSizes(settings["input_size"], settings["heatmap_size"], settings["voxel_size"])
    config = network_config(settings, sizes)
    torch.manual_seed(0)
    model = BodyNet(config).to(device)
    samples = synthetic_samples(config)
    networks = [n for n in NETWORKS if n in args.networks]
    if scale == "paper":  # minutes a step on a CPU: the two ends of the schedule
        networks = [n for n in networks if n in ("pose2d", "voxels")]
    result = {"model": config.as_dict(), "networks": {}}
    for name in networks:
        batch_size = settings["end_to_end_batch_size" if name.startswith("end_to_end") else "batch_size"]
        batch = make_batch(samples, np.arange(batch_size) % len(samples), targets=stage(name).targets, device=device)
        row = {"batch_size": batch_size, **count_step(model, name, batch, device)}
        step_peaks = {**peaks, "step_gflop": {name: row["gflop_per_step"]}}
        row["data_ms_per_batch"] = measure_data(samples, name, batch_size)
        row["modes"] = {}
        for threads in args.threads:
            torch.set_num_threads(threads)
            thread_peaks = {**step_peaks, **peaks["threads"][str(threads)]}
            for mode in args.modes:
                if MODES[mode][3] and (scale != "default" or name != "pose2d" or device.type != "cpu"):
                    continue  # compiling takes minutes on a CPU: measured once, where it matters most
                steps = args.steps if scale != "paper" else max(1, args.steps // 4)
                measured = measure_step(model, name, batch, device, mode, steps, thread_peaks)
                row["modes"].setdefault(mode, {})[str(threads)] = measured
                print(
                    scale,
                    name,
                    mode,
                    threads,
                    "thread(s):",
                    f"{measured['samples_per_second']:.1f} samples/s,",
                    f"{measured['percent_of_peak']:.1f} % of peak",
                    flush=True,
                )
        one = row["modes"].get("fp32", {}).get(str(args.threads[0]))
        if one:
            row["data_share_of_fp32_step"] = row["data_ms_per_batch"] / 1000 / one["seconds_per_step"]
        if name != "end_to_end_fvsv":
            row["inference_ms_per_image_batch_1"] = inference_ms(model, name, 1, max(2, args.steps), device)
        result["networks"][name] = row
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scales", nargs="+", choices=["before", "default", "paper"], default=["before", "default", "paper"]
    )
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="CPU thread counts to compare")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per measurement")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/training_<cpu|cuda>.json")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        args.threads = args.threads[:1]
    peaks: dict = {"threads": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        peaks["threads"][str(threads)] = {"fp32": peak_gflops(torch.float32), "bf16": peak_gflops(torch.bfloat16)}
        print(f"peak on {threads} thread(s):", json.dumps(peaks["threads"][str(threads)]), flush=True)
    machine = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_bf16": cpu_has_bf16(),
        "torch": torch.__version__,
    }
    results = {
        "machine": machine,
        "peak_gflops": peaks["threads"],
        "scales": {scale: bench_scale(scale, device, args, peaks) for scale in args.scales},
    }
    out = args.out or ROOT / f"benchmarks/results/training_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
