"""Cluster execution: the DAG through `snakemake --profile profiles/slurm` on a real SLURM.

A module fixture brings up a one-node SLURM (Debian's slurm-wlm and munge, installed with
apt-get when missing) on loopback, with its own slurm.conf, state and munge socket under a tmp
dir and no accounting (so job status goes through squeue, as the profile says). A fresh clone
of the project with a very small config runs through the SLURM executor plugin; the jobs must
really have gone through sbatch (SLURM job ids in Snakemake's output and the plugin's logs,
the same ids known to scontrol and slurmctld's log), and the scores must equal a local run's.

A second, cheap test dry-runs the real presets and checks each job's resources: GPU rules ask
for one GPU with a hub encoder and none with the embedded tiny encoder, CPU rules never.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import read_yaml
from tests.conftest import REPO
from tests.e2e import TINY, env, make_project, run, snakemake

pytestmark = pytest.mark.e2e

#: rules that run a model (a GPU with a hub encoder) and rules that never do
GPU_RULES = {"train", "finetune", "represent", "forgetting", "forgetting_pretrained", "clusters"}
GPU_RULES |= {"pretrain"}  # the tiny encoder's MLM pretraining: only without a hub encoder
CPU_RULES = {"generate", "download", "prepare", "plan", "tokenizer", "report", "toy2d"}
CPU_RULES |= {"pseudo_tasks"}

#: far below TINY: two TLPs, one seed, STL (one run per TLP) and MTL, a few steps each
SMALL = {
    "seeds": [1],
    "benchmark": {"languages": 2, "tasks": ["nli", "ner"], "scale": 0.2, "text_sentences": 100},
    "encoder": {"pretrain": {"steps": 4, "checkpoint_every": 2}},
    "tlps": ["nli/l0", "ner/l0"],
    "zero_shot_langs": ["l1"],
    "training": {"eval_every": 2, "checkpoint_every": 2, "max_dev_examples": 12},
    "experiments": {
        **{
            name: None
            for name in {*read_yaml(REPO / "params.yaml")["experiments"], *TINY["experiments"]}
        },
        "stl": {"method": "stl", "steps": 2, "tlps": "all"},
        "mtl": {"method": "mtl", "steps": 4, "temperature": 2.0, "forgetting": False},
    },
    "report": {"bootstrap": 50},
    "toy2d": None,
}
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def clean_env(**extra: str) -> dict[str, str]:
    """The tests' environment without SLURM_* (a CI runner inside a SLURM job would make the
    plugin warn and strip them) plus `extra`."""
    e = {k: v for k, v in env().items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    return {**e, **extra}


def sh(cmd: list[str], cwd: Path, e: dict[str, str], timeout: int = 600) -> str:
    """Run `cmd`, failing with its output; return stdout + stderr (Snakemake logs to stderr)."""
    res = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"{' '.join(cmd)} failed ({res.returncode})\n{out[-6000:]}"
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_slurm() -> None:
    """Install Debian's SLURM and munge when they are missing (CI starts without them)."""
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "munged", "sbatch", "squeue")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail("slurm-wlm and munge are missing and cannot be installed (needs root apt-get)")
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge"],
    ):
        subprocess.run(cmd, env=apt, check=True, capture_output=True, timeout=900)


