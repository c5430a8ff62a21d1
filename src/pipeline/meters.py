"""What a training loop keeps between two evaluations: each loss's running mean and the
throughput, written the same way by every loop (BodyNet's stages, the action networks, VNect),
the step schedule of their learning rates, and the loop the stages' trainers share."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any


class LossMeter:
    """The mean of each loss since the last `take`, and how many examples a second went by."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        self.began = time.perf_counter()

    def add(self, values: dict[str, float]) -> None:
        """One iteration's losses."""
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def take(self, iteration: int, batch_size: int, speed: str) -> dict[str, float]:
        """{'iteration', each loss's mean, `speed`: examples a second} since the last take; then
        starts again."""
        row = {
            "iteration": iteration,
            **{name: total / self.count for name, total in self.sums.items()},
            speed: self.count * batch_size / (time.perf_counter() - self.began),
        }
        self.reset()
        return row


def row_line(row: dict[str, float]) -> str:
    """A history row as one log line's tail: 'loss=0.1, pckh=0.5, ...'."""
    return ", ".join(f"{name}={value:.4g}" for name, value in row.items() if name != "iteration")


def stepped_rate(learning_rate: float, iteration: int, lr_drop: float, iterations: int) -> float:
    """The rate of (0-based) `iteration`: `learning_rate`, a tenth of it from `lr_drop` of the
    `iterations` on."""
    return learning_rate * (0.1 if iteration >= lr_drop * iterations else 1.0)


class Ledger:
    """What a training loop writes down: every step's losses (in `steps`, and in MLflow's `run`
    at that step), their means since the last evaluation, and at each evaluation (every
    `settings.eval_every` steps and the last) a history row: those means, the throughput
    (`speed`: `settings.batch_size` examples a step) and the measures, logged to `log` and the run
    (through `metrics`, which names them there; as they are by default). Resumed from the
    `history` and `steps` a checkpoint kept."""

    def __init__(
        self,
        name: str,
        settings,
        speed: str,
        log: logging.Logger,
        run=None,
        metrics: Callable[[dict[str, float]], dict[str, float]] | None = None,
        history: list[dict] | None = None,
        steps: list[dict] | None = None,
    ) -> None:
        self.name, self.settings, self.speed, self.log, self.run = name, settings, speed, log, run
        self.metrics = metrics or (lambda row: row)
        self.history = [] if history is None else history
        self.steps = [] if steps is None else steps
        self.meter = LossMeter()

    def start(self, measures: dict[str, float]) -> None:
        """The untrained model's measures, the history's first row."""
        self.history.append({"iteration": 0, **measures})
        if self.run is not None:
            self.run.log_metrics(self.metrics(measures), step=0)
        self.meter.reset()  # the throughput counts training steps, not this evaluation

    def record(self, done: int, values: dict[str, float]) -> bool:
        """Step `done`'s losses; whether an evaluation is due after it."""
        self.meter.add(values)
        self.steps.append({"iteration": done, **values})
        if self.run is not None:
            self.run.log_metrics(values, step=done)
        return done % self.settings.eval_every == 0 or done == self.settings.iterations

    def evaluated(self, done: int, measures: dict[str, float]) -> dict[str, float]:
        """The history row of the evaluation after step `done`."""
        row = {**self.meter.take(done, self.settings.batch_size, self.speed), **measures}
        self.history.append(row)
        if self.run is not None:
            logged = {k: v for k, v in row.items() if k != "iteration" and not k.startswith("loss")}
            self.run.log_metrics(self.metrics(logged), step=done)
        self.log.info("%s %d: %s", self.name, done, row_line(row))
        return row


def run_steps(
    name: str,
    model,
    optimiser,
    settings,
    step: Callable[[int], tuple[Any, dict[str, Any]]],
    evaluate: Callable[[], dict[str, float]],
    speed: str,
    log: logging.Logger,
    run=None,
    progress: bool = True,
) -> tuple[list[dict], list[dict]]:
    """The loop the stages' trainers share (the action networks, VNect, the mesh-video models):
    `settings.iterations` steps, each `step(iteration)` giving the loss to minimise and its
    terms (scalar tensors), the rate of `stepped_rate` (`settings.learning_rate`, `lr_drop`),
    written down by a `Ledger` (`speed`, `run`, `log`) with `evaluate()`'s measures. Returns the
    history (the untrained model's `evaluate()` first) and every step's losses."""
    from tqdm import tqdm

    ledger = Ledger(name, settings, speed, log, run)
    ledger.start(evaluate())
    for iteration in tqdm(range(settings.iterations), desc=name, unit="it", disable=not progress):
        model.train()
        loss, terms = step(iteration)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"{name}: the loss became {loss.item()} at iteration {iteration + 1}")
        for group in optimiser.param_groups:
            group["lr"] = stepped_rate(settings.learning_rate, iteration, settings.lr_drop, settings.iterations)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        values = {"loss": loss.item(), **{f"loss_{k}": v.item() for k, v in terms.items()}}
        if ledger.record(iteration + 1, values):
            ledger.evaluated(iteration + 1, evaluate())
    return ledger.history, ledger.steps
