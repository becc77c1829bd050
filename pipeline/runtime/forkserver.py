"""A fork server for `python -m pipeline` jobs: each job's imports paid once per workflow.

Why: a Snakemake job is a fresh interpreter, and importing torch, transformers and datasets costs
about 6 s on a laptop core, while a job of the embedded default or of a preset smoke trains for 2-4 s.
With hundreds of jobs the imports are most of the DAG's time. The server imports them once, then
forks one child per job; the child inherits the warm modules and runs the job exactly as a fresh
`python -m pipeline …` would: the job's argv, working directory, environment and stdin/stdout/stderr
(passed as file descriptors), its exit status back to the caller. Seeds are set by the steps
themselves, so a forked job computes the same numbers as a fresh one (the end-to-end test compares
them).

Safety: a job is only forwarded when it would run the same code: the same interpreter, the same
`pipeline` package and the same environment (the imported libraries read some variables at import
time, e.g. HF_HUB_OFFLINE); otherwise the server refuses and the job runs in its own process, as
it does without a server. The parent never runs a torch operation, so no thread pool or CUDA
context exists at fork time. A SLURM job never forwards (it must compute inside its allocation).

Lifetime: `rules/common.smk` starts a server for a local Snakemake run (`onstart`) and stops it when
the run ends; the server also exits when that Snakemake process is gone. The children die with
the server (PR_SET_PDEATHSIG) and are terminated when their caller goes away, so killing a job or
Snakemake behaves as without a server. `PIPELINE_FORKSERVER=0` switches it off.

This module imports only the standard library: the client side runs before anything heavy.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: where a job finds the server (set by `start`, inherited by the jobs Snakemake spawns)
SOCKET_ENV = "PIPELINE_FORKSERVER_SOCKET"
#: set by `dvc repro` for every stage command: a job without a server then starts one for the
#: stages after it (idle-timed; keyed by interpreter, code and environment, so an edit or another
#: environment gets a server of its own)
DVC_STAGE_ENV = "DVC_STAGE"
#: an auto-started server exits after this many seconds without a job
AUTO_IDLE_S = 60
#: `0` switches the server off (a run then spawns one interpreter per job, as before)
SWITCH_ENV = "PIPELINE_FORKSERVER"
#: environment entries that may differ between the server and a job (shell bookkeeping)
VOLATILE_ENV = {"_", "PWD", "OLDPWD", "SHLVL", SOCKET_ENV, DVC_STAGE_ENV}
#: thread counts Snakemake sets per job (its `threads:`): applied in the child, as a fresh process
#: would read them (torch sizes its pool lazily, on the first parallel operation)
THREAD_ENV = {
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
}
#: read when used, not at import: a job's own values are applied in the child (Snakemake puts the
#: environment's bin/ first on PATH and sets a per-job TMPDIR)
CALL_TIME_ENV = {"PATH", "TMPDIR", "TEMP", "TMP", "TEMPDIR"}
#: what may differ between the server and a job
APPLIED_ENV = VOLATILE_ENV | THREAD_ENV | CALL_TIME_ENV
#: what the server imports before forking: everything heavy a step imports
WARM_MODULES = (
    "torch",
    "datasets",
    "transformers",
    "transformers.models.bert.modeling_bert",
    "transformers.models.bert.tokenization_bert",
    "pipeline.steps",
    "pipeline.trainer",
    "pipeline.finetune",
    "pipeline.checkpoint",
    "pipeline.evaluation",
    "pipeline.scoring",
    "pipeline.models.multitask",
    "pipeline.models.encoder",
    "pipeline.data.prepare",
    "pipeline.report.tables",
)


def stable_env(env: dict[str, str]) -> dict[str, str]:
    """The part of an environment a job must share with the server (what imports may read)."""
    return {k: v for k, v in env.items() if k not in APPLIED_ENV}


def package_dir() -> str:
    """The folder of the `pipeline` package this interpreter imports (a job must run the
    server's copy)."""
    return str(Path(__file__).resolve().parent.parent)


def enabled() -> bool:
    """Whether this process may start or use a server."""
    return os.environ.get(SWITCH_ENV, "1") != "0" and "SLURM_JOB_ID" not in os.environ


# ---------------------------------------------------------------------------------------------
# client


def forward(argv: list[str]) -> int | None:
    """Run `python -m pipeline <argv>` in a child of the server; its exit status, or None when
    there is no server or it refused (the caller then runs the command itself)."""
    if not enabled():
        return None
    path = os.environ.get(SOCKET_ENV)
    auto = not path and DVC_STAGE_ENV in os.environ
    if auto:
        path = os.path.join(auto_folder(), "sock")
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        if auto:
            spawn_auto(os.path.dirname(path))
        return None
    request = {
        "argv": argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "executable": sys.executable,
        "package": package_dir(),
    }
    with conn:
        try:
            socket.send_fds(conn, [b"R"], [0, 1, 2])
            conn.sendall(json.dumps(request).encode() + b"\n")
            replies = conn.makefile("rb")
            first = _read(replies)
        except OSError:
            return None
        if first is None or "pid" not in first:
            return None  # refused: run in-process
        child = int(first["pid"])

        def relay(signum: int, _frame: Any) -> None:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, relay)
        last = _read(replies)  # a relayed signal does not interrupt the read (PEP 475)
        if last is None:
            print("error: the pipeline fork server stopped while running this job", file=sys.stderr)
            return 1
        return int(last["exit"])


