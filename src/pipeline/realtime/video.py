"""VNect over whole clips: the network's raw joints, filtered, and fitted by the kinematic
skeleton, measured frame after frame (Mehta's thesis Fig. 8.3 in kind).

Shapes: T frames of a clip, J = 16 joints, S×S crops.

Each test clip's usable frames are read by the network one after the other, each cropped where
VNect's box tracker puts it after the frame before (`pipeline.realtime.tracker`; the first frame
around the true 2D joints, where the thesis starts from multi-scale predictions). Four ways
to turn its outputs into a pose per frame, as the thesis compares them:

    raw          the location maps at the heatmap maxima
    one_euro     those, 1 Euro filtered (VNect's 3D setting: 0.8 Hz, β 0.4)
    fit          the kinematic skeleton fitted to the raw 3D and 2D joints (E_IK + E_proj +
                 E_smooth + E_depth), bone lengths the median over the clip's first frames
    fit_2d       the same fit without E_IK: the 2D joints and the smoothness alone

Per clip and way: MPJPE and PA-MPJPE (mm), 3DPCK at 150 mm, the jitter (each joint's mean
acceleration, mm a frame²) and the spread of the bone lengths (each bone's standard deviation
over the clip, mean over the bones, mm); all pelvis-centred.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.body_model.skeleton import BODYNET_JOINTS
from pipeline.clips import find_clips
from pipeline.datasets.surreal import BodyNetDataset
from pipeline.evaluation import statistics
from pipeline.evaluation.measures import PCK_THRESHOLD_MM, procrustes_error_mm
from pipeline.models.vnect import PARENTS, PELVIS, VNect
from pipeline.realtime.kinematic import WEIGHTS, KinematicFit, bone_lengths
from pipeline.realtime.one_euro import VNECT_3D, filter_sequence
from pipeline.realtime.stream import BONE_FRAMES, joints_box, read_frame
from pipeline.realtime.tracker import BoxTracker
from pipeline.training.samples import shared_intrinsics

CLIP_FPS = 30.0  # SURREAL's clips (pipeline.clips)
WAYS = ("raw", "one_euro", "fit", "fit_2d")
# the thesis' Fig. 8.3 (3DPCK, %, on its TS1 sequence)
THESIS_PCK3D = {"raw": 80.3, "one_euro": 79.7, "fit": 81.7, "fit_2d": 46.1}
MEASURES = ("joint_error_mm", "pa_joint_error_mm", "pck3d", "jitter_mm", "bone_spread_mm")
LOWER_IS_BETTER = {"joint_error_mm", "pa_joint_error_mm", "jitter_mm", "bone_spread_mm"}


def track_clip(model: VNect, clip, frames: list[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The network over a clip's `frames`, each crop (size×size) where the box tracker puts it
    after the frame before (the first around the true 2D joints) -> its pelvis-relative joints
    (T, J, 3) and 2D joints (T, J, 2, image pixels)."""
    model.eval()
    tracker = BoxTracker()
    tracker.start(joints_box(clip.info.joints2d[frames[0]]))
    joints, points = [], []
    for t in frames:
        found, relative, _ = read_frame(model, clip.rgb(t), *tracker.square(), size)
        points.append(found)
        joints.append(relative)
        tracker.update(found)
    return np.stack(joints), np.stack(points)


def ways(relative: np.ndarray, points: np.ndarray, focal: float, principal: np.ndarray) -> dict[str, np.ndarray]:
    """The four poses of a clip (`WAYS`), each (T, J, 3) pelvis-relative, from the network's."""
    lengths = bone_lengths(relative[:BONE_FRAMES])
    result = {"raw": relative, "one_euro": filter_sequence(relative, *VNECT_3D, rate=CLIP_FPS)}
    for way, weights in (("fit", WEIGHTS), ("fit_2d", (0.0, *WEIGHTS[1:]))):
        fit = KinematicFit(lengths, focal, principal, weights)
        fitted = np.stack([fit(r, p) for r, p in zip(relative, points)])
        result[way] = fitted - fitted[:, PELVIS : PELVIS + 1]
    return result


