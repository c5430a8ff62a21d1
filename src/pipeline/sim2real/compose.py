"""A rendered person over a hand-held camera's background (Doersch & Zisserman, 2019, App. A).

The person is cut from a rendered clip by its segmentation and laid over the frames of
`synthesis.handheld.background_video`. Tracked (the paper's construction), the person moves
with the scene: a camera that moves by o_t shows every scene point, the person's feet
included, displaced by −o_t, so the person layer is displaced by −o_t too and its flow gains
the camera's move. Untracked (the paper's "no background tracking"), the person stays where
it was rendered while the background moves under it. A still background is the zero
trajectory.

Shapes: T frames of H × W pixels; flows (T − 1, H, W, 2) from each frame to the next, pixels,
x right and y down; offsets (T, 2) the camera's, pixels; points (T, J, 2) pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.synthesis.handheld import background_video


@dataclass(frozen=True)
class Composite:
    """A composed clip (the module's shapes)."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    flows: np.ndarray  # (T − 1, H, W, 2) float32
    mask: np.ndarray  # (T, H, W) bool, the person
    points: np.ndarray  # (T, J, 2) the person's 2D joints, pixels


def shifted(image: np.ndarray, shift: np.ndarray, nearest: bool = False) -> np.ndarray:
    """`image` (H, W, ...) moved by `shift` (2,) pixels, (x, y); what enters from outside is zero."""
    height, width = image.shape[:2]
    move = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    if image.dtype == bool:
        return cv2.warpAffine(image.astype(np.uint8), move, (width, height), flags=cv2.INTER_NEAREST) > 0
    return cv2.warpAffine(image, move, (width, height), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def moved_mask(mask: np.ndarray, move: np.ndarray, occluder: np.ndarray | None = None) -> np.ndarray:
    """Where a frame shows the person: its render's `mask` (H, W) displaced by −`move`, less the
    `occluder` (H, W) in front of it."""
    layer = shifted(mask, -move)
    return layer if occluder is None else layer & ~occluder


def compose(
    person: np.ndarray,
    mask: np.ndarray,
    person_flow: np.ndarray,
    points: np.ndarray,
    photo: np.ndarray,
    offsets: np.ndarray,
    tracked: bool = True,
    occluder: np.ndarray | None = None,
) -> Composite:
    """The rendered person (T, H, W, 3) uint8 where `mask` (T, H, W) bool, its rendered flow
    (T − 1, H, W, 2) and 2D joints (T, J, 2), laid over the `photo` (h, w, 3) filmed along
    `offsets` (T, 2); moved with the scene where `tracked`; hidden where `occluder` (T, H, W)
    bool, a part of the scene in front of the person, shows the background."""
    frames_count, height, width = mask.shape
    if person.shape[:3] != mask.shape or person_flow.shape != (frames_count - 1, height, width, 2):
        raise ValueError(f"a clip's frames {person.shape}, mask {mask.shape} and flow {person_flow.shape} do not agree")
    if occluder is not None and occluder.shape != mask.shape:
        raise ValueError(f"an occluder of {occluder.shape} over frames of {mask.shape}")
    if offsets.shape != (frames_count, 2) or points.shape[0] != frames_count:
        raise ValueError(f"{frames_count} frames, {len(offsets)} camera offsets and {len(points)} frames of joints")
    background, background_flow = background_video(photo, offsets, height, width)
    moves = offsets if tracked else np.zeros_like(offsets)
    frames, flows, masks = background.copy(), background_flow.copy(), np.empty_like(mask)
    for t in range(frames_count):
        layer_mask = moved_mask(mask[t], moves[t], None if occluder is None else occluder[t])
        frames[t][layer_mask] = shifted(person[t], -moves[t], nearest=True)[layer_mask]
        masks[t] = layer_mask
        if t < frames_count - 1:
            # a person's pixel at q came from the render's q + m_t and goes to its own flow's end,
            # displaced by −m_{t+1}: its flow is the rendered one plus −(m_{t+1} − m_t)
            own = shifted(person_flow[t], -moves[t], nearest=True) - (moves[t + 1] - moves[t]).astype(np.float32)
            flows[t][layer_mask] = own[layer_mask]
    return Composite(frames, flows, masks, points - moves[:, None, :])


def person_boxes(points: np.ndarray, visible: np.ndarray, scale: float) -> np.ndarray:
    """(T, 3) the square a person detector would give each frame: (centre x, centre y, side) in
    pixels (centres at integers), centred on the frame's visible joints (a frame with none
    takes the clip's mean centre), `scale` times the median over the clip of their extent's
    larger side (Doersch & Zisserman crop as HMR does, the person about 150 pixels tall in 224:
    1.5; one side for the clip keeps its scale steady)."""
    seen = visible.any(axis=1)
    if not seen.any():
        raise ValueError("no visible joint to place the person's box by")
    centres = np.empty((len(points), 2))
    extents = []
    for t in np.flatnonzero(seen):
        low, high = points[t, visible[t]].min(axis=0), points[t, visible[t]].max(axis=0)
        centres[t] = (low + high) / 2.0
        extents.append(max(high - low))
    centres[~seen] = centres[seen].mean(axis=0)
    side = max(float(np.median(extents)) * scale, 1.0)
    return np.column_stack([centres, np.full(len(points), side)])


def window(box: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) the affine map from a frame to the crop of `box` (centre x, centre y, side) at
    `size` pixels; pixel centres at integers (OpenCV's): the box's edge goes to the crop's −0.5."""
    cx, cy, side = box
    zoom = size / side
    return np.array([[zoom, 0.0, zoom * (side / 2.0 - cx) - 0.5], [0.0, zoom, zoom * (side / 2.0 - cy) - 0.5]])


def crop(composite: Composite, boxes: np.ndarray, size: int) -> Composite:
    """The composite seen through each frame's square of `boxes` (T, 3: centre x, centre y,
    side), resized to `size` pixels: frames, mask and points; the flow from frame t to t + 1
    through frame t's box (the paper's "paired boxes"), its lengths rescaled."""

    def warp(image: np.ndarray, box: np.ndarray, flags: int) -> np.ndarray:
        return cv2.warpAffine(
            image, window(box, size), (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )

    frames = np.stack([warp(frame, box, cv2.INTER_AREA) for frame, box in zip(composite.frames, boxes)])
    flows = np.stack(
        [warp(flow, box, cv2.INTER_LINEAR) * np.float32(size / box[2]) for flow, box in zip(composite.flows, boxes)]
    )
    masks = np.stack([warp(m.astype(np.uint8), box, cv2.INTER_NEAREST) > 0 for m, box in zip(composite.mask, boxes)])
    maps = np.stack([window(box, size) for box in boxes])  # (T, 2, 3)
    points = composite.points * (size / boxes[:, 2])[:, None, None] + maps[:, None, :, 2]
    return Composite(frames, flows.astype(np.float32), masks, points)
