"""Per-job fixed cost: a `python -m pipeline` job in a fresh interpreter vs forked from the warm
fork server (pipeline/runtime/forkserver.py), side by side in one run.

Three measures: `validate` (config only), a `score` job on a small SQuAD-format gold file (the
issue's "a score job starts in <= 1 s"), and the imports a training job pays in a fresh
interpreter (the trainer, transformers' BERT, datasets), which a forked job does not pay at all.
Rounds alternate fresh and forked calls; medians are printed with their ratio, and written to
results/bench/startup.json (so `dvc metrics diff` can show a regression; the format of
scripts/bench.py, whose `startup` group this is).

    python scripts/bench_startup.py [--rounds 5] [--no-imports] [--out DIR]

Printed figures only; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from pipeline.runtime import forkserver  # noqa: E402

IMPORTS = (
    "import pipeline.steps, pipeline.trainer, pipeline.finetune, pipeline.models.multitask, "
    "transformers.models.bert.modeling_bert"
)


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def squad_files(folder: Path) -> tuple[Path, Path]:
    """A gold SQuAD v1.1 file of 50 questions and a prediction file for it."""
    qas = [
        {
            "id": f"q{i}",
            "question": f"who is {i}?",
            "answers": [{"text": f"n{i}", "answer_start": 0}],
        }
        for i in range(50)
    ]
    gold = {
        "version": "1.1",
        "data": [{"title": "t", "paragraphs": [{"context": "n", "qas": qas}]}],
    }
    (folder / "gold.json").write_text(json.dumps(gold))
    (folder / "pred.json").write_text(json.dumps({f"q{i}": f"n{i}" for i in range(50)}))
    return folder / "gold.json", folder / "pred.json"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--no-imports", action="store_true", help="leave out timing the training imports (~6 s)"
    )
    ap.add_argument("--out", default=str(REPO / "results/bench"), help="folder of startup.json")
    return ap


def measure(rounds: int, imports: bool = True) -> tuple[dict[str, dict[str, float]], float]:
    """Median seconds, fresh and forked, of each measure, and the server's warm-up."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.pop(forkserver.SOCKET_ENV, None)
    fresh_env = {**os.environ, forkserver.SWITCH_ENV: "0"}
    folder = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    log = folder / "forkserver.log"
    gold, pred = squad_files(folder)
    score = [sys.executable, "-m", "pipeline", "score", "--task", "qa", "--lang", "en"]
    score += ["--gold", str(gold), "--pred", str(pred)]
    started = time.perf_counter()
    forkserver.start(log, watch_pid=os.getpid())
    forked_env = dict(os.environ)
    validate = [sys.executable, "-m", "pipeline", "validate"]
    try:
        timed(validate, forked_env)  # waits for the server's imports
        warm = time.perf_counter() - started
        times: dict[str, list[float]] = {k: [] for k in ("fv", "kv", "fs", "ks", "imports")}
        for _ in range(rounds):
            times["fv"].append(timed(validate, fresh_env))
            times["kv"].append(timed(validate, forked_env))
            times["fs"].append(timed(score, fresh_env))
            times["ks"].append(timed(score, forked_env))
            if imports:
                times["imports"].append(timed([sys.executable, "-c", IMPORTS], fresh_env))
    finally:
        forkserver.stop_current()
        os.environ.pop(forkserver.SOCKET_ENV, None)
    med = {k: statistics.median(v) for k, v in times.items() if v}
    rows = {
        "validate job": {"fresh_s": med["fv"], "forked_s": med["kv"]},
        "score job": {"fresh_s": med["fs"], "forked_s": med["ks"]},
    }
    if imports:
        rows["training imports"] = {"fresh_s": med["imports"], "forked_s": 0.0}
    return rows, warm


def run(args: argparse.Namespace) -> list:
    """The `startup` rows of scripts/bench.py: each job forked from the warm server vs the same
    job in a fresh interpreter (alternated rounds, medians); a score job's target: <= 1 s."""
    return run_rows(*measure(args.rounds, not args.no_imports))


def main() -> None:
    args = parser().parse_args()
    rows, warm = measure(args.rounds, not args.no_imports)
    print(f"{'measure':<22}{'fresh s':>10}{'forked s':>10}{'ratio':>10}")
    for name, r in rows.items():
        ratio = r["forked_s"] / r["fresh_s"] if r["fresh_s"] else float("nan")
        print(f"{name:<22}{r['fresh_s']:>10.2f}{r['forked_s']:>10.2f}{ratio:>10.3f}")
    print(f"server warm-up (once per Snakemake run): {warm:.1f} s; target: a job starts in <= 1 s")
    from bench_common import device_info, write_group

    out = write_group("startup", run_rows(rows, warm), device_info(), Path(args.out))
    print(f"-> {out}")


def run_rows(rows: dict[str, dict[str, float]], warm: float) -> list:
    from bench_common import Row, Target

    out = []
    for name, r in rows.items():
        target = Target("candidate", "<=", 1.0, "s") if name == "score job" else None
        out.append(
            Row("startup", f"{name}: forked vs fresh", r["forked_s"], r["fresh_s"], "s", target)
        )
    out.append(Row("startup", "fork server warm-up (once per run)", warm, None, "s"))
    return out


if __name__ == "__main__":
    main()
