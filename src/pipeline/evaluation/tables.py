"""The papers' evaluation tables, ours beside their own numbers (BodyNet: Varol et al.,
"BodyNet: Volumetric Inference of 3D Human Body Shapes", 2018; SURREAL: Varol et al.,
"Learning from Synthetic Humans", 2017).

    bodynet_table   Table 4.2: surface error (mm) and voxel IoU (%), full / s20 / s10
    bodynet_inputs  Table 4.1: the voxel network fed different inputs
    bodynet_tasks   Table 4.6: the intermediate tasks trained alone and end to end
    pose3d_inputs   Table 4.8: the 3D-pose network fed different inputs
    motion_inputs   Doersch & Zisserman's motion ablation: the 3D-pose network fed RGB, flow (rendered
                    or estimated) and 2D keypoints, tested on a domain it never saw; the
                    paper's column is its PA-MPJPE on real video (3DPW), an ordering to compare
    bodynet_part_voxels
                    Table 4.5: the voxels as six body parts, each part's, the background's and
                    the foreground's voxel IoU (%); the paper's figures are its network with
                    re-projection losses, whose gain (Table 4.2's) is judged as a trend
    surreal_table   SURREAL's own networks (§3.5.2): part IoU and pixel accuracy over the 14
                    parts (%), depth RMSE and st-RMSE on the person's pixels (mm)
    surreal_data_study
                    SURREAL's amount-of-data study (§3.5.6, Figure 3-9 left): the same networks
                    trained on every frame of 1 %, 10 % and 100 % of the training clips; the
                    paper gives curves, not numbers, and its ordering (more data, better)
    surreal_clothing_study
                    SURREAL's clothing study (§3.5.6, Figure 3-9 right): the same networks trained
                    on the training clips rendered again with 1, 10 and 100 outfits (all else
                    as drawn before); curves in the paper, its ordering (more outfits, better)
    surreal_compression_study
                    SURREAL's frames as its users meet them: the same networks trained and
                    tested on mp4 or on lossless frames of the same renders; the ordering its
                    users report (lossless, better), and each network on the other's frames
    vnect_table     Mehta's real-time 3D pose (VNect): location maps read at the heatmaps'
                    maxima on a SelecSLS backbone, against direct regression on the same
                    backbone (Table 5.1), both again on crops whose corners are jittered
                    (Table 5.2), beside BodyNet's volumetric 3D pose on the same test crops;
                    the thesis' figures are on MPI-INF-3DHP
    mosaic_crossover
                    Rogez & Schmid's Table 1 in kind: the K-way pose classifier against the
                    regression baseline as the training set grows (a share of the mosaics, then
                    real + mosaic); the paper's smallest set (17k real images) set beside our
                    smallest share, its 190k synthetic and synthetic + real beside our full sets
    mosaic_sources  Their Fig. 7 and Table 3: the classifier trained on real crops, mosaics,
                    renders of the same poses ("surreal") and their mixes, all of the same poses
                    from the same views with the same classes
    mosaic_blending Their Table 6: mosaics with and without the pose-aware blend, of thinned
                    training poses from random views (the paper's CMU protocol, its figures) and
                    of the real crops' own poses and views
    mosaic_classes  Their Fig. 8: the classifier's error, best of top five and lower bound
                    against the number of classes K

Each row names the evaluation (a folder of `summary.json` and `images.csv` under the
evaluation results) it is read from; each column a figure of that summary, with its 95 %
bootstrap interval over the test images (`<column>_low`, `<column>_high`). IoU and PCKh are
given in %. Where the paper gives no number the paper's cell is empty. The body tables hold
two reference rows (`pipeline.evaluation.references`): the training set's constant, the
floor a learned row must beat, and the truth fitted as the networks' outputs are, the
ceiling of the representation and the fit.

Orderings: for each pair of rows the paper ranks (by its numbers, or by the trend it reports
where it gives none), and for each learned row against the constant, the paired bootstrap
interval of our difference decides whether the ordering `holds`, is `reversed` or is
`undecided` (`pipeline.evaluation.statistics`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import ConfigError
from pipeline.errors import InputError, read_json_record
from pipeline.evaluation import statistics
from pipeline.evaluation.measures import figures

# Table 4.5's columns, in its order, and its figures
PART_VOXEL_COLUMNS = ("head", "torso", "left_arm", "right_arm", "left_leg", "right_leg", "background", "foreground")
PAPER_PART_VOXELS = (49.8, 67.9, 29.6, 28.3, 46.3, 46.3, 99.1, 58.9)
PERCENT = {
    "voxel_iou",
    "voxel_iou_s20",
    "voxel_iou_s10",
    "part_iou",
    "part_accuracy",
    "pckh",
    "pckh_head",
    "pck3d",
    "auc3d",
    "class_accuracy",
} | {f"part_voxel_iou_{name}" for name in PART_VOXEL_COLUMNS}
LOWER_IS_BETTER = ("surface_error_mm", "joint_error_mm", "pa_joint_error_mm", "depth_rmse_mm", "depth_st_rmse_mm")
REFERENCES = ("constant", "oracle")  # pipeline.evaluation.references's predictors
MOSAIC_CLASSES = (10, 30, 100, 300, 1000)  # Fig. 8's sweep, at this scale's sizes
MOSAIC_SOURCE_LABELS = {  # pipeline.mosaic.dataset.SOURCES
    "real": "real",
    "mosaic": "mosaic",
    "surreal": "surreal",
    "unblended": "mosaic without the blend",
    "random": "mosaic of random views",
    "random_unblended": "mosaic of random views without the blend",
}


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    evaluation: str  # the evaluation folder, relative to the evaluation results
    paper: dict[str, float]


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[str, ...]  # summary figures, in this order
    rows: tuple[Row, ...]
    trends: tuple[tuple[str, ...], ...] = ()  # chains of learned rows the paper ranks without numbers, each worst first
    x: dict[str, float] | None = None  # a row's position on a log axis (drawn as a curve, not bars)
    x_label: str = ""  # what that axis measures

    @property
    def learned(self) -> tuple[str, ...]:
        """The keys of the rows that are not references."""
        return tuple(row.key for row in self.rows if row.key not in REFERENCES)

    def with_rows(self, keys) -> Table:
        """This table with its reference rows and only the learned rows in `keys`, in the
        table's order."""
        return replace(self, rows=tuple(row for row in self.rows if row.key in REFERENCES or row.key in keys))


