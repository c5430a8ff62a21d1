"""3D pose as K-way classification (Rogez & Schmid, IJCV 2018, §3) and the regression
baseline they compare it with.

The training set's 3D poses, each in its camera's frame and centred on the torso (the mean
of hips and shoulders), are clustered by k-means into K classes; an AlexNet-like network
(narrower at the default) scores the classes and answers the top class's mean pose. The
regression baseline has the same network with 3J outputs: the torso-centred joints in
metres. Measured on the test crops: the answer's error, the best of the top five classes'
(the paper's "best of top-5") and the lower bound, the class nearest to the truth.

Shapes: N images of side S, J joints, K classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

HEADS = ("classification", "regression")
TORSO = (2, 3, 12, 13)  # BodyNet's hips and shoulders (MPII order)


def torso_centred(joints: np.ndarray) -> np.ndarray:
    """(..., J, 3) -> the same less the mean of the hips and shoulders."""
    return joints - joints[..., list(TORSO), :].mean(-2, keepdims=True)


@dataclass(frozen=True)
class PoseClasses:
    """K classes of torso-centred 3D poses: (K, J, 3) their means."""

    centres: np.ndarray

    @classmethod
    def fit(cls, poses: np.ndarray, count: int, seed: int) -> PoseClasses:
        """k-means (k-means++ starts, drawn with `seed`) on (N, J, 3) torso-centred poses."""
        from sklearn.cluster import KMeans

        if not 1 <= count <= len(poses):
            raise ValueError(f"{count} classes asked of {len(poses)} poses")
        flat = poses.reshape(len(poses), -1).astype(np.float64)
        kmeans = KMeans(n_clusters=count, n_init=3, random_state=seed).fit(flat)
        return cls(kmeans.cluster_centers_.reshape(count, *poses.shape[1:]))

    def assign(self, poses: np.ndarray) -> np.ndarray:
        """(N, J, 3) -> (N,) each pose's nearest class (by the mean joint distance)."""
        return self.distances(poses).argmin(1)

    def distances(self, poses: np.ndarray) -> np.ndarray:
        """(N, J, 3) -> (N, K) the mean joint distance of each pose to each class's mean."""
        return np.linalg.norm(poses[:, None] - self.centres[None], axis=-1).mean(-1)


class PoseNet(nn.Module):
    """AlexNet's layout (five convolutions, three pooling steps, two hidden fully connected
    layers with dropout) at `width` times its channels: (B, 3, S, S) -> (B, outputs)."""

    def __init__(self, outputs: int, width: float = 1.0) -> None:
        super().__init__()
        c = [max(8, round(n * width)) for n in (96, 256, 384, 384, 256)]
        hidden = max(64, round(4096 * width))
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], 11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c[0], c[1], 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(c[1], c[2], 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], 3, padding=1),
            nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d(3),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(c[4] * 9, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, outputs),
        )

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(rgb))


