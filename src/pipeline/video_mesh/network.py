"""The frame model and the video model (Liu, Akhtar & Mian, 2019, §4), small at the default scale.

Shapes: B images (or clips), T frames, S×S inputs, P = 24·6 + 10 + 3 parameters.

The parameters Θ are SMPL's 24 joint rotations, the first the body's in the camera's frame, each
as the first two columns of its matrix (Zhou et al., "On the Continuity of Rotation
Representations in Neural Networks", 2019: a continuous form a network regresses well, where
axis-angle jumps), the 10 shape coefficients β, and a weak-perspective camera (s, tx, ty)
taking pelvis-relative metres to the frame's [-1, 1] coordinates; the telephoto lens makes the
weak perspective nearly exact. The paper's rotation, translation and scale are these: the
first rotation, (tx, ty) and s.

    FrameModel   a CNN encoder (a global feature φ and a low-level map), then HMR's regressor:
                 Θ ← Θ + MLP([φ, Θ]) `iterations` times from the training set's mean Θ
    VideoModel   the frame model's encoder and regressor, then over time an LSTM whose input is
                 [φ_t, the attention's context c_t, Θ_{t−1}] (Θ_0 the mean), its first state an
                 MLP of φ_1; c_t is the soft attention over the low-level map's vectors,
                 conditioned on the LSTM's previous state. The frame's estimate is the
                 regressor's from φ_t plus a linear read of the LSTM's state; Θ_t keeps a share
                 α_t of Θ_{t−1} and takes the rest from that estimate, α_t a gate of the LSTM's
                 state times a learnt share per parameter (in [0, 1]). The read and the share
                 start at zero, so the video model starts exactly where the frame model ended;
                 the share lets it learn to hold what flickers from frame to frame
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.blocks import block

JOINTS = 24
BETAS = 10
POSE_VALUES = JOINTS * 6
PARAMETERS = POSE_VALUES + BETAS + 3


def rotation_matrices(six: torch.Tensor) -> torch.Tensor:
    """(..., 6) two columns per rotation -> (..., 3, 3), by Gram–Schmidt (Zhou et al., 2019)."""
    a, b = six[..., :3], six[..., 3:]
    x = F.normalize(a, dim=-1)
    y = F.normalize(b - (x * b).sum(-1, keepdim=True) * x, dim=-1)
    z = torch.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def six_values(rotations: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, the form `rotation_matrices` reads."""
    return torch.cat([rotations[..., :, 0], rotations[..., :, 1]], dim=-1)


