"""The mesh-video figure: over one test clip, each row's joint error and how fast its joints
move frame to frame beside the truth's, where a flicker shows as spikes the truth lacks."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from pipeline.body_model.model import BodyModel  # noqa: E402
from pipeline.figures import save_figure  # noqa: E402
from pipeline.video_mesh import losses  # noqa: E402
from pipeline.video_mesh.network import split_parameters  # noqa: E402

DRAWN = ("frame", "frame_one_euro", "video")


def clip_figure(
    body: BodyModel, predictions: dict[str, torch.Tensor], truth: np.ndarray, title: str, out: Path
) -> None:
    """Per frame: MPJPE (mm) of each drawn row's parameters (T, P) against the true
    pelvis-relative joints (T, 24, 3), and the mean joint speed (mm a frame), the truth's too."""
    fig, (error_axis, speed_axis) = plt.subplots(1, 2, figsize=(9, 3.2))
    frames = np.arange(len(truth))
    speed_axis.plot(frames[1:], 1000 * np.linalg.norm(np.diff(truth, axis=0), axis=-1).mean(-1), "k", label="truth")
    for row in DRAWN:
        parameters = split_parameters(predictions[row])
        with torch.no_grad():
            joints = losses.posed_joints(body, parameters["rotations"], parameters["betas"]).double().numpy()
        error_axis.plot(frames, 1000 * np.linalg.norm(joints - truth, axis=-1).mean(-1), label=row)
        speed_axis.plot(frames[1:], 1000 * np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean(-1), label=row)
    error_axis.set(xlabel="frame", ylabel="MPJPE (mm)", title="joint error")
    speed_axis.set(xlabel="frame", ylabel="mm a frame", title="mean joint speed")
    speed_axis.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, out)
