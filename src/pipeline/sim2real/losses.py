"""The temporal model's losses (Doersch & Zisserman, 2019, §3): every prediction, current and
next, against its frame's pelvis-relative 3D joints.

    aligned    the mean joint distance after a similarity Procrustes alignment (the paper's
               3D loss and its measure, PA-MPJPE), metres
    joints     the mean joint distance as predicted, pelvis-relative (MPJPE), metres: the
               paper's 2D reprojection term constrains the body's orientation, which the
               alignment discards; with the camera's frame fixed here, this term does that

Shapes: B poses (or clips of T steps, flattened), J joints.
"""

from __future__ import annotations

import torch

LOSSES = ("aligned", "joints")


def procrustes_aligned(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """`predicted` (B, J, 3) moved onto `truth` (B, J, 3) by the best similarity transform
    (rotation, scale and translation; Umeyama's solution, reflections excluded)."""
    p = predicted.double() - predicted.double().mean(1, keepdim=True)
    q = truth.double() - truth.double().mean(1, keepdim=True)
    covariance = q.transpose(1, 2) @ p  # (B, 3, 3)
    u, singular, vt = torch.linalg.svd(covariance)
    sign = torch.sign(torch.linalg.det(u @ vt))
    correction = torch.ones_like(singular)
    correction[:, -1] = sign
    rotation = u @ torch.diag_embed(correction) @ vt
    scale = (singular * correction).sum(-1) / (p**2).sum((1, 2)).clamp(min=1e-12)
    aligned = scale[:, None, None] * p @ rotation.transpose(1, 2) + truth.double().mean(1, keepdim=True)
    return aligned.to(predicted.dtype)


def joint_distance(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) each -> (B,) the mean joint distance."""
    return (predicted - truth).norm(dim=-1).mean(-1)


def terms(predicted: dict[str, torch.Tensor], joints: torch.Tensor) -> dict[str, torch.Tensor]:
    """The losses of a batch's predictions ('current', 'next': (B, T − 1, J, 3)) against its
    clips' joints (B, T, J, 3): each the mean over both heads' predictions."""
    guesses = torch.cat([predicted["current"], predicted["next"]], dim=1).flatten(0, 1)
    truth = torch.cat([joints[:, :-1], joints[:, 1:]], dim=1).flatten(0, 1)
    return {
        "aligned": joint_distance(procrustes_aligned(guesses, truth), truth).mean(),
        "joints": joint_distance(guesses, truth).mean(),
    }
