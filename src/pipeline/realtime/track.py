"""VNect on a video file: every frame's 3D skeleton as numbers, and the video with the
skeleton drawn over it (`pipeline.realtime.stream` does the work; this reads and writes).

In the output folder:
    poses.csv     a row per frame and joint: the 2D joint (u, v, image pixels, filtered), its
                  confidence, the fitted skeleton's joint in camera metres (x, y, z) and the
                  network's pelvis-relative joint (rel_x, rel_y, rel_z, metres, filtered)
    frames.csv    a row per frame: its time in the video, the box the network read
                  (x0, y0, x1, y1) and the milliseconds spent on it (network_ms: crop,
                  network, read-out; fit_ms: filters and kinematic fit)
    overlay.mp4   the video, the box in yellow, the fitted skeleton projected in green and
                  the network's 2D joints in red
    summary.json  the video, its frames and rate, the camera assumed, the first box and what
                  found it, and the mean milliseconds a frame with the frames per second they
                  make (reading and writing the video left out)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from pipeline.errors import InputError
from pipeline.evaluation.frames import camera_to_image
from pipeline.models.vnect import JOINT_NAMES, PARENTS, PELVIS, VNect
from pipeline.realtime.stream import FramePose, PoseStream

DEFAULT_RATE = 30.0  # frames per second, where a video does not say
COLOURS = {"box": (0, 220, 255), "skeleton": (60, 200, 60), "joints": (40, 40, 230)}  # BGR


def open_video(path: Path, count: int | None = None) -> tuple[float, Iterator[np.ndarray]]:
    """The frames per second a video file's container states (else DEFAULT_RATE) and its
    first `count` frames (None: all), each (H, W, 3) uint8 RGB, read as they are asked for;
    an InputError naming the file where OpenCV decodes no frame of it."""
    if not path.is_file():
        raise InputError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    rate = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0

    def frames() -> Iterator[np.ndarray]:
        read = 0
        try:
            while count is None or read < count:
                ok, image = capture.read()
                if not ok:
                    break
                read += 1
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()
        if not read:
            raise InputError(f"{path}: not a video OpenCV can read (no frame decoded)")

    return (float(rate) if 0 < rate < 1000 else DEFAULT_RATE), frames()


def draw_pose(image: np.ndarray, pose: FramePose, focal: float, principal: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB frame -> (H, W, 3) BGR with the box, the fitted skeleton and the 2D joints."""
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    scale = max(1, round(max(canvas.shape[:2]) / 320))
    x0, y0, x1, y1 = np.round(pose.box).astype(int)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), COLOURS["box"], scale)
    if pose.joints[:, 2].min() > 0:  # every joint in front of the camera
        projected = np.round(camera_to_image(pose.joints, focal, principal)).astype(int)
        for joint, parent in enumerate(PARENTS):
            if joint != PELVIS:
                cv2.line(
                    canvas, tuple(projected[joint]), tuple(projected[parent]), COLOURS["skeleton"], scale, cv2.LINE_AA
                )
    for u, v in np.round(pose.points).astype(int):
        cv2.circle(canvas, (u, v), 2 * scale, COLOURS["joints"], -1, cv2.LINE_AA)
    return canvas


def pose_rows(pose: FramePose) -> list[dict]:
    return [
        {
            "frame": pose.frame,
            "joint": name,
            "u": pose.points[j, 0],
            "v": pose.points[j, 1],
            "confidence": pose.confidence[j],
            "x": pose.joints[j, 0],
            "y": pose.joints[j, 1],
            "z": pose.joints[j, 2],
            "rel_x": pose.relative[j, 0],
            "rel_y": pose.relative[j, 1],
            "rel_z": pose.relative[j, 2],
        }
        for j, name in enumerate(JOINT_NAMES)
    ]


def track_video(
    model: VNect,
    video: Path,
    out: Path,
    size: int,
    box: tuple | None = None,
    focal: float | None = None,
    dtype: torch.dtype | None = None,
    count: int | None = None,
    progress: bool = True,
) -> dict:
    """VNect over the first `count` frames of `video` (None: all), its files written into the
    folder `out` (which must not hold others'); returns the summary it writes."""
    from tqdm import tqdm

    rate, frames = open_video(video, count)
    first = next(frames)
    height, width = first.shape[:2]
    if box is not None and (box[2] <= 0 or box[3] <= 0 or box[0] >= width or box[1] >= height):
        text = ",".join(f"{v:g}" for v in box)
        raise InputError(f"{video}: the box {text} lies outside the first frame ({width}×{height})")
    focal_given = focal is not None
    focal = float(focal) if focal_given else float(max(height, width))
    principal = np.array([(width - 1) / 2, (height - 1) / 2])
    stream = PoseStream(model, size, focal, principal, rate, dtype)
    start = stream.start(first, box)
    out.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), rate, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"{out / 'overlay.mp4'}: OpenCV cannot write mp4 video")
    waiting: list[np.ndarray] = []  # frames whose poses are not known yet
    poses: list[FramePose] = []

    def write(done: list[FramePose]) -> None:
        for pose in done:
            writer.write(draw_pose(waiting.pop(0), pose, focal, principal))
        poses.extend(done)

    try:
        for image in tqdm(chain([first], frames), desc=video.name, unit="frame", disable=not progress):
            waiting.append(image)
            write(stream.push(image))
        write(stream.finish())
    finally:
        writer.release()
    pd.DataFrame([row for pose in poses for row in pose_rows(pose)]).to_csv(
        out / "poses.csv", index=False, float_format="%.6g"
    )
    timing = pd.DataFrame(
        [
            {"frame": p.frame, "time_s": p.frame / rate, "x0": p.box[0], "y0": p.box[1], "x1": p.box[2], "y1": p.box[3],
             "network_ms": p.network_ms, "fit_ms": p.fit_ms}
            for p in poses
        ]
    )  # fmt: skip
    timing.to_csv(out / "frames.csv", index=False, float_format="%.6g")
    per_frame_ms = float((timing["network_ms"] + timing["fit_ms"]).mean())
    summary = {
        "video": str(video),
        "frames": len(poses),
        "frame_rate": rate,
        "image_size": [height, width],
        "focal": focal,
        "focal_given": focal_given,
        "first_box": [float(v) for v in start],
        "first_box_found_by": "box" if box is not None else "network",
        "precision": "bf16" if dtype is not None else "fp32",
        "network_ms": float(timing["network_ms"].mean()),
        "fit_ms": float(timing["fit_ms"].mean()),
        "frames_per_second": 1e3 / per_frame_ms,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
