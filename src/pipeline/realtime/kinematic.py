"""VNect's kinematic skeleton fit (Mehta's thesis §5.3): per frame, the skeleton whose bone
lengths are fixed, posed and placed in the camera so that it agrees with the network's
pelvis-relative 3D joints and its 2D joints, and moves smoothly from the frames before:

    E = E_IK + 44 E_proj + 0.07 E_smooth + 0.11 E_depth

    E_IK      the skeleton's pelvis-relative joints against the network's (metres)
    E_proj    the skeleton's joints projected by the camera against the 2D joints (pixels,
              divided by the focal length: a shift the size of one metre at unit depth)
    E_smooth  each joint's acceleration, from the two frames before (metres)
    E_depth   the pelvis' change of depth from the frame before (metres)

Shapes: J = 16 joints in MPII's order; T frames. The skeleton is parametrised by the pelvis'
camera-frame position and each bone's direction (two angles), so every pose it takes keeps the
bone lengths exactly (a bone's twist moves no joint and is left out). Each frame is solved by
Levenberg–Marquardt (scipy's least_squares), started from the frame before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from pipeline.models.vnect import PARENTS, PELVIS

# the thesis' weights of E_IK, E_proj, E_smooth, E_depth
WEIGHTS = (1.0, 44.0, 0.07, 0.11)
# Levenberg–Marquardt's evaluations a frame, at most: from the frame before it needs 10–30;
# scipy's own bound (100 per parameter per Jacobian column) lets a degenerate frame (an
# untrained network's joints, all in one place) run for seconds
MAX_STEPS = 40


def chain_order() -> list[int]:
    """The joints other than the pelvis, each after its parent."""
    order, placed = [], {PELVIS}
    while len(order) < len(PARENTS) - 1:
        for joint, parent in enumerate(PARENTS):
            if joint not in placed and parent in placed:
                order.append(joint)
                placed.add(joint)
    return order


ORDER = chain_order()


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(..., J, 3) joints -> (J,) each joint's distance to its parent (the pelvis: 0), the median
    over the leading axes (frames)."""
    lengths = np.linalg.norm(joints - joints[..., PARENTS, :], axis=-1)
    return np.median(lengths.reshape(-1, len(PARENTS)), axis=0)


def directions(angles: np.ndarray) -> np.ndarray:
    """(J - 1, 2) polar and azimuthal angles -> (J - 1, 3) unit vectors."""
    polar, azimuth = angles[:, 0], angles[:, 1]
    return np.stack([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], axis=-1)


def angles_of(vectors: np.ndarray) -> np.ndarray:
    """(J - 1, 3) vectors -> (J - 1, 2) the angles `directions` turns back into them."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)
    return np.stack([np.arccos(np.clip(unit[:, 2], -1, 1)), np.arctan2(unit[:, 1], unit[:, 0])], axis=-1)


def ancestry() -> np.ndarray:
    """(J, J - 1) 1 where the k-th bone of ORDER lies on the chain from the pelvis to joint j."""
    chains = np.zeros((len(PARENTS), len(ORDER)))
    for joint in range(len(PARENTS)):
        link = joint
        while link != PELVIS:
            chains[joint, ORDER.index(link)] = 1.0
            link = PARENTS[link]
    return chains


CHAINS = ancestry()


def pose(parameters: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(3 + 2 (J - 1),) the pelvis' position and the bones' angles -> (J, 3) camera-frame joints."""
    bones = lengths[ORDER, None] * directions(parameters[3:].reshape(-1, 2))
    return parameters[:3] + CHAINS @ bones


