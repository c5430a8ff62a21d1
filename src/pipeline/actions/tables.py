"""The action tables: ours beside the papers' figures, with 95 % bootstrap intervals over the
test videos and the papers' orderings judged holds / reversed / undecided on paired
intervals (`pipeline.evaluation.statistics`).

    ltc_table         Varol, Laptev & Schmid, "Long-term Temporal Convolutions for Action
                      Recognition", TPAMI 2018, Table 5.2 of Varol's thesis: clip and video
                      accuracy of each input (RGB, each flow method, the true flow, late
                      fusion of RGB and flow) at the short and the long temporal extent, beside
                      UCF101's figures; a chance row (1 / classes) and a constant row (the
                      training set's most frequent action).
    flow_quality      each flow method's end-point error beside the accuracy it gives (LTC's
                      Figure 5-3: better flow, better recognition).
    view_table        Varol's thesis (2019), Table 6.1: video accuracy on each test view by the
                      views trained on, with or without the similarity losses.

Shapes: N test videos, R resamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.evaluation import statistics

FIGURES = {
    "clip_accuracy": statistics.Figure("ratio", ("clip_correct", "clips")),
    "video_accuracy": statistics.Figure("mean", ("video_correct",)),
}
VIDEO_COLUMNS = ("video", "label", "clips", "clip_correct", "video_correct")

# Table 5.2 (UCF101 split 1, from scratch, dropout 0.5), clip / video accuracy (%), by extent
PAPER_RGB = {"short": (48.4, 51.9), "long": (57.0, 59.9)}
PAPER_FLOW = {"short": (66.8, 77.4), "long": (74.8, 79.6)}  # Brox's flow
# Figure 5-3 (60 frames): clip / video accuracy by flow method
PAPER_FLOW_METHODS = {"MPEG flow": (58.5, 63.8), "Farnebäck": (66.3, 71.3), "Brox": (74.8, 79.6)}
# the paper's method each of ours stands beside: OpenCV's Farnebäck is the paper's; TV-L1, a
# variational method of the same family as Brox's, stands for it; DIS has no counterpart
PAPER_COUNTERPART = {"farneback": "Farnebäck", "tvl1": "Brox"}

# Table 6.1 (NTU, cross-view-subject), accuracy (%) on v1, v2, v3 (0°, 45°, 90°)
PAPER_VIEWS = {
    "a_v1": (81.7, 63.3, 40.2),
    "a_v1_v2": (81.8, 77.6, 59.9),
    "a_v1_v2_v3": (81.9, 79.5, 73.0),
    "s_v1_v2+a_v1": (82.8, 74.1, 55.2),
    "s_v1_v2+a_v1_v2": (83.7, 80.6, 64.4),
    "c_v1_v2+a_v1": (84.0, 73.3, 52.3),
    "c_v1_v2+a_v1_v2": (83.5, 80.0, 62.2),
}
VIEW_LABELS = {
    "a_v1": "L_a(v1)",
    "a_v1_v2": "L_a(v1) + L_a(v2)",
    "a_v1_v2_v3": "L_a(v1) + L_a(v2) + L_a(v3)",
    "s_v1_v2+a_v1": "L_s(v1, v2) + L_a(v1)",
    "s_v1_v2+a_v1_v2": "L_s(v1, v2) + L_a(v1) + L_a(v2)",
    "c_v1_v2+a_v1": "L_c(v1, v2) + L_a(v1)",
    "c_v1_v2+a_v1_v2": "L_c(v1, v2) + L_a(v1) + L_a(v2)",
}
REFERENCES = ("chance", "constant")


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    paper: dict[str, float] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)  # extra columns (input, extent, ...)


def check_videos(videos: pd.DataFrame, where: str) -> pd.DataFrame:
    missing = [column for column in VIDEO_COLUMNS if column not in videos]
    if missing:
        raise InputError(f"{where}: not an action evaluation's videos.csv (no column {', '.join(missing)})")
    return videos


def constant_videos(test: pd.DataFrame, train_labels: np.ndarray) -> pd.DataFrame:
    """The test videos as a constant guess scores them: every clip called the training set's
    most frequent action (the smallest label among ties)."""
    guess = int(np.bincount(np.asarray(train_labels, dtype=np.int64)).argmax())
    right = (test["label"].to_numpy() == guess).astype(np.float64)
    return test.assign(predicted=guess, clip_correct=right * test["clips"].to_numpy(), video_correct=right)


def view_columns(videos: pd.DataFrame, views: tuple[int, ...]) -> pd.DataFrame:
    """The videos with one boolean column `v<k>` per test view, the subsets a view's figure takes."""
    return videos.assign(**{f"v{k}": videos["view"].to_numpy() == k for k in views})


