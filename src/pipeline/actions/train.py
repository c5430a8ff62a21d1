"""Training and testing one LTC network, and the similarity losses between synchronised views.

Training (Varol, Laptev & Schmid 2018, §3.3): cross-entropy on clips cut at random start
frames and corners of the training videos, SGD with momentum or Adam, the learning rate
divided by 10 after `lr_drop` of the iterations. Every draw comes from the config's seed,
the network's name and the iteration, so a CPU run repeats bit for bit.

View invariance (Varol's thesis, 2019, §6.3, Eq. 6.2–6.4): the action loss L_a on the
training views `action_views`, plus a weighted similarity between the representations
h = g(x) (the last hidden layer) of the same instants of a performance seen from two views
`similarity_views`: L_s = ‖h1 − h2‖² (positives only), or the contrastive
L_c = s‖h1 − h2‖² + (1 − s) max(0, m² − ‖h1 − h2‖²) with, as negatives, the second view of
another performance of another action in the batch.

Testing: each test video (one view of one performance) cut into clips every `test_stride`
frames, centre crops; clip accuracy over every clip, video accuracy with a video's score the
mean of its clips' softmax.

Shapes: B batch, C classes, D representation size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pipeline.actions.inputs import ActionSet, crop, evaluation_windows, random_windows
from pipeline.actions.network import LTC
from pipeline.errors import InputError
from pipeline.meters import run_steps
from pipeline.seeding import seeded_generator, torch_seed

log = logging.getLogger("pipeline.actions")

OPTIMISERS = ("sgd", "adam")
SIMILARITIES = ("none", "positive", "contrastive")


@dataclass(frozen=True)
class LTCSettings:
    """One network's training (config: `actions.ltc`, with the extent and views of its row)."""

    extent: int  # frames per clip
    size: int  # crop side, pixels
    width: float  # layer-size factor
    dropout: float
    iterations: int
    batch_size: int
    optimiser: str
    learning_rate: float
    momentum: float
    weight_decay: float
    lr_drop: float
    test_stride: int
    seed: int
    eval_every: int
    action_views: tuple[int, ...]  # the views the action loss is taken on (1-based)
    similarity_weight: float
    margin: float  # L_c's, for pairs of different videos
    similarity: str = "none"  # or positive (L_s) or contrastive (L_c), between similarity_views
    similarity_views: tuple[int, int] = (1, 2)


SIMILARITY_TERMS = {"s": "positive", "c": "contrastive"}


def view_training(key: str) -> dict[str, object]:
    """The losses a view-study row names, as LTCSettings fields: `a_v1_v2` the action loss on
    views 1 and 2; `s_v1_v2+a_v1` L_s between views 1 and 2 plus the action loss on view 1
    (`c_...`: L_c)."""
    fields: dict[str, object] = {"similarity": "none"}
    for term in key.split("+"):
        loss, *views = term.split("_")
        if not views or not all(view[:1] == "v" and view[1:].isdigit() for view in views):
            raise InputError(f"view row {key!r}: {term!r} is not <loss>_v<k>[_v<k>...]")
        numbers = tuple(int(view[1:]) for view in views)
        if loss == "a":
            fields["action_views"] = numbers
        elif loss in SIMILARITY_TERMS and len(numbers) == 2:
            fields |= {"similarity": SIMILARITY_TERMS[loss], "similarity_views": numbers}
        else:
            raise InputError(f"view row {key!r}: {term!r}: a (action, any views), s or c (similarity, two views)")
    if "action_views" not in fields:
        raise InputError(f"view row {key!r}: no action loss (a_v<k>...)")
    return fields


def check_settings(settings: LTCSettings) -> None:
    if settings.optimiser not in OPTIMISERS:
        raise InputError(f"actions.ltc.optimiser must be one of {', '.join(OPTIMISERS)}, got {settings.optimiser!r}")
    if settings.similarity not in SIMILARITIES:
        raise InputError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {settings.similarity!r}")
    if not settings.action_views:
        raise InputError("action_views: at least one view must carry the action loss")


def build_network(settings: LTCSettings, channels: int, classes: int) -> LTC:
    torch.manual_seed(torch_seed(settings.seed, "ltc init"))
    return LTC(channels, classes, settings.extent, settings.size, settings.width, settings.dropout)


def make_optimiser(model: torch.nn.Module, settings: LTCSettings) -> torch.optim.Optimizer:
    if settings.optimiser == "adam":
        return torch.optim.Adam(model.parameters(), settings.learning_rate, weight_decay=settings.weight_decay)
    return torch.optim.SGD(
        model.parameters(), settings.learning_rate, momentum=settings.momentum, weight_decay=settings.weight_decay
    )


