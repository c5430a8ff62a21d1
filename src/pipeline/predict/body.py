"""From an image to a fitted body: the person's box, the crop, the networks, the fit.

Shapes: J = 16 joints (BodyNet's order), s heatmap size, D voxel size, V vertices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from pipeline.body_model.skeleton import BODYNET_BONES, BODYNET_JOINTS
from pipeline.datasets.surreal import DEPTH_BIN_SIZE, crop_box, crop_transform, search_boxes, warp
from pipeline.errors import InputError
from pipeline.evaluation.frames import crop_to_image, mirror, voxels_to_camera
from pipeline.fitting.body_fit import FitSettings
from pipeline.fitting.voxel_fit import fit_to_voxels, pad_points, surface_points
from pipeline.training.metrics import peaks, volume_peaks

# the crop's side over the person box's longer side: training crops the joints' box widened
# (`crop_box`), about 1.15 times the height of a standing person's silhouette
CROP_MARGIN = 1.15
# a person found without a given box is cropped again, as training cropped: first on the box
# of what the segmentation network calls body (from the whole frame, the first look sees the
# person small), then twice on BodyNet's crop of the 2D joints the pose network finds there.
# On the rendered test frames this took the surface error from 543 to 428 mm (the evaluation's
# own crop: 338), and more passes did not help: pipeline.predict.check measures it.
REFINEMENTS = ("segmentation", "joints", "joints")
MIN_BODY_SHARE = 0.01
# a person looked for without a given box is looked for in the HOG detector's boxes and in
# `search_boxes`' windows, read by the networks this many at once
SEARCH_BATCH = 16
# a body with more than this share of its segmented pixels at the image's edge is cut off
EDGE_SHARE = 0.02


@dataclass
class Prediction:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    # "box" (given), "detector" (OpenCV's HOG people detector) or "network search" (a window
    # over the image, `find_person`), then ", refined" when it was cut again on the networks'
    # outputs (REFINEMENTS)
    found_by: str
    image_size: tuple[int, int]  # (H, W)
    crop_centre: np.ndarray  # (2,) image pixels
    crop_side: float  # image pixels
    focal: float
    focal_given: bool
    root_depth: float  # metres: estimated from the bones' lengths
    joints2d: np.ndarray  # (J, 2) image pixels
    joints3d: np.ndarray  # (J, 3) camera metres
    parts: np.ndarray  # (s, s) part of each heatmap pixel of the crop, 0 = background
    voxels: np.ndarray  # (D, D, D) occupancy probabilities, indexed (z, y, x)
    voxel_points: np.ndarray  # (N, 3) the voxels' iso-surface in camera metres
    pose: np.ndarray  # (72,) the fitted body's pose (axis-angle), in the fit's mirrored frame
    betas: np.ndarray  # (S,)
    transl: np.ndarray  # (3,)
    vertices: np.ndarray  # (V, 3) the fitted body in camera metres
    confidence: dict[str, float]
    # False when what the segmentation calls body reaches the image's edge: the person is cut
    # off by the frame, and BodyNet, trained on whole bodies, guesses the rest
    whole_body: bool
    # (D, D, D) each voxel's part (pipeline.body_model.skeleton.VOXEL_PARTS, 0 = none), indexed
    # (z, y, x), where the checkpoint holds the part voxel network
    part_voxels: np.ndarray | None = None


def detections(image: np.ndarray) -> list[tuple[float, float, float, float]]:
    """OpenCV's HOG people detections (x0, y0, x1, y1), each narrowed to the person it holds."""
    height, width = image.shape[:2]
    if height < 128 or width < 64:  # smaller than the detector's window
        return []
    detector = cv2.HOGDescriptor()
    detector.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    scale = min(1.0, 800.0 / max(height, width))  # the detector's cost grows with the pixels
    small = cv2.resize(image, None, fx=scale, fy=scale) if scale < 1 else image
    found, _ = detector.detectMultiScale(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), winStride=(8, 8))
    # HOG's windows hold the person with a margin of about a tenth of their height
    return [
        (float(x + 0.1 * w), float(y + 0.05 * h), float(x + 0.9 * w), float(y + 0.95 * h))
        for x, y, w, h in (np.asarray(r, np.float64) / scale for r in found)
    ]