def _surface(full, s20, s10, iou=None) -> dict[str, float]:
    paper = {"surface_error_mm": full, "surface_error_mm_s20": s20, "surface_error_mm_s10": s10}
    return paper | ({"voxel_iou": iou} if iou is not None else {})


def _inputs(network: str, inputs: str) -> str:
    return f"inputs/{network}/{inputs}"


def _references(*rows: Row, folder: str = "reference", oracle: str = "the truth, fitted") -> tuple[Row, ...]:
    """The constant first, the learned rows, the oracle last (evaluated under `folder`)."""
    constant = Row("constant", "reference: constant (the training set's mean)", f"{folder}/constant", {})
    return (constant, *rows, Row("oracle", f"reference: {oracle}", f"{folder}/oracle", {}))


SURREAL_COLUMNS = ("part_iou", "part_accuracy", "depth_rmse_mm", "depth_st_rmse_mm")


def _surreal(*rows: Row) -> tuple[Row, ...]:
    """A SURREAL table's rows between its references: the constant and the true classes."""
    return _references(*rows, oracle="the true parts and depth classes (45 mm bins)")


def _motion(source: str, inputs: str, paper: float) -> Row:  # the paper's figure is a PA-MPJPE
    label = {
        "rgb": "RGB",
        "flow": "Flow",
        "pose2d": "Keypoints",
        "rgb+pose2d": "RGB + Keypoints",
        "flow+pose2d": "Flow + Keypoints",
    }[inputs]
    key = inputs if "flow" not in inputs else f"{inputs}_{source}"
    label = label if "flow" not in inputs else f"{label} ({source} flow)"
    return Row(key, label, f"motion/{source}/{inputs}", {"pa_joint_error_mm": paper})


def _mosaic_references(*rows: Row) -> tuple[Row, ...]:
    """A mosaic table's rows between the study's references (`pipeline.mosaic.classify.references`)."""
    return _references(*rows, folder="mosaic/reference", oracle="the truth's nearest class (the lower bound)")


