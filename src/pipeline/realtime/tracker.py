"""VNect's bounding-box tracker (Mehta's thesis §8.2.2): the next frame's crop from this frame's
predicted 2D joints, at no cost beyond the network's own output.

The smallest rectangle holding the joints, widened by 0.4 of its width and heightened by 0.2
of its height (half on each side), shifted horizontally to the joints' centroid, its corners
averaged with the previous frame's box with a momentum of 0.75; the network reads the square
around it.

By default the box keeps the size it started with and follows only the joints' centre. The
pipeline's VNect places the 2D joints where a person framed as in training would be: read
from crops 0.6, 0.8, 1, 1.25 and 1.6 times the training crop, their box's side is 0.63, 0.82,
0.97, 1.17 and 1.38 of the true one (median, 42 test frames; the default run's network at
4138c71). A box sized from them has nothing holding it to the person and shrinks by their
small bias every frame: the thesis' tracker ended its clips at 0.42 of the true crop's side
(median over 14 test clips), against 1.01 keeping the size, and over the 84 test clips the raw
3D joints were 12.9 mm [4.8, 20.4] further from the truth with it (272.6 against 259.7 mm).
`follows_size` restores the thesis' form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOMENTUM = 0.75
MARGINS = (0.4, 0.2)  # the box's buffer, a share of its width and of its height


@dataclass
class BoxTracker:
    """Follows one person from the box (x0, y0, x1, y1, image pixels) it `start`s from."""

    momentum: float = MOMENTUM
    follows_size: bool = False

    def __post_init__(self) -> None:
        self.box: np.ndarray | None = None

    def start(self, box: np.ndarray) -> None:
        self.box = np.asarray(box, dtype=np.float64)

    def update(self, points: np.ndarray) -> np.ndarray:
        """(J, 2) this frame's joints (image pixels) -> the next frame's box."""
        if self.box is None:
            raise RuntimeError("BoxTracker: start it from a first box")
        low, high = points.min(axis=0), points.max(axis=0)
        width, height = high - low
        x_buffer, y_buffer = MARGINS[0] * width / 2, MARGINS[1] * height / 2
        box = np.array([low[0] - x_buffer, low[1] - y_buffer, high[0] + x_buffer, high[1] + y_buffer])
        box[[0, 2]] += points[:, 0].mean() - (box[0] + box[2]) / 2  # centred on the joints' centroid
        if not self.follows_size:
            half, centre = (self.box[2:] - self.box[:2]) / 2, (box[:2] + box[2:]) / 2
            box = np.concatenate([centre - half, centre + half])
        self.box = self.momentum * self.box + (1 - self.momentum) * box
        return self.box.copy()

    def square(self) -> tuple[np.ndarray, float]:
        """The current box's enclosing square: (centre (2,), side)."""
        x0, y0, x1, y1 = self.box
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), float(max(x1 - x0, y1 - y0, 1.0))


def square_box(centre: np.ndarray, side: float) -> np.ndarray:
    """The box (x0, y0, x1, y1) of a square crop."""
    half = side / 2
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])