def slurm_conf(root: Path, host: str, munge_socket: Path) -> str:
    """A one-node cluster on loopback: no cgroups, no accounting, the whole machine's CPUs."""
    mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return f"""\
ClusterName=pipelinetest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# finished jobs stay visible to squeue/scontrol this long (the profile's status command)
MinJobAge=3600
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={int(mem_mb * 0.9)} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


#: where SLURM's clients look for slurm.conf without SLURM_CONF: the compiled-in default, then
#: the cache a configless slurmd keeps (a runtime dir, gone at reboot)
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
RUN_CONF = Path("/run/slurm/conf/slurm.conf")


def publish_conf(conf: Path) -> list[Path]:
    """Make `conf` the machine's slurm.conf for clients that ignore SLURM_CONF; return what to
    remove afterwards.

    The plugin's job step (snakemake-executor-plugin-slurm-jobstep 0.6.1) drops every SLURM_*
    variable but the job's ids from the environment of the `srun` it runs inside each job,
    SLURM_CONF included, so that srun finds its cluster only where a real cluster's clients do.
    """
    if DEFAULT_CONF.exists() or RUN_CONF.exists() or RUN_CONF.is_symlink():
        pytest.fail(f"this machine has a SLURM config already ({DEFAULT_CONF} or {RUN_CONF})")
    made = [d for d in (RUN_CONF.parent.parent, RUN_CONF.parent) if not d.exists()]
    RUN_CONF.parent.mkdir(parents=True, exist_ok=True)
    RUN_CONF.symlink_to(conf)
    return [RUN_CONF, *reversed(made)]


def unpublish_conf(made: list[Path]) -> None:
    for p in made:
        if p.is_symlink():
            p.unlink()
        elif p.is_dir():
            p.rmdir()


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each daemon we started (by pid), newest first; SIGKILL what lingers."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A running one-node SLURM; yields the clients' environment (SLURM_CONF set)."""
    ensure_slurm()
    root = tmp_path_factory.mktemp("slurm")
    for d in ("state", "spool", "log", "munge"):
        (root / d).mkdir()
    (root / "munge").chmod(0o755)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = root / "munge" / "munge.socket"
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, host, sock))
    e = clean_env(SLURM_CONF=str(conf))
    procs: list[subprocess.Popen] = []
    link = publish_conf(conf)
    try:
        munge = [
            "munged", "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
            f"--pid-file={root}/munge/munged.pid", f"--seed-file={root}/munge/seed",
            f"--log-file={root}/log/munged.log",
        ]  # fmt: skip
        daemons = (
            munge,
            ["slurmctld", "-D", "-f", str(conf)],
            ["slurmd", "-D", "-f", str(conf), "-N", host],
        )
        for cmd in daemons:
            out = open(root / "log" / f"{cmd[0]}.out", "w")  # noqa: SIM115 (closed with the run)
            procs.append(subprocess.Popen(cmd, env=e, stdout=out, stderr=subprocess.STDOUT))
            if cmd[0] == "munged":
                wait_for(lambda: sock.exists(), 30, "munged's socket", root)
        wait_for(
            lambda: "idle" in sh(["sinfo", "-h", "-N", "-o", "%T"], root, e),
            60,
            "an idle node",
            root,
        )
        yield {**e, "_root": str(root)}
    finally:
        subprocess.run(["scancel", "--full", "--user=root"], env=e, capture_output=True, timeout=30)
        stop(procs)
        unpublish_conf(link)


