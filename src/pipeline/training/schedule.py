"""BodyNet's staged schedule as data: each stage starts from the checkpoints of the stages
named here, so the workflow's DAG is the schedule (no torch import: the Snakefile reads it).

    pose2d ─┐
    segm  ──┴─ pose3d ─┬─ voxels ─┬─ voxels_fv ───┬─ end_to_end_fv
                       │          │               └─ end_to_end_fv_without_tasks
                       │          └─ voxels_fvsv ─┬─ end_to_end_fvsv
                       │                          └─ end_to_end_fvsv_without_tasks
                       └─ shape_regression
                                  voxels ── part_voxels ── part_voxels_fvsv  (six body parts; Table 4.5)
    segm ── depth  (SURREAL's depth network; the checkpoint holds segm's as well)
"""

STAGE_INITS: dict[str, tuple[str, ...]] = {
    "pose2d": (),
    "segm": (),
    "pose3d": ("pose2d", "segm"),
    "voxels": ("pose3d",),
    "voxels_fv": ("voxels",),
    "voxels_fvsv": ("voxels",),
    "end_to_end_fv": ("voxels_fv",),
    "end_to_end_fvsv": ("voxels_fvsv",),
    "end_to_end_fv_without_tasks": ("voxels_fv",),
    "end_to_end_fvsv_without_tasks": ("voxels_fvsv",),
    "shape_regression": ("pose3d",),
    "depth": ("segm",),
    "part_voxels": ("voxels",),
    "part_voxels_fvsv": ("part_voxels",),
}
STAGES = tuple(STAGE_INITS)

# The learning curves' panels: each validation measure and the stages drawn in it.
CURVE_PANELS = {
    "pckh": ("pose2d",),
    "part_iou": ("segm",),
    "joint_error_mm": ("pose3d",),
    "voxel_iou": ("voxels", "voxels_fv", "voxels_fvsv"),
    "depth_rmse_mm": ("depth",),
}