def fingerprint() -> dict[str, Any]:
    """What decides whether a server runs the code and environment this process would: the
    interpreter, the package folder, every module's size and mtime, the environment."""
    root = Path(package_dir())
    code = sorted(
        (str(p.relative_to(root)), st.st_size, st.st_mtime_ns)
        for p in root.rglob("*.py")
        for st in [p.stat()]
    )
    env = stable_env(dict(os.environ))
    return {"executable": sys.executable, "package": str(root), "code": code, "env": env}


def auto_folder() -> str:
    """The socket folder of the auto-started server for this process's fingerprint."""
    import hashlib

    key = hashlib.sha256(json.dumps(fingerprint(), sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"pipeline-fs-{os.getuid()}-{key}")


def spawn_auto(folder: str) -> None:
    """Start an idle-timed server at `folder` for the next jobs (this one runs in-process).

    `mkdir` is the lock: of concurrent callers one starts it; a folder left by a server that died
    is taken over."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pid = _pid_in(folder)
        if pid is not None and _alive(pid):
            return  # starting up
        if pid is None and time.time() - os.path.getmtime(folder) < 30:
            return  # another caller is starting it
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            return
    except OSError:
        return
    log = os.path.join(folder, "log")
    _spawn(os.path.join(folder, "sock"), log, ["--idle", str(AUTO_IDLE_S)])


def _pid_in(folder: str) -> int | None:
    try:
        return int(Path(folder, "pid").read_text())
    except (OSError, ValueError):
        return None


def _read(stream: Any) -> dict[str, Any] | None:
    line = stream.readline()
    return json.loads(line) if line else None


def stop(path: str) -> None:
    """Ask the server at `path` to exit once its running jobs end (it removes its socket)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect(path)
            conn.sendall(b"S")
            conn.recv(16)
    except OSError:
        pass


def start(log: str | os.PathLike[str], watch_pid: int | None = None, timeout: float = 30) -> str:
    """Start a server in the background (logging to `log`), export its socket to this process's
    environment (so the jobs it spawns find it) and return the socket path.

    The socket lives in a short temporary folder: AF_UNIX paths are limited to 107 bytes.
    """
    folder = tempfile.mkdtemp(prefix="pipeline-fs-")
    path = os.path.join(folder, "sock")
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    _spawn(path, str(log), ["--watch-pid", str(watch_pid)] if watch_pid else [])
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    if os.path.exists(path):
        os.environ[SOCKET_ENV] = path
    return path


def _spawn(path: str, log: str, extra: list[str]) -> None:
    """A detached server process (its own session: a job's or Snakemake's signals do not reach it)."""
    import subprocess

    cmd = [sys.executable, "-m", "pipeline.runtime.forkserver", "--socket", path, "--log", log]
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    with open(log, "a") as err:
        subprocess.Popen(
            [*cmd, *extra],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            cwd=os.getcwd(),
        )


# ---------------------------------------------------------------------------------------------
# server


class Server:
    """Accepts job requests on a Unix socket and forks one warm child per job."""

    def __init__(
        self, path: str, log: Any, watch_pid: int | None, idle: float | None = None
    ) -> None:
        self.path = path
        self.log = log
        self.watch_pid = watch_pid
        self.idle = idle
        self.last = time.monotonic()
        Path(os.path.dirname(path), "pid").write_text(str(os.getpid()))
        self.env = stable_env(dict(os.environ))
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path + ".tmp")
        self.listener.listen(128)
        os.replace(path + ".tmp", path)  # jobs queue in the backlog while the imports run
        self.children: dict[int, socket.socket] = {}
        self.stopping = False
        self.unsafe: str | None = None  # set when forking would not be safe: every job refused
        self.served = 0
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._terminate)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")

    def say(self, msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} forkserver[{os.getpid()}] {msg}", file=self.log)
        self.log.flush()

    def _terminate(self, *_: Any) -> None:
        self.stopping = True

    def warm(self) -> None:
        started = time.perf_counter()
        import importlib

        for name in WARM_MODULES:
            try:
                importlib.import_module(name)
            except Exception as e:  # a missing optional module: its jobs import it themselves
                self.say(f"warm import of {name} failed: {e!r}")
        import threading

        threads = threading.active_count()
        torch = sys.modules.get("torch")
        if threads > 1:  # a lock held by another thread would stay held in every child
            self.unsafe = f"the server has {threads} threads after its imports"
        elif torch is not None and torch.cuda.is_initialized():  # CUDA does not survive fork
            self.unsafe = "CUDA was initialised during the server's imports"
        note = f" (refusing every job: {self.unsafe})" if self.unsafe else ""
        self.say(
            f"warm in {time.perf_counter() - started:.1f} s; serving {self.path} for "
            f"{os.getcwd()}{note}"
        )

    def serve(self) -> None:
        while not (self.stopping and not self.children):
            for key, _ in self.sel.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
                else:  # a caller's connection: readable only when the caller has gone
                    self._caller_gone(key.data)
            self._reap()
            if self.children:
                self.last = time.monotonic()
            elif self.idle and time.monotonic() - self.last > self.idle and not self.stopping:
                self.say(f"idle for {self.idle:.0f} s: stopping")
                self.stopping = True
            if self.watch_pid and not _alive(self.watch_pid) and not self.stopping:
                self.say(f"process {self.watch_pid} is gone: stopping")
                self.stopping = True
                for pid in self.children:
                    _kill(pid)
        self.say(f"stopped after {self.served} jobs")
        self.listener.close()
        for p in (self.path, os.path.join(os.path.dirname(self.path), "pid")):
            try:
                os.unlink(p)
            except OSError:
                pass
        try:
            os.rmdir(os.path.dirname(self.path))
        except OSError:
            pass

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            msg, fds, _, _ = socket.recv_fds(conn, 1, 3)
            if msg == b"S":
                self.stopping = True
                conn.sendall(b"ok")
                conn.close()
                return
            request = json.loads(conn.makefile("rb").readline())
        except (OSError, ValueError) as e:
            self.say(f"bad request: {e!r}")
            conn.close()
            return
        reason = self._refusal(request) if not self.stopping else "stopping"
        if reason:
            self.say(f"refused {request.get('argv', [])[:1]}: {reason}")
            _send(conn, {"refused": reason})
            conn.close()
            for fd in fds:
                os.close(fd)
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(request, fds, conn)  # never returns
        for fd in fds:
            os.close(fd)
        self.served += 1
        self.children[pid] = conn
        self.sel.register(conn, selectors.EVENT_READ, pid)
        _send(conn, {"pid": pid})
        self.say(f"{pid}: {' '.join(request['argv'][:1] + _run_of(request['argv']))}")

    def _refusal(self, request: dict[str, Any]) -> str | None:
        if self.unsafe:
            return self.unsafe
        if request.get("executable") != sys.executable:
            return f"interpreter {request.get('executable')} is not {sys.executable}"
        if request.get("package") != package_dir():
            return f"package {request.get('package')} is not {package_dir()}"
        env = stable_env(request.get("env", {}))
        differ = sorted(k for k in env.keys() | self.env.keys() if env.get(k) != self.env.get(k))
        if differ:
            return f"environment differs in {', '.join(differ[:5])}"
        return None

    def _child(self, request: dict[str, Any], fds: list[int], conn: socket.socket) -> None:
        code = 1
        try:
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.set_wakeup_fd(-1)
            self.sel.close()
            self.listener.close()
            for c in self.children.values():
                c.close()
            conn.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            _die_with_parent()
            for i, fd in enumerate(fds):
                os.dup2(fd, i)
                os.close(fd)
            self.log.close()
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            sys.argv = [os.path.join(package_dir(), "__main__.py"), *request["argv"]]
            _fresh_random_state()
            tempfile.tempdir = None  # chosen again from this job's TMPDIR
            _threads_of(request["env"])
            code = _run(request["argv"])
        except SystemExit as e:
            code = _exit_code(e)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)

    def _caller_gone(self, pid: int) -> None:
        conn = self.children.get(pid)
        if conn is not None:
            self.sel.unregister(conn)
            self.say(f"{pid}: caller gone, terminating")
            _kill(pid)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            try:
                self.sel.unregister(conn)
            except (KeyError, ValueError):
                pass
            try:
                _send(conn, {"exit": code})
            except OSError:
                pass
            conn.close()


