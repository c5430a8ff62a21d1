"""The mosaics' query poses: 3D poses seen from random views (Rogez & Schmid: azimuth over the
whole circle, elevation within ±45°), projected into a crop framed as the pipeline's training
crops are (`pipeline.datasets.surreal.crop_box`), with the joints the body hides from that
view. Shapes: J joints, S the crop's side."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.datasets.surreal import crop_box
from pipeline.mosaic.classify import torso_centred
from pipeline.mosaic.engine import self_occluded

CAMERA_DISTANCE = 5.0  # metres from the torso's centre: a full body in view, little perspective
FOCAL = 1000.0  # pixels: any focal length frames the same crop; this one keeps crop_box's sides above its floor
LIMB_RADIUS = 0.06  # metres: how far from a bone's axis the body hides what lies behind it


@dataclass(frozen=True)
class QueryPose:
    """A 3D pose as one view shows it."""

    pixels: np.ndarray  # (J, 2) in the crop
    camera: np.ndarray  # (J, 3) metres, the torso's centre at the origin, the view's axes (y down, z away)
    visible: np.ndarray  # (J,) bool: not hidden by the body


def turned(joints: np.ndarray, azimuth: float, elevation: float) -> np.ndarray:
    """(J, 3) camera-frame joints (y down) -> the same about the torso's centre, turned by
    `azimuth` about the vertical and tilted by `elevation` (radians) about the horizontal."""
    centred = torso_centred(joints)
    ca, sa, ce, se = np.cos(azimuth), np.sin(azimuth), np.cos(elevation), np.sin(elevation)
    yaw = np.array([[ca, 0.0, sa], [0.0, 1.0, 0.0], [-sa, 0.0, ca]])
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, ce, -se], [0.0, se, ce]])
    return centred @ (pitch @ yaw).T


def project(camera: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """(J, 3) torso-centred joints -> (J, 2) their image from CAMERA_DISTANCE in a crop of side
    `size` framed as BodyNet frames its crops, and the crop's pixels per metre at the torso."""
    depth = camera[:, 2] + CAMERA_DISTANCE
    image = FOCAL * camera[:, :2] / depth[:, None]
    centre, side = crop_box(image)
    scale = size / side
    pixels = (image - centre) * scale + size / 2 - 0.5
    return pixels, scale * FOCAL / CAMERA_DISTANCE


def query_pose(joints: np.ndarray, rng: np.random.Generator, size: int, elevation: float = 45.0) -> QueryPose:
    """(J, 3) joints (metres, camera frame) seen from a random view: azimuth U(0°, 360°),
    elevation U(±`elevation`°)."""
    return view_of(joints, rng.uniform(0.0, 2 * np.pi), np.radians(rng.uniform(-elevation, elevation)), size)


def view_of(joints: np.ndarray, azimuth: float, elevation: float, size: int) -> QueryPose:
    """(J, 3) joints (metres, camera frame) seen turned by `azimuth` and tilted by `elevation`
    (radians; 0, 0: the camera's own view)."""
    camera = turned(joints, azimuth, elevation)
    pixels, per_metre = project(camera, size)
    scaled = np.concatenate([pixels, camera[:, 2:] * per_metre], axis=-1)
    return QueryPose(pixels, camera, ~self_occluded(scaled, LIMB_RADIUS * per_metre))
