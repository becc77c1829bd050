"""SIGTERM as a request to checkpoint and stop, for the training loops.

A scheduler's preemption or time limit (SLURM sends SIGTERM, then SIGKILL after `KillWait`),
`kill`, or Snakemake stopping its jobs: a training loop that sees the flag at the end of a step
writes a checkpoint there and raises Interrupted, so the job exits non-zero (143, as the signal
would) and a rerun resumes from that step instead of the last periodic checkpoint.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.errors import PipelineError


class Interrupted(PipelineError):
    """SIGTERM during training: a checkpoint was written at the step in progress."""

    exit_code = 128 + signal.SIGTERM


@contextmanager
def sigterm_flag() -> Iterator[dict[str, bool]]:
    """While the block runs, SIGTERM sets `flag["set"]` (read at the end of each step, the unit
    a checkpoint resumes at); the previous handler comes back afterwards."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag  # (signals reach the main thread only)
        return

    def handler(signum: int, frame: Any) -> None:
        flag["set"] = True

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGTERM, previous)
