"""Image-based synthesis (Rogez & Schmid, "Image-based Synthesis for Deep 3D Human Pose
Estimation", IJCV 2018, §2): a new training image for a 2D pose, stitched from the pool's
images whose local pose matches it best, without a renderer.

For each joint j of the query pose p, every pool pose q is aligned to p at j (its joint j
moved onto p's, turned so that the joint i directly connected to j and farthest from it in p
lies on p's line from j to i: Eq. 2), and scored by the distances of all its joints to p's,
each weighted by the inverse of its distance to joint j in both poses (Eq. 3); the best pool
image, warped by the same alignment, is joint j's candidate (Eq. 4). Joints hidden by the body
itself are not searched. Each candidate's probability map interpolates exp(−d²/σ²) of its
aligned joints' distances to p's barycentrically over the Delaunay triangles of those joints
(the image's corners added as vertices, at the candidate's mean value, so that the background
too is drawn from the image that matches best overall); the index map is their argmax
(Eq. 5). The pose-aware blend then mixes, at each pixel, the candidates in proportion to
their share of a square window around it whose side grows with the pixel's distance to the
skeleton, α + β·d (Eqs. 7–9): seams vanish off the body, edges stay on it.

Shapes: N pool images of side S (the mosaic's), J joints, n candidates (visible joints).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from pipeline.body_model.skeleton import BODYNET_BONES


@dataclass(frozen=True)
class MosaicSettings:
    """The engine's choices (the paper's at 220 pixels: α 6, β 0.25; σ it leaves out)."""

    sigma: float  # pixels: a candidate's weight at a joint falls as exp(−d²/σ²) of its distance to the query's
    alpha: float  # pixels: the blending window's side on the skeleton
    beta: float  # the window's growth with the distance to the skeleton
    blend: bool  # False: the index map's copy-paste alone (the paper's Table 6 ablation)

    def __post_init__(self) -> None:
        for name in ("sigma", "alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.beta < 0:
            raise ValueError(f"beta must be at least 0, got {self.beta}")


@dataclass(frozen=True)
class Mosaic:
    """A synthesised image and how it was made."""

    image: np.ndarray  # (S, S, 3) uint8
    index: np.ndarray  # (S, S) the candidate each pixel was copied from (0..n-1)
    sources: np.ndarray  # (n,) the pool image of each candidate
    joints: np.ndarray  # (n,) the query joint each candidate was matched at
    probabilities: np.ndarray  # (n, S, S)


def neighbours(bones: tuple[tuple[int, int], ...] = BODYNET_BONES, count: int = 16) -> list[list[int]]:
    """Each joint's directly connected joints."""
    found: list[list[int]] = [[] for _ in range(count)]
    for a, b in bones:
        found[a].append(b)
        found[b].append(a)
    return found


NEIGHBOURS = neighbours()


def anchor_joint(pose: np.ndarray, joint: int) -> int:
    """(J, 2) pose -> the joint directly connected to `joint` farthest from it (Eq. 2's i)."""
    return max(NEIGHBOURS[joint], key=lambda other: float(np.linalg.norm(pose[other] - pose[joint])))


def joint_weights(poses: np.ndarray, joint: int) -> np.ndarray:
    """(..., J, 2) poses -> (..., J): 1/distance of each joint to `joint`, summing to one
    (the joint itself, which the alignment places exactly, weighs nothing)."""
    distance = np.linalg.norm(poses - poses[..., joint : joint + 1, :], axis=-1)
    inverse = np.where(distance > 1e-6, 1.0 / np.maximum(distance, 1e-6), 0.0)
    inverse[..., joint] = 0.0
    return inverse / np.maximum(inverse.sum(-1, keepdims=True), 1e-12)


def alignments(query: np.ndarray, pool: np.ndarray, joint: int) -> np.ndarray:
    """(J, 2) query, (N, J, 2) pool poses -> (N, 2, 3) the rigid maps (rotation, then
    translation) that put each pool pose's `joint` on the query's and turn its anchor joint
    onto the query's direction from `joint` to its anchor (Eq. 2)."""
    anchor = anchor_joint(query, joint)
    target = query[anchor] - query[joint]
    source = pool[:, anchor] - pool[:, joint]
    angle = np.arctan2(target[1], target[0]) - np.arctan2(source[:, 1], source[:, 0])
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (N, 2, 2)
    shift = query[joint] - np.einsum("nij,nj->ni", rotation, pool[:, joint])
    return np.concatenate([rotation, shift[..., None]], axis=-1)


