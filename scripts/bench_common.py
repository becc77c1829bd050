"""What every benchmark group shares: a result row, side-by-side timing, the device, JSON output.

A `Row` is one measure of one group: a candidate figure and (where one exists) the baseline it
was measured against in the same run, their ratio (candidate / baseline, always), and a target.
A target applies to the ratio (`Target("ratio", "<=", 1.05)`) or to the candidate alone
(`Target("candidate", "<=", 1.0, "s")`, e.g. "a score job starts in <= 1 s"), and `met` says
whether this run meets it. `scripts/bench.py` prints every group's rows as one table and writes
one JSON file per group (`results/bench/<group>.json`, see `write_group`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "results" / "bench"


@dataclass(frozen=True)
class Target:
    on: str  # "ratio" or "candidate"
    op: str  # "<=" or ">="
    value: float
    unit: str = "x"

    def text(self) -> str:
        what = "" if self.on == "ratio" else "cand "
        return f"{what}{self.op} {self.value:g}{'x' if self.unit == 'x' else ' ' + self.unit}"

    def met(self, row: Row) -> bool | None:
        x = row.ratio if self.on == "ratio" else row.candidate
        if x is None or x != x:  # no ratio, or NaN
            return None
        return x <= self.value if self.op == "<=" else x >= self.value


@dataclass
class Row:
    group: str
    measure: str
    candidate: float | None
    baseline: float | None = None
    unit: str = "s"
    target: Target | None = None
    #: what the candidate and baseline are, in words (printed below the table where needed)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.candidate is None or not self.baseline:
            return None
        return self.candidate / self.baseline

    @property
    def met(self) -> bool | None:
        return self.target.met(self) if self.target else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = (
            None if self.target is None else {**asdict(self.target), "text": self.target.text()}
        )
        d["ratio"], d["met"] = self.ratio, self.met
        return d


def skipped(group: str, why: str) -> Row:
    return Row(group, why, None, None, unit="", extra={"skipped": True})


def alternated(
    variants: dict[str, Callable[[], object]],
    rounds: int,
    sync: Callable[[], None] = lambda: None,
    warmup: bool = True,
) -> dict[str, list[float]]:
    """Seconds of each variant per round: one warm-up call each, then rounds that call the
    variants in turn (so drift of the machine hits all of them alike)."""
    if warmup:
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def saved_bytes(fn: Callable[[], object]) -> int:
    """Bytes of the tensors autograd saves for backward while `fn` runs (an upper bound on the
    activation memory: tensors saved twice are counted twice). Device-independent; on CPU,
    torch's allocator has no peak counter and peak RSS is too coarse for steps of this size."""
    import torch

    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def cuda_peak(fn: Callable[[], object]) -> int | None:
    """Peak CUDA memory allocated while `fn` runs, above what was allocated before it (None
    without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def memory_rows(
    group: str, label: str, cand: Callable[[], object], base: Callable[[], object], device: str
) -> list[Row]:
    """Memory of `cand` vs `base`: autograd-saved bytes on any device, and the peak CUDA
    allocation on a GPU."""
    rows = [
        Row(group, f"{label} memory (autograd saved)", saved_bytes(cand), saved_bytes(base), "B")
    ]
    if device.startswith("cuda"):
        rows.append(Row(group, f"{label} peak CUDA memory", cuda_peak(cand), cuda_peak(base), "B"))
    return rows


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {k: statistics.median(v) for k, v in times.items()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str | None = None) -> dict[str, Any]:
    """The machine the figures come from: CPU model, GPU name, torch version, threads."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "loadavg_1min": os.getloadavg()[0],
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda_version"] = torch.version.cuda
    if device is not None:
        info["device"] = device
    return info


def device_line(info: dict[str, Any]) -> str:
    gpu = f", GPU {info['gpu']} (CUDA {info['cuda_version']})" if info.get("gpu") else ", no GPU"
    return (
        f"CPU {info['cpu']} ({info['cpus']} cores){gpu}; torch {info['torch']}, "
        f"{info['threads']} threads, load {info['loadavg_1min']:.1f}"
    )


def fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit in ("B", "bytes"):
        return f"{x / 2**20:.2f} MiB"
    if unit == "FLOP/s":
        return f"{x / 1e12:.3g} TFLOP/s" if x >= 1e11 else f"{x / 1e9:.3g} GFLOP/s"
    if unit == "s":
        return f"{x * 1e3:.3g} ms" if x < 1 else f"{x:.2f} s"
    if abs(x) >= 100:
        return f"{x:,.0f} {unit}".rstrip()
    return f"{x:.3g} {unit}".rstrip()


COLUMNS = ("group", "measure", "candidate", "baseline", "ratio", "target", "met?")


def table(rows: list[Row]) -> str:
    cells = [COLUMNS]
    for r in rows:
        met = {True: "yes", False: "NO", None: "-"}[r.met]
        cells.append(
            (
                r.group,
                r.measure,
                fmt(r.candidate, r.unit),
                fmt(r.baseline, r.unit),
                "-" if r.ratio is None else f"{r.ratio:.3f}",
                r.target.text() if r.target else "-",
                met,
            )
        )
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = []
    for j, c in enumerate(cells):
        lines.append(
            "  ".join(
                c[i].ljust(widths[i]) if i < 2 else c[i].rjust(widths[i]) for i in range(len(c))
            )
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_group(group: str, rows: list[Row], info: dict[str, Any], out_dir: Path, **extra) -> Path:
    """results/bench/<group>.json: the device, the rows, and `metrics` ({measure: {candidate,
    baseline, ratio}}, flat numbers for `dvc metrics diff`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    own = [r for r in rows if r.group == group]
    metrics = {
        r.measure: {"candidate": r.candidate, "baseline": r.baseline, "ratio": r.ratio}
        for r in own
        if r.candidate is not None
    }
    doc = {"group": group, "device": info, "rows": [r.as_dict() for r in own], **extra}
    doc["metrics"] = metrics
    path = out_dir / f"{group}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path