@torch.no_grad()
def find_person(network, image: np.ndarray) -> tuple[tuple, str]:
    """The person's box (x0, y0, x1, y1) in an image without one, and what found it: among
    the HOG detector's boxes and windows over the whole image at several scales
    (`search_boxes`), the one whose crop the 2D-pose network is surest of (the mean over
    joints of each heatmap's maximum): the networks judge where a whole body lies as they
    were trained to see one."""
    found = detections(image)
    candidates = found + search_boxes(*image.shape[:2])
    size = network.config.input_size
    scores = []
    for start in range(0, len(candidates), SEARCH_BATCH):
        crops = np.stack([crop(image, box, size)[0] for box in candidates[start : start + SEARCH_BATCH]])
        scores.append(pose_certainty(run_networks(network, crops, ("pose2d",))["pose2d"]))
    best = int(np.argmax(np.concatenate(scores)))
    return candidates[best], "detector" if best < len(found) else "network search"


def pose_certainty(heatmaps: torch.Tensor) -> np.ndarray:
    """(B, J, s, s) 2D heatmaps → (B,) the mean over joints of each heatmap's maximum."""
    return heatmaps.flatten(2).amax(2).mean(1).numpy()


def body_box(parts: np.ndarray, centre: np.ndarray, side: float) -> tuple | None:
    """The box (x0, y0, x1, y1, image pixels) of what the segmentation `parts` (s, s) of a
    crop calls body, or None when that is under 1 % of the crop (no person to refine on)."""
    mask = parts > 0
    if mask.mean() < MIN_BODY_SHARE:
        return None
    ys, xs = np.nonzero(mask)
    corners = np.array([[xs.min() - 0.5, ys.min() - 0.5], [xs.max() + 0.5, ys.max() + 0.5]])
    (x0, y0), (x1, y1) = crop_to_image(corners, parts.shape[-1], centre, side)
    return (float(x0), float(y0), float(x1), float(y1))


def cut_off(parts: np.ndarray, centre: np.ndarray, side: float, image_size: tuple[int, int]) -> bool:
    """Whether the body the segmentation `parts` (s, s) of a crop (`centre`, `side`) finds
    reaches the edge of its image (H, W): more than EDGE_SHARE of its pixels lie within one
    heatmap pixel of the edge, or beyond it (the crop's padding)."""
    ys, xs = np.nonzero(parts > 0)
    if len(xs) == 0:
        return False
    size = parts.shape[-1]
    points = crop_to_image(np.stack([xs, ys], axis=1).astype(np.float64), size, centre, side)
    margin = side / size
    height, width = image_size
    near = (
        (points[:, 0] < margin - 0.5)
        | (points[:, 1] < margin - 0.5)
        | (points[:, 0] > width - 0.5 - margin)
        | (points[:, 1] > height - 0.5 - margin)
    )
    return bool(near.mean() > EDGE_SHARE)


def box_of_crop(centre: np.ndarray, side: float) -> tuple[float, float, float, float]:
    """The person box whose crop (`crop`) has this centre (2,) and side: crop's inverse."""
    half = side / CROP_MARGIN / 2
    return (float(centre[0] - half), float(centre[1] - half), float(centre[0] + half), float(centre[1] + half))


def refined_box(outputs: dict, k: int, centre: np.ndarray, side: float, by: str) -> tuple | None:
    """Image k's person box from the networks' outputs on its crop (`centre`, `side`): the
    segmentation's body box, or BodyNet's crop of the predicted 2D joints (`by`)."""
    if by == "segmentation":
        return body_box(outputs["segm"][k].argmax(0).numpy(), centre, side)
    joints = crop_to_image(peaks(outputs["pose2d"][k : k + 1])[0].numpy(), outputs["pose2d"].shape[-1], centre, side)
    return box_of_crop(*crop_box(joints))


