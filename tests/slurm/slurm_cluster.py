"""A throwaway single-node SLURM cluster on localhost, for the profile tests.

Debian's ``slurmctld slurmd slurm-client munge`` (SLURM 22.05) are installed if missing; every
config, key, socket, state and log file lives under one temporary directory; the daemons run in
the foreground as children of this process and are stopped by their own PIDs. The node has two
fake GPUs (``Gres=gpu:2``, ``File=`` two character devices: SLURM 22.05 drops GPUs without
``File=`` and rejects regular files) and two partitions: ``cpu`` (the default) and ``gpu``.

Facts these machines taught us, encoded below:

- the jobstep plugin drops ``SLURM_CONF`` inside jobs, so the config is also linked at
  ``/etc/slurm/slurm.conf`` (a pre-existing file there is moved aside and restored);
- without slurmdbd ``sacct`` fails: jobs stay visible to ``squeue`` for ``MinJobAge`` = 600 s,
  and the profile's status command is ``squeue`` in the tests;
- ``proctrack/linuxproc`` and ``task/affinity`` (no cgroups in the container).

By hand (prints the environment to use; stops on Ctrl-C or SIGTERM):

    .venv/bin/python tests/slurm/slurm_cluster.py
"""
from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "munged"]
ETC_CONF = Path("/etc/slurm/slurm.conf")
LOCK_FILE = Path(tempfile.gettempdir()) / "dro-rebel-slurm-test.lock"
GPU_PARTITION, CPU_PARTITION = "gpu", "cpu"
N_GPUS = 2


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started here for a reason outside the project (not root, no apt)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def ensure_installed(timeout: int = 900) -> None:
    """Install the Debian packages when a binary is missing (apt-get, non-interactive)."""
    if all(shutil.which(b) for b in BINARIES):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable("SLURM is not installed and installing it needs root")
    if not shutil.which("apt-get"):
        raise SlurmUnavailable("SLURM is not installed and apt-get is not available")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(cmd)} failed: {(result.stdout + result.stderr)[-1500:]}")
    missing = [b for b in BINARIES if not shutil.which(b)]
    if missing:
        raise RuntimeError(f"installed {PACKAGES} but {missing} are still missing")


class SlurmCluster:
    """One node, two partitions, two fake GPUs. ``start()`` / ``stop()``, or a context manager."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}
        self._lock = None
        self._etc_backup: Path | None = None
        self._etc_linked = False

    # ------------------------------------------------------------------ environment
    @property
    def env(self) -> dict[str, str]:
        """Variables every SLURM client (sbatch, squeue, Snakemake) of this cluster needs."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, check: bool = True, timeout: int = 60) -> str:
        result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **self.env})
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (finished ones stay for MinJobAge), oldest first."""
        fields = {"id": "JobID", "name": "Name", "state": "State", "partition": "Partition", "comment": "Comment",
                  "start": "StartTime", "end": "EndTime", "tres_per_job": "tres-per-job", "cpus": "NumCPUs"}
        out = self.run("squeue", "--states=all", "--noheader", "-O", ",".join(f"{f}:|" for f in fields.values()))
        rows = [dict(zip(fields, (v.strip() for v in line.split("|")))) for line in out.splitlines() if line.strip()]
        return sorted(rows, key=lambda r: int(r["id"].split("_")[0]))

    # ------------------------------------------------------------------ configuration
    def _write_configs(self) -> None:
        for sub in ("state", "spool", "dev", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        # two fake GPUs: character devices (SLURM rejects regular files as GRES files)
        for i in range(N_GPUS):
            dev = self.root / "dev" / f"fakegpu{i}"
            if not dev.exists():
                os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))
        cpus = os.cpu_count() or 1
        mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.8)
        self.ctld_port, self.d_port = _free_port(), _free_port()
        munge_socket = self.root / "munge" / "munge.socket"
        self.conf.write_text(f"""\