def clip_measures(pose: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """One clip's measures of a (T, J, 3) pelvis-relative pose against the truth's."""
    distances = 1000 * np.linalg.norm(pose - truth, axis=-1)
    acceleration = pose[2:] - 2 * pose[1:-1] + pose[:-2]
    lengths = np.linalg.norm(pose - pose[:, PARENTS], axis=-1)[:, [j for j in range(len(PARENTS)) if j != PELVIS]]
    return {
        "joint_error_mm": float(distances.mean()),
        "pa_joint_error_mm": float(procrustes_error_mm(pose, truth).mean()),
        "pck3d": float((distances <= PCK_THRESHOLD_MM).mean()),
        "jitter_mm": float(1000 * np.linalg.norm(acceleration, axis=-1).mean()) if len(pose) > 2 else float("nan"),
        "bone_spread_mm": float(1000 * lengths.std(axis=0).mean()),
    }


def evaluate_clips(
    model: VNect, root, split: str, sizes, count: int | None = None, progress: bool = True
) -> pd.DataFrame:
    """One row per test clip (the first `count`, in order; None: all) and way: the clip, the
    way, its frames and its measures."""
    from tqdm import tqdm

    dataset = BodyNetDataset(find_clips(root, split)[:count], sizes, frames="all")
    intrinsics = shared_intrinsics(dataset.clips)
    focal, principal = float(intrinsics[0, 0]), intrinsics[:2, 2].astype(np.float64)
    by_clip: dict = {}
    for clip, t in dataset.index:
        by_clip.setdefault(clip, []).append(t)
    rows = []
    for clip, frames in tqdm(by_clip.items(), desc=f"{split} clips", unit="clip", disable=not progress):
        if len(frames) < BONE_FRAMES:
            continue
        camera = np.stack([clip.info.to_camera(clip.info.joints3d[t])[BODYNET_JOINTS] for t in frames])
        truth = camera - camera[:, PELVIS : PELVIS + 1]
        relative, points = track_clip(model, clip, frames, sizes.input)
        clip.forget()
        for way, pose in ways(relative, points, focal, principal).items():
            rows.append({"clip": clip.stem, "way": way, "frames": len(frames), **clip_measures(pose, truth)})
    return pd.DataFrame(rows)


def table(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per way: each measure's mean over the clips with its 95 % bootstrap interval, the thesis'
    3DPCK, each measure's paired difference from the raw joints with its interval, and whether
    the thesis' ordering against the raw joints on 3DPCK holds, is reversed or is undecided."""
    clips = rows["clip"].unique()
    counts = statistics.resample_counts(len(clips), seed=seed)
    by_way = {way: rows[rows["way"] == way].set_index("clip").loc[clips] for way in WAYS}
    mean = statistics.Figure("mean", ("value",))

    def bootstrapped(values: pd.Series, name: str, scale: float) -> dict[str, float]:
        """The mean over the clips and its interval, each clip drawn as the others' rows are."""
        frame = pd.DataFrame({"value": values.to_numpy(dtype=np.float64)})
        low, high = statistics.interval(statistics.evaluate(mean, frame, counts))
        return {
            name: scale * statistics.evaluate(mean, frame),
            f"{name}_low": scale * low,
            f"{name}_high": scale * high,
        }

    result = []
    for way, frame in by_way.items():
        row = {"way": way, "clips": len(clips)}
        for measure in MEASURES:
            scale = 100.0 if measure == "pck3d" else 1.0
            row |= bootstrapped(frame[measure], measure, scale)
            if way != "raw":
                row |= bootstrapped(frame[measure] - by_way["raw"][measure], f"{measure}_vs_raw", scale)
        row["paper_pck3d"] = THESIS_PCK3D[way]
        if way != "raw":  # the thesis' ordering of this way against the raw joints, on 3DPCK
            interval = (row["pck3d_vs_raw_low"], row["pck3d_vs_raw_high"])
            row["pck3d_verdict"] = statistics.verdict(interval, THESIS_PCK3D[way] > THESIS_PCK3D["raw"], False)
        result.append(row)
    return pd.DataFrame(result).round(3)
