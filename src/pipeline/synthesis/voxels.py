"""Voxel ground truth as BodyNet makes it.

BodyNet voxelises the posed mesh with binvox (`-e -fit -d 128`): orthographically, in a grid
fitted to the mesh's bounding box whose longest side spans the resolution, every voxel that
touches a triangle is occupied (the exact, not sampled, test), and the interior is filled.
Here the mesh is taken in the camera's frame, so the grid's x and y follow the image's
columns and rows; it is stored cropped to the body, axes (z, y, x) with z counted towards
the camera, as BodyNet's training labels are laid out. `align_to_box` then scales and places
it under the person's silhouette box, as BodyNet's loader does.

Shapes: F triangles, R resolution.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

TRIANGLE_BATCH = 4096


def _min3(a, b, c):
    return np.minimum(np.minimum(a, b), c)


def _max3(a, b, c):
    return np.maximum(np.maximum(a, b), c)


def _triangle_box_overlap(triangles: np.ndarray, half: float) -> np.ndarray:
    """Separating-axis test of triangles (N, 3, 3), given relative to box centres, against
    cubes of half-side `half` (Akenine-Möller). Returns (N,) bool."""
    # one contiguous (N,) array per vertex and coordinate: elementwise arithmetic throughout
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = (
        [np.ascontiguousarray(triangles[:, k, axis]) for axis in range(3)] for k in range(3)
    )
    overlap = (_min3(x0, x1, x2) <= half) & (_max3(x0, x1, x2) >= -half)
    overlap &= (_min3(y0, y1, y2) <= half) & (_max3(y0, y1, y2) >= -half)
    overlap &= (_min3(z0, z1, z2) <= half) & (_max3(z0, z1, z2) >= -half)
    vertices = ((x0, y0, z0), (x1, y1, z1), (x2, y2, z2))
    for a, b in ((0, 1), (1, 2), (2, 0)):  # the edges v_b - v_a
        (xa, ya, za), (xb, yb, zb) = vertices[a], vertices[b]
        ex, ey, ez = xb - xa, yb - ya, zb - za
        # box axis × edge: x × e = (0, -ez, ey), y × e = (ez, 0, -ex), z × e = (-ey, ex, 0)
        for project, radius in (
            (lambda x, y, z: ey * z - ez * y, np.abs(ey) + np.abs(ez)),
            (lambda x, y, z: ez * x - ex * z, np.abs(ex) + np.abs(ez)),
            (lambda x, y, z: ex * y - ey * x, np.abs(ex) + np.abs(ey)),
        ):
            p = [project(*vertex) for vertex in vertices]
            overlap &= (_min3(*p) <= half * radius) & (_max3(*p) >= -half * radius)
    # the triangle's plane
    e1x, e1y, e1z = x1 - x0, y1 - y0, z1 - z0
    e2x, e2y, e2z = x2 - x0, y2 - y0, z2 - z0
    nx, ny, nz = e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x
    distance = nx * x0 + ny * y0 + nz * z0
    overlap &= np.abs(distance) <= half * (np.abs(nx) + np.abs(ny) + np.abs(nz))
    return overlap


def surface_voxels(
    grid_triangles: np.ndarray, shape: tuple[int, int, int], triangle_labels: np.ndarray | None = None
) -> np.ndarray:
    """Occupancy (X, Y, Z) of every unit voxel a triangle touches; triangles (F, 3, 3) are in
    voxel units (voxel (i, j, k) spans [i, i+1] × [j, j+1] × [k, k+1]). With
    `triangle_labels` (F,) of 1..255, uint8: each touched voxel the label of a triangle
    touching it."""
    touched = np.zeros(shape, dtype=bool if triangle_labels is None else np.uint8)
    labels = np.ones(len(grid_triangles), touched.dtype) if triangle_labels is None else triangle_labels
    low = np.clip(np.floor(grid_triangles.min(axis=1)).astype(np.int64), 0, np.array(shape) - 1)
    high = np.clip(np.floor(grid_triangles.max(axis=1)).astype(np.int64), 0, np.array(shape) - 1)
    extent = high - low + 1
    counts = extent.prod(axis=1)
    # a triangle inside one voxel touches it: no test needed
    single = counts == 1
    touched[tuple(low[single].T)] = labels[single]
    multi = np.flatnonzero(~single)
    for first in range(0, len(multi), TRIANGLE_BATCH):
        ids = multi[first : first + TRIANGLE_BATCH]
        batch = counts[ids]
        tri = np.repeat(ids, batch)
        local = np.arange(len(tri)) - np.repeat(np.cumsum(batch) - batch, batch)
        ex = extent[tri]
        offset = np.stack([local % ex[:, 0], (local // ex[:, 0]) % ex[:, 1], local // (ex[:, 0] * ex[:, 1])], 1)
        voxel = low[tri] + offset
        hit = _triangle_box_overlap(grid_triangles[tri] - (voxel + 0.5)[:, None, :], 0.5)
        touched[tuple(voxel[hit].T)] = labels[tri[hit]]
    return touched


def voxelize(
    vertices: np.ndarray, faces: np.ndarray, resolution: int, vertex_labels: np.ndarray | None = None
) -> np.ndarray:
    """BodyNet's voxels of a closed mesh (vertices in the camera's frame: x right, y down,
    z away from the camera): bool (Z, Y, X), the longest side `resolution` voxels, z
    counted towards the camera, cropped to the body. With `vertex_labels` (V,) of 1..255,
    uint8 part voxels instead (0 outside): a surface voxel takes the label of a triangle
    touching it (a triangle's label: that of two of its corners, else its first's), an
    inner voxel that of the surface voxel nearest it.

    BodyNet voxelises each part's mesh apart (its holes closed by hand) and lets the torso
    win where parts overlap; the nearest surface labels the same voxels wherever the parts'
    solids do not overlap, with no part meshes to close."""
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    size = (high - low).max() / resolution
    shape = tuple(int(n) for n in np.clip(np.ceil((high - low) / size - 1e-9), 1, resolution))
    grid = (vertices - low) / size
    if vertex_labels is None:
        solid = ndimage.binary_fill_holes(surface_voxels(grid[faces], shape))
    else:
        corners = np.asarray(vertex_labels, np.uint8)[faces]
        majority = np.where(corners[:, 1] == corners[:, 2], corners[:, 1], corners[:, 0])
        surface = surface_voxels(grid[faces], shape, majority)
        nearest = ndimage.distance_transform_edt(surface == 0, return_distances=False, return_indices=True)
        solid = np.where(ndimage.binary_fill_holes(surface > 0), surface[tuple(nearest)], 0).astype(np.uint8)
    return np.ascontiguousarray(solid.transpose(2, 1, 0)[::-1])


def align_to_box(voxels: np.ndarray, box: tuple[int, int, int, int], resolution: int) -> np.ndarray:
    """Place cropped voxels (Z, Y, X) in a (R, R, R) grid under a silhouette box.

    `box` = (x_min, y_min, x_max, y_max) in the grid's pixels (inclusive). As BodyNet's
    loader: one isotropic nearest-neighbour scale that makes the voxels' taller (or wider)
    side match the box's, the result pasted at the box's top-left corner, centred in z.
    """
    depth, height, width = voxels.shape
    x0, y0, x1, y1 = box
    factor = (y1 - y0) / height if width <= height else (x1 - x0) / width
    factor = max(factor, 1e-6)
    size = [max(1, int(round(n * factor))) for n in (depth, height, width)]
    index = [np.minimum((np.arange(n) / factor).astype(np.int64), m - 1) for n, m in zip(size, voxels.shape)]
    scaled = voxels[np.ix_(*index)]
    out = np.zeros((resolution,) * 3, dtype=voxels.dtype)
    z0 = (resolution - size[0]) // 2
    zs, ze = max(z0, 0), min(z0 + size[0], resolution)
    ys, xs = min(max(y0, 0), resolution - 1), min(max(x0, 0), resolution - 1)
    ye, xe = min(ys + size[1], resolution), min(xs + size[2], resolution)
    out[zs:ze, ys:ye, xs:xe] = scaled[zs - z0 : ze - z0, : ye - ys, : xe - xs]
    return out
