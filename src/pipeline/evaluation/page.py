"""The results page: every table of the evaluation as Markdown, written from the tables'
CSVs and orderings, so that no figure on it is typed by hand.

Per table: our figure with its 95 % interval beside the paper's, the reference rows, and the
verdicts on the paper's orderings and on each learned row against the constant (holds /
reversed / undecided), with the orderings that are reversed named.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.evaluation import statistics
from pipeline.evaluation.tables import PERCENT, TABLES, verdict_counts

UNITS = {"surface_error_mm": "mm", "joint_error_mm": "mm", "pa_joint_error_mm": "mm"}
HEADERS = {
    "surface_error_mm": "surface error",
    "voxel_iou": "voxel IoU",
    "part_iou": "part IoU",
    "pckh": "PCKh@0.5",
    "joint_error_mm": "3D joints",
    "pa_joint_error_mm": "3D joints (PA)",
}


def _header(column: str) -> str:
    for name, label in sorted(HEADERS.items(), key=lambda item: -len(item[0])):
        if column.startswith(name):
            subset = column.removeprefix(name).strip("_")
            unit = "%" if column in PERCENT else UNITS.get(name, "")
            return f"{label}{' ' + subset if subset else ''} ({unit})"
    return column


def _cell(value: float, low: float | None = None, high: float | None = None) -> str:
    if value is None or not np.isfinite(value):
        return ""
    text = f"{value:.1f}"
    return text if low is None else f"{text} [{low:.1f}, {high:.1f}]"


def table_markdown(name: str, frame: pd.DataFrame, orderings: pd.DataFrame) -> str:
    """One table's section of the page."""
    table = TABLES[name]
    lines = [
        f"### {table.title}",
        "",
        f"`results/{name}.csv`, {int(frame['images'].iloc[0])} test images; "
        "ours with its 95 % bootstrap interval, the paper's beside.",
        "",
    ]
    header = ["method"] + [cell for c in table.columns for cell in (f"{_header(c)}, ours", "paper")]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.to_dict("records"):
        cells = [row["method"]]
        for column in table.columns:
            ours = _cell(row[column], row[f"{column}_low"], row[f"{column}_high"])
            paper = _cell(row[f"paper_{column}"])
            cells += [ours, paper]
        lines.append("| " + " | ".join(cells) + " |")
    counts = verdict_counts(orderings)
    lines.append("")
    for kind, label in (
        ("paper", "The paper's orderings between rows"),
        ("constant", "Learned rows against the constant"),
    ):
        found = counts[kind]
        if sum(found.values()):
            lines.append(f"- {label}: " + ", ".join(f"{found[v]} {v}" for v in statistics.VERDICTS) + ".")
    reversed_ = orderings[(orderings["verdict"] == "reversed") & (orderings["second"] != "constant")]
    for row in reversed_.to_dict("records"):
        lines.append(
            f"  - reversed: {row['first']} vs {row['second']} on {row['column']} "
            f"(ours {row['difference']:+.1f} [{row['difference_low']:+.1f}, {row['difference_high']:+.1f}])"
        )
    return "\n".join(lines) + "\n"


def write_page(tables: dict[str, Path], out: Path, title: str = "Results") -> str:
    """The page for the tables {name: csv path} (their orderings beside them, as
    results/evaluation/<name>_orderings.csv)."""
    sections = [
        f"# {title}",
        "",
        "Generated from the tables under `results/` by `python -m pipeline.evaluation page`; do not edit by hand.",
        "",
    ]
    for name, path in tables.items():
        if name not in TABLES:
            raise InputError(f"{path}: no table named {name!r}; one of {', '.join(TABLES)}")
        orderings_path = Path(path).parent / "evaluation" / f"{name}_orderings.csv"
        try:
            frame, orderings = pd.read_csv(path), pd.read_csv(orderings_path)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise InputError(f"{path} or {orderings_path}: cannot read the table ({error})") from error
        missing = [c for c in ("key", "method", "images", *TABLES[name].columns) if c not in frame]
        if missing or "verdict" not in orderings:
            raise InputError(
                f"{path}: not a table with intervals and verdicts (lacks {', '.join(missing) or 'verdict'})"
            )
        sections.append(table_markdown(name, frame, orderings))
    return "\n".join(sections)
