"""The paper's SMPLify row (Liu, Akhtar & Mian, 2019, Tables 2 and 3) as this project has it:
BodyNet's SMPLify++ (`pipeline.fitting.smplify`) on the 3D-pose stage's networks, frame by frame.

Every frame of every test clip is cropped as BodyNet's test crops are (`crop_frames`: a square
about the true 2D joints, `pipeline.datasets.surreal.crop_box`, resized to the networks' sizes)
and read by the networks (2D pose, segmentation, 3D pose); the body the other rows pose with is
fitted to the silhouette's contour, the 2D joints and the 3D joints (the volumes' peaks), the
root's depth the true one, exactly as BodyNet's evaluation fits it (`BodyFitter('smplify')`,
the settings of `evaluation.fit`). The clips' frames are cropped here rather than prepared as
BodyNet's samples (`pipeline.training.samples.prepare`): the mesh-video clips have no depth
pass to make its depth targets from, and BodyNet's test set skips frames whose crop centre
leaves the image, where a clip's frames must stay consecutive (the acceleration error).

Frames: the fit is made in SURREAL's camera frame with x negated (`evaluation.frames.mirror`),
where bodies have their true handedness; that is the table's proper camera frame
(`data.FLIP_X`), so the fitted rotations are the row's as they are, and pelvis-relative once
posed (`evaluate.clip_measures`).

Shapes: N clips, T frames, n = N·T crops, S input size, s heatmap size, J = 16 joints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from pipeline.body_model.model import BodyModel
from pipeline.body_model.skeleton import BODYNET_JOINTS
from pipeline.clips import Clip
from pipeline.datasets.surreal import SMPL_TO_BODYNET_PART, SampleSizes, crop_box, crop_transform, depth_bins, warp
from pipeline.errors import InputError
from pipeline.evaluation.network import BodyFitter, predict, read_joints
from pipeline.fitting.body_fit import FitResult, FitSettings
from pipeline.training.samples import SampleSet, make_batch, shared_intrinsics
from pipeline.video_mesh.evaluate import Bodies

WANTED = ("pose2d", "pose3d", "segm")  # what SMPLify++ reads (`evaluation.choices.NEEDS`)
PART_LABELS = np.concatenate([[0], SMPL_TO_BODYNET_PART]).astype(np.uint8)  # SMPL's 24 parts → BodyNet's 14
# per-crop arrays and their types, as `pipeline.training.samples.prepare` stores them
LAYOUT = {
    "rgb": np.uint8,
    "parts": np.uint8,
    "joints": np.float32,
    "bins": np.int8,
    "joints_camera": np.float32,
    "camera_rotation": np.float32,
    "root_depth": np.float32,
    "crop_centre": np.float32,
    "crop_side": np.float32,
    "pose": np.float32,
    "shape": np.float32,
    "gender": np.int8,
    "zrot": np.float32,
    "clip": np.int32,
    "frame": np.int32,
}


def frame_crop(clip: Clip, t: int, sizes: SampleSizes) -> dict[str, np.ndarray]:
    """Frame t of a clip cropped as BodyNet's samples are (`pipeline.datasets.surreal.bodynet_sample`):
    the crop (S, S, 3), the parts (s, s), the 16 joints on the heatmap (J, 2) and their depth
    bins (J,), and what the fit and its measures need (camera-frame joints, root depth, crop)."""
    info = clip.info
    centre, side = crop_box(info.joints2d[t])
    to_heatmap = crop_transform(centre, side, sizes.heatmap)
    joints_camera = info.to_camera(info.joints3d[t])
    return {
        "rgb": warp(clip.rgb(t), crop_transform(centre, side, sizes.input), sizes.input, nearest=False),
        "parts": warp(PART_LABELS[clip.segm(t).astype(np.uint8)], to_heatmap, sizes.heatmap, nearest=True),
        "joints": info.joints2d[t][BODYNET_JOINTS] @ to_heatmap[:, :2].T + to_heatmap[:, 2],
        "bins": depth_bins(info.joints3d[t], info.rotation)[BODYNET_JOINTS],
        "joints_camera": joints_camera[BODYNET_JOINTS],
        "camera_rotation": info.rotation,
        "root_depth": joints_camera[0, 2],
        "crop_centre": centre,
        "crop_side": side,
        "pose": info.pose[t],
        "shape": info.shape[t],
        "gender": info.gender[t],
        "zrot": info.zrot[t],
        "frame": t,
    }


def crop_frames(info_paths: list[Path], sizes: SampleSizes, progress: bool = True) -> SampleSet:
    """Every frame of every clip (`_info.mat` paths, in order), clip by clip, as samples in
    memory (the arrays BodyNet's batches and fits read; no depth, voxels or flow)."""
    clips = [Clip(Path(path)) for path in info_paths]
    if not clips:
        raise InputError("no clip to crop")
    intrinsics = shared_intrinsics(clips)
    crops = []
    for index, clip in enumerate(tqdm(clips, desc="crops", unit="clip", disable=not progress)):
        crops += [frame_crop(clip, t, sizes) | {"clip": index} for t in range(clip.info.frames)]
        clip.forget()  # one decoded video in memory at a time
    arrays = {name: np.stack([crop[name] for crop in crops]).astype(dtype) for name, dtype in LAYOUT.items()}
    return SampleSet(
        arrays
        | {
            "clip_names": np.array([clip.stem for clip in clips]),
            "sizes": np.array([sizes.input, sizes.heatmap, sizes.voxels]),
            "focal": np.float32(intrinsics[0, 0]),
            "principal": intrinsics[:2, 2].astype(np.float32),
        }
    )


def fitted_bodies(fit: FitResult) -> Bodies:
    """The fits' rotations (n, 24, 3, 3) and shapes (n, S) in the table's frame: the fit's own
    (see the module's docstring), the translation dropped (the table is pelvis-relative)."""
    rotvecs = fit.pose.detach().double().reshape(-1, 3).cpu().numpy()
    rotations = torch.as_tensor(Rotation.from_rotvec(rotvecs).as_matrix(), dtype=torch.float32)
    return Bodies(rotations.reshape(len(fit.pose), 24, 3, 3), fit.betas.detach().float().cpu())


@torch.no_grad()
def smplify_bodies(
    network,
    samples: SampleSet,
    body: BodyModel,
    settings: FitSettings,
    batch_size: int,
    mirrored: bool = False,
    progress: bool = True,
) -> Bodies:
    """SMPLify++ on every crop (n), `batch_size` crops fitted at once: the network (a BodyNet
    with trained 2D pose, segmentation and 3D pose, or a reference predictor) read as the
    evaluation reads it (`mirrored`: each crop and its mirror image), `body` fitted with
    `settings` (SMPLify++'s own objective laid over them, as `BodyFitter` does)."""
    if isinstance(network, torch.nn.Module):
        network.eval()
    a = samples.arrays
    focal, principal = float(a["focal"]), torch.as_tensor(a["principal"])
    fitter = BodyFitter("smplify", samples, settings)
    # a reference predictor answers with the batch's truth, which is drawn for it; a network
    # reads the crop alone
    targets = ("heatmaps", "volumes") if hasattr(network, "predict") else ()
    fitted = []
    for start in tqdm(range(0, len(samples), batch_size), desc="SMPLify++", unit="batch", disable=not progress):
        indices = np.arange(start, min(start + batch_size, len(samples)))
        batch = make_batch(samples, indices, targets=targets)
        outputs = predict(network, batch, WANTED, mirrored)
        joints, _ = read_joints(outputs["pose3d"].float(), batch, focal, principal, None)
        with torch.enable_grad():
            fit = fitter.fit(body, list(range(len(indices))), indices, outputs, joints)
        fitted.append(fitted_bodies(fit))
    return Bodies(torch.cat([f.rotations for f in fitted]), torch.cat([f.betas for f in fitted]))


def smplify_clips(clips: int, count: int) -> np.ndarray:
    """The indices of `count` of `clips` test clips spread evenly over them (0: every clip): a
    frame's fit takes 0.5-0.9 s on two CPU cores, so the row may take a share of the test set."""
    if count <= 0 or count >= clips:
        return np.arange(clips)
    return np.unique(np.linspace(0, clips - 1, count).round().astype(int))


def clip_bodies(bodies: Bodies, clips: int, frames: int) -> Bodies:
    """Per-crop bodies (n = N·T, clip by clip) → per clip and frame (N, T, ...)."""
    if len(bodies.rotations) != clips * frames:
        raise InputError(f"{len(bodies.rotations)} fitted frames for {clips} clips of {frames} frames")
    return Bodies(
        bodies.rotations.reshape(clips, frames, *bodies.rotations.shape[1:]),
        bodies.betas.reshape(clips, frames, -1),
    )
