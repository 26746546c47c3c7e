"""Fixtures for the SLURM profile tests: a real single-node SLURM cluster for the session.

The cluster (tests/slurm/slurm_cluster.py) installs Debian's SLURM 22.05 packages if missing and
runs its own munged, slurmctld and slurmd from a temporary directory; they are stopped by PID at
the end of the session. The tests skip (with the reason) only where that is impossible: not
root, or no apt-get / package archive.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from slurm_cluster import SlurmCluster, SlurmUnavailable  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm-cluster")
    cluster = SlurmCluster(root)
    try:
        cluster.start()
    except SlurmUnavailable as reason:
        pytest.skip(f"no SLURM cluster possible here: {reason}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def xdg_config_home(tmp_path_factory) -> Path:
    """$XDG_CONFIG_HOME holding snakemake/slurm -> profiles/slurm: docs/cluster.md's one-time setup."""
    home = tmp_path_factory.mktemp("xdg")
    (home / "snakemake").mkdir()
    os.symlink(REPO / "profiles" / "slurm", home / "snakemake" / "slurm")
    return home
