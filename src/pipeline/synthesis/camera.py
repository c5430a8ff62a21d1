"""SURREAL's world, camera and body placement.

SURREAL renders in Blender. Its world has y pointing down (the floor at y = 0, heads at
negative y) and the camera, placed at `camLoc`, looks along the world's -x axis. The
released annotations follow from two fixed matrices (gulvarol/surreal,
misc/3Dto2D/getExtrinsicBlender.m):

    R_world→camera = [[0, 0, -1], [0, 1, 0], [-1, 0, 0]],  t = -R camLoc,
    joints2D = round(K [R | t] joints3D),  K = [[600, 0, 160], [0, 600, 120], [0, 0, 1]]

in pixels, 0-based, x right, y down (the matrices themselves live in `pipeline.clips`, which
reads clips without this package). That R is a reflection (det -1), so SURREAL's images
are mirror images of the SMPL mesh in the stored pose: SMPL's left joints appear on the
person's right, which is why BodyNet puts SMPL's left joints in MPII's right slots. This
module reproduces those conventions exactly, mirror included, so code written for SURREAL
reads the data made here.

A body with SMPL pose θ (the global rotation θ[0:3] expressed in the motion capture's z-up
world), clip rotation `zrot` and root translation is placed in the world by

    X_world = R_x(90°) R_z(zrot) X_mocap,

the rotation BodyNet applies (R90 R_z(zrot) R(θ[0:3]) in its smpl_utils) composed with the
camera's reflection.

A clip seen through another camera (`orbit_extrinsics`, other frame sizes or focal lengths)
stores it in its `_info.mat`; readers take a clip's camera from `pipeline.clips.ClipInfo`
(the stored one, else this fixed one), not from `intrinsics()` and `extrinsics(camLoc)`.
"""

from __future__ import annotations

import numpy as np

from pipeline.clips import SURREAL_FOCAL, SURREAL_HEIGHT, SURREAL_WIDTH, SURREAL_WORLD_TO_CAMERA

WIDTH, HEIGHT = SURREAL_WIDTH, SURREAL_HEIGHT
FOCAL = SURREAL_FOCAL  # 60 mm lens on a 32 mm sensor, 320 px wide

WORLD_TO_CAMERA = SURREAL_WORLD_TO_CAMERA
MOCAP_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # R_x(90°)


def intrinsics(width: int = WIDTH, height: int = HEIGHT, focal: float = FOCAL) -> np.ndarray:
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def extrinsics(cam_loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World → camera rotation (3, 3) and translation (3,) of a camera at `cam_loc`."""
    rotation = WORLD_TO_CAMERA
    return rotation, -rotation @ np.asarray(cam_loc, dtype=np.float64)


def project(points: np.ndarray, cam_loc: np.ndarray, k: np.ndarray | None = None) -> np.ndarray:
    """Pixel coordinates (..., 2) of world points (..., 3), before rounding."""
    rotation, translation = extrinsics(cam_loc)
    camera = points @ rotation.T + translation
    pixels = camera @ (intrinsics() if k is None else k).T
    return pixels[..., :2] / pixels[..., 2:3]


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def body_to_world(zrot: float) -> np.ndarray:
    """Rotation taking the motion capture's z-up world to SURREAL's world for a clip."""
    return MOCAP_TO_WORLD @ rotation_z(zrot)


def camera_location(pelvis_world: np.ndarray, distance: float) -> np.ndarray:
    """The camera `distance` metres from the pelvis along +x, looking at it (along -x)."""
    return np.asarray(pelvis_world, dtype=np.float64) + np.array([distance, 0.0, 0.0])


def orbit_extrinsics(target: np.ndarray, direction: np.ndarray, distance: float) -> tuple[np.ndarray, ...]:
    """A camera `distance` metres from `target` along the horizontal `direction` (x, 0, z),
    looking back at it: its location (3,), world → camera rotation (3, 3) and translation (3,).

    SURREAL's camera turned about the world's vertical (y) axis, reflection included, so every
    view of a scene keeps SURREAL's image convention; direction (1, 0, 0) gives `extrinsics`."""
    dx, _, dz = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    # R_y maps (1, 0, 0) onto the direction; the canonical camera sees through it turned back
    turn = np.array([[dx, 0.0, -dz], [0.0, 1.0, 0.0], [dz, 0.0, dx]])
    location = np.asarray(target, dtype=np.float64) + distance * np.array([dx, 0.0, dz])
    rotation = WORLD_TO_CAMERA @ turn.T
    return location, rotation, -rotation @ location


def project_through(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2) of world points (..., 3) seen by any camera, before rounding."""
    pixels = (points @ rotation.T + translation) @ k.T
    return pixels[..., :2] / pixels[..., 2:3]
