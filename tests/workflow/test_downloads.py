"""The download rules, end to end, against a local server of files the test writes."""

import hashlib

import numpy as np
import pytest

from conftest import snakemake, tiny_config, write_config
from pipeline.synthesis.motion import load_motions
from source_files import Files, cmu_amc, cmu_asf, zip_bytes


@pytest.mark.slow
def test_workflow_downloads_unpacks_and_converts_cmu(server, tmp_path):
    """The rules, end to end, against the local server: zip → folder → SMPL motions."""
    rng = np.random.default_rng(1)
    members = {
        "allasfamc/all_asfamc/subjects/07/07.asf": cmu_asf().encode(),
        "allasfamc/all_asfamc/subjects/05/05.asf": cmu_asf().encode(),
    }
    for subject in ("07", "05"):
        members[f"allasfamc/all_asfamc/subjects/{subject}/{subject}_01.amc"] = cmu_amc(8, rng)[0].encode()
    archive = zip_bytes(members)
    Files.files["/allasfamc.zip"] = archive
    config = tiny_config(
        **{
            "sources.cmu_mocap.url": f"{server}/allasfamc.zip",
            "sources.cmu_mocap.sha256": hashlib.sha256(archive).hexdigest(),
            "sources.cmu_mocap.test_subjects": ["05"],
        }
    )
    path = write_config(tmp_path / "config.yaml", config)
    snakemake(
        tmp_path,
        "resources/motions/cmu_train.npz",
        "resources/motions/cmu_test.npz",
        "--cores",
        "1",
        "--configfile",
        str(path),
    )
    assert [m.name for m in load_motions(tmp_path / "resources/motions/cmu_train.npz")] == ["07_01"]
    assert [m.name for m in load_motions(tmp_path / "resources/motions/cmu_test.npz")] == ["05_01"]
    log = (tmp_path / "logs/download_cmu_mocap/download.log").read_text()
    assert "Traceback" not in log


@pytest.mark.slow
def test_workflow_downloads_lsp_and_makes_it_a_pool_the_mosaics_cut_from(server, tmp_path):
    """LSP's archive (joints.mat, images/) → folder → a pool of crops with BodyNet's joints,
    which make_mosaics reads once mosaic.pool is lsp."""
    import io

    import cv2
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    joints = np.zeros((3, 14, 4))
    joints[0], joints[1] = rng.uniform(40, 140, (14, 4)), rng.uniform(30, 200, (14, 4))
    buffer = io.BytesIO()
    savemat(buffer, {"joints": joints})
    members = {"joints.mat": buffer.getvalue()}
    for k in range(4):
        image = rng.integers(0, 256, (240, 180, 3), dtype=np.uint8)
        members[f"images/im{k + 1:04d}.jpg"] = cv2.imencode(".jpg", image)[1].tobytes()
    archive = zip_bytes(members)
    Files.files["/lsp_dataset.zip"] = archive
    config = tiny_config(
        **{
            "sources.lsp.url": f"{server}/lsp_dataset.zip",
            "sources.lsp.sha256": hashlib.sha256(archive).hexdigest(),
            "mosaic.pool": "lsp",
        }
    )
    path = write_config(tmp_path / "config.yaml", config)
    snakemake(tmp_path, "results/mosaic/pool/lsp", "--cores", "1", "--configfile", str(path))
    size = config["mosaic"]["size"]
    assert np.load(tmp_path / "results/mosaic/pool/lsp/images.npy").shape == (4, size, size, 3)
    assert np.load(tmp_path / "results/mosaic/pool/lsp/joints.npy").shape == (4, 16, 2)
    planned = snakemake(tmp_path, "-n", "-p", "results/mosaic/blended", "--cores", "1", "--configfile", str(path))
    assert "--pool results/mosaic/pool/lsp" in planned.stdout
