"""Training one BodyNet stage: a plain loop, checkpointed, resumable, watched for NaNs.

Every random draw (batch indices, augmentation) is seeded from the config's seed, the stage
and the iteration, so an interrupted stage resumed from its checkpoint continues exactly
as it would have, and a CPU run repeats bit for bit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np
import torch

from pipeline.datasets.surreal import SampleSizes
from pipeline.errors import InputError
from pipeline.meters import Ledger, stepped_rate
from pipeline.models.bodynet import VOXEL_PART_CLASSES, BodyNet, BodyNetConfig
from pipeline.models.checkpoint import load_checkpoint, save_model
from pipeline.seeding import seeded_generator, torch_seed
from pipeline.training import losses, metrics
from pipeline.training.samples import ORACLE_TARGETS, SampleSet, inputs, make_batch
from pipeline.training.stages import SUBNETWORKS, TERM_TARGETS, Stage

log = logging.getLogger("pipeline.training")


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


@dataclass
class TrainSettings:
    """One stage's training. The fields without a default are the config's (`bodynet.*`:
    docs/config.md says what each means and its value); those with one are set only by the
    studies that vary them."""

    iterations: int
    batch_size: int
    learning_rate: float
    eval_every: int
    eval_samples: int
    checkpoint_every: int
    seed: int
    device: str
    precision: str  # auto | bf16 | fp32: see `autocast_dtype`
    channels_last: bool  # NHWC activations: oneDNN's fast layout on the CPU, tensor cores' on a GPU
    rotation: float  # degrees: crops of the 2D tasks turned by up to this much
    scale: float  # and zoomed by a factor in 1 ± this
    lr_drop: float  # the learning rate is divided by 10 after this fraction of the iterations
    optimiser: str = "rmsprop"  # BodyNet's; adam and sgd (momentum) for the sparsity study
    momentum: float = 0.9  # sgd's
    weight_decay: float = 0.0
    decay: str = "l2"  # l2: λθ added to the gradient; decoupled: θ ← θ − s_t·λ·θ each step
    oracle: tuple[str, ...] = ()  # 'pose2d', 'segm': their truth fed to the later networks (a diagnosis)


def stage_settings(bodynet: dict, stage: str, seed: int, **overrides: object) -> TrainSettings:
    """The TrainSettings the workflow trains `stage` with, from the config's `bodynet` section
    (the end-to-end stages' own schedule, batch and rate) and `seed`; `overrides` replace
    fields (a benchmark's iterations, device, ...)."""
    end_to_end = stage.startswith("end_to_end")
    eval_every = overrides.get("eval_every", bodynet["eval_every"])
    settings = TrainSettings(
        iterations=bodynet["iterations"]["end_to_end" if end_to_end else stage],
        batch_size=bodynet["end_to_end_batch_size" if end_to_end else "batch_size"],
        learning_rate=bodynet["end_to_end_learning_rate" if end_to_end else "learning_rate"],
        eval_every=eval_every,
        eval_samples=bodynet["eval_samples"],
        checkpoint_every=eval_every,
        seed=seed,
        device=bodynet["device"],
        precision=bodynet["precision"],
        channels_last=bodynet["channels_last"],
        rotation=bodynet["augmentation"]["rotation"],
        scale=bodynet["augmentation"]["scale"],
        lr_drop=bodynet["lr_drop"],
    )
    return replace(settings, **overrides)


def network_config(bodynet: dict, sizes: SampleSizes, **overrides: object) -> BodyNetConfig:
    """The networks' config the workflow's stages build from the config's `bodynet` section, at
    the samples' `sizes`; `overrides` replace fields (a benchmark's loss, ...)."""
    config = BodyNetConfig(
        input_size=sizes.input,
        heatmap_size=sizes.heatmap,
        voxel_size=sizes.voxels,
        hourglass=bodynet["hourglass"],
        pose3d_loss=bodynet["pose3d_loss"],
        backbone_2d=bodynet["backbone_2d"],
        selecsls=bodynet["selecsls"],
    )
    return replace(config, **overrides)


OPTIMISERS = ("rmsprop", "adam", "sgd")
DECAYS = ("l2", "decoupled")


def make_optimiser(parameters: list[torch.nn.Parameter], settings: TrainSettings) -> torch.optim.Optimizer:
    """The stage's optimiser; with L2 the decay goes through the optimiser (an adaptive one
    rescales it with the gradient), decoupled decay is applied by `decay_weights` instead."""
    if settings.optimiser not in OPTIMISERS:
        raise InputError(f"optimiser must be one of {', '.join(OPTIMISERS)}, got {settings.optimiser!r}")
    if settings.decay not in DECAYS:
        raise InputError(f"weight decay must be one of {', '.join(DECAYS)}, got {settings.decay!r}")
    l2 = settings.weight_decay if settings.decay == "l2" else 0.0
    if settings.optimiser == "adam":
        return torch.optim.Adam(parameters, lr=settings.learning_rate, weight_decay=l2)
    if settings.optimiser == "sgd":
        return torch.optim.SGD(parameters, lr=settings.learning_rate, momentum=settings.momentum, weight_decay=l2)
    return torch.optim.RMSprop(parameters, lr=settings.learning_rate, weight_decay=l2)


@torch.no_grad()
def decay_weights(parameters: list[torch.nn.Parameter], settings: TrainSettings, iteration: int) -> None:
    """Decoupled weight decay as Loshchilov & Hutter define it and Mehta et al. apply it:
    θ ← θ (1 − s_t·λ), s_t the learning-rate schedule's multiplier (1, then 0.1 after the drop),
    not the learning rate itself (torch's AdamW uses lr·λ, a decay lr times weaker)."""
    if settings.decay == "decoupled" and settings.weight_decay:
        torch._foreach_mul_(parameters, 1.0 - schedule(settings, iteration) * settings.weight_decay)


def schedule(settings: TrainSettings, iteration: int) -> float:
    """The learning-rate multiplier s_t of the step: 1, a tenth after `lr_drop` of the iterations."""
    return stepped_rate(1.0, iteration, settings.lr_drop, settings.iterations)


def learning_rate(settings: TrainSettings, iteration: int) -> float:
    return settings.learning_rate * schedule(settings, iteration)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


PRECISIONS = ("auto", "bf16", "fp32")


@cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX): where it does not,
    oneDNN emulates bfloat16 and autocasting to it is slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The type the networks' forward pass is autocast to, or None for float32 throughout.

    bf16: bfloat16 (on a GPU without it, float16 with a gradient scaler); auto: the same where
    the hardware computes it natively (any CUDA GPU; a CPU with AVX-512 BF16 or AMX), else
    float32; fp32: float32 everywhere. Losses and measures are always taken in float32."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32" or (precision == "auto" and device.type == "cpu" and not cpu_has_bf16()):
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def held_subnetworks(model: BodyNet, stage: Stage) -> list[str]:
    """The subnetworks a stage's checkpoint holds: those it trains and those it inherited."""
    return [name for name in SUBNETWORKS if name in stage.trains or name in getattr(model, "trained", ())]


@torch.no_grad()
def evaluate(
    model: BodyNet,
    samples: SampleSet,
    wanted: tuple[str, ...],
    device: torch.device,
    batch_size: int = 16,
    oracle: tuple[str, ...] = (),
) -> dict[str, float]:
    """Validation measures of the wanted subnetworks' last stack (fed the `oracle`'s truth)."""
    model.eval()
    focal = float(samples.arrays["focal"])
    principal = torch.as_tensor(samples.arrays["principal"])
    correct = dict.fromkeys(metrics.PCK_REFERENCES, 0.0)
    visible = dict.fromkeys(metrics.PCK_REFERENCES, 0)
    intersection = union = voxel_intersection = voxel_union = None
    errors, ious, beta_errors, depth_errors = [], [], [], []
    for start in range(0, len(samples), batch_size):
        targets = tuple(TERM_TARGETS[name] for name in ("voxels", "depth", "part_voxels") if name in wanted)
        targets += tuple(target for name in oracle for target in ORACLE_TARGETS[name])
        batch = make_batch(samples, np.arange(start, min(start + batch_size, len(samples))), targets=targets)
        outputs = model(**inputs(batch, device, oracle=oracle), wanted=wanted)
        if "pose2d" in outputs:
            for reference in metrics.PCK_REFERENCES:
                c, v = metrics.pckh(outputs["pose2d"][-1].cpu().float(), batch, reference)
                correct[reference], visible[reference] = correct[reference] + c, visible[reference] + v
        if "segm" in outputs:
            i, u = metrics.part_counts(outputs["segm"][-1].cpu(), batch["parts"])
            intersection, union = (i, u) if intersection is None else (intersection + i, union + u)
        if "pose3d" in outputs:
            predicted = metrics.volume_joints_camera(outputs["pose3d"][-1].cpu().float(), batch, focal, principal)
            errors.append(metrics.joint_error_mm(predicted, batch["joints_camera"]))
        if "voxels" in outputs:
            ious.append(metrics.voxel_iou(outputs["voxels"][-1].cpu(), batch["voxels"]))
        if "shape" in outputs:
            beta_errors.append((outputs["shape"][-1].cpu().float() - batch["betas"]).norm(dim=1))
        if "depth" in outputs:
            depth_errors.append(metrics.depth_errors_mm(outputs["depth"][-1].cpu().float(), batch["depth_classes"])[0])
        if "part_voxels" in outputs:
            i, u = metrics.part_counts(outputs["part_voxels"][-1].cpu(), batch["part_voxels"], VOXEL_PART_CLASSES)
            voxel_intersection, voxel_union = (
                (i, u) if voxel_intersection is None else (voxel_intersection + i, voxel_union + u)
            )
    result = {}
    if visible["bodynet"]:
        result["pckh"] = correct["bodynet"] / visible["bodynet"]
        result["pckh_head"] = correct["head"] / max(visible["head"], 1)
    if intersection is not None:
        per_part = intersection[1:].double() / union[1:].clamp_min(1).double()
        result["part_iou"] = float(per_part[union[1:] > 0].mean())
    if errors:
        result["joint_error_mm"] = float(torch.cat(errors).mean())
    if ious:
        result["voxel_iou"] = float(torch.cat(ious).mean())
    if beta_errors:
        result["beta_error"] = float(torch.cat(beta_errors).mean())
    if depth_errors:
        result["depth_rmse_mm"] = float(torch.cat(depth_errors).nanmean())
    if voxel_intersection is not None:
        per_part = voxel_intersection[1:].double() / voxel_union[1:].clamp_min(1).double()
        result["part_voxel_iou"] = float(per_part[voxel_union[1:] > 0].mean())
    return {name: result[name] for name in sorted(result)}


def set_trainable(model: BodyNet, stage: Stage) -> list[torch.nn.Parameter]:
    parameters = []
    for name in SUBNETWORKS:
        module = getattr(model, name)
        trainable = name in stage.trains
        module.train(trainable)
        module.requires_grad_(trainable)
        if trainable:
            parameters += list(module.parameters())
    return parameters


def start_from_held(model: BodyNet, stage: Stage) -> None:
    """Start the stage's networks from the held network it names (`Stage.starts_from`),
    unless a checkpoint gave them their weights already."""
    if stage.starts_from is None or set(stage.trains) & getattr(model, "trained", set()):
        return
    if stage.starts_from not in getattr(model, "trained", set()):
        raise InputError(f"stage {stage.name} starts from {stage.starts_from}, which no checkpoint given holds")
    for name in stage.trains:
        getattr(model, name).start_from(getattr(model, stage.starts_from))


# The prefix of the measures taken on training crops in a history row: beside the validation's,
# they tell under-fitting (both poor) from over-fitting (training far better).
TRAINING_PREFIX = "train_"


def measure(
    model: BodyNet,
    val_set: SampleSet,
    fit_set: SampleSet | None,
    wanted: tuple[str, ...],
    device: torch.device,
    oracle: tuple[str, ...] = (),
) -> dict[str, float]:
    """The validation measures, and the same on `fit_set` (training crops, unaugmented) under
    TRAINING_PREFIX."""
    row = evaluate(model, val_set, wanted, device, oracle=oracle)
    if fit_set is not None:
        seen = evaluate(model, fit_set, wanted, device, oracle=oracle)
        row |= {TRAINING_PREFIX + name: value for name, value in seen.items()}
    return row


# The output layers a stage trained from scratch starts at the log-odds of its training crops'
# classes: {subnetwork: (its output layers' biases, the batch target of its classes)}.
PRIORS = {
    "voxels": (lambda model: [model.voxels.refine.bias], "voxels"),
    "segm": (lambda model: [head.bias for head in model.segm.heads], "parts"),
    "depth": (lambda model: [head.bias for head in model.depth.heads], "depth_classes"),
}
PRIOR_CROPS = 256


@torch.no_grad()
def start_from_priors(model: BodyNet, stage: Stage, train_set: SampleSet, seed: int) -> None:
    """Start the output layers of the networks the stage trains from scratch (no checkpoint
    gave them weights) at their classes' share among the training crops: the logit of the
    occupied voxels' share (about 2 % of the grid), the log of each part's and depth class's.
    From an even start a network spends its first hundreds of iterations only learning that
    almost everything is empty (the voxels stay all empty for 200 iterations of 16 crops,
    IoU 0.0, where this start reaches 0.56); the loss is unchanged."""
    fresh = [name for name in stage.trains if name in PRIORS and name not in getattr(model, "trained", set())]
    if not fresh:
        return
    crops = train_set.subset(min(PRIOR_CROPS, len(train_set)), seed)
    batch = make_batch(crops, np.arange(len(crops)), targets=tuple(PRIORS[name][1] for name in fresh))
    for name in fresh:
        biases, target = PRIORS[name]
        truth = batch[target]
        if name == "voxels":
            share = truth.float().mean().clamp(1e-4, 1 - 1e-4)
            prior = torch.log(share / (1 - share))
        else:
            counts = torch.bincount(truth.flatten(), minlength=biases(model)[0].numel()).float()
            prior = torch.log((counts / counts.sum()).clamp_min(1e-4))
        for bias in biases(model):
            bias.copy_(prior.to(bias.device).expand_as(bias))


def resume(
    model: BodyNet, optimiser: torch.optim.Optimizer, checkpoint: Path, signature: str, stage: Stage
) -> tuple[int, list[dict], list[dict]] | None:
    """(iteration, history, steps) of the run `checkpoint` holds, its weights and optimiser
    state loaded into `model` and `optimiser`; None when there is none, or it was written with
    other settings (another `signature`)."""
    saved = load_checkpoint(checkpoint) if checkpoint.exists() else None
    if saved is not None and saved.get("signature") != signature:
        log.warning("%s was made with other settings: starting afresh", checkpoint)
        saved = None
    if saved is None:
        return None
    for name, state in saved["state"].items():
        getattr(model, name).load_state_dict(state)
    optimiser.load_state_dict(saved["optimiser"])
    log.info("%s: resuming at iteration %d from %s", stage.name, saved["iteration"], checkpoint)
    return saved["iteration"], saved["history"], saved["steps"]


def training_batch(
    train_set: SampleSet, stage: Stage, settings: TrainSettings, iteration: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """The iteration's batch: its crops and augmentation drawn from the seed, the stage and the
    iteration alone, so that a resumed run draws what the uninterrupted one would have."""
    rng = seeded_generator(settings.seed, "batch", stage.name, iteration)
    indices = rng.choice(len(train_set), settings.batch_size, replace=len(train_set) < settings.batch_size)
    return make_batch(
        train_set,
        indices,
        rng,
        flip=stage.flip,
        jitter=True,
        rotation=settings.rotation * stage.flip,
        scale=settings.scale * stage.flip,
        targets=stage.targets + tuple(target for name in settings.oracle for target in ORACLE_TARGETS[name]),
        device=device,
    )


@dataclass
class Optimisation:
    """What one update needs besides the model and the batch."""

    optimiser: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    parameters: list[torch.nn.Parameter]
    amp_dtype: torch.dtype | None
    layout: torch.memory_format


def step(
    model: BodyNet,
    stage: Stage,
    batch: dict[str, torch.Tensor],
    settings: TrainSettings,
    iteration: int,
    update: Optimisation,
    device: torch.device,
    checkpoint: Path,
) -> dict[str, float]:
    """One update of the stage's networks; the loss and its terms. A loss that is not a finite
    number stops the stage (TrainingDiverged), the last checkpoint kept."""
    with torch.autocast(device.type, dtype=update.amp_dtype, enabled=update.amp_dtype is not None):
        outputs = model(**inputs(batch, device, update.layout, settings.oracle), wanted=stage.wanted)
    terms = losses.terms(outputs, batch, list(stage.weights), model.config.pose3d_loss)
    loss = sum(stage.weights[name] * value for name, value in terms.items())
    if not torch.isfinite(loss):
        kept = f"the last good checkpoint, {checkpoint}, stays" if checkpoint.exists() else "no checkpoint yet"
        raise TrainingDiverged(
            f"{stage.name}: the loss became {loss.item()} at iteration {iteration + 1} "
            f"({', '.join(f'{k}={v.item():.4g}' for k, v in terms.items())}); {kept}"
        )
    update.optimiser.zero_grad(set_to_none=True)
    for group in update.optimiser.param_groups:  # from the iteration alone, so that a resumed run agrees
        group["lr"] = learning_rate(settings, iteration)
    update.scaler.scale(loss).backward()
    decay_weights(update.parameters, settings, iteration)
    update.scaler.step(update.optimiser)
    update.scaler.update()
    return {"loss": loss.item(), **{f"loss_{k}": v.item() for k, v in terms.items()}}


def train(
    model: BodyNet,
    stage: Stage,
    train_set: SampleSet,
    val_set: SampleSet,
    settings: TrainSettings,
    checkpoint: Path,
    run=None,
    progress: bool = True,
    signature: str = "",
    fit_set: SampleSet | None = None,
) -> tuple[list[dict], list[dict]]:
    """Train `stage` for `settings.iterations` (resuming from `checkpoint` if it exists);
    returns the history (one row per evaluation: the mean losses since the last one, the
    measures on `val_set` and, given `fit_set`, a fixed subset of the training crops, on those
    too) and every iteration's losses.
    A checkpoint resumes only if it was written with the same `signature` (what the caller
    says must not change between an interrupted run and its continuation)."""
    from tqdm import tqdm

    device = pick_device(settings.device)
    torch.manual_seed(torch_seed(settings.seed, "train", stage.name))
    layout = memory_format(settings.channels_last)
    model.to(device, memory_format=layout)
    parameters = set_trainable(model, stage)
    amp_dtype = autocast_dtype(device, settings.precision)
    optimiser = make_optimiser(parameters, settings)
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)
    update = Optimisation(optimiser, scaler, parameters, amp_dtype, layout)
    resumed = resume(model, optimiser, checkpoint, signature, stage)
    start, history, steps = resumed if resumed is not None else (0, [], [])
    ledger = Ledger(stage.name, settings, "samples_per_second", log, run, measures_logged, history, steps)
    if resumed is None:
        start_from_held(model, stage)
        start_from_priors(model, stage, train_set, settings.seed)
        ledger.start(measure(model, val_set, fit_set, stage.wanted, device, settings.oracle))
        set_trainable(model, stage)
    bar = tqdm(
        range(start, settings.iterations),
        desc=stage.name,
        unit="it",
        initial=start,
        total=settings.iterations,
        disable=not progress,
    )
    for iteration in bar:
        batch = training_batch(train_set, stage, settings, iteration, device)
        values = step(model, stage, batch, settings, iteration, update, device, checkpoint)
        bar.set_postfix(loss=f"{values['loss']:.4g}", refresh=False)  # drawn at the bar's own pace
        done = iteration + 1
        if ledger.record(done, values):
            ledger.evaluated(done, measure(model, val_set, fit_set, stage.wanted, device, settings.oracle))
            set_trainable(model, stage)
        if done % settings.checkpoint_every == 0 or done == settings.iterations:
            save_model(
                checkpoint,
                model,
                stage.name,
                held_subnetworks(model, stage),
                done,
                {"optimiser": optimiser.state_dict(), "history": history, "steps": steps, "signature": signature},
            )
    return history, steps


def measures_logged(row: dict[str, float]) -> dict[str, float]:
    """A history row's measures as MLflow metrics: `val_<measure>`, `train_<measure>` and the
    training speed."""
    unprefixed = (TRAINING_PREFIX, "samples_per_second")
    return {
        name if name.startswith(unprefixed) else f"val_{name}": value
        for name, value in row.items()
        if name != "iteration"
    }


def check_improved(history: list[dict]) -> dict[str, float]:
    """Change of each validation measure from the untrained start to the end (signed so
    that positive is better)."""
    first, last = history[0], history[-1]
    better = {
        "pckh": 1,
        "pckh_head": 1,
        "part_iou": 1,
        "voxel_iou": 1,
        "joint_error_mm": -1,
        "beta_error": -1,
        "depth_rmse_mm": -1,
        "part_voxel_iou": 1,
    }
    return {
        name: sign * (last[name] - first[name])
        for name, sign in better.items()
        if name in first and name in last and math.isfinite(last[name])
    }
