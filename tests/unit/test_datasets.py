"""BodyNet samples read back from SURREAL-layout clips."""

import numpy as np
import pytest

from pipeline.body_model.model import BodyModel
from pipeline.body_model.skeleton import BODYNET_JOINTS
from pipeline.clips import Clip, ClipError, find_clips, read_info
from pipeline.datasets.surreal import BodyNetDataset, SampleSizes, VoxelSource, bodynet_sample, depth_bins
from pipeline.synthesis import camera

SIZES = SampleSizes(input=64, heatmap=32, voxels=32)


@pytest.fixture(scope="module")
def sample(tiny_clips):
    root, _, _ = tiny_clips
    return bodynet_sample(Clip(find_clips(root, "train")[0]), 3, SIZES, VoxelSource())


def test_sample_shapes_and_ranges(sample):
    assert sample["rgb"].shape == (3, 64, 64) and 0 <= sample["rgb"].min() and sample["rgb"].max() <= 1
    assert sample["heatmaps"].shape == (16, 32, 32)
    assert sample["segmentation"].shape == (32, 32)
    assert set(np.unique(sample["segmentation"])) <= set(range(15))
    assert sample["joints3d_volume"].shape == (16, 19, 32, 32)
    assert sample["voxels"].shape == (32, 32, 32)
    assert sample["silhouette_front"].shape == (32, 32)
    assert sample["silhouette_side"].shape == (32, 32)
    assert sample["joints3d"].shape == (16, 3)
    assert sample["joints3d"][6].tolist() == [0.0, 0.0, 0.0]  # MPII's pelvis slot is the root


def test_heatmaps_peak_at_the_joints(sample):
    """Every joint has its Gaussian in its heatmap, peaking at the joint (the crop holds the
    whole person, so every joint lies inside the heatmap)."""
    size = sample["heatmaps"].shape[-1]
    for heatmap, point in zip(sample["heatmaps"], sample["joints2d_crop"], strict=True):
        assert np.all((point >= 0) & (point <= size - 1)), point
        row, col = np.unravel_index(heatmap.argmax(), heatmap.shape)
        assert abs(col - point[0]) <= 0.5 and abs(row - point[1]) <= 0.5
        assert heatmap.max() == pytest.approx(
            np.exp(-((col - point[0]) ** 2 + (row - point[1]) ** 2) / (2 * SIZES.sigma**2)), rel=1e-4
        )


def test_person_fills_the_crop(sample):
    person = sample["silhouette_front"]
    rows, cols = np.nonzero(person)
    height = rows.max() - rows.min() + 1
    assert 0.5 * 32 < height <= 32  # BodyNet's crop: 200/240 of the joints' padded box
    assert (sample["segmentation"] > 0).sum() > 0.05 * 32 * 32


def test_joint_volume_depth_bins_follow_the_camera(sample, tiny_clips):
    volume = sample["joints3d_volume"]
    bins = volume.reshape(16, 19, -1).max(axis=2).argmax(axis=1)
    assert bins[6] == 9  # the root sits in the middle bin
    # nearer to the camera (larger SURREAL world x) = higher bin
    root, _, _ = tiny_clips
    info = read_info(find_clips(root, "train")[0])
    joints = info.joints3d[3][BODYNET_JOINTS]
    assert np.array_equal(bins, depth_bins(info.joints3d[3])[BODYNET_JOINTS])
    nearest = np.argmax(joints[:, 0])
    assert bins[nearest] == bins.max()


def test_depth_bins_count_depth_along_the_clips_own_camera():
    joints = np.random.default_rng(0).uniform(-0.4, 0.4, size=(24, 3))
    _, rotation, translation = camera.orbit_extrinsics(np.zeros(3), np.array([0.3, 0.0, 1.0]), 7.0)
    depth = (joints @ rotation.T + translation)[:, 2]
    nearer = np.clip(np.round((depth[0] - depth) / 0.045), -9, 9) + 9
    assert np.array_equal(depth_bins(joints, rotation), nearer)
    assert not np.array_equal(depth_bins(joints), nearer)  # SURREAL's camera sees other depths
    assert np.array_equal(depth_bins(joints), depth_bins(joints, camera.WORLD_TO_CAMERA))