def similarity_loss(
    first: torch.Tensor,
    second: torch.Tensor,
    margin: float,
    negative_first: torch.Tensor | None = None,
    negative_second: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_s of synchronised representations (B, D), (B, D); with negative pairs (B', D), (B', D)
    also L_c's hinge pushing those at least `margin` apart."""
    loss = (first - second).pow(2).sum(1).mean()
    if negative_first is not None and len(negative_first):
        loss = loss + F.relu(margin**2 - (negative_first - negative_second).pow(2).sum(1)).mean()
    return loss


def performance_views(data: ActionSet) -> dict[tuple[int, int], int]:
    """(performance, view) → clip index."""
    return {(int(p), int(v)): i for i, (p, v) in enumerate(zip(data.performances, data.views))}


def training_performances(data: ActionSet, views: tuple[int, ...]) -> np.ndarray:
    """The performances that have every view in `views` (a batch draws from these)."""
    have = performance_views(data)
    return np.array([p for p in range(len(data.names)) if all((p, v) in have for v in views)], dtype=np.int64)


def negative_pairs(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each batch entry, another entry of another action (−1 where none)."""
    chosen = np.full(len(labels), -1)
    for i, label in enumerate(labels):
        others = np.flatnonzero(labels != label)
        if len(others):
            chosen[i] = rng.choice(others)
    return chosen


def training_step(
    model: LTC, data: ActionSet, settings: LTCSettings, performances: np.ndarray, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    """The loss terms of one batch: `action` (mean over the action views) and `similarity`."""
    have = performance_views(data)
    chosen = rng.choice(performances, settings.batch_size, replace=len(performances) < settings.batch_size)
    starts, tops, lefts = random_windows(rng, len(chosen), data.clips.shape[1:], settings.extent, settings.size)
    # the same instants and corners for every view of a performance: the views stay synchronised
    views = sorted(
        set(settings.action_views) | (set(settings.similarity_views) if settings.similarity != "none" else set())
    )
    index = {v: np.array([have[int(p), v] for p in chosen]) for v in views}
    embedded = {
        v: model.embed(crop(data.clips[index[v]], starts, tops, lefts, settings.extent, settings.size)) for v in views
    }
    labels = torch.as_tensor(data.labels[index[views[0]]])
    action = sum(F.cross_entropy(model.classifier(model.dropout(embedded[v])), labels) for v in settings.action_views)
    terms = {"action": action / len(settings.action_views)}
    if settings.similarity != "none":
        first, second = (embedded[v] for v in settings.similarity_views)
        if settings.similarity == "contrastive":
            pairs = negative_pairs(labels.numpy(), rng)
            valid = pairs >= 0
            terms["similarity"] = similarity_loss(
                first, second, settings.margin, first[torch.as_tensor(valid)], second[torch.as_tensor(pairs[valid])]
            )
        else:
            terms["similarity"] = similarity_loss(first, second, settings.margin)
    return terms


def train(
    name: str, model: LTC, train_set: ActionSet, test_set: ActionSet, settings: LTCSettings, run=None, progress=True
) -> list[dict]:
    """Train `model` in place; the history, one row per evaluation (the mean losses since the
    last and the test accuracies), the untrained network's first."""
    check_settings(settings)
    torch.manual_seed(torch_seed(settings.seed, "ltc train", name))
    needed = (*settings.action_views, *(settings.similarity_views if settings.similarity != "none" else ()))
    performances = training_performances(train_set, tuple(sorted(set(needed))))
    if not len(performances):
        raise InputError(f"{name}: no training performance has every view of {sorted(set(needed))}")
    optimiser = make_optimiser(model, settings)
    seen = training_clips(train_set, settings, len(test_set))

    def step(iteration: int):
        rng = seeded_generator(settings.seed, "ltc batch", name, iteration)
        terms = training_step(model, train_set, settings, performances, rng)
        return terms["action"] + settings.similarity_weight * terms.get("similarity", 0.0), terms

    def evaluate() -> dict[str, float]:
        return measures(model, test_set, seen, settings)

    history, _ = run_steps(name, model, optimiser, settings, step, evaluate, "clips_per_second", log, run, progress)
    return history


def test_windows(data: ActionSet, settings: LTCSettings) -> list[tuple[int, int]]:
    """(video, start frame) of every test clip: each video cut every `test_stride` frames."""
    length = data.clips.shape[2]
    return [(v, s) for v in range(len(data)) for s in evaluation_windows(length, settings.extent, settings.test_stride)]


def test_batches(data: ActionSet, settings: LTCSettings, batch_size: int = 32):
    """The test clips, centre crops, in batches (B, C, T, size, size) with their windows."""
    _, _, _, height, width = data.clips.shape
    top, left = (height - settings.size) // 2, (width - settings.size) // 2
    windows = test_windows(data, settings)
    for begin in range(0, len(windows), batch_size):
        videos = np.array([v for v, _ in windows[begin : begin + batch_size]])
        starts = np.array([s for _, s in windows[begin : begin + batch_size]])
        corners = np.full(len(videos), top), np.full(len(videos), left)
        yield crop(data.clips[videos], starts, *corners, settings.extent, settings.size)


@torch.no_grad()
def clip_probabilities(model: LTC, data: ActionSet, settings: LTCSettings) -> pd.DataFrame:
    """One row per test clip: its video (stem), performance, view, label, start frame and the
    softmax (C columns `p<c>`)."""
    model.eval()
    scores = [F.softmax(model(batch), dim=1).numpy() for batch in test_batches(data, settings)]
    windows = test_windows(data, settings)
    videos = np.array([v for v, _ in windows])
    frame = pd.DataFrame(
        {
            "video": [data.stems[v] for v in videos],
            "performance": [data.names[data.performances[v]] for v in videos],
            "view": data.views[videos],
            "label": data.labels[videos],
            "start": [s for _, s in windows],
        }
    )
    probabilities = np.concatenate(scores)
    return pd.concat(
        [frame, pd.DataFrame(probabilities, columns=[f"p{c}" for c in range(probabilities.shape[1])])], axis=1
    )


@torch.no_grad()
def video_embeddings(model: LTC, data: ActionSet, settings: LTCSettings) -> np.ndarray:
    """(N, D): each test video's representation h (the similarity losses' `embed`), the mean
    over its clips."""
    model.eval()
    embedded = torch.cat([model.embed(batch) for batch in test_batches(data, settings)]).numpy()
    videos = np.array([v for v, _ in test_windows(data, settings)])
    return np.stack([embedded[videos == v].mean(0) for v in range(len(data))])


def video_results(clips: pd.DataFrame) -> pd.DataFrame:
    """Per test video (in order of first appearance): its clips, how many are right, its mean
    softmax's class and whether that is right."""
    scores = clips.filter(regex=r"^p\d+$").to_numpy()
    clip_correct = scores.argmax(1) == clips["label"].to_numpy()
    rows = []
    for video, index in clips.groupby("video", sort=False).indices.items():
        mean = scores[index].mean(0)
        first = clips.iloc[index[0]]
        rows.append(
            {
                "video": video,
                "performance": first["performance"],
                "view": int(first["view"]),
                "label": int(first["label"]),
                "predicted": int(mean.argmax()),
                "clips": len(index),
                "clip_correct": int(clip_correct[index].sum()),
                "video_correct": float(mean.argmax() == first["label"]),
            }
        )
    return pd.DataFrame(rows)


def late_fusion(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Two networks' test clips with their softmax averaged (LTC's late fusion of RGB and flow);
    both must have cut the same videos at the same frames."""
    keys = ["video", "start", "label"]
    if not first[keys].equals(second[keys]):
        raise InputError("late fusion needs two evaluations of the same test clips (video, start frame, label)")
    fused = first.copy()
    columns = [c for c in first.columns if c.startswith("p") and c[1:].isdigit()]
    fused[columns] = (first[columns].to_numpy() + second[columns].to_numpy()) / 2
    return fused


def evaluate(model: LTC, data: ActionSet, settings: LTCSettings) -> pd.DataFrame:
    return video_results(clip_probabilities(model, data, settings))


def accuracies(videos: pd.DataFrame, prefix: str = "test_") -> dict[str, float]:
    return {
        f"{prefix}clip_accuracy": float(videos["clip_correct"].sum() / videos["clips"].sum()),
        f"{prefix}video_accuracy": float(videos["video_correct"].mean()),
    }


def training_clips(train_set: ActionSet, settings: LTCSettings, count: int) -> ActionSet:
    """A fixed subset of the clips the network learns actions from (its views), at most `count`:
    measured as the test's are, they tell under-fitting from over-fitting."""
    learnt = np.flatnonzero(np.isin(train_set.views, settings.action_views))
    chosen = seeded_generator(settings.seed, "ltc measured training clips").permutation(learnt)[:count]
    return train_set.select(np.isin(np.arange(len(train_set)), chosen))


def measures(model: LTC, test_set: ActionSet, seen: ActionSet, settings: LTCSettings) -> dict[str, float]:
    """The test clips' accuracies (test_...) and those of training clips (train_...)."""
    return accuracies(evaluate(model, test_set, settings)) | accuracies(evaluate(model, seen, settings), "train_")
