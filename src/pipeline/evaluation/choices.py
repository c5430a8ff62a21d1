"""The evaluation's named choices, without its machinery: the commands that offer them (and
those that only tabulate) parse their options without importing torch."""

METHODS = ("voxels", "smplify", "shape_regression", "tasks")  # how a body is had from a network, or none
PLACEMENTS = ("true_box", "crop")  # where the fitted body lies when it is measured
READOUTS = ("peak", "exemplars")  # how the 3D joints are read from the joint volumes
NEEDS = {  # the trained subnetworks each method reads
    "voxels": {"voxels", "pose3d"},
    "smplify": {"pose2d", "segm", "pose3d"},
    "shape_regression": {"shape", "pose3d"},
    "tasks": set(),
}