# written by tests/slurm/slurm_cluster.py for one test session
ClusterName=drorebeltest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={self.ctld_port}
SlurmdPort={self.d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool
SlurmctldPidFile={self.root}/slurmctld.pid
SlurmdPidFile={self.root}/slurmd.pid
SlurmctldLogFile={self.root}/slurmctld.log
SlurmdLogFile={self.root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
DefMemPerCPU=512
MinJobAge=600
KillWait=5
ReturnToService=2
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} Gres=gpu:{N_GPUS} State=UNKNOWN
PartitionName={CPU_PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
PartitionName={GPU_PARTITION} Nodes={self.host} MaxTime=INFINITE State=UP
""")
        (self.root / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={self.host} Name=gpu File={self.root}/dev/fakegpu[0-{N_GPUS - 1}]\n")
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(1024))
        self.munge_socket = munge_socket

    def _link_etc_conf(self) -> None:
        """Jobs lose SLURM_CONF (the jobstep plugin drops SLURM_* variables): link the default path."""
        ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
        if ETC_CONF.is_symlink() or ETC_CONF.exists():
            if ETC_CONF.is_symlink() and os.readlink(ETC_CONF) == str(self.conf):
                return
            self._etc_backup = ETC_CONF.with_name(f"slurm.conf.dro-rebel-backup-{os.getpid()}")
            os.rename(ETC_CONF, self._etc_backup)
        os.symlink(self.conf, ETC_CONF)
        self._etc_linked = True

    def _unlink_etc_conf(self) -> None:
        if self._etc_linked and ETC_CONF.is_symlink() and os.readlink(ETC_CONF) == str(self.conf):
            ETC_CONF.unlink()
        if self._etc_backup is not None and self._etc_backup.exists() and not ETC_CONF.exists():
            os.rename(self._etc_backup, ETC_CONF)
        self._etc_linked, self._etc_backup = False, None

    # ------------------------------------------------------------------ daemons
    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / f"{name}.stdout", "wb")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, **self.env}, start_new_session=True)
        log.close()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                logs = _tail(self.root / f"{name}.stdout") + _tail(self.root / f"{name}.log")
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{logs}")

    def _wait_for(self, what: str, predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if predicate():
                    return
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.5)
        logs = "\n".join(f"--- {p.name}\n{_tail(p)}" for p in sorted(self.root.glob("*.log")))
        raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}\n{logs}")

    def start(self, lock_timeout: float = 1800) -> "SlurmCluster":
        ensure_installed()
        # One test cluster per machine at a time: /etc/slurm/slurm.conf is shared.
        self._lock = open(LOCK_FILE, "w")
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another SLURM test cluster holds {LOCK_FILE}")
                time.sleep(2)
        try:
            self._write_configs()
            self._link_etc_conf()
            self._spawn("munged", ["munged", "--foreground", "--force", f"--key-file={self.root}/munge/munge.key",
                                   f"--socket={self.munge_socket}", f"--pid-file={self.root}/munge/munged.pid",
                                   f"--log-file={self.root}/munged.log", f"--seed-file={self.root}/munge/seed"])
            self._wait_for("munged", self.munge_socket.exists, 30)
            self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
            self._wait_for("slurmctld", lambda: self.run("sinfo", "-h", timeout=10) is not None, 60)
            self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.host])
            self._wait_for("the node to be idle", self._node_idle, 90)
        except BaseException:
            self.stop()
            raise
        return self

    def _node_idle(self) -> bool:
        states = self.run("sinfo", "-h", "-N", "-o", "%T", timeout=10).split()
        return bool(states) and all(s == "idle" for s in states)

    def cancel_all(self, timeout: float = 60) -> None:
        if "slurmctld" not in self.procs or self.procs["slurmctld"].poll() is not None:
            return
        try:
            active = [j["id"] for j in self.jobs() if j["state"] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")]
            if active:
                self.run("scancel", *active, check=False)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(
                    j["state"] in ("RUNNING", "COMPLETING", "CONFIGURING") for j in self.jobs()):
                time.sleep(1)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass

    def stop(self) -> None:
        """Cancel what is left, then stop our own daemons by PID (slurmd, slurmctld, munged)."""
        self.cancel_all()
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._unlink_etc_conf()
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="slurm-"))
    with SlurmCluster(root) as cluster:
        print(f"export SLURM_CONF={cluster.conf}")
        print(cluster.run("sinfo"), flush=True)

        def _interrupt(*_):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _interrupt)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