def test_dataset_indexes_all_or_middle_frames(tiny_clips):
    root, _, _ = tiny_clips
    clips = find_clips(root, "train")
    every = BodyNetDataset(clips, SIZES, frames="all")
    middle = BodyNetDataset(clips, SIZES, frames="middle")
    assert len(middle) == 6 and len(every) == 48
    assert [t for _, t in middle.index] == [3] * 6
    assert set(every[0]) >= {"rgb", "heatmaps", "segmentation", "joints3d_volume"}
    assert "voxels" not in every[0]  # no voxel source given


def release_copy(root, destination, runs=(0, 1)):
    """The tiny clips as the SURREAL release holds them: its test split, several runs, and
    none of the files this project adds (voxels, forward flow, lossless frames)."""
    import shutil

    for run in runs:
        shutil.copytree(
            root / "cmu/train/run0",
            destination / f"cmu/test/run{run}",
            ignore=shutil.ignore_patterns("*_voxels.mat", "*_partvoxels.mat", "*_flow.mat", "*_frames"),
        )
    return destination


def test_bodynets_test_images_on_the_release_are_the_middle_clips_middle_frames(tiny_clips, tmp_path):
    from pipeline.training.samples import SampleSet, prepare

    root, _, model_path = tiny_clips
    release = release_copy(root, tmp_path / "release")
    clips = find_clips(release, "test")
    sequences = sorted({(path.parent.parent.name, path.parent.name) for path in clips})
    assert len(clips) == 12 and len(sequences) == 4  # two runs of two sequences of three clips
    middle = BodyNetDataset(clips, SIZES, frames="middle_clip")
    assert [clip.stem for clip in middle.clips] == [path.name.removesuffix("_info.mat") for path in clips[1::3]]
    assert [t for _, t in middle.index] == [3] * 4
    # the release has no voxels: they are computed from its annotations with the SMPL model
    voxels = VoxelSource({"female": BodyModel.from_file(model_path)}, SIZES.voxels)
    count = prepare(release, "test", SIZES, "middle_clip", voxels, tmp_path / "samples", progress=False)
    samples = SampleSet.load(tmp_path / "samples")
    assert count == len(samples) == 4 and np.unpackbits(samples.arrays["voxels"]).sum() > 100
    with pytest.raises(ValueError, match="frames: 'first' is not one of all, middle, middle_clip"):
        BodyNetDataset(clips, SIZES, frames="first")


def test_a_cut_short_copy_of_the_release_is_named(tiny_clips, tmp_path):
    from pipeline.clips import write_mat
    from pipeline.training.samples import prepare

    root, _, _ = tiny_clips
    release = release_copy(root, tmp_path / "release")
    with pytest.raises(ClipError, match="test/run2: no such run folder"):
        find_clips(release, "test", runs=[0, 1, 2])
    info = find_clips(release, "test")[0]
    clip = Clip(info)
    write_mat(clip.file("_segm.mat"), {f"segm_{t + 1}": clip.segm(t) for t in range(2)})  # 2 of its 8 frames
    with pytest.raises(ClipError, match=f"{clip.stem}_segm.mat: no variable segm_4"):
        prepare(release, "test", SIZES, "middle", VoxelSource(), tmp_path / "samples", progress=False)
    assert not (tmp_path / "samples").exists()
    info.unlink()
    with pytest.raises(ClipError, match=f"{clip.stem}.mp4: no {clip.stem}_info.mat beside it"):
        find_clips(release, "test")


def test_voxels_from_smpl_annotations_match_the_stored_ones(tiny_clips):
    """Real SURREAL clips have no voxel files: the loader voxelises their SMPL annotations."""
    root, _, model_path = tiny_clips
    clip = Clip(find_clips(root, "train")[2])
    stored = clip.voxels(5)
    computed = VoxelSource({"female": BodyModel.from_file(model_path)}, resolution=32)
    clip_without = Clip(clip.info_path)
    clip_without.file = lambda suffix: (
        clip.folder / f"missing{suffix}" if suffix == "_voxels.mat" else clip.file(suffix)
    )
    ours = computed(clip_without, 5)
    assert ours.shape == stored.shape
    assert (ours & stored).sum() / (ours | stored).sum() > 0.97
    stored_parts = clip.part_voxels(5)
    assert np.array_equal(stored_parts > 0, stored)  # the same grid, labelled
    clip_without.file = lambda suffix: clip.folder / f"missing{suffix}"
    our_parts = computed.parts(clip_without, 5)
    both = (our_parts > 0) & (stored_parts > 0)
    assert (our_parts[both] == stored_parts[both]).mean() > 0.95
    assert set(np.unique(stored_parts)) == set(range(7))  # background and the six parts