def _mosaic(sources: str, head: str = "classification", variant: str = "", paper: dict | None = None) -> Row:
    """A pose classifier's row: trained on `sources` ('+'-joined), the config's K on every
    mosaic's pose unless `variant` says 'k<K>' or '<percent>pc'; evaluated in
    mosaic/<sources>/<head>[_<variant>] (siblings: a folder is replaced whole when written)."""
    key = "_".join(part for part in (sources, head, variant) if part)
    shown = variant.replace("pc", " % of the poses") if variant.endswith("pc") else variant.replace("k", "K = ")
    named = " + ".join(MOSAIC_SOURCE_LABELS[source] for source in sources.split("+"))
    label = ", ".join(part for part in (named, head, shown) if part)
    return Row(key, label, f"mosaic/{sources}/{'_'.join(part for part in (head, variant) if part)}", paper or {})


def _thesis(pck3d: float, auc3d: float, joint_error_mm: float | None = None) -> dict[str, float]:
    """Mehta's thesis' figures on MPI-INF-3DHP (Table 5.1: location maps on ResNet-50, direct
    regression on ResNet-100, both trained at two scales; Table 5.2: corners jittered ±40 px)."""
    return {"pck3d": pck3d, "auc3d": auc3d} | ({"joint_error_mm": joint_error_mm} if joint_error_mm else {})


