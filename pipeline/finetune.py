"""Fine-tuning a trained model on one TLP, with the learning rate chosen on dev.

Tarunesh et al. (Appendix B) fine-tune the meta model on each TLP with two learning rates (QA,
POS, NER) and keep the better; we choose with the dev main metric, never test. Each candidate is
an STL run from the same initial model; finished candidates are kept under the checkpoint folder
so a killed job redoes only the unfinished one.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.checkpoint import clear_checkpoint
from pipeline.config import Run, fingerprint
from pipeline.io import atomic_dir, atomic_write_json, read_json
from pipeline.tasks import FeatureSettings, TaskFeatureSettings
from pipeline.trainer import Trainer


def finetune(
    run: Run,
    encoder: str,
    prepared_dirs: list[Path],
    settings: FeatureSettings | TaskFeatureSettings,
    init_model: Path,
    out: str | Path,
    checkpoints: str | Path,
) -> dict[str, Any]:
    """Train one STL candidate per learning rate from `init_model`; keep the best on dev."""
    checkpoints = Path(checkpoints)
    candidates = []
    for i, lr in enumerate(run.params["lrs"]):
        cand = replace(run, params={**run.params, "lr": lr})
        done = checkpoints / f"lr{i}" / "done"
        key = fingerprint([cand.to_json(), str(init_model)])
        if not (done / "summary.json").exists() or read_json(done / "key.json") != key:
            trainer = Trainer(
                cand,
                encoder,
                prepared_dirs,
                settings,
                checkpoints / f"lr{i}" / "ckpt",
                init_model=init_model / "model",
            )
            trainer.fit(done)
            atomic_write_json(done / "key.json", key)
        candidates.append((read_json(done / "summary.json"), done, lr))
    best_summary, best_dir, best_lr = max(candidates, key=lambda c: c[0]["best_dev_mean"])
    summary = {
        **best_summary,
        "finetune": {
            "init": run.init,
            "selected_lr": best_lr,
            "selection": "dev main metric (mean over the TLP's dev set)",
            "candidates": {str(lr): s["best_dev_mean"] for s, _, lr in candidates},
        },
    }
    with atomic_dir(out) as tmp:
        shutil.copytree(best_dir / "model", tmp / "model")
        shutil.copy2(best_dir / "history.json", tmp / "history.json")
        atomic_write_json(tmp / "summary.json", summary)
    clear_checkpoint(checkpoints)
    return summary
