"""The 1 Euro filter (Casiez, Roussel & Vogel, "1 € Filter: A Simple Speed-based Low-pass Filter
for Noisy Input in Interactive Systems", CHI 2012) on arrays: every element is filtered on its
own, with a cutoff that rises with its own speed, so slow motion is smoothed hard (no jitter)
and fast motion lags little.

For each new sample x at rate f (Hz):
    alpha(fc) = 1 / (1 + f / (2π fc))
    dx  = (x − x̂_prev) f,       dx̂ = dx̂_prev + alpha(fc_d) (dx − dx̂_prev)
    fc  = fc_min + β |dx̂|,       x̂  = x̂_prev + alpha(fc) (x − x̂_prev)
The first sample passes unchanged (dx̂ starts at 0). VNect filters the 2D joints with
(fc_min, β) = (1.7, 0.3), the 3D joints with (0.8, 0.4) and the global pose with (20, 0.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# VNect's settings (Mehta's thesis §5.3): (fc_min Hz, β)
VNECT_2D = (1.7, 0.3)
VNECT_3D = (0.8, 0.4)
VNECT_GLOBAL = (20.0, 0.4)


def smoothing_factor(cutoff: np.ndarray | float, rate: float) -> np.ndarray | float:
    """The exponential smoothing factor of a first-order low-pass at `cutoff` Hz sampled at `rate` Hz."""
    return 1.0 / (1.0 + rate / (2.0 * math.pi * cutoff))


@dataclass
class OneEuroFilter:
    """Filters a stream of arrays (any one shape) sampled at `rate` Hz; `derivative_cutoff`
    smooths the speed estimate. Call it once per sample; `timestamp` (seconds), where given,
    replaces `rate` by the measured one."""

    min_cutoff: float
    beta: float
    rate: float
    derivative_cutoff: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_cutoff", "rate", "derivative_cutoff"):
            if not getattr(self, name) > 0:
                raise ValueError(f"OneEuroFilter: {name} must be > 0, not {getattr(self, name)}")
        if self.beta < 0:
            raise ValueError(f"OneEuroFilter: beta must be >= 0, not {self.beta}")
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next sample passes unchanged."""
        self.filtered: np.ndarray | None = None
        self.speed: np.ndarray | None = None
        self.last_time: float | None = None

    def __call__(self, sample: np.ndarray, timestamp: float | None = None) -> np.ndarray:
        """(...) sample -> (...) filtered, float64."""
        x = np.asarray(sample, dtype=np.float64)
        if timestamp is not None:
            if self.last_time is not None and timestamp > self.last_time:
                self.rate = 1.0 / (timestamp - self.last_time)
            self.last_time = timestamp
        if self.filtered is None:
            self.filtered, self.speed = x.copy(), np.zeros_like(x)
            return self.filtered.copy()
        if x.shape != self.filtered.shape:
            raise ValueError(f"OneEuroFilter: a sample of shape {x.shape} in a stream of {self.filtered.shape}")
        speed = (x - self.filtered) * self.rate
        self.speed = self.speed + smoothing_factor(self.derivative_cutoff, self.rate) * (speed - self.speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed)
        self.filtered = self.filtered + smoothing_factor(cutoff, self.rate) * (x - self.filtered)
        return self.filtered.copy()


def filter_sequence(samples: np.ndarray, min_cutoff: float, beta: float, rate: float) -> np.ndarray:
    """(T, ...) samples at `rate` Hz -> (T, ...) filtered by one 1 Euro filter from the first."""
    one_euro = OneEuroFilter(min_cutoff, beta, rate)
    return np.stack([one_euro(sample) for sample in samples])
