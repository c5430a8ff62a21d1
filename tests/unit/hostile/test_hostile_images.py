"""Hostile images and options: truncated and corrupt files, images too small to hold a person,
boxes outside the image, meaningless focal lengths and batch sizes, and a --out folder that
cannot be written (read-only, a full disk). Each is refused with one line naming it, and
nothing half-written is left behind."""

import errno
import json
import os
import pathlib
import re
from contextlib import contextmanager

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import BODYNET_CHOICES
from pipeline.errors import InputError
from toy_models import toy_arrays

# a small picture with detail everywhere, so every format has data to the end
PICTURE = cv2.resize(np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8), (64, 48))


def encoded(suffix: str, picture: np.ndarray = PICTURE) -> bytes:
    ok, data = cv2.imencode(suffix, picture[..., ::-1])
    assert ok
    return data.tobytes()


# --- the reader ------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning", "ignore:Truncated File Read:UserWarning")
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".webp", ".tiff"])
def test_each_format_reads_whole_and_is_refused_cut_short(tmp_path, suffix):
    from pipeline.images import ImageError, read_rgb

    path = tmp_path / f"scene{suffix}"
    data = encoded(suffix)
    path.write_bytes(data)
    image = read_rgb(path)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    tolerance = 40 if suffix in (".jpg", ".webp") else 0  # lossy formats
    assert np.abs(image.astype(int) - PICTURE).mean() <= tolerance / 4
    assert np.array_equal(image, cv2.imread(str(path))[..., ::-1])  # the pixels OpenCV decodes
    for cut in (len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ImageError, match=f"scene{suffix}: cannot read the image"):
            read_rgb(path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".png", ".jpg"]), share=st.floats(0.0, 1.0, exclude_max=True))
def test_any_truncation_of_a_png_or_jpeg_is_refused_never_read(tmp_path, suffix, share):
    from pipeline.images import ImageError, read_rgb

    data = encoded(suffix)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: int(share * len(data))])
    with pytest.raises(ImageError, match=f"cut{suffix}: cannot read the image"):
        read_rgb(path)


@pytest.mark.parametrize(
    "content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"\xff\xd8\xff\xe0" + b"\x00" * 40]
)
def test_empty_and_corrupt_files_are_refused(tmp_path, content):
    from pipeline.images import ImageError, read_rgb

    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="broken.png: cannot read the image"):
        read_rgb(path)
    with pytest.raises(ImageError, match="missing.jpg: cannot read the image"):
        read_rgb(tmp_path / "missing.jpg")


def test_grey_alpha_16_bit_and_rotated_images_read_as_opencv_reads_them(tmp_path):
    from PIL import Image

    from pipeline.images import read_rgb

    grey = PICTURE[..., 0]
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    cv2.imwrite(str(tmp_path / "alpha.png"), np.dstack([PICTURE[..., ::-1], np.full((48, 64), 7, np.uint8)]))
    cv2.imwrite(str(tmp_path / "deep.png"), grey.astype(np.uint16) * 257 + 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: the picture is shown rotated 90° clockwise
    Image.fromarray(PICTURE).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    for name in ("grey.png", "alpha.png", "deep.png", "turned.jpg"):
        image = read_rgb(tmp_path / name)
        expected = cv2.imread(str(tmp_path / name), cv2.IMREAD_COLOR)[..., ::-1]
        assert image.shape == expected.shape and image.dtype == np.uint8, name
        assert np.abs(image.astype(int) - expected).max() <= 1, name
    assert read_rgb(tmp_path / "turned.jpg").shape == (64, 48, 3)


# --- background photographs ---------------------------------------------------------------------


def test_a_truncated_background_photograph_is_refused_when_collected(tmp_path):
    from pipeline.synthesis.backgrounds import BackgroundError, collect

    good, cut = tmp_path / "room.jpg", tmp_path / "cut.jpg"
    good.write_bytes(encoded(".jpg"))
    cut.write_bytes(encoded(".jpg")[:-200])  # OpenCV reads it with grey where the data stops
    with pytest.raises(BackgroundError, match="cut.jpg: cannot read the image"):
        collect([good, cut], tmp_path / "out", 64)
    collect([good], tmp_path / "whole", 64)
    assert [p.name for p in (tmp_path / "whole").iterdir()] == ["room.jpg"]


# --- predict: the command line ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "bad", "good", "parsed"),
    [
        ("--focal", "0", "80", 80.0),
        ("--focal", "-600", "80", 80.0),
        ("--focal", "nan", "80", 80.0),
        ("--focal", "inf", "80", 80.0),
        ("--batch-size", "0", "3", 3),
        ("--batch-size", "-2", "3", 3),
        ("--box", "nan,0,10,10", "0,0,10,10", (0.0, 0.0, 10.0, 10.0)),
        ("--box", "0,0,inf,10", "0,0,10,10", (0.0, 0.0, 10.0, 10.0)),
    ],
)
def test_predict_refuses_meaningless_numbers_at_the_command_line(option, bad, good, parsed, capsys):
    from pipeline.predict.__main__ import build_parser

    argv = ["a.jpg", "--model", "m.pt", "--body-model", "b.pkl", "--out", "out", option]
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([*argv, bad])
    assert stopped.value.code == 2 and f"argument {option}:" in capsys.readouterr().err
    assert getattr(build_parser().parse_args([*argv, good]), option[2:].replace("-", "_")) == parsed


