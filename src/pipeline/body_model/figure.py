"""Front and side views of a body model: surface coloured by BodyNet's 14 parts, joints marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from pipeline.atomic import atomic_output  # noqa: E402
from pipeline.body_model.skeleton import BODYNET_JOINTS, BODYNET_PART_NAMES  # noqa: E402

# Rows map SMPL's frame to (screen right, screen up, towards the viewer). The front view
# looks at the body's front (the body's left on the right); the side view at its left side.
VIEWS = {
    "front": np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
    "side": np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
}
LIGHT = np.array([0.3, 0.5, 1.0]) / np.linalg.norm([0.3, 0.5, 1.0])


def part_colours() -> np.ndarray:
    """RGB for background (row 0) and the 14 parts."""
    palette = plt.get_cmap("tab20")(np.linspace(0, 1, 20))[:, :3]
    return np.vstack([[0.5, 0.5, 0.5], palette[[0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 1, 3, 5, 7]]])


def draw_mesh(ax, vertices: np.ndarray, faces: np.ndarray, face_colours: np.ndarray, view: str):
    """Flat-shaded orthographic view, faces painted back to front."""
    screen = vertices @ VIEWS[view].T
    triangles = screen[faces]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    shade = 0.35 + 0.65 * np.clip(normals @ LIGHT, 0.0, 1.0)
    order = np.argsort(triangles[:, :, 2].mean(axis=1))
    ax.add_collection(
        PolyCollection(
            triangles[order, :, :2],
            facecolors=np.clip(face_colours[order] * shade[order, None], 0, 1),
            edgecolors="none",
        )
    )


def plot_body_model(
    vertices: np.ndarray,
    faces: np.ndarray,
    bodynet_parts: np.ndarray,
    joints: np.ndarray,
    title: str,
    out: str | Path,
) -> None:
    """Write a PNG with the front and side views of a mesh (V, 3) and its joints (24, 3)."""
    colours = part_colours()
    face_parts = np.array([np.bincount(row, minlength=15).argmax() for row in bodynet_parts[faces]])
    fig, axes = plt.subplots(1, 2, figsize=(10, 7.5), gridspec_kw={"width_ratios": [2.2, 1]})
    for ax, view in zip(axes, VIEWS):
        draw_mesh(ax, vertices, faces, colours[face_parts], view)
        screen_joints = joints @ VIEWS[view].T
        for indices, colour, label in (
            (np.setdiff1d(np.arange(len(joints)), BODYNET_JOINTS), "white", "other SMPL joints"),
            (BODYNET_JOINTS, "black", "BodyNet's 16 joints"),
        ):
            ax.scatter(
                screen_joints[indices, 0],
                screen_joints[indices, 1],
                s=22,
                c=colour,
                edgecolors="black",
                linewidths=0.8,
                zorder=3,
                label=label,
            )
        ax.set_aspect("equal")
        ax.autoscale_view()
        ax.margins(0.05)
        ax.set_title(view)
        ax.set_xlabel("x (m)" if view == "front" else "-z (m)")
    axes[0].set_ylabel("y (m)")
    handles = [Patch(color=colours[i + 1], label=name) for i, name in enumerate(BODYNET_PART_NAMES)]
    handles += axes[0].get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    with atomic_output(out) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
