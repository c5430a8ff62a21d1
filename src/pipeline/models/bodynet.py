"""BodyNet (Varol et al. 2018): 2D pose, 2D segmentation, 3D pose and voxels, each a stacked
hourglass fed by the ones before it (the RGB-fed 2D networks optionally on SelecSLS instead,
the backbone of Mehta et al., "XNect", 2020).

    2D pose      RGB                                  → 16 joint heatmaps
    segmentation RGB                                  → 15 classes (14 parts + background)
    3D pose      RGB + 2D pose + segmentation          → 16 × 19-bin volumes
                 (or any of them, and optical flow)
    voxels       RGB + 2D pose + segmentation (2D),    → D×D×D occupancy logits
                 3D pose reshaped to 304 channels
    shape        the voxel network's inputs            → 10 shape coefficients (the
                                                         paper's regression baseline)
    depth        RGB                                  → 20 classes (19 depth bins of 45 mm
                                                         around the pelvis + background):
                                                         SURREAL's depth network (Varol et
                                                         al., "Learning from Synthetic
                                                         Humans", 2017), which feeds no other
    part voxels  the voxel network's inputs           → 7 × D×D×D logits: background and six
                                                         body parts (the paper's §4.3.1)

Which inputs the 3D-pose and voxel networks take is configurable (the paper's Tables 4.8
and 4.1 compare them). The voxel network has two branches, one for the 2D inputs (at input
resolution, strided down to the heatmaps') and one for the 3D pose volumes; their features
are concatenated, run through the hourglasses, and the last maps (channels = depth) are
upsampled to the voxel resolution, passed through a ReLU and a 3×3 convolution. The part
voxel network is the same with D channels per class (a grouped 3×3 convolution: each class
its own), started from a trained voxel network by copying its output layers for each class.

Shapes: B batch, S input size, s heatmap size, D voxel size, J = 16 joints, Z = 19 bins.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.models.choices import BACKBONES_2D, BODYNET_INPUTS, IMAGES, INPUTS, POSE3D_LOSSES, SELECSLS_DEPTHS
from pipeline.models.hourglass import Residual, StackedHourglass
from pipeline.models.selecsls import SelecSLSConfig, SelecSLSMaps

JOINTS = 16
PART_CLASSES = 15  # 14 parts + background
DEPTH_BINS = 19
DEPTH_CLASSES = DEPTH_BINS + 1  # background and the bins
VOXEL_PART_CLASSES = 7  # background and six parts (pipeline.body_model.skeleton.VOXEL_PARTS)
BETAS = 10
INPUT_CHANNELS = {"rgb": 3, "pose2d": JOINTS, "segm": PART_CLASSES, "pose3d": JOINTS * DEPTH_BINS, "flow": 3}


def peak_volumes(logits: torch.Tensor) -> torch.Tensor:
    """(B, J, Z, s, s) logits → each joint's softmax over its volume divided by its maximum:
    values in (0, 1] peaking at 1, as the Gaussian volumes BodyNet regresses do."""
    return torch.exp(logits - logits.flatten(2).amax(-1)[..., None, None, None])


def _positive_int(name: str, value: object) -> int:
    """`value` as a plain int (numpy's integers included), or a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _known_keys(data: object, cls: type, prefix: str = "") -> dict:
    """`data` if it is a dict of `cls`'s fields, else a ValueError naming the key at fault."""
    if not isinstance(data, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'config'} must be a dict, got {type(data).__name__}")
    known = {item.name for item in fields(cls)}
    for key in data:
        if key not in known:
            raise ValueError(f"unknown key {prefix + str(key)!r} (known: {', '.join(sorted(known))})")
    return data


@dataclass
class HourglassConfig:
    """`bodynet.hourglass` (the paper's: 2 stacks of 256 features, 1 module, depth 4)."""

    stacks: int
    features: int
    modules: int
    depth: int

    def __post_init__(self) -> None:
        for item in fields(self):
            setattr(self, item.name, _positive_int(f"hourglass.{item.name}", getattr(self, item.name)))


# What a checkpoint written before each choice existed was trained with: BodyNet's MSE and
# stacked hourglass (the SelecSLS levels unused then).
BEFORE_CHOICES = {"pose3d_loss": "mse", "backbone_2d": "hourglass", "selecsls": {"depth": "42", "width": 0.25}}


@dataclass
class BodyNetConfig:
    """Sizes and the inputs of the 3D-pose and voxel networks. Its fields hold plain ints,
    tuples of str and a HourglassConfig, so `as_dict` is a dict of builtins (what a checkpoint
    may hold)."""

    input_size: int
    heatmap_size: int
    voxel_size: int
    hourglass: HourglassConfig
    # How the 3D-pose network is trained, and so what its outputs are: "mse" (BodyNet's) regresses
    # the Gaussian volumes; the others (pipeline.training.losses.POSE3D_LOSSES) give logits, whose
    # softmax over each joint's volume, scaled to a peak of 1, is the volume the others read.
    # None: networks that neither train nor read a 3D-pose network (the 2D stages').
    pose3d_loss: str | None
    # The 2D networks' (pose2d, segm, depth): BodyNet's stacked hourglass, or SelecSLS (XNect's
    # backbone) with `selecsls`'s levels and width.
    backbone_2d: str
    selecsls: SelecSLSConfig
    pose3d_inputs: tuple[str, ...] = BODYNET_INPUTS["pose3d"]
    voxel_inputs: tuple[str, ...] = BODYNET_INPUTS["voxels"]

    def __post_init__(self) -> None:
        if isinstance(self.hourglass, dict):
            self.hourglass = HourglassConfig(**_known_keys(self.hourglass, HourglassConfig, "hourglass."))
        if not isinstance(self.hourglass, HourglassConfig):
            raise ValueError(f"hourglass must be a dict, got {type(self.hourglass).__name__}")
        for name in ("input_size", "heatmap_size", "voxel_size"):
            setattr(self, name, _positive_int(name, getattr(self, name)))
        pose3d_allowed = ("rgb", "pose2d", "segm", "flow")
        for name, allowed in (("pose3d_inputs", pose3d_allowed), ("voxel_inputs", INPUTS[:4])):
            inputs = getattr(self, name)
            if isinstance(inputs, str) or not isinstance(inputs, list | tuple):
                raise ValueError(f"{name} must be a list of input names, got {inputs!r}")
            if not inputs or not all(isinstance(item, str) and item in allowed for item in inputs):
                raise ValueError(f"{name} must be a non-empty subset of {allowed}, got {tuple(inputs)}")
            setattr(self, name, tuple(inputs))
        if self.pose3d_loss is not None and self.pose3d_loss not in POSE3D_LOSSES:
            raise ValueError(f"pose3d_loss must be one of {', '.join(POSE3D_LOSSES)}, got {self.pose3d_loss!r}")
        if self.backbone_2d not in BACKBONES_2D:
            raise ValueError(f"backbone_2d must be one of {', '.join(BACKBONES_2D)}, got {self.backbone_2d!r}")
        if isinstance(self.selecsls, dict):
            self.selecsls = SelecSLSConfig(**_known_keys(self.selecsls, SelecSLSConfig, "selecsls."))
        if not isinstance(self.selecsls, SelecSLSConfig):
            raise ValueError(f"selecsls must be a dict, got {type(self.selecsls).__name__}")
        if self.selecsls.depth not in SELECSLS_DEPTHS:
            raise ValueError(f"selecsls.depth must be one of {', '.join(SELECSLS_DEPTHS)}, got {self.selecsls.depth!r}")
        if not (isinstance(self.selecsls.width, numbers.Real) and self.selecsls.width > 0):
            raise ValueError(f"selecsls.width must be a positive number, got {self.selecsls.width!r}")
        if self.input_size != 4 * self.heatmap_size:
            raise ValueError("input_size must be 4 × heatmap_size (the hourglass stem's stride)")
        if self.voxel_size % self.heatmap_size:
            raise ValueError("voxel_size must be a multiple of heatmap_size")

    @classmethod
    def from_dict(cls, data: object) -> BodyNetConfig:
        """The config `as_dict` gave (a checkpoint's; one written before a choice existed made
        the choice it was trained with, `BEFORE_CHOICES`); a ValueError names an unknown or bad key."""
        return cls(**(BEFORE_CHOICES | _known_keys(data, cls)))

    def as_dict(self) -> dict:
        return asdict(self)


def _hourglass(
    config: BodyNetConfig, in_channels: int, out_channels: int, stem_stride: int = 4, heatmaps: bool = False
) -> StackedHourglass:
    h = config.hourglass
    return StackedHourglass(in_channels, out_channels, h.stacks, h.features, h.modules, h.depth, stem_stride, heatmaps)


def _network_2d(config: BodyNetConfig, out_channels: int, heatmaps: bool = False) -> nn.Module:
    """One of the RGB-fed 2D networks, on the backbone `config.backbone_2d` names:
    (B, 3, S, S) -> [(B, out_channels, s, s)] per stack."""
    if config.backbone_2d == "selecsls":
        return SelecSLSMaps(3, out_channels, config.selecsls, config.hourglass.features, heatmaps)
    return _hourglass(config, 3, out_channels, heatmaps=heatmaps)


def _resize(maps: torch.Tensor, size: int) -> torch.Tensor:
    if maps.shape[-1] == size:
        return maps
    return F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)


