"""An evaluation's files, as the tables read them (`pipeline.evaluation.tables`).

images.csv    one row per test image: its `image` index and its measures
summary.json  what was evaluated (the caller's record) and, under "measures", the test
              set's figures (`pipeline.evaluation.measures.summarise`)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.atomic import atomic_output
from pipeline.evaluation.measures import summarise


def write_evaluation(folder: Path, images: pd.DataFrame, record: dict) -> dict[str, float]:
    """images.csv and summary.json in `folder` (made where missing), each written whole or
    not at all; returns the figures."""
    if "image" not in images:
        raise ValueError("an evaluation's images need an 'image' column: the tables pair rows by it")
    measures = summarise(images)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(folder / "images.csv") as tmp:
        images.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_output(folder / "summary.json") as tmp:
        tmp.write_text(json.dumps({**record, "measures": measures}, indent=2) + "\n")
    return measures
