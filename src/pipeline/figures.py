"""Colour codings of the ground-truth passes, and writing a figure, for every stage's figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_output


def save_figure(fig, out: str | Path, dpi: int = 100) -> None:
    """Lay out, write atomically, close."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_output(out) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """The usual colour wheel: hue is the direction, saturation the magnitude (H, W, 2) → uint8."""
    u, v = flow[..., 0], flow[..., 1]
    magnitude = np.hypot(u, v)
    scale = max_magnitude or max(float(magnitude.max()), 1e-6)
    hue = (np.arctan2(-v, -u) / np.pi + 1.0) / 2.0  # [0, 1)
    saturation = np.clip(magnitude / scale, 0.0, 1.0)
    return (hsv_to_rgb(hue, saturation, np.ones_like(hue)) * 255).astype(np.uint8)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6.0).astype(int) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.zeros(h.shape + (3,))
    for k, (r, g, b) in enumerate(table):
        mask = i == k
        out[mask] = np.stack([r[mask], g[mask], b[mask]], axis=-1)
    return out


def labels_to_rgb(labels: np.ndarray, count: int) -> np.ndarray:
    """Distinct colours per label 1..count, black for 0."""
    import matplotlib

    palette = matplotlib.colormaps["tab20"](np.linspace(0, 1, 20))[:, :3]
    colours = np.vstack([[0, 0, 0], palette[np.arange(count) % 20] * (1 - 0.35 * (np.arange(count)[:, None] >= 20))])
    return (colours[labels] * 255).astype(np.uint8)


def depth_to_rgb(depth: np.ndarray, background: float = 1e3, limits: tuple[float, float] | None = None) -> np.ndarray:
    """Near = bright; off-body pixels black. `limits` (near, far): the depths the colours
    span (default: this image's body's)."""
    import matplotlib

    mask = depth < background
    out = np.zeros(depth.shape + (3,), np.uint8)
    if mask.any():
        near, far = limits if limits is not None else (depth[mask].min(), depth[mask].max())
        scaled = 1.0 - (depth[mask] - near) / max(far - near, 1e-6)
        out[mask] = (matplotlib.colormaps["viridis"](scaled)[:, :3] * 255).astype(np.uint8)
    return out


def normals_to_rgb(normals: np.ndarray) -> np.ndarray:
    mask = np.any(normals != 0, axis=-1)
    out = ((normals * 0.5 + 0.5) * 255).astype(np.uint8)
    out[~mask] = 0
    return out
