"""Pools of real 2D-annotated images for the mosaics: the Leeds Sports Pose dataset (Johnson &
Everingham, "Clustered Pose and Nonlinear Appearance Models for Human Pose Estimation", BMVC
2010), one of the paper's 2D sources, as `pipeline.mosaic.engine.Pool` reads it.

LSP ships `joints.mat` (a 3 × 14 × N array: x, y in image pixels, then a flag that this reader
does not use, since every joint's position is annotated, hidden or not) and `images/im0001.jpg`
onwards. Its 14 joints become BodyNet's 16 (MPII's order): the pelvis is the hips' mean, the
thorax the shoulders'. Each image is cropped around its joints as the pipeline crops its
renders (`pipeline.datasets.surreal.crop_box`) and resized to the mosaics' side.

A pool folder holds images.npy (N, S, S, 3) uint8 RGB and joints.npy (N, 16, 2) in its pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from pipeline.datasets.surreal import crop_box, crop_transform, warp
from pipeline.errors import InputError
from pipeline.mosaic.dataset import load_arrays

# BodyNet's joints (MPII's order) from LSP's: r ankle, r knee, r hip, l hip, l knee, l ankle,
# r wrist, r elbow, r shoulder, l shoulder, l elbow, l wrist, neck, head top
LSP_TO_BODYNET = (0, 1, 2, 3, 4, 5, None, None, 12, 13, 6, 7, 8, 9, 10, 11)  # None: a mean, below
LSP_HIPS, LSP_SHOULDERS = (2, 3), (8, 9)
POOL_ARRAYS = ("images", "joints")


def bodynet_joints(lsp: np.ndarray) -> np.ndarray:
    """(N, 14, 2) LSP joints -> (N, 16, 2) BodyNet's."""
    joints = np.stack([lsp[:, k] if k is not None else np.zeros_like(lsp[:, 0]) for k in LSP_TO_BODYNET], axis=1)
    joints[:, 6] = lsp[:, list(LSP_HIPS)].mean(1)
    joints[:, 7] = lsp[:, list(LSP_SHOULDERS)].mean(1)
    return joints


def read_lsp(root: str | Path) -> tuple[list[Path], np.ndarray]:
    """The images of an unpacked LSP archive and their (N, 14, 2) joints; an InputError names
    the file that is missing or malformed."""
    from scipy.io import loadmat

    found = sorted(Path(root).rglob("joints.mat"))
    if not found:
        raise InputError(f"{root}: no joints.mat; not an unpacked LSP archive")
    try:
        joints = np.asarray(loadmat(found[0])["joints"], np.float64)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{found[0]}: not LSP's joints ({error})") from error
    if joints.ndim != 3 or joints.shape[:2] != (3, 14):
        raise InputError(f"{found[0]}: joints of shape {joints.shape}, LSP's are 3 × 14 × N")
    images = sorted((found[0].parent / "images").glob("im*.jpg"))
    if len(images) != joints.shape[2]:
        raise InputError(f"{found[0].parent / 'images'}: {len(images)} images for {joints.shape[2]} annotated")
    return images, joints[:2].transpose(2, 1, 0)


def crop(image: np.ndarray, joints: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) image, (J, 2) joints -> the (size, size, 3) crop around them and the joints in it."""
    centre, side = crop_box(joints)
    transform = crop_transform(centre, side, size)
    moved = joints @ transform[:, :2].T + transform[:, 2]
    return warp(image, transform, size, nearest=False), moved


def lsp_pool(root: str | Path, size: int, progress: bool = True) -> dict[str, np.ndarray]:
    """LSP as a pool: POOL_ARRAYS, its images cropped and resized to `size`."""
    paths, lsp = read_lsp(root)
    joints = bodynet_joints(lsp)
    images, moved = [], []
    for path, points in tqdm(list(zip(paths, joints)), desc="LSP", disable=not progress):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{path}: not a readable image")
        cropped, inside = crop(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), points, size)
        images.append(cropped)
        moved.append(inside)
    return {"images": np.stack(images), "joints": np.stack(moved)}


def is_pool(folder: str | Path) -> bool:
    """Whether `folder` is a pool folder (rather than prepared samples)."""
    return (Path(folder) / "images.npy").exists() and not (Path(folder) / "rgb.npy").exists()


def load_pool(folder: str | Path) -> dict[str, np.ndarray]:
    """A pool folder (`save_arrays` of POOL_ARRAYS); an InputError naming what is wrong."""
    found = load_arrays(folder, POOL_ARRAYS)
    images, joints = found["images"], found["joints"]
    if images.ndim != 4 or joints.shape != (len(images), 16, 2):
        raise InputError(f"{folder}: images {images.shape} and joints {joints.shape} are not a pool's")
    return found
