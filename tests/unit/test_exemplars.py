"""The exemplar readout: the training poses nearest to a network's peaks."""

import pytest
import torch

from pipeline.evaluation.exemplars import ExemplarSettings, PoseExemplars, mirrored
from pipeline.training.metrics import PELVIS

JOINTS = 16


def _pose(seed: int) -> torch.Tensor:
    """(J, 3) a random pose in volume units (16-pixel heatmaps, 19 bins)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(JOINTS, 3, generator=generator, dtype=torch.float64) * torch.tensor([15.0, 15.0, 18.0])


def test_a_library_pose_reads_back_itself_at_the_peaks_pelvis():
    library = torch.stack([_pose(k) for k in range(5)])
    exemplars = PoseExemplars(library, ExemplarSettings(neighbours=1, truncation=2.0))
    shift = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    read = exemplars((library[3] + shift)[None])
    assert torch.allclose(read[0], library[3] + shift)
    assert torch.allclose(read[0, PELVIS], library[3, PELVIS] + shift)


def test_one_wrong_peak_does_not_outvote_the_others():
    """The query is pose A with one joint 30 pixels off. Untruncated, pose B (1 pixel off at
    every other joint, but right at that one) is nearer; truncated at 2, A is."""
    a = _pose(0)
    query = a.clone()
    query[0, 0] += 30.0
    b = a.clone()
    b[:, 0] += 1.0
    b[PELVIS, 0] -= 1.0  # B's pelvis where A's is: the offset is in the pose, not the root
    b[0] = query[0]
    library = torch.stack([a, b])
    read = {t: PoseExemplars(library, ExemplarSettings(1, t))(query[None])[0] for t in (2.0, 1000.0)}
    assert torch.allclose(read[2.0], a) and torch.allclose(read[1000.0], b)


def test_the_neighbours_are_averaged():
    library = torch.stack([_pose(k) for k in range(3)])
    read = PoseExemplars(library, ExemplarSettings(neighbours=3, truncation=1e9))(library[:1])[0]
    relative = library - library[:, PELVIS : PELVIS + 1]
    assert torch.allclose(read, library[0, PELVIS] + relative.mean(0))


def test_a_mirrored_pose_exchanges_sides_and_reflects_x():
    pose = _pose(1)[None]
    twice = mirrored(mirrored(pose, 16), 16)
    assert torch.allclose(twice, pose)
    once = mirrored(pose, 16)
    assert once[0, 0, 0] == 15 - pose[0, 5, 0] and once[0, 0, 2] == pose[0, 5, 2]  # right ankle ← left ankle


def test_bad_settings_and_libraries_are_refused():
    with pytest.raises(ValueError, match="neighbours must be at least 1"):
        ExemplarSettings(0, 2.0)
    with pytest.raises(ValueError, match="truncation must be positive"):
        ExemplarSettings(1, 0.0)
    with pytest.raises(ValueError, match="3 neighbours asked of a library of 2 poses"):
        PoseExemplars(torch.stack([_pose(0), _pose(1)]), ExemplarSettings(3, 2.0))
    with pytest.raises(ValueError, match=r"\(N, J, 3\)"):
        PoseExemplars(torch.zeros(0, JOINTS, 3), ExemplarSettings(1, 2.0))
