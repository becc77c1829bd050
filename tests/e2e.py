"""Helpers for the end-to-end tests: fresh clones of the project with a shrunken params.yaml.

A clone is what a user gets from `git clone`: the repository's files as committed. So that a test
of the working tree sees uncommitted edits too, the tracked and untracked-but-not-ignored files of
the working tree are first committed into a snapshot repository (once per test session), and every
project is a `git clone` of that snapshot. Nothing ignored by git (results, models, the venv)
reaches a clone, which is what the fresh-clone test relies on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import yaml

from pipeline.config import deep_merge, read_yaml
from tests.conftest import REPO

#: the embedded default, shrunk to seconds per stage (same schema, same DAG), two seeds
#: X-METRA(-ADA) at the e2e scale
XM = {"k": 1, "q": 1, "n_tasks": 4, "adapt_tasks": 2, "meta_batch": 2, "inner_steps": 2}
XM["meta_train_fraction"] = 0.5  # a meta-adapt pool that holds 2 utterances of some intents

TINY = {
    "seeds": [1, 2],
    "benchmark": {
        "languages": 3,
        "zero_shot": 1,
        "tasks": ["nli", "ner", "qa", "mtod", "sa"],
        "scale": 0.25,
        "eval_size": 24,
        "text_sentences": 150,
    },
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
        "stl": {"method": "stl", "steps": 4, "tlps": "all"},
        "qa_baseline": None,
        "mtl": {"method": "mtl", "steps": 8, "temperature": 2.0},
        "reptile": {"method": "reptile", "steps": 2, "m": 2, "k": 2},  # + fine-tuning per TLP
        "reptile_mdds": None,
        "seq_reptile": None,
        # cross-lingual MAML from the English (l0) stage, meta-trained on l1's dev set
        # (also PRE of the X-METRA group)
        "en": {
            "method": "mtl",
            "steps": 6,
            "tlps": ["nli/l0", "mtod/l0", "qa/l0"],
            "eval_tlps": ["mtod/l1", "qa/l1"],
        },
        "xmaml": {"aux": ["l1"], "tlps": ["nli/aux"], "steps": 2, "eval_every": 2},
        "xla_maml": {"aux": ["l1"], "tlps": ["nli/l0", "nli/aux"], "steps": 2, "eval_every": 2},
        # X-METRA-ADA and its baselines on the dialog and QA tasks, target l1 (k = q = 1: the
        # dev sets hold 24 utterances of 8 intents), and a sweep (the analyses' mechanism)
        "mono": {"target": ["l1"], "steps": 2, "seeds": [1, 2]},
        "ft": {"target": ["l1"], "steps": 2, "seeds": [1, 2]},
        "ft_en": {"target": ["l1"], "steps": 2, "seeds": [1, 2]},
        "xmetra": {"target": ["l1"], "steps": 2, "seeds": [1, 2], **XM},
        "xmetra_ada": {"target": ["l1"], "steps": 2, "adapt_steps": 1, "seeds": [1, 2], **XM},
        "xmetra_sweep": {
            "method": "xmetra_ada",
            "init": "en",
            "target": ["l1"],
            "tlps": ["mtod/l0", "mtod/target"],
            "dev_tlps": ["mtod/target"],
            "support": ["l0"],
            "query": ["target"],
            "steps": 1,
            "adapt_steps": 1,
            **XM,
            "seeds": [1],
            "sweep": [{"inner_steps": 1}, {"inner_steps": 2}],
        },
        # MetaXL and joint training, target l1 (JT w/ RTN and target-only are the same
        # mechanics: the unit tests cover them), with the representation analyses
        "target_only": None,
        "jt_rtn": None,
        # Lee et al.'s multi-task baselines (two of four: the unit tests cover the others) and
        # the zero-shot protocol on GMM clusters of nli/l0
        "pcgrad": {"steps": 2, "eval_every": 2, "seeds": [1, 2]},
        "recadam": {"steps": 2, "eval_every": 2, "seeds": [1, 2]},
        "gradvac": None,
        "gradnorm": None,
        "zs_mtl": {
            "clusters": {"k": 2},
            "eval_tlps": ["nli/l1"],
            "steps": 2,
            "eval_every": 2,
            "seeds": [1, 2],
        },
        **{
            f"zs_{m}": None
            for m in ("pcgrad", "gradvac", "gradnorm", "recadam", "reptile", "seq_reptile")
        },
        "seq_reptile_lr": None,
        "jt": {"target": ["l1"], "steps": 2, "eval_every": 2, "seeds": [1, 2]},
        "metaxl": {"target": ["l1"], "steps": 2, "eval_every": 2, "seeds": [1, 2]},
    },
    "finetune": {
        "default": {"epochs": 1, "lrs": [1.0e-3]},
        "tasks": {"qa": {"epochs": 1, "lrs": [1.0e-3, 3.0e-4]}},
    },
    "report": {"bootstrap": 200},
    "toy2d": {"steps": 30, "sweep": None},  # Lee et al.'s 2-D study, short (tests/test_toy2d.py)
    "clustering": {"pca_components": 4},
}


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
        GIT_AUTHOR_NAME="CI",
        GIT_AUTHOR_EMAIL="ci@example.org",
        GIT_COMMITTER_NAME="CI",
        GIT_COMMITTER_EMAIL="ci@example.org",
    )
    return e


def run(
    cmd: list[str],
    cwd: Path,
    check: bool = True,
    timeout: int = 900,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    e = {**env(), **(extra_env or {})}
    res = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({res.returncode})\nSTDOUT:\n{res.stdout[-4000:]}\nSTDERR:\n{res.stderr[-4000:]}"
        )
    return res


@cache
def snapshot() -> Path:
    """A repository holding the working tree as it would be committed (once per session)."""
    root = Path(tempfile.mkdtemp(prefix="snapshot-")) / "repo"
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO
    ).stdout
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if src.is_file():  # deleted but still in the index: not part of the tree
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / rel)
    run(["git", "init", "-q", "-b", "main"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "snapshot of the working tree"], root)
    return root


def make_project(dest: Path, overrides: dict | None = None, commit: bool = True) -> Path:
    """`git clone` the project into `dest`, shrink its params.yaml (TINY, then `overrides`),
    regenerate dvc.yaml for the shrunken DAG and commit both; return dest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    run(["git", "clone", "-q", str(snapshot()), str(dest)], dest.parent)
    params = deep_merge(deep_merge(read_yaml(dest / "params.yaml"), TINY), overrides or {})
    write_params(dest, params)
    if commit:
        run([sys.executable, "-m", "pipeline", "dvc-yaml"], dest)
        run(["git", "commit", "-qam", "shrunken config for the tests"], dest)
    return dest


def write_params(dest: Path, params: dict) -> None:
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def snakemake(
    cwd: Path, *args: str, check: bool = True, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return run(cmd, cwd, check=check, extra_env=extra_env)


def forked_jobs(log: Path) -> list[str]:
    """The commands a fork server log says it forked (`<command> [<run>]`), refusals failing."""
    text = log.read_text()
    assert "refused" not in text, text[-3000:]
    return re.findall(r"forkserver\[\d+\] \d+: (\S+(?: \S+)?)$", text, re.M)


def dry_run_jobs(cwd: Path, *args: str) -> dict[str, int]:
    """Rule -> job count of a dry run (parsed from Snakemake's job stats table)."""
    res = snakemake(cwd, "-n", "--quiet", "rules", *args)
    counts: dict[str, int] = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts
