"""Helpers for the end-to-end tests: a copy of the project with a shrunken params.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.config import deep_merge, read_yaml
from tests.conftest import REPO

#: the embedded default, shrunk to seconds per stage (same schema, same DAG)
TINY = {
    "benchmark": {"languages": 3, "zero_shot": 1, "tasks": ["nli", "ner", "qa"], "scale": 0.25},
    "encoder": {
        "tokenizer": {"vocab_size": 300, "min_frequency": 2},
        "architecture": {
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": 64,
        },
        "pretrain": {"steps": 6, "batch_size": 8, "max_length": 32, "checkpoint_every": 3},
    },
    "features": {"max_length": 48, "doc_stride": 24, "max_query_length": 12},
    "tlps": ["nli/l0", "ner/l0", "qa/l1"],
    "zero_shot_langs": ["l2"],
    "training": {"batch_size": 8, "eval_every": 4, "checkpoint_every": 4, "max_dev_examples": 20},
    "experiments": {
        "stl": {"method": "stl", "steps": 4},
        "mtl": {"method": "mtl", "steps": 8, "temperature": 2.0},
        "reptile": {"method": "reptile", "steps": 2, "m": 2, "k": 2},  # + fine-tuning per TLP
        "reptile_mdds": None,
        "seq_reptile": None,
    },
    "finetune": {
        "default": {"epochs": 1, "lrs": [1.0e-3]},
        "tasks": {"qa": {"epochs": 1, "lrs": [1.0e-3, 3.0e-4]}},
    },
}

COPY = ["Snakefile", "rules", "envs", "pipeline", "profiles", "configs", "pyproject.toml"]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    e.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        DVC_NO_ANALYTICS="1",
        PYTHONPATH="",
    )
    return e


def make_project(dest: Path, overrides: dict | None = None) -> Path:
    """Copy the project's code into `dest` with a shrunken params.yaml; return dest."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    params = deep_merge(deep_merge(read_yaml(REPO / "params.yaml"), TINY), overrides or {})
    write_params(dest, params)
    return dest


def write_params(dest: Path, params: dict) -> None:
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run(
    cmd: list[str], cwd: Path, check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({res.returncode})\nSTDOUT:\n{res.stdout[-4000:]}\nSTDERR:\n{res.stderr[-4000:]}"
        )
    return res


def snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd, check=check)


def dry_run_jobs(cwd: Path, *args: str) -> dict[str, int]:
    """Rule -> job count of a dry run (parsed from Snakemake's job stats table)."""
    res = snakemake(cwd, "-n", "--quiet", "rules", *args)
    counts: dict[str, int] = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts
