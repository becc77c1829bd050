"""The fork server (pipeline/runtime/forkserver.py): a forwarded `python -m pipeline …` behaves as
the same command in its own process — output, files, exit status, errors — and the server refuses
what it cannot run the same way, follows its caller's signals, and goes away with its Snakemake.
(That forked training computes the same numbers as fresh processes is compared end to end in
tests/test_e2e_snakemake.py.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.runtime import forkserver
from tests.conftest import REPO

PYTEST_VAR = "PYTEST_CURRENT_TEST"


@pytest.fixture
def server(tmp_path):
    """A server for this interpreter and this repository's package; (socket, log file)."""
    log = tmp_path / "forkserver.log"
    saved = os.environ.get(forkserver.SOCKET_ENV)
    os.environ.pop(PYTEST_VAR, None)  # pytest's own bookkeeping changes between test phases
    path = forkserver.start(log, watch_pid=os.getpid())
    assert os.environ[forkserver.SOCKET_ENV] == path
    yield path, log
    forkserver.stop_current()
    if saved:
        os.environ[forkserver.SOCKET_ENV] = saved


def pipeline(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    e = {**{k: v for k, v in os.environ.items() if k != PYTEST_VAR}, **env}
    cmd = [sys.executable, "-m", "pipeline", *args]
    return subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=120)


SERVED = re.compile(r"forkserver\[\d+\] (\d+): (\S+)")


def served(log: Path) -> list[str]:
    """The commands the server forked, in order."""
    return [m.group(2) for m in SERVED.finditer(log.read_text())]


def small_params(tmp_path: Path, **benchmark) -> Path:
    p = tmp_path / "small.yaml"
    p.write_text(yaml.safe_dump({"benchmark": {"languages": 3, "scale": 0.05, **benchmark}}))
    return p


def test_a_forwarded_command_writes_what_it_writes_in_its_own_process(server, tmp_path):
    _, log = server
    params = ["--params", str(REPO / "params.yaml"), "--params", str(small_params(tmp_path))]
    # Snakemake sets the job's thread counts: the child applies them, as a fresh process would
    forked = pipeline(
        ["generate", *params, "--out", str(tmp_path / "a")], REPO, OMP_NUM_THREADS="1"
    )
    alone = pipeline(
        ["generate", *params, "--out", str(tmp_path / "b")], REPO, PIPELINE_FORKSERVER="0"
    )
    assert forked.returncode == alone.returncode == 0, forked.stderr

    def same(out: str, d: str) -> str:  # the time taken and the folder aside
        return re.sub(r"in [\d.]+ s", "in T s", out.replace(str(tmp_path / d), "OUT"))

    assert same(forked.stdout, "a") == same(alone.stdout, "b") and forked.stdout.strip()
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert files
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert served(log) == ["generate"], log.read_text()


def test_errors_and_exit_status_pass_through(server, tmp_path):
    _, log = server
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: nope\n")
    args = ["validate", "--params", str(REPO / "params.yaml"), "--params", str(bad)]
    forked = pipeline(args, REPO)
    alone = pipeline(args, REPO, PIPELINE_FORKSERVER="0")
    assert forked.returncode == alone.returncode != 0
    assert forked.stderr == alone.stderr and "seeds" in forked.stderr
    usage = pipeline(["no-such-command"], REPO)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr
    assert served(log) == ["validate", "no-such-command"]


def test_a_different_environment_or_interpreter_runs_in_its_own_process(server, tmp_path):
    _, log = server
    res = pipeline(["validate"], REPO, SOME_LIBRARY_SETTING="1")
    assert res.returncode == 0 and res.stdout.startswith("[")
    assert "refused ['validate']: environment differs in SOME_LIBRARY_SETTING" in log.read_text()
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    res = subprocess.run(
        [str(bare / "bin" / "python"), "-m", "pipeline", "validate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != PYTEST_VAR},
    )
    assert res.returncode == 2 and "cannot import" in res.stderr  # not the server's packages
    assert "refused ['validate']: interpreter" in log.read_text()
    assert served(log) == []


def test_a_signal_to_the_caller_reaches_the_job(server, tmp_path):
    _, log = server
    params = small_params(tmp_path, languages=6, scale=40.0, text_sentences=200000)
    cmd = [sys.executable, "-m", "pipeline", "generate", "--params", str(REPO / "params.yaml")]
    env = {k: v for k, v in os.environ.items() if k != PYTEST_VAR}
    out = ["--params", str(params), "--out", str(tmp_path / "big")]
    proc = subprocess.Popen([*cmd, *out], cwd=REPO, env=env)
    deadline = time.monotonic() + 30
    while not served(log) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(SERVED.search(log.read_text()).group(1))
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM  # the job's status, as a shell reports it
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_the_server_exits_when_its_snakemake_is_gone(tmp_path):
    os.environ.pop(PYTEST_VAR, None)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    saved = os.environ.pop(forkserver.SOCKET_ENV, None)
    try:
        path = forkserver.start(tmp_path / "fs.log", watch_pid=owner.pid)
        assert os.path.exists(path)
        owner.wait()
        deadline = time.monotonic() + 60
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(path)
        assert "is gone: stopping" in (tmp_path / "fs.log").read_text()
    finally:
        os.environ.pop(forkserver.SOCKET_ENV, None)
        if saved:
            os.environ[forkserver.SOCKET_ENV] = saved


def test_no_server_switch_and_cluster_jobs(monkeypatch):
    monkeypatch.setenv(forkserver.SOCKET_ENV, "/nonexistent/sock")
    assert forkserver.forward(["validate"]) is None  # nothing listening: run in-process
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    assert not forkserver.enabled()
    monkeypatch.delenv("SLURM_JOB_ID")
    monkeypatch.setenv(forkserver.SWITCH_ENV, "0")
    assert not forkserver.enabled()


def test_dvc_stages_start_a_server_for_the_stages_after_them(tmp_path):
    """`dvc repro` runs stages one by one, with no hook: the first stage without a server starts
    one (keyed by interpreter, code and environment) and runs itself; the next is forked."""
    env = {k: v for k, v in os.environ.items() if k not in (PYTEST_VAR, forkserver.SOCKET_ENV)}
    env["DVC_STAGE"] = "validate"
    folder = Path(
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from pipeline.runtime import forkserver as f; print(f.auto_folder())",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )

    def validate() -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "pipeline", "validate"]
        return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    try:
        first = validate()
        assert first.returncode == 0 and first.stdout.startswith("[")
        deadline = time.monotonic() + 60
        while not (folder / "sock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        env["DVC_STAGE"] = "another stage"  # differs per stage: not part of the key
        second = validate()
        assert second.stdout == first.stdout
        assert served(folder / "log") == ["validate"]
        assert f"for {REPO}\n" in (folder / "log").read_text()
    finally:
        forkserver.stop(str(folder / "sock"))


def test_an_edited_module_or_another_environment_gets_a_server_of_its_own(monkeypatch):
    before = forkserver.auto_folder()
    monkeypatch.setenv("SOME_LIBRARY_SETTING", "1")
    assert forkserver.auto_folder() != before
    monkeypatch.delenv("SOME_LIBRARY_SETTING")
    assert forkserver.auto_folder() == before
    module = REPO / "pipeline" / "runtime" / "__init__.py"
    st = module.stat()
    try:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        assert forkserver.auto_folder() != before
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_server_that_could_not_fork_safely_refuses_every_job(tmp_path):
    """Threads alive at fork time (or CUDA initialised by an import) would break the children:
    such a server refuses, and jobs run in their own processes."""
    server = forkserver.Server(str(tmp_path / "sock"), open(os.devnull, "w"), None)
    try:
        request = {"executable": sys.executable, "package": forkserver.package_dir()}
        request["env"] = dict(os.environ)
        assert server._refusal(request) is None
        server.unsafe = "the server has 3 threads after its imports"
        assert server._refusal(request) == server.unsafe
    finally:
        server.listener.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