def apply(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(..., 2, 3) maps, (..., J, 2) points -> (..., J, 2) the points mapped."""
    m = transforms[..., None, :, :]  # (..., 1, 2, 3)
    x, y = points[..., 0], points[..., 1]
    return np.stack(
        [m[..., 0, 0] * x + m[..., 0, 1] * y + m[..., 0, 2], m[..., 1, 0] * x + m[..., 1, 1] * y + m[..., 1, 2]], -1
    )


def match_distances(
    query: np.ndarray, pool: np.ndarray, joint: int, pool_weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 3 for every pool pose: (N,) D_j(p, q) and (N, 2, 3) the alignments it was taken
    after. `pool_weights`: the pool's (N, J) `joint_weights` at `joint`, when computed once."""
    transforms = alignments(query, pool, joint)
    aligned = apply(transforms, pool)
    pool_weights = joint_weights(pool, joint) if pool_weights is None else pool_weights
    weights = joint_weights(query, joint)[None] + pool_weights
    return (weights * np.sqrt(((aligned - query[None]) ** 2).sum(-1))).sum(-1), transforms


@dataclass(frozen=True)
class Pool:
    """The 2D-annotated images a mosaic is cut from: (N, S, S, 3) uint8 images, their (N, J, 2)
    poses (pixels), each joint's (J, N, J) `joint_weights`, computed once, and (N,) each image's
    group (its clip: a mosaic of a group's pose is cut from the other groups' images)."""

    images: np.ndarray
    poses: np.ndarray
    weights: np.ndarray
    groups: np.ndarray

    @classmethod
    def of(cls, images: np.ndarray, poses: np.ndarray, groups: np.ndarray | None = None) -> Pool:
        if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 3:
            raise ValueError(f"a pool's images are (N, S, S, 3), got {images.shape}")
        if poses.shape[0] != len(images) or poses.ndim != 3 or poses.shape[2] != 2 or len(images) == 0:
            raise ValueError(f"a pool's poses are (N, J, 2) for its {len(images)} images, got {poses.shape}")
        groups = np.arange(len(images)) if groups is None else np.asarray(groups)
        if groups.shape != (len(images),):
            raise ValueError(f"a pool's groups are (N,) for its {len(images)} images, got {groups.shape}")
        poses = poses.astype(np.float64)
        weights = np.stack([joint_weights(poses, joint) for joint in range(poses.shape[1])])
        return cls(images, poses, weights, groups)

    @property
    def size(self) -> int:
        return self.images.shape[1]


def self_occluded(joints: np.ndarray, radius: float, bones=BODYNET_BONES) -> np.ndarray:
    """(J, 3) camera-frame joints (x, y in the image's pixels, z the depth, any unit shared by
    `radius`) -> (J,) bool: a joint lying behind a bone it is not on, within `radius` of the
    bone in the image (the limbs' thickness): "simple 3D reasoning" for the joints whose
    image shows another body part."""
    hidden = np.zeros(len(joints), bool)
    for a, b in bones:
        start, end = joints[a], joints[b]
        span = end[:2] - start[:2]
        along = np.clip(((joints[:, :2] - start[:2]) @ span) / max(float(span @ span), 1e-12), 0.0, 1.0)
        nearest = start[None] + along[:, None] * (end - start)[None]
        close = np.linalg.norm(joints[:, :2] - nearest[:, :2], axis=-1) < radius
        behind = joints[:, 2] > nearest[:, 2] + radius
        mask = close & behind
        mask[[a, b]] = False
        hidden |= mask
    return hidden


def probability_map(aligned: np.ndarray, query: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(J, 2) a candidate's aligned joints and the query's -> (S, S): exp(−d²/σ²) at each joint,
    interpolated barycentrically over the Delaunay triangles of the aligned joints and the
    image's corners (valued at the joints' mean)."""
    values = np.exp(-np.sum((aligned - query) ** 2, axis=-1) / sigma**2)
    corners = np.array([[-1, -1], [size, -1], [-1, size], [size, size]], float)
    vertices = np.concatenate([aligned, corners])
    values = np.concatenate([values, np.full(4, values.mean())])
    return barycentric(vertices, values, size)


def barycentric(vertices: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """(V, 2) points with (V,) values -> (S, S) their linear interpolation over the points'
    Delaunay triangles at every pixel centre (0 outside their hull): in each triangle the
    plane through its corners' values."""
    triangulation = Delaunay(vertices)
    corners = triangulation.points[triangulation.simplices]  # (T, 3, 2)
    system = np.concatenate([corners, np.ones((*corners.shape[:2], 1))], axis=-1)  # rows (x, y, 1)
    planes = np.einsum("tij,tj->ti", np.linalg.pinv(system), values[triangulation.simplices])  # (T, 3)
    ids = triangle_ids(triangulation, size)
    y, x = np.mgrid[0:size, 0:size]
    plane = planes[ids]  # (S, S, 3); ids of -1 are masked below
    return np.where(ids >= 0, plane[..., 0] * x + plane[..., 1] * y + plane[..., 2], 0.0)


def triangle_ids(triangulation: Delaunay, size: int) -> np.ndarray:
    """(S, S) the triangle each pixel centre lies in (-1: none): the triangles rasterised, the
    pixels along their edges found exactly."""
    ids = np.full((size, size), -1, np.int32)
    edges = np.zeros((size, size), np.uint8)
    corners = np.round(triangulation.points[triangulation.simplices] * 16).astype(np.int32)  # 4 fractional bits
    for k, triangle in enumerate(corners):
        cv2.fillConvexPoly(ids, triangle, int(k), lineType=cv2.LINE_8, shift=4)
    cv2.polylines(edges, list(corners), True, 1, thickness=1, lineType=cv2.LINE_8, shift=4)
    # the pixels the edges pass near are looked up exactly: rasterising rounds them either way
    y, x = np.nonzero(edges)
    ids[y, x] = triangulation.find_simplex(np.stack([x, y], -1).astype(float))
    return ids


def skeleton_distance(pose: np.ndarray, size: int, bones=BODYNET_BONES) -> np.ndarray:
    """(J, 2) pose -> (S, S) each pixel's distance (pixels) to the drawn skeleton."""
    drawn = np.full((size, size), 255, np.uint8)
    for a, b in bones:
        start = tuple(int(round(v)) for v in pose[a])
        end = tuple(int(round(v)) for v in pose[b])
        cv2.line(drawn, start, end, 0, 1)
    return cv2.distanceTransform(drawn, cv2.DIST_L2, 3)


def blend_weights(index: np.ndarray, count: int, sides: np.ndarray) -> np.ndarray:
    """(S, S) index map, (S, S) window sides -> (count, S, S) each candidate's share of the
    square window around each pixel (Eq. 8), from summed-area tables."""
    size = index.shape[0]
    half = np.maximum(np.round(sides / 2).astype(int), 0)
    y, x = np.mgrid[0:size, 0:size]
    top, bottom = np.clip(y - half, 0, size), np.clip(y + half + 1, 0, size)
    left, right = np.clip(x - half, 0, size), np.clip(x + half + 1, 0, size)
    onehot = (index[None] == np.arange(count)[:, None, None]).astype(np.float64)
    table = np.pad(onehot.cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))
    sums = table[:, bottom, right] - table[:, top, right] - table[:, bottom, left] + table[:, top, left]
    return sums / sums.sum(0, keepdims=True)


