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
    terms (scalar tensors), the rate of `stepped_rate` (`settings.learning_rate`, `lr_drop`);
    every step's losses into the meter and MLflow (`run`); every `settings.eval_every` steps and
    at the end a history row, the meter's means and `speed` (`settings.batch_size` examples a
    step), then `evaluate()`, logged to `log`. Returns the history (the untrained model's `evaluate()` first)
    and every step's losses."""
    from tqdm import tqdm

    history, steps, meter = [{"iteration": 0, **evaluate()}], [], LossMeter()
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
        done = iteration + 1
        values = {"loss": loss.item(), **{f"loss_{k}": v.item() for k, v in terms.items()}}
        meter.add(values)
        steps.append({"iteration": done, **values})
        if run is not None:
            run.log_metrics(values, step=done)
        if done % settings.eval_every == 0 or done == settings.iterations:
            row = {**meter.take(done, settings.batch_size, speed), **evaluate()}
            history.append(row)
            if run is not None:
                run.log_metrics({k: v for k, v in row.items() if not k.startswith("loss")}, step=done)
            log.info("%s %d: %s", name, done, row_line(row))
    return history, steps