def crop(image: np.ndarray, box: tuple, size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The network's input (size, size, 3) uint8 around `box`, its centre (2,) and side."""
    x0, y0, x1, y1 = box
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    side = max(x1 - x0, y1 - y0, 1.0) * CROP_MARGIN
    return warp(image, crop_transform(centre, side, size), size, nearest=False), centre, side


def rest_bone_lengths(model) -> np.ndarray:
    """(len(BODYNET_BONES),) metres: the mean-shape body's bones at rest."""
    with torch.no_grad():
        joints = model(torch.zeros(1, model.num_betas), torch.zeros(1, 72)).joints[0, BODYNET_JOINTS].double().numpy()
    return np.array([np.linalg.norm(joints[a] - joints[b]) for a, b in BODYNET_BONES])


def estimate_root_depth(pixels: np.ndarray, depths: np.ndarray, focal: float, lengths: np.ndarray) -> float:
    """The distance at which joints seen at image offsets `pixels` (J, 2) from the principal
    point, with depths `depths` (J,) relative to the root, have bones of `lengths`: a bone
    spans (Δu·d/f, Δv·d/f, Δz), so summing squared lengths over the bones,
    d² Σ|Δuv|²/f² + Σ Δz² = Σ L², solved for d."""
    spans = np.array([pixels[a] - pixels[b] for a, b in BODYNET_BONES])
    reaches = np.array([depths[a] - depths[b] for a, b in BODYNET_BONES])
    across = max(float(np.square(lengths).sum() - np.square(reaches).sum()), 0.25 * float(np.square(lengths).sum()))
    return focal * float(np.sqrt(across / max(float(np.square(spans).sum()), 1e-9)))


@torch.no_grad()
def run_networks(network, crops: np.ndarray, wanted: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """The last stack's outputs for crops (B, S, S, 3) uint8: of the `wanted` networks, by
    default 'pose2d', 'segm', 'pose3d', 'voxels' and 'part_voxels' where the network holds
    it trained."""
    device = next(network.parameters()).device
    rgb = torch.from_numpy(crops).to(torch.float32).div(255.0).permute(0, 3, 1, 2).to(device)
    if wanted is None:
        parts = ("part_voxels",) if "part_voxels" in getattr(network, "trained", ()) else ()
        wanted = ("pose2d", "segm", "pose3d", "voxels", *parts)
    outputs = network(rgb=rgb, wanted=wanted)
    return {name: stacks[-1].float().cpu() for name, stacks in outputs.items()}


def predict_bodies(
    network,
    model,
    images: list[np.ndarray],
    boxes: list[tuple | None],
    focals: list[float | None],
    settings: FitSettings,
) -> list[Prediction]:
    """One Prediction per RGB image (H, W, 3) uint8, the person in its box (or found), seen
    through `focals` (pixels; None: the image's longer side, a 53° field of view)."""
    for focal in focals:
        if focal is not None and not 0 < focal < math.inf:  # 0 or below: the body at or behind the camera
            raise InputError(f"a focal length of {focal} pixels: it must be a positive number")
    found, crops, outputs = locate_people(network, images, boxes)
    decoded = decode_outputs(outputs, images, found, crops, focals, rest_bone_lengths(model))
    return fit_bodies(model, decoded, settings)


def locate_people(
    network, images: list[np.ndarray], boxes: list[tuple | None]
) -> tuple[list[tuple], list[tuple], dict[str, torch.Tensor]]:
    """Each image's person: its box and how it was found, its crop (pixels, centre, side) and
    the networks' outputs on that crop. A box found (not given) is refined from the networks'
    own 2D pose and parts (REFINEMENTS), and those images run again."""
    size = network.config.input_size
    found = [
        (tuple(float(v) for v in box), "box") if box is not None else find_person(network, image)
        for image, box in zip(images, boxes)
    ]
    crops = [crop(image, box, size) for image, (box, _) in zip(images, found)]
    outputs = run_networks(network, np.stack([c[0] for c in crops]))
    for by in REFINEMENTS:
        moved = []  # the images whose crop this pass changes: only they are run again
        for k in (k for k, (_, how) in enumerate(found) if how != "box"):
            box = refined_box(outputs, k, crops[k][1], crops[k][2], by)
            if box is not None:
                found[k] = (box, found[k][1].removesuffix(", refined") + ", refined")
                crops[k] = crop(images[k], box, size)
                moved.append(k)
        if moved:
            again = run_networks(network, np.stack([crops[k][0] for k in moved]))
            for name in outputs:
                outputs[name][moved] = again[name]
    return found, crops, outputs


def decode_outputs(
    outputs: dict[str, torch.Tensor],
    images: list[np.ndarray],
    found: list[tuple],
    crops: list[tuple],
    focals: list[float | None],
    lengths: np.ndarray,
) -> list[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    """Per image, what the networks say in the image's camera: (the Prediction's fields but
    the fit's, the voxels' surface points (n, 3) in the camera frame, their weights (n,), the
    3D joints (J, 3)). The root's depth comes from the rest skeleton's bone `lengths`."""
    heat = peaks(outputs["pose2d"]).numpy()
    volumes = volume_peaks(outputs["pose3d"]).numpy()
    probabilities = torch.sigmoid(outputs["voxels"]).numpy()
    parts = outputs["segm"].argmax(dim=1).numpy()
    part_voxels = outputs["part_voxels"].argmax(dim=1).numpy().astype(np.uint8) if "part_voxels" in outputs else None
    heatmap_size, bins = outputs["pose2d"].shape[-1], outputs["pose3d"].shape[2]
    decoded = []
    for k, (image, (box, how), (_, centre, side)) in enumerate(zip(images, found, crops)):
        height, width = image.shape[:2]
        focal = float(focals[k]) if focals[k] is not None else float(max(height, width))
        principal = np.array([width / 2, height / 2])
        joints2d = crop_to_image(heat[k], heatmap_size, centre, side)
        uv = crop_to_image(volumes[k][:, :2], heatmap_size, centre, side)
        towards = (volumes[k][:, 2] - bins // 2) * DEPTH_BIN_SIZE  # metres nearer the camera than the root
        depth = estimate_root_depth(uv - principal, towards, focal, lengths)
        z = depth - towards
        joints3d = np.stack([(uv[:, 0] - principal[0]) * z / focal, (uv[:, 1] - principal[1]) * z / focal, z], axis=1)
        points, weights = surface_points(probabilities[k])
        camera_points = voxels_to_camera(points, probabilities.shape[-1], centre, side, depth, focal, principal)
        confidence = {
            "pose2d": float(outputs["pose2d"][k].flatten(1).amax(1).mean()),
            "segm": float(torch.softmax(outputs["segm"][k], 0).amax(0).mean()),
            "voxels": float(np.mean(np.maximum(probabilities[k], 1 - probabilities[k]))),
        }
        fields = dict(
            box=box,
            found_by=how,
            image_size=(height, width),
            crop_centre=centre,
            crop_side=float(side),
            focal=focal,
            focal_given=focals[k] is not None,
            root_depth=depth,
            joints2d=joints2d,
            joints3d=joints3d,
            parts=parts[k],
            voxels=probabilities[k],
            voxel_points=camera_points,
            confidence=confidence,
            whole_body=not cut_off(parts[k], centre, side, (height, width)),
            part_voxels=None if part_voxels is None else part_voxels[k],
        )
        decoded.append((fields, camera_points, weights, joints3d))
    return decoded


def fit_bodies(
    model, decoded: list[tuple[dict, np.ndarray, np.ndarray, np.ndarray]], settings: FitSettings
) -> list[Prediction]:
    """The body model fitted to each image's voxels and joints together (in the mirrored
    frame the fit works in), as Predictions."""
    points, weights = pad_points([mirror(d[1]) for d in decoded], [d[2] for d in decoded])
    targets = torch.as_tensor(np.stack([mirror(d[3]) for d in decoded]), dtype=torch.float32)
    fit = fit_to_voxels(model, points, weights, targets, settings)
    vertices = mirror(fit.vertices).numpy()
    return [
        Prediction(
            **fields,
            pose=fit.pose[k].numpy(),
            betas=fit.betas[k].numpy(),
            transl=fit.transl[k].numpy(),
            vertices=vertices[k],
        )
        for k, (fields, *_) in enumerate(decoded)
    ]
