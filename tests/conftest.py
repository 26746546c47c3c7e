import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Subprocesses (snakemake jobs, torchrun workers) import the package from the checkout.
os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny-tensor tests (``pytestmark = pytest.mark.usefixtures(...)``): more
    threads only add synchronisation (100x slower on a busy 2-CPU box)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mini_run(tmp_path_factory):
    """The whole mini emotion DAG, run once per test session in a scratch directory.

    Tests that change its files work on a copy (see ``mini_copy``). To iterate on tests without
    rerunning it, point ``DRO_REBEL_MINI_RUN`` at a finished mini run's directory (``--directory`` of
    ``snakemake all --configfile presets/mini.yaml``): it is copied, never modified, and brought up to
    date by the same Snakemake call (nothing reruns if the code did not change)."""
    import shutil

    from workflow_helpers import snakemake_in

    workdir = tmp_path_factory.mktemp("mini")
    if os.environ.get("DRO_REBEL_MINI_RUN"):
        workdir = workdir / "run"
        shutil.copytree(os.environ["DRO_REBEL_MINI_RUN"], workdir, symlinks=True)
    result = snakemake_in(workdir, "all", "--cores", "2")
    if result.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in sorted((workdir / "logs").rglob("*.log"))[-3:])
        pytest.fail(f"mini workflow failed:\n{result.stderr[-4000:]}\n{logs}")
    return workdir


@pytest.fixture
def mini_copy(mini_run, tmp_path):
    """A private copy of the mini run (results, logs and Snakemake's metadata) to modify freely."""
    import shutil

    copy = tmp_path / "mini"
    shutil.copytree(mini_run, copy, symlinks=True)
    return copy