def wait_for(ready, seconds: float, what: str, root: Path) -> None:
    """Poll `ready()` for at most `seconds`; fail with the daemons' logs otherwise."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except AssertionError:
            pass
        time.sleep(0.5)
    logs = "\n".join(f"== {p.name}\n{p.read_text()[-2000:]}" for p in (root / "log").iterdir())
    pytest.fail(f"no {what} after {seconds} s\n{logs}")


def scores(proj: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (proj / "results/scores").glob("*.json")}


def test_dag_runs_through_slurm_like_locally(slurm, tmp_path):
    e = {k: v for k, v in slurm.items() if not k.startswith("_")}
    root = Path(slurm["_root"])
    cluster = make_project(tmp_path / "cluster", SMALL)
    local = make_project(tmp_path / "local", SMALL)
    started = time.monotonic()
    out = sh(
        [
            sys.executable, "-m", "snakemake", "--profile", "profiles/slurm",
            "--default-resources", "slurm_partition=debug", "mem_mb=1000", "runtime=10",
            "--slurm-init-seconds-before-status-checks", "1",
            "--seconds-between-status-checks", "1",
            "--latency-wait", "5",
        ],
        cluster,
        e,
    )  # fmt: skip
    slurm_s = time.monotonic() - started
    submitted = SUBMITTED.findall(out)
    assert "Falling back to 'sacct'" not in out  # squeue saw every job end (MinJobAge)
    rules = {re.search(r"/rule_([a-z0-9_]+)/", log).group(1) for _, _, log in submitted}
    assert rules == {"generate", "prepare", "plan", "tokenizer", "pretrain", "train", "report"}
    jobids = [int(j) for _, j, _ in submitted]
    assert len(jobids) == len(set(jobids)) == 9  # 7 rules, train x3 (stl x2, mtl)
    # SLURM itself ran them: scontrol still knows each (MinJobAge), slurmctld allocated it,
    # and the plugin kept its sbatch log (slurm-keep-successful-logs)
    ctld_log = (root / "log" / "slurmctld.log").read_text()
    for _, jobid, log in submitted:
        info = sh(["scontrol", "show", "job", jobid], cluster, e)
        assert "JobState=COMPLETED" in info and "Partition=debug" in info, info
        # the main scheduler logs "sched: Allocate JobId=N", the backfill one "Started JobId=N"
        assert re.search(rf"(Allocate|Started) JobId={jobid} ", ctld_log), jobid
        assert f"_job_complete: JobId={jobid} WEXITSTATUS 0" in ctld_log, jobid
        assert Path(log).is_file() and str(cluster / ".snakemake/slurm_logs") in log
    listed = sh(["squeue", "--states=all", "-h", "-o", "%i|%T"], cluster, e).split()
    assert {f"{j}|COMPLETED" for j in jobids} <= set(listed)
    # ...and the numbers are a local run's
    started = time.monotonic()
    sh([sys.executable, "-m", "snakemake", "--cores", "2"], local, clean_env())
    local_s = time.monotonic() - started
    assert scores(cluster) == scores(local) and len(scores(local)) == 3
    metrics = [json.loads((p / "results/metrics.json").read_text()) for p in (cluster, local)]
    assert metrics[0] == metrics[1]
    print(f"slurm run {slurm_s:.0f} s, local run {local_s:.0f} s")


def job_resources(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job a dry run lists."""
    jobs, rule = [], None
    for line in output.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):$", line):
            rule = m.group(1)
        elif rule and (m := re.match(r"\s+resources: (.*)$", line)):
            jobs.append((rule, dict(kv.split("=", 1) for kv in m.group(1).split(", "))))
            rule = None
    return jobs


def test_jobs_ask_for_a_gpu_only_where_a_hub_model_runs(tmp_path):
    proj = make_project(tmp_path / "project", commit=False)
    run(["git", "checkout", "-q", "params.yaml"], proj)  # the embedded default, as committed
    seen: set[str] = set()
    for preset in ("tarunesh2021", "xmetra_ada", "metaxl", "seq_reptile"):
        res = snakemake(proj, "-n", "--configfile", f"configs/{preset}.yaml")
        jobs = [(r, x) for r, x in job_resources(res.stdout + res.stderr) if r != "all"]
        assert len(jobs) > 50, preset
        for rule, resources in jobs:
            assert rule in GPU_RULES | CPU_RULES, rule
            assert resources["gpu"] == ("1" if rule in GPU_RULES else "0"), (preset, rule)
            assert {"cpus_per_task", "mem_mb", "runtime"} <= set(resources), (preset, rule)
            assert not {"slurm_partition", "slurm_account"} & set(resources)  # the cluster's
        seen |= {rule for rule, _ in jobs}
    # between them the presets train, fine-tune, cluster, represent, measure forgetting
    assert GPU_RULES - {"pretrain"} <= seen and {"download", "prepare", "pseudo_tasks"} <= seen
    train = [x for r, x in job_resources(res.stdout + res.stderr) if r == "train"]
    assert all(int(x["mem_mb"]) >= 16000 and int(x["runtime"]) >= 360 for x in train)
    # the embedded tiny encoder: the same DAG shape, all on CPUs
    res = snakemake(proj, "-n")
    jobs = [(r, x) for r, x in job_resources(res.stdout + res.stderr) if r != "all"]
    assert {"tokenizer", "pretrain", "train", "finetune", "clusters", "forgetting"} <= {
        r for r, _ in jobs
    }
    assert all(x["gpu"] == "0" for _, x in jobs)
