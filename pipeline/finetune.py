"""Fine-tuning a trained model on each of its target TLPs, with the learning rate chosen on dev.

Tarunesh et al. (Appendix B) fine-tune the meta model on each TLP with two learning rates (QA,
POS, NER) and keep the better; we choose with the dev main metric, never test. Each candidate is
an STL run from the same initial model. A fine-tuning run covers one TLP or all target TLPs of
its meta model (`finetune.jobs`); either way every TLP gets its own model, and finished
candidates are kept under the checkpoint folder so a killed job redoes only the unfinished one.

Output layout (`out`): `<task>.<lang>/{model, history.json, summary.json}` per target TLP, and
`summary.json` with every TLP's choice.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.config import Run, fingerprint
from pipeline.io import atomic_dir, atomic_write_json, read_json
from pipeline.records import TLP
from pipeline.runtime import distributed
from pipeline.tasks import FeatureSettings, TaskFeatureSettings
from pipeline.trainer import Trainer, model_dir_for


def candidate_run(run: Run, tlp: TLP, lr: float) -> Run:
    """The STL run of one candidate: one TLP, its task's epochs and batch size, one lr."""
    setting = run.params["tasks"][tlp.task]
    params = {k: v for k, v in run.params.items() if k != "tasks"}
    params.update(epochs=setting["epochs"], batch_size=setting["batch_size"], lr=lr)
    return replace(
        run, id=f"{run.init}.ft.{tlp.slug}", train_tlps=(tlp,), eval_tlps=(tlp,), params=params
    )


def finetune(
    run: Run,
    encoder: str,
    prepared_dirs: list[Path],
    settings: FeatureSettings | TaskFeatureSettings,
    init_model: Path,
    out: str | Path,
    checkpoints: str | Path,
) -> dict[str, Any] | None:
    """Per target TLP: one STL candidate per learning rate from `init_model`; keep the best on
    dev. Returns the run summary (also written to `out/summary.json`).

    Under torchrun every candidate trains data-parallel on all ranks; rank 0 writes the files and
    returns the summary, the other ranks return None."""
    checkpoints = Path(checkpoints)
    chosen: dict[TLP, tuple[dict[str, Any], Path, float, dict[str, float], str]] = {}
    for tlp in run.train_tlps:
        candidates = []
        init = model_dir_for(init_model, tlp.task)  # the meta run's checkpoint for the task
        for i, lr in enumerate(run.params["tasks"][tlp.task]["lrs"]):
            cand = candidate_run(run, tlp, lr)
            done = checkpoints / tlp.slug / f"lr{i}" / "done"
            key = fingerprint([cand.to_json(), str(init)])
            if not (done / "summary.json").exists() or read_json(done / "key.json") != key:
                trainer = Trainer(
                    cand,
                    encoder,
                    prepared_dirs,
                    settings,
                    checkpoints / tlp.slug / f"lr{i}" / "ckpt",
                    init_model=init,
                )
                trainer.fit(done)
                if distributed.is_main():
                    atomic_write_json(done / "key.json", key)
                distributed.barrier()  # (several processes) rank 0's files exist for all ranks
            candidates.append((read_json(done / "summary.json"), done, lr))
        best = max(candidates, key=lambda c: c[0]["best_dev_mean"])
        scores = {str(lr): s["best_dev_mean"] for s, _, lr in candidates}
        chosen[tlp] = (*best, scores, init.name)
    if not distributed.is_main():  # (several processes) rank 0 writes the result
        return None
    summary: dict[str, Any] = {"run": run.to_json(), "init": run.init, "tlps": {}}
    with atomic_dir(out) as tmp:
        for tlp, (best_summary, best_dir, best_lr, scores, init_name) in chosen.items():
            sub = tmp / tlp.slug
            sub.mkdir()
            shutil.copytree(best_dir / "model", sub / "model")
            shutil.copy2(best_dir / "history.json", sub / "history.json")
            tlp_summary = {
                **best_summary,
                "finetune": {
                    "init": run.init,
                    "init_checkpoint": init_name,
                    "selected_lr": best_lr,
                    "selection": "dev main metric (mean over the TLP's dev set)",
                    "candidates": scores,
                },
            }
            atomic_write_json(sub / "summary.json", tlp_summary)
            summary["tlps"][str(tlp)] = {
                k: tlp_summary[k] for k in ("best_step", "best_dev_mean", "finetune")
            }
        atomic_write_json(tmp / "summary.json", summary)
    return summary


def model_dirs(run: Run, out: str | Path) -> dict[TLP, Path]:
    """Where `finetune` put each target TLP's model."""
    return {t: Path(out) / t.slug / "model" for t in run.train_tlps}