def pose_jacobian(parameters: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(J, 3, P) the derivatives of `pose`'s joints by its P = 3 + 2 (J - 1) parameters."""
    angles = parameters[3:].reshape(-1, 2)
    polar, azimuth = angles[:, 0], angles[:, 1]
    by_polar = np.stack([np.cos(polar) * np.cos(azimuth), np.cos(polar) * np.sin(azimuth), -np.sin(polar)], axis=-1)
    by_azimuth = np.stack([-np.sin(polar) * np.sin(azimuth), np.sin(polar) * np.cos(azimuth), 0 * polar], axis=-1)
    scaled = lengths[ORDER, None]
    bones = np.stack([scaled * by_polar, scaled * by_azimuth], axis=-1)  # (J - 1, 3, 2)
    jacobian = np.zeros((len(PARENTS), 3, len(parameters)))
    jacobian[:, :, :3] = np.eye(3)
    jacobian[:, :, 3:] = np.einsum("jk,kca->jcka", CHAINS, bones).reshape(len(PARENTS), 3, -1)
    return jacobian


def parameters_of(joints: np.ndarray) -> np.ndarray:
    """(J, 3) camera-frame joints -> the parameters whose `pose` points every bone as they do."""
    vectors = np.stack([joints[joint] - joints[PARENTS[joint]] for joint in ORDER])
    return np.concatenate([joints[PELVIS], angles_of(vectors).ravel()])


def project(joints: np.ndarray, focal: float, principal: np.ndarray) -> np.ndarray:
    """(J, 3) camera-frame joints -> (J, 2) pixels."""
    return focal * joints[:, :2] / joints[:, 2:3] + principal


@dataclass
class KinematicFit:
    """Fits the skeleton of bone `lengths` (J,) frame after frame, for a camera of `focal`
    (pixels) and `principal` point (2,)."""

    lengths: np.ndarray
    focal: float
    principal: np.ndarray
    weights: tuple[float, float, float, float] = WEIGHTS

    def __post_init__(self) -> None:
        self.history: list[np.ndarray] = []  # the fitted joints of the frames before (J, 3)
        self.parameters: np.ndarray | None = None

    def residuals(self, parameters: np.ndarray, relative: np.ndarray, points: np.ndarray) -> np.ndarray:
        w_ik, w_proj, w_smooth, w_depth = np.sqrt(self.weights)
        joints = pose(parameters, self.lengths)
        terms = [
            w_ik * ((joints - joints[PELVIS]) - (relative - relative[PELVIS])).ravel(),
            w_proj * ((project(joints, self.focal, self.principal) - points) / self.focal).ravel(),
        ]
        if len(self.history) >= 2:
            terms.append(w_smooth * (joints - 2 * self.history[-1] + self.history[-2]).ravel())
        if self.history:
            terms.append(w_depth * np.array([joints[PELVIS, 2] - self.history[-1][PELVIS, 2]]))
        return np.concatenate(terms)

    def jacobian(self, parameters: np.ndarray, relative: np.ndarray, points: np.ndarray) -> np.ndarray:
        """`residuals`' derivatives by the parameters, (R, P): Levenberg–Marquardt needs one a
        step instead of P + 1 evaluations of the residuals."""
        w_ik, w_proj, w_smooth, w_depth = np.sqrt(self.weights)
        joints = pose(parameters, self.lengths)
        moves = pose_jacobian(parameters, self.lengths)  # (J, 3, P)
        depth = joints[:, 2:3, None]
        image = (moves[:, :2] - joints[:, :2, None] / depth * moves[:, 2:3]) / depth  # d(x/z, y/z)
        blocks = [
            w_ik * (moves - moves[PELVIS]).reshape(-1, len(parameters)),
            w_proj * image.reshape(-1, len(parameters)),
        ]
        if len(self.history) >= 2:
            blocks.append(w_smooth * moves.reshape(-1, len(parameters)))
        if self.history:
            blocks.append(w_depth * moves[PELVIS, 2][None])
        return np.concatenate(blocks)

    def start(self, relative: np.ndarray, points: np.ndarray) -> np.ndarray:
        """The first frame's starting point: the network's pose, placed at the depth where its
        projected size matches the 2D joints' spread."""
        centred = relative - relative[PELVIS]
        spread_3d = np.linalg.norm(centred[:, :2] - centred[:, :2].mean(0), axis=-1).mean()
        spread_2d = np.linalg.norm(points - points.mean(0), axis=-1).mean()
        depth = self.focal * spread_3d / max(spread_2d, 1e-6)
        pelvis = np.append((points[PELVIS] - self.principal) * depth / self.focal, depth)
        return parameters_of(centred + pelvis)

    def __call__(self, relative: np.ndarray, points: np.ndarray) -> np.ndarray:
        """One frame: the network's pelvis-relative joints (J, 3, metres) and 2D joints (J, 2,
        pixels) -> the fitted skeleton's camera-frame joints (J, 3)."""
        start = self.start(relative, points) if self.parameters is None else self.parameters
        solution = least_squares(
            self.residuals, start, jac=self.jacobian, args=(relative, points), method="lm", max_nfev=MAX_STEPS
        )
        self.parameters = solution.x
        joints = pose(solution.x, self.lengths)
        self.history = [*self.history[-1:], joints]
        return joints


def fit_sequence(
    relative: np.ndarray, points: np.ndarray, lengths: np.ndarray, focal: float, principal: np.ndarray
) -> np.ndarray:
    """(T, J, 3) pelvis-relative joints and (T, J, 2) 2D joints -> (T, J, 3) fitted camera-frame joints."""
    fit = KinematicFit(lengths, focal, np.asarray(principal, float))
    return np.stack([fit(r, p) for r, p in zip(relative, points)])
