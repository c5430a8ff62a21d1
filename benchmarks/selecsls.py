"""SelecSLS against ResNets on this machine: Mehta's thesis Tables 7.10 and 7.15 in kind.

    python benchmarks/selecsls.py [--threads 2] [--repeats 10] [--out benchmarks/results/selecsls_cpu.json]

Table 7.15 (sizes): parameters and multiply-accumulates at 224×224 of SelecSLS-60 with its
ImageNet head and of ResNet-50 (the thesis: 30.67 M and 3.5 GFLOPs against 25.55 M and 4.1).
Table 7.10 (speed): each network as a pose backbone, batch 1 at 512×320, on the CPU's threads:
the ResNets up to the first module of their last level with its striding removed (stride 16, as
the thesis keeps them), SelecSLS-60 grouped for pose (stride 16); in float32 and, where the CPU
has it, bfloat16 autocast. The thesis' CPU figures (a Xeon, its own build): ResNet-50 349 ms,
ResNet-34 269 ms, SelecSLS 167–184 ms. Ratios are to ResNet-50 measured in the same run, the
networks timed in turn. The ResNets are written out here (torchvision's layout, random weights:
latency does not depend on them).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from torch import nn

from pipeline.models.selecsls import SelecSLS, SelecSLSClassifier, SelecSLSConfig
from pipeline.sparsity.cost import latencies_ms, multiply_accumulates, parameters

ROOT = Path(__file__).resolve().parents[1]
THESIS_MS = {"resnet50": 349.0, "resnet34": 269.0, "selecsls60": (167.0, 184.0)}


class Basic(nn.Module):
    expansion = 1

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        out = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and inputs == out
            else nn.Sequential(nn.Conv2d(inputs, out, 1, stride, bias=False), nn.BatchNorm2d(out))
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class Bottleneck(Basic):
    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__(inputs, width, stride)
        out = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, out, 1, bias=False),
            nn.BatchNorm2d(out),
        )


def resnet(block: type[Basic], blocks: tuple[int, ...], pose: bool) -> nn.Sequential:
    """ResNet's stem and levels; `pose`: up to the first module of the last level, unstrided,
    else the whole network with its ImageNet head."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    inputs = 64
    for level, (count, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
        last = level == 3
        count, stride = (1, 1) if last and pose else (count, 1 if level == 0 else 2)
        for index in range(count):
            layers.append(block(inputs, width, stride if index == 0 else 1))
            inputs = width * block.expansion
    if not pose:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inputs, 1000)]
    return nn.Sequential(*layers)


def backbones() -> dict[str, nn.Module]:
    return {
        "resnet50": resnet(Bottleneck, (3, 4, 6, 3), pose=True),
        "resnet34": resnet(Basic, (3, 4, 6, 3), pose=True),
        "selecsls60": SelecSLS(3, SelecSLSConfig(depth="60", width=1.0, grouped=True)),
    }


def sizes() -> dict[str, dict[str, float]]:
    image = (torch.zeros(1, 3, 224, 224),)
    networks = {"selecsls60": SelecSLSClassifier("60"), "resnet50": resnet(Bottleneck, (3, 4, 6, 3), pose=False)}
    return {
        name: {"parameters_m": parameters(net) / 1e6, "gmacs_224": multiply_accumulates(net, image) / 1e9}
        for name, net in networks.items()
    }


def timings(repeats: int) -> dict[str, dict[str, float]]:
    networks = backbones()
    image = (torch.rand(1, 3, 320, 512),)
    precisions = {"float32": torch.float32}
    if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        precisions["bfloat16"] = torch.bfloat16
    result = {}
    for precision, dtype in precisions.items():
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            times = latencies_ms(list(networks.values()), image, repeats=repeats)
        reference = times[0]
        result[precision] = {
            name: {"ms": round(ms, 1), "ratio_to_resnet50": round(ms / reference, 3)}
            for name, ms in zip(networks, times)
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/selecsls_cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = {
        "machine": {"processor": platform.processor() or platform.machine(), "threads": args.threads},
        "torch": torch.__version__,
        "sizes": sizes(),
        "latency_512x320": timings(args.repeats),
        "thesis_cpu_ms": THESIS_MS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
