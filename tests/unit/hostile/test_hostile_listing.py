"""A folder a job reads is an input: any change to its files changes its state, and the job
records what it read."""

import hashlib
import os

from pipeline.listing import folder_files, folder_state, write_listing


def test_the_state_changes_with_every_change_to_the_files_and_only_then(tmp_path):
    folder = tmp_path / "photos"
    (folder / "room").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"first")
    (folder / "room" / "b.png").write_bytes(b"second")
    states = [folder_state(folder)]
    assert folder_state(folder) == states[0]  # nothing changed

    def changed(change) -> None:
        change()
        states.append(folder_state(folder))
        assert states[-1] != states[-2]

    # the same size, another byte, and a time the file system keeps apart
    changed(lambda: (folder / "a.jpg").write_bytes(b"First") or os.utime(folder / "a.jpg", ns=(1, 10**18)))
    changed(lambda: (folder / "room" / "c.jpg").write_bytes(b"added"))
    changed(lambda: (folder / "room" / "c.jpg").rename(folder / "room" / "d.jpg"))
    changed(lambda: (folder / "room" / "d.jpg").unlink())
    before = folder_state(folder)
    (folder / ".thumbnails").mkdir()
    (folder / ".thumbnails" / "a.jpg").write_bytes(b"cache")
    (folder / "._a.jpg").write_bytes(b"resource fork")
    assert folder_state(folder) == before  # hidden files are not read
    assert folder_state(tmp_path / "missing") == "missing"


def test_files_are_listed_by_suffix_below_every_folder(tmp_path):
    (tmp_path / "x" / "y").mkdir(parents=True)
    for name in ("x/y/a.JPG", "x/b.png", "c.txt", ".d.jpg"):
        (tmp_path / name).write_bytes(b"")
    assert folder_files(tmp_path, {".jpg", ".png"}) == [tmp_path / "x/b.png", tmp_path / "x/y/a.JPG"]


def test_a_listing_records_each_files_size_and_checksum(tmp_path):
    files = [tmp_path / "a b.jpg", tmp_path / "c.jpg"]
    for index, path in enumerate(files):
        path.write_bytes(bytes([index]) * 1000)
    write_listing(tmp_path / "sources.tsv", files, ["a b.jpg", "room/c.jpg"])
    lines = (tmp_path / "sources.tsv").read_text().splitlines()
    assert lines[0] == "path\tbytes\tsha256"
    assert lines[1:] == [
        f"a b.jpg\t1000\t{hashlib.sha256(bytes([0]) * 1000).hexdigest()}",
        f"room/c.jpg\t1000\t{hashlib.sha256(bytes([1]) * 1000).hexdigest()}",
    ]