@dataclass(frozen=True)
class ClassifierSettings:
    """The network, its head and its training (the config's `mosaic.classifier`)."""

    head: str  # "classification" (K-way) or "regression"
    classes: int  # K
    width: float  # AlexNet's channels scaled
    iterations: int
    batch_size: int
    learning_rate: float
    seed: int

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        for name in ("classes", "iterations", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def as_input(images: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255


def build(settings: ClassifierSettings, joints: int) -> PoseNet:
    outputs = settings.classes if settings.head == "classification" else 3 * joints
    torch.manual_seed(settings.seed)
    return PoseNet(outputs, settings.width)


def train(
    images: np.ndarray, poses: np.ndarray, classes: PoseClasses, settings: ClassifierSettings, progress: bool = True
) -> tuple[PoseNet, list[dict]]:
    """Train on (N, S, S, 3) images with their (N, J, 3) torso-centred poses (metres), labelled
    with `classes`: the network and the training loss every tenth of the way. Adam; images
    mirrored at random, left and right joints exchanged."""
    from tqdm import tqdm

    from pipeline.training.samples import FLIP_JOINTS

    mirrored_poses = poses[:, FLIP_JOINTS] * np.array([-1.0, 1.0, 1.0])
    labels = torch.from_numpy(classes.assign(poses))
    mirrored_labels = torch.from_numpy(classes.assign(mirrored_poses))
    model = build(settings, poses.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    rng = np.random.default_rng(settings.seed)
    history, losses = [], []
    model.train()
    for step in tqdm(range(settings.iterations), desc=f"{settings.head}", disable=not progress):
        rows = np.sort(rng.choice(len(images), min(settings.batch_size, len(images)), replace=False))
        flip = rng.random(len(rows)) < 0.5
        batch = np.array(images[rows])
        batch[flip] = batch[flip, :, ::-1]
        outputs = model(as_input(batch))
        if settings.head == "classification":
            target = torch.where(torch.from_numpy(flip), mirrored_labels[rows], labels[rows])
            loss = F.cross_entropy(outputs, target)
        else:
            target = np.where(flip[:, None, None], mirrored_poses[rows], poses[rows])
            loss = F.mse_loss(outputs, torch.from_numpy(target.reshape(len(rows), -1)).float())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
        if (step + 1) % max(settings.iterations // 10, 1) == 0 or step + 1 == settings.iterations:
            history.append({"iteration": step + 1, "loss": float(np.mean(losses))})
            losses = []
    return model.eval(), history


@torch.no_grad()
def predict(
    model: PoseNet, classes: PoseClasses, head: str, images: np.ndarray, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, J, 3) the answered poses, and for classification (N, 5) the top five classes."""
    answers, tops = [], []
    joints = classes.centres.shape[1]
    for start in range(0, len(images), batch_size):
        outputs = model(as_input(images[start : start + batch_size])).float()
        if head == "classification":
            top = outputs.topk(min(5, outputs.shape[1]), dim=1).indices.numpy()
            answers.append(classes.centres[top[:, 0]])
            tops.append(top)
        else:
            answers.append(outputs.numpy().reshape(len(outputs), joints, 3))
    return np.concatenate(answers), (np.concatenate(tops) if tops else None)


def errors_mm(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, J, 3), (N, J, 3) torso-centred poses (metres) -> (N,) mean joint distance (mm)."""
    return 1000 * np.linalg.norm(predicted - truth, axis=-1).mean(-1)


def pose_measures(answers: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: the torso-centred mean joint error and the error after the best similarity
    (PA-MPJPE), in mm: the paper's protocols P2 and P1."""
    from pipeline.evaluation.measures import procrustes_error_mm

    return {"joint_error_mm": errors_mm(answers, truth), "pa_joint_error_mm": procrustes_error_mm(answers, truth)}


def measure(
    model: PoseNet, classes: PoseClasses, head: str, images: np.ndarray, truth: np.ndarray
) -> dict[str, np.ndarray]:
    """Per test image: `pose_measures` of the answer; with classification also the best of the
    top five classes' error and whether the top class is the truth's nearest; for either head
    the lower bound, the error of the truth's nearest class."""
    answers, top = predict(model, classes, head, images)
    distances = 1000 * classes.distances(truth)  # (N, K) mm
    nearest = distances.argmin(1)
    found = pose_measures(answers, truth) | {"joint_error_mm_lower_bound": distances.min(1)}
    if top is not None:
        found["joint_error_mm_top5"] = np.take_along_axis(distances, top, axis=1).min(1)
        found["class_accuracy"] = (top[:, 0] == nearest).astype(float)
    return found


def references(classes: PoseClasses, mean_pose: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """The reference rows' per-image measures on the (N, J, 3) `truth`, as `measure` gives a
    classifier's: the constant, the training poses' (J, 3) `mean_pose` for every image, and the
    oracle, the truth's nearest class (the classifier's lower bound). Each gives one answer,
    which is its best of five and its own lower bound; its class is the one nearest to it."""
    nearest = classes.assign(truth)
    answers = {"constant": np.broadcast_to(mean_pose, truth.shape), "oracle": classes.centres[nearest]}
    rows = {}
    for name, answer in answers.items():
        found = pose_measures(answer, truth)
        found["joint_error_mm_top5"] = found["joint_error_mm_lower_bound"] = found["joint_error_mm"]
        found["class_accuracy"] = (classes.assign(np.asarray(answer)) == nearest).astype(float)
        rows[name] = found
    return rows