TABLES = {
    table.name: table
    for table in (
        Table(
            "bodynet_table",
            "Table 4.2: body-model surface error of each method",
            (
                "surface_error_mm",
                "surface_error_mm_s20",
                "surface_error_mm_s10",
                "voxel_iou",
                "voxel_iou_s20",
                "voxel_iou_s10",
            ),
            _references(
                Row("smplify", "SMPLify++ (θ, β optimised)", "smplify", _surface(75.3, 79.7, 86.1)),
                Row(
                    "shape_regression",
                    "shape-parameter regression (β regressed, θ from 3D pose)",
                    "shape_regression",
                    _surface(74.3, 82.1, 88.7),
                ),
                Row("voxels", "voxels network", "voxels", _surface(73.6, 81.1, 86.3, 58.1)),
                Row("voxels_fv", "voxels + FV", "voxels_fv", _surface(69.9, 76.3, 81.3)),
                Row("voxels_fvsv", "voxels + FV + SV", "voxels_fvsv", _surface(68.2, 74.4, 79.3)),
                Row(
                    "end_to_end_fv_without_tasks",
                    "end-to-end without intermediate tasks, FV",
                    "end_to_end_fv_without_tasks",
                    _surface(72.7, 78.9, 83.2),
                ),
                Row(
                    "end_to_end_fvsv_without_tasks",
                    "end-to-end without intermediate tasks, FV + SV",
                    "end_to_end_fvsv_without_tasks",
                    _surface(70.5, 76.9, 81.3),
                ),
                Row(
                    "end_to_end_fv",
                    "end-to-end with intermediate tasks, FV",
                    "end_to_end_fv",
                    _surface(67.7, 74.7, 81.0),
                ),
                Row(
                    "end_to_end_fvsv",
                    "end-to-end with intermediate tasks, FV + SV",
                    "end_to_end_fvsv",
                    _surface(65.8, 72.2, 76.6),
                ),
            ),
        ),
        Table(
            "bodynet_inputs",
            "Table 4.1: the voxel network fed different inputs",
            ("voxel_iou", "surface_error_mm"),
            _references(
                Row("pose2d", "2D pose", _inputs("voxels", "pose2d"), {"voxel_iou": 47.7, "surface_error_mm": 80.9}),
                Row("rgb", "RGB", _inputs("voxels", "rgb"), {"voxel_iou": 51.8, "surface_error_mm": 79.1}),
                Row("segm", "Segm", _inputs("voxels", "segm"), {"voxel_iou": 54.6, "surface_error_mm": 79.1}),
                Row("pose3d", "3D pose", _inputs("voxels", "pose3d"), {"voxel_iou": 56.3, "surface_error_mm": 74.5}),
                Row(
                    "segm+pose3d",
                    "Segm + 3D pose",
                    _inputs("voxels", "segm+pose3d"),
                    {"voxel_iou": 56.4, "surface_error_mm": 74.0},
                ),
                Row(
                    "rgb+pose2d+segm+pose3d",
                    "RGB + 2D pose + Segm + 3D pose",
                    _inputs("voxels", "rgb+pose2d+segm+pose3d"),
                    {"voxel_iou": 58.1, "surface_error_mm": 73.6},
                ),
            ),
        ),
        Table(
            "bodynet_tasks",
            "Table 4.6: intermediate tasks, trained alone or end to end",
            ("part_iou", "pckh", "joint_error_mm", "pa_joint_error_mm"),
            _references(
                Row(
                    "single_task",
                    "independent single-task",
                    "pose3d",
                    {"part_iou": 59.2, "pckh": 82.7, "joint_error_mm": 46.1},
                ),
                Row(
                    "multi_task",
                    "joint multi-task (end to end, FV + SV)",
                    "end_to_end_fvsv",
                    {"part_iou": 69.2, "pckh": 90.8, "joint_error_mm": 40.8},
                ),
            ),
        ),
        Table(
            "pose3d_inputs",
            "Table 4.8: the 3D-pose network fed different inputs",
            ("joint_error_mm", "pa_joint_error_mm"),
            _references(
                Row("rgb", "RGB", _inputs("pose3d", "rgb"), {"joint_error_mm": 49.1}),
                Row("pose2d", "2D pose", _inputs("pose3d", "pose2d"), {"joint_error_mm": 55.9}),
                Row("segm", "Segm", _inputs("pose3d", "segm"), {"joint_error_mm": 48.1}),
                Row("pose2d+segm", "2D pose + Segm", _inputs("pose3d", "pose2d+segm"), {"joint_error_mm": 47.7}),
                Row(
                    "rgb+pose2d+segm",
                    "RGB + 2D pose + Segm",
                    _inputs("pose3d", "rgb+pose2d+segm"),
                    {"joint_error_mm": 46.1},
                ),
            ),
        ),
        Table(
            "motion_inputs",
            "Doersch & Zisserman 2019: the 3D-pose network fed motion (paper: PA-MPJPE on 3DPW)",
            ("joint_error_mm", "pa_joint_error_mm"),
            _references(
                _motion("rendered", "rgb", 105.6),
                _motion("rendered", "flow", 100.1),
                _motion("estimated", "flow", 100.1),
                _motion("rendered", "pose2d", 77.6),
                _motion("rendered", "rgb+pose2d", 82.4),
                _motion("rendered", "flow+pose2d", 74.7),
                _motion("estimated", "flow+pose2d", 74.7),
                folder="motion/reference",
                oracle="the true joint volumes (their 45 mm bins)",
            ),
        ),
        Table(
            "bodynet_part_voxels",
            "Table 4.5: 3D body part segmentation, voxel IoU per part",
            tuple(f"part_voxel_iou_{name}" for name in PART_VOXEL_COLUMNS),
            _references(
                Row("part_voxels", "part voxels network", "part_voxels", {}),
                Row(
                    "part_voxels_fvsv",
                    "part voxels network + FV + SV (per class)",
                    "part_voxels_fvsv",
                    {f"part_voxel_iou_{name}": value for name, value in zip(PART_VOXEL_COLUMNS, PAPER_PART_VOXELS)},
                ),
                oracle="the true part voxels",
            ),
            trends=(("part_voxels", "part_voxels_fvsv"),),  # the re-projection's gain (Table 4.2), for the parts
        ),
        Table(
            "surreal_table",
            "SURREAL (Varol et al. 2017): segmentation and depth from one image",
            SURREAL_COLUMNS,
            _surreal(
                Row(
                    "segm_depth",
                    "segmentation and depth networks",
                    "depth",  # the depth stage's checkpoint holds both networks
                    {"part_iou": 69.13, "part_accuracy": 80.61, "depth_rmse_mm": 72.9, "depth_st_rmse_mm": 56.3},
                ),
            ),
        ),
        Table(
            "surreal_data_study",
            "SURREAL (Varol et al. 2017), Figure 3-9: the amount of training data",
            SURREAL_COLUMNS,
            _surreal(
                Row("clips_1pc", "1 % of the training clips", "data_study/clips/1", {}),
                Row("clips_10pc", "10 % of the training clips", "data_study/clips/10", {}),
                Row("clips_100pc", "100 % of the training clips (the segm and depth stages)", "depth", {}),
            ),
            trends=(("clips_1pc", "clips_10pc", "clips_100pc"),),
            x={"clips_1pc": 1.0, "clips_10pc": 10.0, "clips_100pc": 100.0},
            x_label="share of the training clips (%)",
        ),
        Table(
            "surreal_clothing_study",
            "SURREAL (Varol et al. 2017), Figure 3-9: the clothing variation",
            SURREAL_COLUMNS,
            _surreal(
                Row("outfits_1", "every training clip in 1 outfit", "data_study/outfits/1", {}),
                Row("outfits_10", "every training clip in one of 10 outfits", "data_study/outfits/10", {}),
                Row("outfits_100", "every training clip in one of 100 outfits", "data_study/outfits/100", {}),
            ),
            trends=(("outfits_1", "outfits_10", "outfits_100"),),
            x={"outfits_1": 1.0, "outfits_10": 10.0, "outfits_100": 100.0},
            x_label="outfits the training clips wear",
        ),
        Table(
            "surreal_compression_study",
            "SURREAL's frames: mp4 against lossless, for training and for testing",
            SURREAL_COLUMNS,
            _surreal(
                Row("mp4", "trained and tested on mp4 frames (the segm and depth stages)", "depth/on_mp4", {}),
                Row("mp4_on_lossless", "trained on mp4, tested on lossless frames", "depth/on_lossless", {}),
                Row("lossless_on_mp4", "trained on lossless, tested on mp4 frames", "data_study/lossless/on_mp4", {}),
                Row("lossless", "trained and tested on lossless frames", "data_study/lossless", {}),
            ),
            trends=(("mp4", "lossless"),),  # SURREAL's users: compression costs 2–3 points of part IoU
        ),
        Table(
            "vnect_table",
            "VNect (Mehta's thesis, Tables 5.1 and 5.2 in kind): location maps against direct regression",
            ("pck3d", "auc3d", "joint_error_mm", "pa_joint_error_mm"),
            (
                Row("constant", "reference: constant (the training set's mean)", "reference/constant", {}),
                Row("volumetric", "BodyNet's volumetric 3D pose (Table 4.6's single-task)", "pose3d", {}),
                Row("vnect", "VNect: location maps on SelecSLS", "realtime/vnect", _thesis(78.1, 42.0, 119.2)),
                Row(
                    "vnect_regression",
                    "direct regression on the same backbone",
                    "realtime/vnect_regression",
                    _thesis(77.5, 41.1, 113.1),
                ),
                Row(
                    "vnect_jittered",
                    "location maps, crop corners jittered",
                    "realtime/vnect_jittered",
                    _thesis(72.1, 37.4),
                ),
                Row(
                    "vnect_regression_jittered",
                    "direct regression, crop corners jittered",
                    "realtime/vnect_regression_jittered",
                    _thesis(71.9, 37.0),
                ),
            ),
        ),
        Table(
            "mosaic_crossover",
            "Rogez & Schmid 2018, Table 1 in kind: K-way classification against regression as data grow",
            ("pa_joint_error_mm", "joint_error_mm"),
            _mosaic_references(
                _mosaic("mosaic", "classification", "12pc", {"pa_joint_error_mm": 149.7}),  # 17k real
                _mosaic("mosaic", "regression", "12pc", {"pa_joint_error_mm": 112.9}),
                _mosaic("mosaic", "classification", "25pc"),
                _mosaic("mosaic", "regression", "25pc"),
                _mosaic("mosaic", "classification", "50pc"),
                _mosaic("mosaic", "regression", "50pc"),
                _mosaic("mosaic", "classification", paper={"pa_joint_error_mm": 97.2}),  # 190k synthetic
                _mosaic("mosaic", "regression", paper={"pa_joint_error_mm": 101.9}),
                _mosaic("real", "classification", paper={"pa_joint_error_mm": 97.7}),  # 190k real
                _mosaic("real", "regression", paper={"pa_joint_error_mm": 139.6}),
                _mosaic("real+mosaic", "classification", paper={"pa_joint_error_mm": 88.1}),  # synthetic + real
                _mosaic("real+mosaic", "regression", paper={"pa_joint_error_mm": 125.5}),
            ),
        ),
        Table(
            "mosaic_sources",
            "Rogez & Schmid 2018, Fig. 7 and Table 3 in kind: real, mosaic and surreal images of the same poses",
            ("joint_error_mm", "pa_joint_error_mm", "class_accuracy"),
            _mosaic_references(
                _mosaic("real"),
                _mosaic("mosaic"),
                _mosaic("surreal"),
                _mosaic("real+mosaic", paper={"joint_error_mm": 121.2}),
                _mosaic("real+surreal"),
                _mosaic("mosaic+surreal"),
                _mosaic("real+mosaic+surreal", paper={"joint_error_mm": 110.6}),
            ),
            trends=(  # Fig. 7's curves, as the text reads them
                ("real_classification", "mosaic_classification"),  # mosaics beat the real images
                ("surreal_classification", "real+surreal_classification"),  # renders alone generalise badly ...
                ("surreal_classification", "real_classification"),  # ... worse than the real images
            ),
        ),
        Table(
            "mosaic_blending",
            "Rogez & Schmid 2018, Table 6 in kind: mosaics with and without the pose-aware blend",
            ("joint_error_mm", "pa_joint_error_mm"),
            _mosaic_references(
                _mosaic("unblended"),  # the real crops' poses and views: the paper's Human3.6M mosaics
                _mosaic("mosaic"),
                _mosaic("random_unblended", paper={"joint_error_mm": 337.6, "pa_joint_error_mm": 186.2}),
                _mosaic("random", paper={"joint_error_mm": 320.0, "pa_joint_error_mm": 150.6}),  # CMU poses, views
            ),
            trends=(("unblended_classification", "mosaic_classification"),),  # the blend's gain, at the own views too
        ),
        Table(
            "mosaic_classes",
            "Rogez & Schmid 2018, Fig. 8 in kind: the classifier against the number of classes K",
            ("joint_error_mm", "joint_error_mm_top5", "joint_error_mm_lower_bound"),
            _mosaic_references(*(_mosaic("mosaic", "classification", f"k{k}") for k in MOSAIC_CLASSES)),
            trends=(tuple(f"mosaic_classification_k{k}" for k in MOSAIC_CLASSES[:3]),),  # finer, better, to the plateau
            x={f"mosaic_classification_k{k}": float(k) for k in MOSAIC_CLASSES},
            x_label="classes K",
        ),
    )
}


