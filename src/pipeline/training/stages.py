"""BodyNet's training schedule, one stage per trained artifact.

pose2d, segm        RGB → 2D pose / segmentation, from scratch
pose3d              3D pose, with the 2D networks frozen
voxels              voxels, with every earlier network frozen
voxels_fv(sv)       voxels continued with the front (and side) re-projection losses
end_to_end_fv(sv)   all four networks together, from the stage-wise ones, with the
                    intermediate tasks' losses and BodyNet's weights
end_to_end_fv(sv)_without_tasks
                    the same with only the voxel and re-projection losses (the paper's
                    end-to-end training without intermediate supervision)
shape_regression    the paper's baseline: shape coefficients regressed from the voxel
                    network's inputs (L2), every earlier network frozen
depth               RGB → depth classes, SURREAL's depth network (Varol et al., "Learning
                    from Synthetic Humans", 2017); it starts from the segm stage's checkpoint
                    only to hold both of SURREAL's networks, and trains the depth one alone
part_voxels         the voxels as six body parts and background (the paper's §4.3.1): the
                    voxel network's output layers copied for each class, then trained alone
                    with a cross-entropy over the classes, every earlier network frozen
part_voxels_fvsv    continued with a front and a side re-projection loss per class (each
                    part's view its maximum along the ray, the background's its minimum)
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.training.losses import BODYNET_WEIGHTS, normalised
from pipeline.training.schedule import STAGES

SUBNETWORKS = ("pose2d", "segm", "pose3d", "voxels", "shape", "depth", "part_voxels")
END_TO_END = ("pose2d", "segm", "pose3d", "voxels")


TERM_TARGETS = {
    "pose2d": "heatmaps",
    "segm": "parts",
    "depth": "depth_classes",
    "pose3d": "volumes",
    "voxels": "voxels",
    "fv": "silhouette_front",
    "sv": "silhouette_side",
    "shape": "betas",
    "part_voxels": "part_voxels",
    "part_fv": "part_voxels",  # the views are drawn from the part voxels themselves
    "part_sv": "part_voxels",
}


@dataclass(frozen=True)
class Stage:
    name: str
    trains: tuple[str, ...]  # subnetworks updated
    weights: dict[str, float]  # loss terms and their weights
    flip: bool = False  # flips, turns and zooms of the crop: only where no 3D target is learnt
    starts_from: str | None = None  # the held subnetwork the trained one copies when no checkpoint holds it

    @property
    def targets(self) -> tuple[str, ...]:
        """What the stage's loss terms compare with (`pipeline.training.samples.TARGETS`)."""
        return tuple(dict.fromkeys(TERM_TARGETS[term] for term in self.weights))

    @property
    def wanted(self) -> tuple[str, ...]:
        outputs = {"fv": "voxels", "sv": "voxels", "part_fv": "part_voxels", "part_sv": "part_voxels"}
        return tuple(dict.fromkeys(outputs.get(term, term) for term in self.weights))


def stage(name: str) -> Stage:
    """The stage called `name` (one of STAGES)."""
    if name in ("pose2d", "segm", "depth"):
        return Stage(name, (name,), {name: 1.0}, flip=True)
    if name in ("pose3d", "voxels"):
        return Stage(name, (name,), {name: 1.0})
    if name in ("voxels_fv", "voxels_fvsv"):
        terms = ("voxels", "fv", "sv") if name.endswith("sv") else ("voxels", "fv")
        return Stage(name, ("voxels",), normalised({t: BODYNET_WEIGHTS[t] for t in terms}))
    if name.startswith("end_to_end_") and name in STAGES:
        projections = ("fv", "sv") if "fvsv" in name else ("fv",)
        tasks = () if name.endswith("_without_tasks") else ("segm", "pose2d", "pose3d")
        terms = tasks + ("voxels", *projections)
        return Stage(name, END_TO_END, normalised({t: BODYNET_WEIGHTS[t] for t in terms}))
    if name == "shape_regression":
        return Stage(name, ("shape",), {"shape": 1.0})
    if name == "part_voxels":
        return Stage(name, ("part_voxels",), {"part_voxels": 1.0}, starts_from="voxels")
    if name == "part_voxels_fvsv":
        terms = ("part_voxels", "part_fv", "part_sv")
        return Stage(name, ("part_voxels",), normalised({t: BODYNET_WEIGHTS[t] for t in terms}))
    raise ValueError(f"unknown stage {name!r}")
