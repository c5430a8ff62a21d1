"""What a training loop keeps between two evaluations: each loss's running mean and the
throughput, written the same way by every loop (BodyNet's stages, the action networks, VNect),
and the step schedule of their learning rates."""

from __future__ import annotations

import time


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