def selected_tables(rows: dict[str, list[str]]) -> dict[str, Table]:
    """The tables as `evaluation.rows` asks: a table it names with only the learned rows it
    lists (and the reference rows), every other table whole."""
    for name, keys in rows.items():
        if name not in TABLES:
            raise ConfigError(f"evaluation.rows.{name}", f"no such table; one of {', '.join(TABLES)}")
        unknown = [key for key in keys if key not in TABLES[name].learned]
        if unknown:
            learned = ", ".join(TABLES[name].learned)
            raise ConfigError(f"evaluation.rows.{name}", f"{unknown[0]!r} is not a learned row of {name} ({learned})")
    return {name: table.with_rows(rows[name]) if name in rows else table for name, table in TABLES.items()}


def read_summary(path: str | Path) -> dict:
    return read_json_record(path, "evaluation summary", ("measures",))


def read_images(summary_path: str | Path) -> pd.DataFrame:
    """The per-image measures (images.csv) beside an evaluation's summary.json."""
    path = Path(summary_path).with_name("images.csv")
    try:
        images = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputError(f"{path}: cannot read the per-image measures ({error})") from error
    if "image" not in images:
        raise InputError(f"{path}: no 'image' column; not an evaluation's images.csv")
    return images


def _scale(column: str) -> float:
    return 100.0 if column in PERCENT else 1.0