def split_parameters(theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """Θ (..., P) -> 'rotations' (..., 24, 3, 3), 'betas' (..., 10), 'camera' (..., 3)."""
    pose = theta[..., :POSE_VALUES].reshape(*theta.shape[:-1], JOINTS, 6)
    return {
        "rotations": rotation_matrices(pose),
        "betas": theta[..., POSE_VALUES : POSE_VALUES + BETAS],
        "camera": theta[..., POSE_VALUES + BETAS :],
    }


def mean_parameters(rotations: torch.Tensor, betas: torch.Tensor, scale: float) -> torch.Tensor:
    """The mean Θ (P,) of training frames' rotations (N, 24, 3, 3) and shapes (N, 10): each joint's
    mean rotation (the mean matrix's nearest rotation), the mean shape, the camera (scale, 0, 0)."""
    u, _, vt = torch.linalg.svd(rotations.double().mean(0))
    sign = torch.sign(torch.linalg.det(u @ vt))
    u = torch.cat([u[..., :2], u[..., 2:] * sign[:, None, None]], dim=-1)
    mean = (u @ vt).float()
    camera = torch.tensor([scale, 0.0, 0.0])
    return torch.cat([six_values(mean).reshape(-1), betas.float().mean(0), camera])


@dataclass(frozen=True)
class MeshNetworkConfig:
    """The networks' sizes (the config's `video_mesh.network`)."""

    input_size: int  # the frames' side, a multiple of 16
    width: int  # the encoder's first channels; doubled at each of its four strides
    features: int  # φ
    hidden: int  # the regressor's two hidden layers
    iterations: int  # iterative error feedback
    dropout: float  # after each of the regressor's hidden layers (HMR's)
    lstm: int  # the LSTM's width
    attention: int  # the attention's inner width


class Encoder(nn.Module):
    """Images (B, 3, S, S) in [0, 1] -> φ (B, features) and the low-level map (B, 2·width, S/4, S/4).

    φ reads the last map (8·width channels at S/16 × S/16) whole, not its spatial mean: a
    network this narrow keeps where the limbs are only in where its features are."""

    def __init__(self, config: MeshNetworkConfig) -> None:
        super().__init__()
        w = config.width
        self.low = nn.Sequential(block(3, w), block(w, 2 * w))
        self.high = nn.Sequential(block(2 * w, 4 * w), block(4 * w, 8 * w))
        self.features = nn.Linear(8 * w * (config.input_size // 16) ** 2, config.features)
        self.low_channels = 2 * w

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.low(images * 2 - 1)
        return F.relu(self.features(self.high(low).flatten(1))), low


class Regressor(nn.Module):
    """HMR's iterative error feedback: Θ ← Θ + MLP([φ, Θ]), from the mean, `iterations` times."""

    def __init__(self, config: MeshNetworkConfig, mean: torch.Tensor) -> None:
        super().__init__()
        self.iterations = config.iterations
        self.register_buffer("mean", mean.clone())
        self.mlp = nn.Sequential(
            nn.Linear(config.features + PARAMETERS, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, PARAMETERS),
        )
        nn.init.zeros_(self.mlp[-1].weight)  # the first estimate is the mean
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        theta = self.mean.expand(len(features), -1)
        for _ in range(self.iterations):
            theta = theta + self.mlp(torch.cat([features, theta], dim=-1))
        return theta


class FrameModel(nn.Module):
    """One image at a time (HMR*): images (B, 3, S, S) -> Θ (B, P)."""

    def __init__(self, config: MeshNetworkConfig, mean: torch.Tensor) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.regressor = Regressor(config, mean)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features, _ = self.encoder(images)
        return self.regressor(features)


class Attention(nn.Module):
    """Soft attention over a map's vectors (B, L, C) given a state (B, H) -> context (B, C) and
    weights (B, L): a_i = softmax_i(w · tanh(U v_i + W h))."""

    def __init__(self, channels: int, state: int, inner: int) -> None:
        super().__init__()
        self.vectors = nn.Linear(channels, inner)
        self.state = nn.Linear(state, inner, bias=False)
        self.score = nn.Linear(inner, 1)

    def forward(self, vectors: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(torch.tanh(self.vectors(vectors) + self.state(state)[:, None]))[..., 0]
        weights = scores.softmax(-1)
        return (weights[..., None] * vectors).sum(1), weights


class VideoModel(nn.Module):
    """A clip at a time (MVIPER): images (B, T, 3, S, S) -> Θ (B, T, P)."""

    def __init__(self, config: MeshNetworkConfig, mean: torch.Tensor) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.regressor = Regressor(config, mean)
        channels = self.encoder.low_channels
        self.attention = Attention(channels, config.lstm, config.attention)
        self.cell = nn.LSTMCell(config.features + channels + PARAMETERS, config.lstm)
        self.initial = nn.Sequential(
            nn.Linear(config.features, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden, 2 * config.lstm),
        )
        self.read = nn.Linear(config.lstm, PARAMETERS)
        nn.init.zeros_(self.read.weight)
        nn.init.zeros_(self.read.bias)
        self.gate = nn.Linear(config.lstm, PARAMETERS)
        self.kept_share = nn.Parameter(torch.zeros(PARAMETERS))

    @classmethod
    def from_frame_model(cls, frame: FrameModel) -> VideoModel:
        """The video model with the frame model's encoder and regressor (the paper's start)."""
        model = cls(frame.config, frame.regressor.mean)
        model.encoder.load_state_dict(frame.encoder.state_dict())
        model.regressor.load_state_dict(frame.regressor.state_dict())
        return model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        features, low = self.encoder(clips.flatten(0, 1))
        frame_theta = self.regressor(features).view(b, t, -1)
        features = features.view(b, t, -1)
        vectors = low.flatten(2).transpose(1, 2).reshape(b, t, -1, low.shape[1])  # (B, T, L, C)
        hidden, memory = self.initial(features[:, 0]).chunk(2, dim=-1)
        previous = self.regressor.mean.expand(b, -1)
        share = self.kept_share.clamp(0.0, 1.0)
        thetas = []
        for step in range(t):
            context, _ = self.attention(vectors[:, step], hidden)
            hidden, memory = self.cell(torch.cat([features[:, step], context, previous], dim=-1), (hidden, memory))
            estimate = frame_theta[:, step] + self.read(hidden)
            if step:
                kept = share * torch.sigmoid(self.gate(hidden))
                estimate = kept * previous + (1 - kept) * estimate
            previous = estimate
            thetas.append(estimate)
        return torch.stack(thetas, dim=1)
