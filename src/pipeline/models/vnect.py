"""VNect's location-map network (Mehta et al., "VNect: Real-time 3D Human Pose Estimation with a
Single RGB Camera", SIGGRAPH 2017; Mehta's thesis ch. 5) on a SelecSLS backbone.

Shapes: B batch, J = 16 joints in MPII's order (BodyNet's), s×s maps at 1/8 of the input crop.

Per joint the network predicts a 2D heatmap H_j and three location maps X_j, Y_j, Z_j, each of
which holds, at every pixel, the joint's position relative to the pelvis (metres, camera
axes); the 3D pose is read from the location maps at each heatmap's maximum. Before them it
predicts each joint's position relative to its parent (ΔX, ΔY, ΔZ) and, from those, the bone
lengths, and both are fed back with the features (the thesis' kinematic features).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.selecsls import SelecSLS, SelecSLSConfig, conv_bn_relu

JOINTS = 16
PELVIS = 6
# each joint's parent in MPII's order (ankle→knee→hip→pelvis, wrist→elbow→shoulder→thorax,
# head→neck→thorax→pelvis); the pelvis is its own
PARENTS = (1, 2, 6, 6, 3, 4, 6, 6, 7, 8, 11, 12, 7, 7, 13, 14)
JOINT_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist",
)  # fmt: skip


def parent_relative(joints: torch.Tensor) -> torch.Tensor:
    """(..., J, 3) joints -> (..., J, 3) each joint minus its parent (the pelvis: zero)."""
    return joints - joints[..., PARENTS, :]


class VNect(nn.Module):
    """(B, 3, S, S) crops -> {"heatmaps": (B, J, s, s), "locations": (B, J, 3, s, s),
    "deltas": (B, J, 3, s, s)}, s = S / 8: the backbone at stride 16, one ×2 transposed
    convolution, the kinematic maps, then the heatmaps and location maps from the features
    and the kinematic maps together."""

    def __init__(self, backbone: SelecSLSConfig, features: int = 128, joints: int = JOINTS) -> None:
        super().__init__()
        self.joints = joints
        self.backbone = SelecSLS(3, backbone)
        self.up = nn.Sequential(
            nn.ConvTranspose2d(self.backbone.out_channels, features, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(features),
            nn.ReLU(inplace=True),
            conv_bn_relu(features, features, 3),
        )
        self.kinematic = nn.Conv2d(features, 3 * joints, 1)
        self.head = nn.Sequential(conv_bn_relu(features + 4 * joints, features, 3), nn.Conv2d(features, 4 * joints, 1))

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.up(self.backbone(rgb))
        b, _, h, w = features.shape
        deltas = self.kinematic(features)
        lengths = deltas.view(b, self.joints, 3, h, w).norm(dim=2)
        maps = self.head(torch.cat([features, deltas, lengths], dim=1)).view(b, self.joints, 4, h, w)
        return {
            "heatmaps": maps[:, :, 0],
            "locations": maps[:, :, 1:],
            "deltas": deltas.view(b, self.joints, 3, h, w),
        }


def read_out(heatmaps: torch.Tensor, locations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, J, s, s) heatmaps and (B, J, 3, s, s) location maps -> each joint's heatmap maximum
    (B, J, 2) as (x, y) map pixels, and (B, J, 3) the location maps' values there."""
    b, j, h, w = heatmaps.shape
    peak = heatmaps.reshape(b, j, h * w).argmax(dim=-1)
    points = torch.stack([peak % w, torch.div(peak, w, rounding_mode="floor")], dim=-1)
    index = peak[:, :, None, None].expand(b, j, 3, 1)
    joints = locations.reshape(b, j, 3, h * w).gather(-1, index).squeeze(-1)
    return points, joints


class PoseRegression(nn.Module):
    """(B, 3, S, S) crops -> {"joints": (B, J, 3)}: the direct regression the thesis compares
    location maps with (§5.3.3), on the same backbone: its stride-16 features, a 3×3
    convolution, and a fully connected layer from all of them (not pooled: where each part is
    in the crop is most of what the joints are) to the pelvis-relative joints. The layer fixes
    the input side it was built for, `size`."""

    def __init__(self, backbone: SelecSLSConfig, size: int, features: int = 128, joints: int = JOINTS) -> None:
        super().__init__()
        self.joints = joints
        self.backbone = SelecSLS(3, backbone)
        cells = (size // 16) ** 2
        self.head = nn.Sequential(
            conv_bn_relu(self.backbone.out_channels, features, 3),
            nn.Flatten(),
            nn.Linear(features * cells, 3 * joints),
        )

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"joints": self.head(self.backbone(rgb)).view(-1, self.joints, 3)}