def _check_paired(table: Table, images: dict[str, pd.DataFrame]) -> None:
    first_key, first = next(iter(images.items()))
    for key, frame in images.items():
        if not np.array_equal(frame["image"].to_numpy(), first["image"].to_numpy()):
            raise InputError(
                f"{table.name}: rows {first_key!r} and {key!r} were evaluated on different images; "
                "the paired intervals need the same test images"
            )


def build(table: Table, images: dict[str, pd.DataFrame], seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per table row: ours with its 95 % interval (`<column>_low/_high`), then the
    paper's (`paper_<column>`) for each column; and the resample counts (R, N) used."""
    missing = [row.key for row in table.rows if row.key not in images]
    if missing:
        raise InputError(f"{table.name}: no evaluation given for row(s) {', '.join(missing)}")
    _check_paired(table, {row.key: images[row.key] for row in table.rows})
    specs = figures()
    counts = statistics.resample_counts(len(images[table.rows[0].key]), seed=seed)
    records = []
    for row in table.rows:
        frame = images[row.key]
        record = {"key": row.key, "method": row.label}
        for column in table.columns:
            figure = specs[column]
            absent = [c for c in (*figure.columns, *([figure.subset] if figure.subset else [])) if c not in frame]
            if absent:
                raise InputError(f"{table.name}: evaluation of row {row.key!r} lacks {', '.join(absent[:3])}")
            scale = _scale(column)
            record[column] = scale * statistics.evaluate(figure, frame)
            low, high = statistics.interval(statistics.evaluate(figure, frame, counts))
            record[f"{column}_low"], record[f"{column}_high"] = scale * low, scale * high
        for column in table.columns:
            record[f"paper_{column}"] = row.paper.get(column, np.nan)
        record["images"] = len(frame)
        records.append(record)
    return pd.DataFrame(records), counts


ORDERING_COLUMNS = [
    "column",
    "first",
    "second",
    "paper_first_better",
    "ours_first_better",
    "difference",
    "difference_low",
    "difference_high",
    "verdict",
]


def orderings(table: Table, frame: pd.DataFrame, images: dict[str, pd.DataFrame], counts: np.ndarray) -> pd.DataFrame:
    """For each column, each pair of rows the paper ranks (its better row first in its
    order), and each learned row against the constant (expected better): our difference
    (first − second) with its paired 95 % interval, and the verdict."""
    specs = figures()
    keys = frame["key"].tolist()
    pairs = []
    for column in table.columns:
        paper = frame[f"paper_{column}"].to_numpy()
        for a in range(len(frame)):
            for b in range(a + 1, len(frame)):
                if not (np.isnan(paper[a]) or np.isnan(paper[b]) or paper[a] == paper[b]):
                    pairs.append((column, keys[a], keys[b], _better(column, paper[a], paper[b])))
        for chain in table.trends:
            trend = [key for key in chain if key in keys]
            pairs += [(column, better, worse, True) for worse, better in zip(trend, trend[1:])]
        if "constant" in keys:
            pairs += [(column, key, "constant", True) for key in keys if key not in REFERENCES]
    measured: dict[tuple[str, str], tuple[float, np.ndarray]] = {}  # (row, column): (figure, resampled)

    def measure(key: str, column: str) -> tuple[float, np.ndarray]:
        if (key, column) not in measured:
            figure = specs[column]
            measured[key, column] = (
                statistics.evaluate(figure, images[key]),
                statistics.evaluate(figure, images[key], counts),
            )
        return measured[key, column]

    records = []
    for column, first, second, paper_first_better in pairs:
        scale = _scale(column)
        (a, a_resampled), (b, b_resampled) = measure(first, column), measure(second, column)
        difference = scale * (a - b)
        low, high = (scale * v for v in statistics.interval(a_resampled - b_resampled))
        lower = column.startswith(LOWER_IS_BETTER)
        records.append(
            {
                "column": column,
                "first": first,
                "second": second,
                "paper_first_better": paper_first_better,
                "ours_first_better": bool(difference < 0 if lower else difference > 0),
                "difference": difference,
                "difference_low": low,
                "difference_high": high,
                "verdict": statistics.verdict((low, high), paper_first_better, lower),
            }
        )
    return pd.DataFrame(records, columns=ORDERING_COLUMNS)


def verdict_counts(orderings_frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{'paper': counts of holds/reversed/undecided among the paper's orderings, 'constant':
    among the learned rows against the constant}."""
    against_constant = orderings_frame["second"] == "constant"
    result = {}
    for name, subset in (
        ("paper", orderings_frame[~against_constant]),
        ("constant", orderings_frame[against_constant]),
    ):
        result[name] = {v: int((subset["verdict"] == v).sum()) for v in statistics.VERDICTS}
    return result


def _better(column: str, a: float, b: float) -> bool:
    return a < b if column.startswith(LOWER_IS_BETTER) else a > b