def synthesise(
    query: np.ndarray, visible: np.ndarray, pool: Pool, settings: MosaicSettings, group: int | None = None
) -> Mosaic:
    """A mosaic for the (J, 2) query pose (the mosaic's pixels, the pool's size) from `pool`;
    only the `visible` (J,) joints are searched, and none of the images of `group`."""
    if query.shape != pool.poses.shape[1:]:
        raise ValueError(f"a query pose is {pool.poses.shape[1:]} as the pool's, got {query.shape}")
    searched = np.flatnonzero(visible)
    if len(searched) == 0:
        raise ValueError("a query pose needs at least one visible joint")
    excluded = pool.groups == group
    if excluded.all():
        raise ValueError(f"every pool image is of group {group}; none is left to cut from")
    size = pool.size
    sources, warped, probabilities = [], [], []
    for joint in searched:
        distances, transforms = match_distances(query, pool.poses, joint, pool.weights[joint])
        best = int(np.argmin(np.where(excluded, np.inf, distances)))
        sources.append(best)
        warped.append(cv2.warpAffine(pool.images[best], transforms[best], (size, size), borderMode=cv2.BORDER_REFLECT))
        aligned = apply(transforms[best], pool.poses[best])
        probabilities.append(probability_map(aligned, query, size, settings.sigma))
    probabilities = np.stack(probabilities)
    index = probabilities.argmax(0)
    candidates = np.stack(warped).astype(np.float32)  # (n, S, S, 3)
    if settings.blend:
        sides = settings.alpha + settings.beta * skeleton_distance(query, size)
        weights = blend_weights(index, len(searched), sides)
        image = np.einsum("nyx,nyxc->yxc", weights, candidates)
    else:
        image = np.take_along_axis(candidates, index[None, ..., None], axis=0)[0]
    return Mosaic(
        image=np.clip(np.round(image), 0, 255).astype(np.uint8),
        index=index,
        sources=np.array(sources),
        joints=searched,
        probabilities=probabilities,
    )