class Pose3DNet(nn.Module):
    def __init__(self, config: BodyNetConfig) -> None:
        super().__init__()
        self.inputs = config.pose3d_inputs
        self.input_size = config.input_size
        channels = sum(INPUT_CHANNELS[name] for name in self.inputs)
        self.net = _hourglass(config, channels, JOINTS * DEPTH_BINS, heatmaps=True)

    def forward(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Inputs (B, C, ·, ·) by name → per stack, volumes (B, J, Z, s, s)."""
        x = torch.cat([_resize(features[name], self.input_size) for name in self.inputs], dim=1)
        return [out.unflatten(1, (JOINTS, DEPTH_BINS)) for out in self.net(x)]


class _InputBranches(nn.Module):
    """The voxel network's front: the 2D inputs (at input resolution, strided down to the
    heatmaps') and the 3D pose volumes (as 304 channels), each through its own branch;
    their features are concatenated at heatmap resolution (B, `channels`, s, s)."""

    def __init__(self, config: BodyNetConfig, inputs: tuple[str, ...]) -> None:
        super().__init__()
        self.input_size = config.input_size
        self.inputs_2d = [name for name in inputs if name != "pose3d"]
        self.use_3d = "pose3d" in inputs
        branches = int(bool(self.inputs_2d)) + int(self.use_3d)
        width = max(config.hourglass.features // branches, 1)
        self.channels = width * branches
        if self.inputs_2d:
            channels = sum(INPUT_CHANNELS[name] for name in self.inputs_2d)
            self.branch_2d = nn.Sequential(
                nn.Conv2d(channels, width, 7, stride=2, padding=3),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                Residual(width, width),
                nn.MaxPool2d(2),
                Residual(width, width),
            )
        if self.use_3d:
            self.branch_3d = nn.Sequential(
                nn.Conv2d(INPUT_CHANNELS["pose3d"], width, 1),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                Residual(width, width),
            )

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.inputs_2d:
            x = torch.cat([_resize(features[name], self.input_size) for name in self.inputs_2d], dim=1)
            parts.append(self.branch_2d(x))
        if self.use_3d:
            parts.append(self.branch_3d(features["pose3d"].flatten(1, 2)))
        return torch.cat(parts, dim=1)


class VoxelNet(nn.Module):
    """Voxel logits of one class (occupancy) or of `classes` (part voxels)."""

    def __init__(self, config: BodyNetConfig, classes: int = 1) -> None:
        super().__init__()
        self.inputs = config.voxel_inputs
        self.voxel_size, self.classes = config.voxel_size, classes
        channels = classes * config.voxel_size
        self.front = _InputBranches(config, self.inputs)
        self.net = _hourglass(config, self.front.channels, channels, stem_stride=1)
        self.refine = nn.Conv2d(channels, channels, 3, padding=1, groups=classes)

    def forward(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Inputs → per stack, voxel logits (B, D, D, D), or (B, C, D, D, D) with classes:
        axes (z towards the camera, y, x)."""
        outputs = [self.refine(F.relu(_resize(out, self.voxel_size))) for out in self.net(self.front(features))]
        return outputs if self.classes == 1 else [out.unflatten(1, (self.classes, self.voxel_size)) for out in outputs]

    @torch.no_grad()
    def start_from(self, occupancy: VoxelNet) -> None:
        """Take a trained occupancy network's weights, its output layers copied for each class
        (BodyNet's start of the part voxel network): every part begins with the occupancy's
        logits and the background (class 0) with their negation, so that the voxels called
        foreground are at first the occupancy network's (with identical copies every class
        would tie, and the ties fall to the background)."""
        if self.classes == 1 or occupancy.classes != 1:
            raise ValueError("start_from copies an occupancy network into a network of classes")
        state = occupancy.state_dict()
        for name, value in state.items():
            target = self.state_dict()[name]
            if target.shape != value.shape:  # output layers: tiled along the voxels' channels
                repeats = [t // v for t, v in zip(target.shape, value.shape)]
                value = value.repeat(*repeats)
                if name.startswith("net.feed_predictions") and name.endswith("weight"):
                    value = value / self.classes  # the stacked predictions fed back sum to the original's
                if name.startswith("refine."):
                    value[: self.voxel_size] *= -1  # the background's logits (the last layer's first group)
            state[name] = value
        self.load_state_dict(state)


class ShapeNet(nn.Module):
    """BodyNet's shape-regression baseline: the voxel network's inputs, an encoder of
    residual modules halving the maps down to 4 × 4, then 2048 → 1024 → 512 → S shape
    coefficients."""

    def __init__(self, config: BodyNetConfig, betas: int = BETAS) -> None:
        super().__init__()
        self.front = _InputBranches(config, config.voxel_inputs)
        width = self.front.channels
        layers: list[nn.Module] = []
        size = config.heatmap_size
        while size > 4:
            layers += [Residual(width, width), nn.MaxPool2d(2)]
            size //= 2
        self.encoder = nn.Sequential(*layers, Residual(width, width), nn.Flatten())
        self.head = nn.Sequential(
            nn.Linear(width * size * size, 2048),
            nn.ReLU(inplace=True),
            nn.Linear(2048, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, betas),
        )

    def forward(self, features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Inputs → [(B, S) shape coefficients]."""
        return [self.head(self.encoder(self.front(features)))]


class BodyNet(nn.Module):
    """The four subnetworks, the shape baseline, SURREAL's depth network and the part voxel
    network; `forward` runs them in order, each fed by the earlier ones."""

    def __init__(self, config: BodyNetConfig) -> None:
        super().__init__()
        self.config = config
        self.pose2d = _network_2d(config, JOINTS, heatmaps=True)
        self.segm = _network_2d(config, PART_CLASSES)
        self.pose3d = Pose3DNet(config)
        self.voxels = VoxelNet(config)
        self.shape = ShapeNet(config)
        self.depth = _network_2d(config, DEPTH_CLASSES)  # built after the others: their seeded start stays
        self.part_voxels = VoxelNet(config, VOXEL_PART_CLASSES)

    def needed(self, wanted: set[str]) -> set[str]:
        """The subnetworks whose outputs `wanted` depends on, `wanted` included."""
        need = set(wanted)
        if need & {"voxels", "shape", "part_voxels"}:
            need |= set(self.config.voxel_inputs) - set(IMAGES)
        if "pose3d" in need:
            need |= set(self.config.pose3d_inputs) - set(IMAGES)
        return need

    def forward(
        self,
        rgb: torch.Tensor,
        wanted: tuple[str, ...] = ("voxels",),
        flow: torch.Tensor | None = None,
        given: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, list[torch.Tensor]]:
        """Predictions per stack of the wanted subnetworks and those they feed on: 'pose2d'
        (B, J, s, s), 'segm' (B, 15, s, s) logits, 'pose3d' (B, J, Z, s, s) volumes (and with a
        pose3d_loss other than "mse", 'pose3d_logits', what they are made of), 'voxels'
        (B, D, D, D) logits, 'shape' (B, 10), 'depth' (B, 20, s, s) logits, 'part_voxels'
        (B, 7, D, D, D) logits. `flow` (B, 3, S, S):
        the motion channels, for a 3D-pose network that reads them. Each network takes its
        inputs' last-stack predictions, or what `given` holds in their place: the true 'pose2d'
        heatmaps or 'segm' probabilities (B, 15, s, s), an oracle's inputs, with which the
        networks that give them do not run."""
        given = given or {}
        need = self.needed(set(wanted)) - set(given)
        out: dict[str, list[torch.Tensor]] = {}
        features = {"rgb": rgb} | given
        if flow is not None:
            features["flow"] = flow
        elif "pose3d" in need and "flow" in self.config.pose3d_inputs:
            raise ValueError("this 3D-pose network reads flow: pass `flow`")
        if "pose2d" in need:
            out["pose2d"] = self.pose2d(rgb)
            features["pose2d"] = out["pose2d"][-1]
        if "segm" in need:
            out["segm"] = self.segm(rgb)
            features["segm"] = F.softmax(out["segm"][-1], dim=1)
        if "pose3d" in need:
            if self.config.pose3d_loss is None:
                raise ValueError("this config names no pose3d_loss: it has no 3D-pose network to run")
            raw = self.pose3d(features)
            if self.config.pose3d_loss == "mse":
                out["pose3d"] = raw
            else:
                out["pose3d_logits"], out["pose3d"] = raw, [peak_volumes(logits) for logits in raw]
            features["pose3d"] = out["pose3d"][-1]
        if "voxels" in need:
            out["voxels"] = self.voxels(features)
        if "shape" in need:
            out["shape"] = self.shape(features)
        if "depth" in need:
            out["depth"] = self.depth(rgb)
        if "part_voxels" in need:
            out["part_voxels"] = self.part_voxels(features)
        return out