def test_predict_help_states_the_smallest_image_and_the_box_clipping():
    from pipeline.predict.__main__ import MIN_IMAGE_SIDE, build_parser

    text = " ".join(build_parser().format_help().split())
    assert f"at least {MIN_IMAGE_SIDE} pixels on the shorter side" in text and MIN_IMAGE_SIDE == 32
    assert "clipped to the image" in text and "wholly outside it is refused" in text


# --- predict: the run ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_files(tmp_path_factory):
    """An untrained toy BodyNet, a toy body model and a 48×64 photograph."""
    from pipeline.body_model.model import write_model_file
    from pipeline.models.bodynet import BodyNetConfig, HourglassConfig
    from pipeline.models.checkpoint import build_model, save_model

    folder = tmp_path_factory.mktemp("toys")
    config = BodyNetConfig(32, 8, 16, HourglassConfig(stacks=1, features=8, modules=1, depth=2), **BODYNET_CHOICES)
    save_model(folder / "model.pt", build_model(config, []), "voxels", ("pose2d", "segm", "pose3d", "voxels"), 0)
    write_model_file(folder / "toy.pkl", toy_arrays())
    cv2.imwrite(str(folder / "photo.png"), PICTURE[..., ::-1])
    return folder


@pytest.fixture
def untracked(monkeypatch):
    """predict without an MLflow store: what is checked here is its inputs and files."""

    class Run:
        def log_metrics(self, metrics):
            pass

    @contextmanager
    def stage_run(*args, **kwargs):
        yield Run()

    monkeypatch.setattr("pipeline.predict.__main__.stage_run", stage_run)


def predict_argv(folder, out, *images) -> list[str]:
    return [
        *(str(folder / image) for image in images),
        *("--model", str(folder / "model.pt"), "--body-model", str(folder / "toy.pkl"), "--out", str(out)),
        *("--joint-steps", "1", "--fit-steps", "1", "--device", "cpu"),
    ]


SET = (".json", "_body.obj", "_voxels.obj", "_parts.png", "_overlay.png", "_views.png")


def test_predict_refuses_a_truncated_photograph(toy_files, tmp_path, untracked):
    from pipeline.predict.__main__ import main

    (tmp_path / "cut.jpg").write_bytes(encoded(".jpg")[:-200])
    argv = predict_argv(toy_files, tmp_path / "out", "photo.png")
    argv[0] = str(tmp_path / "cut.jpg")
    with pytest.raises(SystemExit, match="cut.jpg: cannot read the image"):
        main(argv)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_predict_refuses_an_image_too_small_to_hold_a_person(toy_files, tmp_path, untracked):
    from pipeline.predict.__main__ import main

    cv2.imwrite(str(toy_files / "dot.png"), np.full((3, 3, 3), 128, np.uint8))
    with pytest.raises(SystemExit, match=r"dot.png: 3×3 pixels, too small to hold a person \(at least 32"):
        main(predict_argv(toy_files, tmp_path / "out", "dot.png"))
    cv2.imwrite(str(toy_files / "strip.png"), np.full((31, 400, 3), 128, np.uint8))
    with pytest.raises(SystemExit, match="strip.png: 400×31 pixels, too small"):
        main(predict_argv(toy_files, tmp_path / "out", "strip.png"))


@pytest.mark.parametrize("box", ["500,500,600,600", "-90,-90,-10,-10", "64,0,90,48", "0,48,64,90"])
def test_predict_refuses_a_box_that_misses_the_image(toy_files, tmp_path, untracked, box):
    from pipeline.predict.__main__ import main

    with pytest.raises(SystemExit, match=rf"photo.png: the box {box} \(--box\) lies outside the 64×48 image$"):
        main([*predict_argv(toy_files, tmp_path / "out", "photo.png"), f"--box={box}"])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_predict_refuses_a_listed_box_that_misses_its_image(toy_files, tmp_path, untracked):
    from pipeline.predict.__main__ import main

    boxes = tmp_path / "boxes.csv"
    boxes.write_text("image,x0,y0,x1,y1\nphoto.png,100,100,200,200\n")
    with pytest.raises(SystemExit, match=r"photo.png: the box 100,100,200,200 \(.*boxes.csv\) lies outside the 64×48"):
        main([*predict_argv(toy_files, tmp_path / "out", "photo.png"), "--boxes", str(boxes)])


