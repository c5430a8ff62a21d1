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
