"""Flow of a split's clips, by one method, written in both formats and scored as it goes.

Each clip's frames are decoded from its video (the compressed frames every method sees);
the flow between consecutive frames is estimated (only this is timed), written losslessly
and in LTC's format, and scored against the clip's true flow on the LTC-decoded values as
well, which shows what the 8-bit storage costs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.clips import Clip
from pipeline.flow import score, storage
from pipeline.flow.methods import estimator

RENDERED = "rendered"  # the renderer's own flow, stored and scored like any method


def true_flow(clip: Clip, pairs: int) -> np.ndarray:
    return np.stack([clip.forward_flow(t) for t in range(pairs)]).astype(np.float32)


def extract(clips: list[Path], method: str, out: Path, quality: int = 95, progress: bool = True) -> dict:
    """Write every clip's flow under `out`; return the scores and the speed."""
    out.mkdir(parents=True, exist_ok=True)
    flow_function = None if method == RENDERED else estimator(method)
    sums, ltc_sums, seconds, pairs_total = [], [], 0.0, 0
    for path in tqdm(clips, desc=method, unit="clip", disable=not progress):
        clip = Clip(path)
        video = clip.video()
        pairs = len(video) - 1
        truth = true_flow(clip, pairs)
        began = time.perf_counter()
        if flow_function is None:
            flow = truth.copy()
        else:
            flow = np.stack([flow_function(video[t], video[t + 1]) for t in range(pairs)]).astype(np.float32)
        seconds += time.perf_counter() - began
        pairs_total += pairs
        storage.write_lossless(out, clip.stem, flow)
        storage.write_ltc(out, clip.stem, flow, quality)
        body = np.stack([clip.segm(t) > 0 for t in range(pairs)])
        clip.forget()
        sums.append(score.flow_error_sums(flow, truth, body))
        ltc_sums.append(score.flow_error_sums(storage.read_flow(out, clip.stem, "ltc"), truth, body))
    result = score.summarise(sums)
    result["epe_ltc"] = score.summarise(ltc_sums)["epe"]
    result["frames_per_second"] = pairs_total / seconds if flow_function is not None else float("nan")
    result["clips"], result["frame_pairs"] = len(clips), pairs_total
    return result