def _same_videos(videos: dict[str, pd.DataFrame]) -> None:
    (first, reference), *others = videos.items()
    for key, frame in others:
        if not np.array_equal(frame["video"].to_numpy(), reference["video"].to_numpy()):
            raise InputError(
                f"rows {first!r} and {key!r} were tested on different videos; paired intervals need the same"
            )


def measure(
    rows: list[Row], videos: dict[str, pd.DataFrame], figures: dict[str, statistics.Figure], seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """One record per row: each figure (%) with its 95 % interval, and the paper's; the
    resample counts (R, N) shared by every row, so that differences are paired. A row
    without videos (chance) carries its paper-free constant in `info`."""
    measured = {row.key: videos[row.key] for row in rows if row.key in videos}
    _same_videos(measured)
    counts = statistics.resample_counts(len(next(iter(measured.values()))), seed=seed)
    records = []
    for row in rows:
        record = {"key": row.key, "label": row.label, **row.info}
        for column, figure in figures.items():
            if row.key in measured:
                value = 100 * statistics.evaluate(figure, measured[row.key])
                low, high = statistics.interval(100 * statistics.evaluate(figure, measured[row.key], counts))
            else:
                value = low = high = 100 * float(row.info["value"])
            record |= {column: value, f"{column}_low": low, f"{column}_high": high}
        for column in figures:
            record[f"paper_{column}"] = row.paper.get(column, np.nan)
        records.append(record)
    frame = pd.DataFrame(records)
    return frame.drop(columns=["value"], errors="ignore"), counts


def judge(
    pairs: list[tuple[str, str, str, bool]],
    videos: dict[str, pd.DataFrame],
    figures: dict[str, statistics.Figure],
    counts: np.ndarray,
) -> pd.DataFrame:
    """Each (column, first, second, the paper says first is better): our difference (points)
    with its paired 95 % interval, and the verdict."""
    records = []
    for column, first, second, paper_first_better in pairs:
        figure = figures[column]
        a, b = (statistics.evaluate(figure, videos[key]) for key in (first, second))
        resampled = statistics.evaluate(figure, videos[first], counts) - statistics.evaluate(
            figure, videos[second], counts
        )
        low, high = (100 * v for v in statistics.interval(resampled))
        records.append(
            {
                "column": column,
                "first": first,
                "second": second,
                "paper_first_better": paper_first_better,
                "ours_first_better": bool(a > b),
                "difference": 100 * (a - b),
                "difference_low": low,
                "difference_high": high,
                "verdict": statistics.verdict((low, high), paper_first_better, lower_is_better=False),
            }
        )
    return pd.DataFrame(records)


# --- Table 5.2 ---------------------------------------------------------------------------------


def ltc_key(source: str, extent: str) -> str:
    return f"{source}_{extent}"


def ltc_rows(sources: list[str], extents: dict[str, int], classes: int) -> list[Row]:
    """The rows of the LTC table: chance, constant, then each input at each extent. `sources`
    are `rgb`, flow methods (`rendered` the true flow) and `fusion`."""
    rows = [
        Row("chance", f"reference: chance (1 / {classes} actions)", info={"value": 1.0 / classes}),
        Row("constant", "reference: constant (the training set's most frequent action)"),
    ]
    for source in sources:
        for extent, frames in extents.items():
            paper, counterpart = {}, ""
            if source == "rgb":
                counterpart, (clip, video) = "RGB", PAPER_RGB[extent]
                paper = {"clip_accuracy": clip, "video_accuracy": video}
            elif source == "tvl1":
                counterpart, (clip, video) = "Brox", PAPER_FLOW[extent]
                paper = {"clip_accuracy": clip, "video_accuracy": video}
            elif source in PAPER_COUNTERPART and extent == "long":
                counterpart = PAPER_COUNTERPART[source]
                clip, video = PAPER_FLOW_METHODS[counterpart]
                paper = {"clip_accuracy": clip, "video_accuracy": video}
            label = {"rgb": "RGB", "rendered": "true flow (rendered)", "fusion": "late fusion RGB + flow"}.get(
                source, f"{source} flow"
            )
            info = {"input": source, "extent": extent, "frames": frames, "paper_input": counterpart}
            rows.append(Row(ltc_key(source, extent), f"{label}, {frames} frames", paper, info))
    return rows


def ltc_pairs(sources: list[str], extents: dict[str, int], flows: list[str]) -> list[tuple[str, str, str, bool]]:
    """The orderings LTC reports, for both figures: the long extent beats the short one for
    every input; every flow beats RGB; the true flow, the best flow there is, beats every
    estimated one (better flow, better recognition); every learned row beats the constant."""
    short, long = extents
    pairs = []
    for column in FIGURES:
        pairs += [(column, ltc_key(s, long), ltc_key(s, short), True) for s in sources]
        for extent in extents:
            pairs += [(column, ltc_key(f, extent), ltc_key("rgb", extent), True) for f in flows if "rgb" in sources]
            if "rendered" in flows:
                pairs += [
                    (column, ltc_key("rendered", extent), ltc_key(f, extent), True) for f in flows if f != "rendered"
                ]
            pairs += [(column, ltc_key(s, extent), "constant", True) for s in sources]
    return pairs


def verdict_counts(orderings: pd.DataFrame) -> dict[str, dict[str, int]]:
    against_constant = orderings["second"] == "constant"
    return {
        name: {v: int((subset["verdict"] == v).sum()) for v in statistics.VERDICTS}
        for name, subset in (("paper", orderings[~against_constant]), ("constant", orderings[against_constant]))
    }


# --- flow quality ------------------------------------------------------------------------------


def flow_quality(table: pd.DataFrame, scores: dict[str, dict], extent: str) -> pd.DataFrame:
    """Per flow method: its end-point errors (pixels, over all and body pixels) beside the
    accuracies its network reached at `extent` (rows of the LTC table)."""
    records = []
    for method, score in scores.items():
        row = table[table["key"] == ltc_key(method, extent)]
        if row.empty:
            raise InputError(f"flow quality: the LTC table has no row {ltc_key(method, extent)!r}")
        record = {"method": method, "epe": score["epe"], "epe_body": score["epe_body"]}
        for column in FIGURES:
            for suffix in ("", "_low", "_high"):
                record[f"{column}{suffix}"] = float(row[f"{column}{suffix}"].iloc[0])
        records.append(record)
    return pd.DataFrame(records)


def flow_quality_pairs(quality: pd.DataFrame, extent: str) -> list[tuple[str, str, str, bool]]:
    """For every two methods whose errors on the body differ: the more accurate flow should give
    the better recognition (LTC's Figure 5-3)."""
    pairs = []
    rows = quality.sort_values("epe_body").to_dict("records")
    for column in FIGURES:
        for i, better in enumerate(rows):
            for worse in rows[i + 1 :]:
                if better["epe_body"] < worse["epe_body"]:
                    pairs.append((column, ltc_key(better["method"], extent), ltc_key(worse["method"], extent), True))
    return pairs


# --- Table 6.1 ---------------------------------------------------------------------------------


def view_figures(views: tuple[int, ...]) -> dict[str, statistics.Figure]:
    return {f"v{k}": statistics.Figure("mean", ("video_correct",), subset=f"v{k}") for k in views}


def view_rows(keys: list[str]) -> list[Row]:
    unknown = [key for key in keys if key not in PAPER_VIEWS and key != "constant"]
    if unknown:
        raise InputError(f"view table: unknown row(s) {unknown}; one of {', '.join(PAPER_VIEWS)}")
    rows = [Row("constant", "reference: constant (the training set's most frequent action)")]
    for key in keys:
        if key != "constant":
            rows.append(Row(key, VIEW_LABELS[key], dict(zip(("v1", "v2", "v3"), PAPER_VIEWS[key]))))
    return rows


def paper_pairs(rows: list[Row], columns: list[str]) -> list[tuple[str, str, str, bool]]:
    """Every two rows the paper ranks in a column (their figures differ), its better first
    in table order's sense; and every learned row against the constant."""
    pairs = []
    for column in columns:
        ranked = [row for row in rows if column in row.paper]
        for i, a in enumerate(ranked):
            for b in ranked[i + 1 :]:
                if a.paper[column] != b.paper[column]:
                    pairs.append((column, a.key, b.key, a.paper[column] > b.paper[column]))
        pairs += [(column, row.key, "constant", True) for row in rows if row.key not in REFERENCES]
    return pairs
