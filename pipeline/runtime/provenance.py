"""What produced a run's results: code, parameters, software, data, device and seed.

Written as `provenance.json` beside the run's model (`models/runs/<run>/`), and tabulated by the
report (`results/tables/provenance.md`), so a number in a table can be traced to the commit,
the parameters and the data it came from. Nothing in it varies between two identical runs of the
same checkout (no clock, no host name): rerunning a run reproduces its provenance byte for byte.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pipeline.io import sha256_file
from pipeline.runtime.acceleration import options as acceleration_options

#: the packages whose versions can change a number
PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "safetensors",
    "numpy",
    "scikit-learn",
    "scipy",
    "seqeval",
    "snakemake",
    "dvc",
)


def git_state(cwd: str | Path = ".") -> dict[str, Any] | None:
    """{"commit", "dirty"} of the checkout the job runs in (tracked files only: outputs are
    ignored by git); None outside a git checkout or without git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def params_sha256(cfg: Mapping[str, Any]) -> str:
    """sha256 of the merged params (canonical JSON: key order does not matter)."""
    blob = json.dumps(cfg, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def dataset_digests(prepared: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """Per prepared dataset: the sha256 of its `summary.json` (which lists every split and its
    record count) and, for a downloaded one, the raw files' verified sha256s."""
    out: dict[str, dict[str, Any]] = {}
    for d in dict.fromkeys(Path(p) for p in prepared):
        rec: dict[str, Any] = {}
        summary = d / "summary.json"
        if summary.exists():
            rec["summary_sha256"] = sha256_file(summary)
        complete = Path("data/raw") / d.name / ".complete.json"
        if complete.exists():
            try:
                files = json.loads(complete.read_text()).get("files", {})
                rec["raw_sha256"] = {k: v.get("sha256") for k, v in sorted(files.items())}
            except (ValueError, AttributeError):
                rec["raw_sha256"] = None
        out[d.name] = rec
    return out


def device_info(device: Any) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "type": str(device),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def provenance(
    cfg: Mapping[str, Any],
    run: Any,
    device: Any,
    prepared: Iterable[str | Path],
) -> dict[str, Any]:
    """The provenance record of one run (`distributed`: how many processes trained it, and the
    torch.distributed backend; 1 and null for a plain `python -m pipeline` job)."""
    from pipeline.runtime.distributed import world

    return {
        "run": run.id,
        "seed": run.params.get("seed"),
        "git": git_state(),
        "params_sha256": params_sha256(cfg),
        "run_sha256": params_sha256(run.to_json()),
        "packages": package_versions(),
        "data": dataset_digests(prepared),
        "device": device_info(device),
        "distributed": world().describe(),
        # precision, compile, fused AdamW, pinning, padding, length grouping, as resolved
        "acceleration": acceleration_options(run.params, device),
        "argv": [Path(sys.argv[0]).name, *sys.argv[1:]],
    }