def test_missing_and_broken_files_are_named(tiny_clips, tmp_path):
    root, _, _ = tiny_clips
    with pytest.raises(ClipError, match="no such split folder"):
        find_clips(root, "val")
    broken = tmp_path / "x_c0001_info.mat"
    broken.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(ClipError, match="x_c0001_info.mat"):
        read_info(broken)
    clip = Clip(find_clips(root, "train")[0])
    with pytest.raises(ClipError, match="no variable segm_99"):
        clip.segm(98)


def test_frames_come_with_their_passes_and_annotations_through_a_loader_with_workers(tiny_clips):
    from torch.utils.data import DataLoader

    from pipeline.datasets.frames import SurrealFrames

    root, _, _ = tiny_clips
    frames = SurrealFrames(root, "train", passes=("segm", "depth", "gtflow"), cached_clips=2)
    assert len(frames) == 48 and len(SurrealFrames(root, "train", frames="middle")) == 6
    frame = frames[11]  # the second clip's frame 3
    clip = Clip(find_clips(root, "train")[1])
    assert (frame["clip"], frame["frame"]) == (clip.stem, 3)
    assert frame["rgb"].shape == (240, 320, 3) and frame["rgb"].dtype == np.uint8
    assert np.array_equal(frame["segm"], clip.segm(3)) and frame["segm"].dtype == np.uint8
    assert frame["depth"].dtype == np.float32 and frame["gtflow"].shape == (240, 320, 2)
    person = frame["segm"] > 0
    assert frame["depth"][person].max() < 100 < frame["depth"][~person].min()  # background far away
    assert np.allclose(frame["joints2d"], clip.info.joints2d[3]) and frame["pose"].shape == (72,)
    # the joints project where the annotations put them
    projected = camera.project(clip.info.joints3d[3], clip.info.cam_loc, frame["camera_matrix"])
    assert np.abs(projected - frame["joints2d"]).max() < 0.5
    assert len(frames.held) == 1
    batches = list(DataLoader(frames, batch_size=8, num_workers=2))
    assert len(batches) == 6 and batches[0]["rgb"].shape == (8, 240, 320, 3)
    assert np.array_equal(batches[1]["segm"][3].numpy(), frame["segm"]) and batches[1]["clip"][3] == clip.stem
    samples = next(iter(DataLoader(BodyNetDataset(find_clips(root, "train"), SIZES, "middle"), batch_size=6)))
    assert samples["rgb"].shape == (6, 3, 64, 64) and samples["joints3d_volume"].shape == (6, 16, 19, 32, 32)


def test_frames_name_what_is_wrong(tiny_clips, tmp_path):
    import shutil

    from pipeline.clips import write_mat
    from pipeline.datasets.frames import SurrealFrames

    root, _, _ = tiny_clips
    with pytest.raises(ValueError, match="passes: 'flow' is not one of"):
        SurrealFrames(root, "train", passes=("flow",))
    with pytest.raises(ClipError, match="no such split folder"):
        SurrealFrames(tmp_path, "test")
    with pytest.raises(ClipError, match="train/run1: no such run folder"):
        SurrealFrames(root, "train", runs=[0, 1])
    (tmp_path / "cmu/test/run0/walk").mkdir(parents=True)
    with pytest.raises(ClipError, match="test: no complete clip"):
        SurrealFrames(tmp_path, "test")
    info = find_clips(root, "train")[0]
    copy = tmp_path / info.parent.relative_to(root)
    shutil.copytree(info.parent, copy)
    clip = Clip(copy / info.name)
    segm = [clip.segm(t) for t in range(8)]
    write_mat(clip.file("_segm.mat"), {f"segm_{t + 1}": s for t, s in enumerate(segm[:6])})
    frames = SurrealFrames(tmp_path, "train", passes=("segm",))
    frames[5]
    with pytest.raises(ClipError, match="_segm.mat: no variable segm_7"):
        frames[6]
    write_mat(clip.file("_segm.mat"), {f"segm_{t + 1}": s[:100] for t, s in enumerate(segm)})
    with pytest.raises(ClipError, match=r"_segm.mat: frame 1 is \(100, 320\)"):
        SurrealFrames(tmp_path, "train", passes=("segm",))[0]