def test_a_box_partly_outside_the_image_is_clipped_to_it(toy_files, tmp_path, untracked):
    from pipeline.predict.__main__ import main

    out = tmp_path / "out"
    main([*predict_argv(toy_files, out, "photo.png"), "--box=-10,5,40,90", "--focal", "80"])
    record = json.loads((out / "photo.json").read_text())
    assert record["person_box"] == [0, 5, 40, 48]
    assert record["focal_length"] == 80 and record["focal_length_given"] and record["root_depth"] > 0


@contextmanager
def failing_writes(monkeypatch, folder: pathlib.Path, code: int, allowed: int = 0, only: str = ""):
    """Path.write_text and write_bytes under `folder` (of files whose name holds `only`) raise
    OSError(code) after `allowed` of them have succeeded: a full disk or a read-only folder,
    without root's tricks (root ignores a folder's permissions)."""
    written = []
    originals = {name: getattr(pathlib.Path, name) for name in ("write_text", "write_bytes")}

    def patched(name):
        def write(self, data, *args, **kwargs):
            if self.is_relative_to(folder) and only in self.name:
                if len(written) >= allowed:
                    raise OSError(code, os.strerror(code), str(self))
                written.append(self.name)
            return originals[name](self, data, *args, **kwargs)

        return write

    with monkeypatch.context() as patch:
        for name in originals:
            patch.setattr(pathlib.Path, name, patched(name))
        yield written


def test_a_full_disk_leaves_each_images_files_whole_or_absent(toy_files, tmp_path, untracked, monkeypatch):
    from pipeline.predict.__main__ import main

    (toy_files / "good.png").write_bytes((toy_files / "photo.png").read_bytes())
    (toy_files / "bad.png").write_bytes((toy_files / "photo.png").read_bytes())
    out = tmp_path / "out"
    with failing_writes(monkeypatch, out, errno.ENOSPC, allowed=1, only="bad") as written:
        with pytest.raises(
            SystemExit, match=rf"^error: {re.escape(str(out))}: cannot write \(No space left on device\)$"
        ):
            main(predict_argv(toy_files, out, "good.png", "bad.png"))
    assert written, "the disk filled after the first of bad's files"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"good{suffix}" for suffix in SET)  # no temporaries


def test_a_read_only_out_folder_is_refused_before_the_networks_run(toy_files, tmp_path, untracked, monkeypatch):
    from pipeline.predict.__main__ import main

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr("pipeline.models.checkpoint.load_checkpoint", None)  # never reached
    with failing_writes(monkeypatch, out, errno.EACCES):
        with pytest.raises(SystemExit, match=rf"^error: {re.escape(str(out))}: cannot write \(Permission denied\)$"):
            main(predict_argv(toy_files, out, "photo.png"))
    assert not any(out.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_folder_without_write_permission_is_refused(toy_files, tmp_path, untracked):
    from pipeline.predict.__main__ import main

    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(SystemExit, match=rf"^error: {re.escape(str(out))}: cannot write \(Permission denied\)$"):
            main(predict_argv(toy_files, out, "photo.png"))
    finally:
        out.chmod(0o755)


def test_writing_a_set_into_a_full_disk_leaves_nothing_and_an_earlier_set_is_replaced_whole(tmp_path, monkeypatch):
    from pipeline.predict.write import write_set

    out = tmp_path / "out"
    write_set(out, "person", {"person.json": b"{}", "person_body.obj": b"v 0 0 0\n"})
    with failing_writes(monkeypatch, out, errno.ENOSPC, allowed=1):
        with pytest.raises(InputError, match=rf"{re.escape(str(out))}: cannot write \(No space left on device\)"):
            write_set(out, "person", {"person.json": b'{"new": 1}', "person_body.obj": b"v 1 1 1\n"})
    # the old set stays as it was: none of the new files came in
    assert sorted(p.name for p in out.iterdir()) == ["person.json", "person_body.obj"]
    assert (out / "person.json").read_bytes() == b"{}"
    write_set(out, "person", {"person.json": b'{"new": 1}'})
    assert sorted(p.name for p in out.iterdir()) == ["person.json"]  # no file of the older set stays beside it