def _fresh_random_state() -> None:
    """The random states a fresh interpreter starts with (the steps seed what they use; this
    keeps anything unseeded as independent between jobs as it is between processes)."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].default_generator.seed()  # a fresh process: from OS entropy


def _threads_of(env: dict[str, str]) -> None:
    """torch's intra-op threads as a fresh process with this environment would size them."""
    n = env.get("OMP_NUM_THREADS") or env.get("MKL_NUM_THREADS")
    if n and n.isdigit() and int(n) > 0 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))


def stop_current() -> None:
    """Stop the server this process started (`start`), if any."""
    path = os.environ.pop(SOCKET_ENV, None)
    if path:
        stop(path)


def _run(argv: list[str]) -> int:
    from pipeline.cli import main

    return main(argv)


def _exit_code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1


def _run_of(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--run", "--dataset")]


def _send(conn: socket.socket, obj: dict[str, Any]) -> None:
    conn.sendall(json.dumps(obj).encode() + b"\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the server dies (no orphaned jobs)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pipeline.runtime.forkserver", description=__doc__)
    ap.add_argument("--socket", required=True, help="the Unix socket to listen on")
    ap.add_argument("--log", required=True, help="append what the server does here")
    ap.add_argument("--watch-pid", type=int, help="exit when this process is gone")
    ap.add_argument("--idle", type=float, help="exit after this many seconds without a job")
    args = ap.parse_args(argv)
    with open(args.log, "a") as log:
        server = Server(args.socket, log, args.watch_pid, args.idle)
        server.warm()
        server.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
