"""The training loop every method runs in: steps, dev evaluation, model selection, checkpoints.

Model selection reads dev data only: every `eval_every` steps the mean dev main metric over the
run's training TLPs (for a run that trains on dev splits: over the evaluated TLPs it did not
train on) is computed and the best weights are kept. Test data is never read here.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from pipeline.analysis import task_gradient_cosine
from pipeline.checkpoint import (
    checkpoint_key,
    clear_checkpoint,
    load_checkpoint,
    path_fingerprint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pipeline.config import (
    CLUSTER_DEFAULTS,
    Run,
    cluster_tlp,
    fingerprint,
    train_split_of,
    trains_on_dev,
)
from pipeline.engine import BatchStream, TrainContext
from pipeline.errors import ConfigError, TrainingError
from pipeline.evaluation import evaluate
from pipeline.features import FEATURE_CACHE, cluster_split, load_split_data, merged_labels
from pipeline.features import lengths as split_lengths
from pipeline.io import atomic_dir, atomic_write_json
from pipeline.methods import get_method
from pipeline.models.multitask import MultiTaskModel
from pipeline.optim import make_optimizer, make_scheduler
from pipeline.records import TLP
from pipeline.runtime import acceleration, distributed
from pipeline.runtime.signals import Interrupted, sigterm_flag
from pipeline.tasks import FeatureSettings, TaskFeatureSettings

log = logging.getLogger(__name__)


def pick_device() -> torch.device:
    """cuda if there is one (under torchrun: this rank's GPU, LOCAL_RANK), else cpu."""
    return distributed.device()


def stream_seed(seed: int, tlp: TLP) -> int:
    """A per-TLP data-order seed that does not depend on which other TLPs are trained."""
    return (seed * 1_000_003 + sum(ord(c) * 31**i for i, c in enumerate(str(tlp)))) % 2**31


def check_parallelism(method_cls: Any, run: Run, streams: dict[TLP, BatchStream]) -> bool:
    """Whether the run shards its batches over several processes (torchrun): True for a
    data-parallel method (STL, MTL, fine-tuning) under a world of N > 1, False for one process or
    a method that spreads its own work (parallel Reptile); refuses methods of one process only
    and batches that N ranks cannot split evenly (equal shards make the mean of the ranks'
    per-example-mean losses the loss of the global batch, exactly)."""
    n = distributed.world().size
    if n == 1:
        return False
    kind = method_cls.parallelism
    if kind is None:
        raise ConfigError(
            f"{run.id}: method {run.method!r} runs in one process only; launch it without "
            f"torchrun (training.processes: 1), not with {n} processes"
        )
    if kind != "data":
        return False
    odd = {str(t): s.batch_size for t, s in streams.items() if s.batch_size % n}
    if odd:
        raise ConfigError(
            f"{run.id}: batch sizes {odd} do not split into {n} equal shards; use a multiple "
            f"of {n} (a TLP smaller than batch_size uses its size as the batch)"
        )
    return True


def model_dir_for(run_dir: str | Path, task: str) -> Path:
    """The saved model a run uses for `task`: `model.<task>` when the run kept one checkpoint per
    task (`selection: per-task`), else `model`."""
    per_task = Path(run_dir) / f"model.{task}"
    return per_task if per_task.is_dir() else Path(run_dir) / "model"


def mean_main(scores: dict[str, dict[str, float]]) -> float:
    return sum(s["main"] for s in scores.values()) / len(scores)


def selection_tlps(run: Run) -> list[TLP]:
    """The TLPs whose dev sets select the model: the run's own (trained on train splits), or,
    for a run that trains on some dev split, the evaluated TLPs it did not train on (Liu et al.
    §4.2: the stopping point from "unseen language development sets"); none, or `selection:
    last`: the last step (a fixed budget; M'hamdi et al.'s baselines "don't have the luxury of
    Dev performance")."""
    if run.params.get("selection") == "last":
        return []
    if "select_tlps" in run.params:  # named by the experiment (Xia et al.: the target's dev)
        return [TLP.parse(t) for t in run.params["select_tlps"]]
    if not trains_on_dev(run.params):
        return list(run.train_tlps)
    if "selection_tlps" in run.params:  # set by the config (the init's TLPs are not unseen)
        return [TLP.parse(t) for t in run.params["selection_tlps"]]
    return [t for t in run.eval_tlps if t not in run.train_tlps]


class Trainer:
    """Builds the context for a run, then runs its method to the end with checkpoints."""

    def __init__(
        self,
        run: Run,
        encoder: str | Path,
        prepared_dirs: list[Path],
        settings: FeatureSettings | TaskFeatureSettings,
        checkpoint_dir: str | Path,
        device: torch.device | None = None,
        init_model: str | Path | None = None,
        cache_dir: str | Path | None = FEATURE_CACHE,
        pseudo_tasks: dict[str, Any] | None = None,
        clusters: dict[TLP, dict[str, Any]] | None = None,
    ) -> None:
        self.run = run
        self.p = run.params
        self.checkpoint_dir = Path(checkpoint_dir)
        self.device = device or pick_device()
        torch.manual_seed(self.p["seed"])
        self.labels = merged_labels(prepared_dirs)
        if init_model is not None:  # continue from a trained multi-task model (fine-tuning)
            self.model, self.tokenizer = MultiTaskModel.from_pretrained(init_model)
        else:
            self.tokenizer = AutoTokenizer.from_pretrained(str(encoder))
            self.model = MultiTaskModel.build(
                encoder, self.labels, self.p.get("dropout", 0.1), pooler=self.p.get("pooler", False)
            )
        self.model.to(self.device)
        world = distributed.world()
        if world.rank > 0:  # (the model above was built from the same seed on every rank)
            # each rank its own dropout masks: from the run's seed, the ranks would draw the
            # same masks for their shards, one pattern repeated over the global batch
            torch.manual_seed(stream_seed(self.p["seed"], world.rank))
        self.train_splits = {t: train_split_of(self.p, t) for t in run.train_tlps}
        self.select_tlps = selection_tlps(run)
        if not distributed.is_main():  # several processes: rank 0 writes the feature caches,
            distributed.barrier()  # the others read them once it is done (main_first)
        self.train_data = {
            t: load_split_data(
                t,
                self.train_splits[t],
                prepared_dirs,
                self.tokenizer,
                self.labels,
                settings,
                True,
                max_examples=self.p.get("train_examples", {}).get(str(t)),
                cache_dir=cache_dir,
                fraction=(
                    (self.p["dev_fraction"], self.p["seed"])
                    if "dev_fraction" in self.p and self.train_splits[t] == "dev"
                    else None
                ),
            )
            for t in run.train_tlps
        }
        #: what the cluster files say of themselves (options the paper leaves open, sizes, fit)
        self.cluster_summaries = {str(t): c.get("summary", {}) for t, c in (clusters or {}).items()}
        if clusters:  # Lee et al. §4.3: each clustered TLP's examples as k tasks
            k = {**CLUSTER_DEFAULTS, **self.p["clusters"]}["k"]
            self.train_data = {
                ct: d
                for t, data in self.train_data.items()
                for ct, d in cluster_split(
                    data, clusters[t]["assignments"], k, lambda c, t=t: cluster_tlp(t, c)
                ).items()
            }
        self.dev_data = {
            t: load_split_data(
                t,
                "dev",
                prepared_dirs,
                self.tokenizer,
                self.labels,
                settings,
                False,
                max_examples=self.p.get("max_dev_examples"),
                cache_dir=cache_dir,
            )
            for t in self.select_tlps
        }
        if distributed.is_main():
            distributed.barrier()
        # fine-tuning is STL from another run's model
        method_cls = get_method("stl" if run.method == "finetune" else run.method)
        group = self.p.get("group_by_length", False)
        streams = {
            t: BatchStream(
                len(d),
                self.p["batch_size"],
                stream_seed(self.p["seed"], t),
                lengths=split_lengths(d) if group else None,
                group_by_length=group,
            )
            for t, d in self.train_data.items()
        }
        per_step = method_cls.inner_steps_per_step(self.p)
        if "epochs" in self.p:  # passes over the selected data, in (meta-)steps
            batches = {t: s.batches_per_epoch() for t, s in streams.items()}
            epoch = method_cls.steps_per_epoch(self.p, batches)
            self.total_steps = max(1, math.ceil(self.p["epochs"] * epoch))
        else:
            self.total_steps = method_cls.total_steps(self.p, self.p["steps"])
        method_cls.prepare_model(self.model, self.p)  # (MetaXL's RTN) before the optimizer
        self.acceleration = acceleration.options(self.p, self.device)
        acceleration.compile_encoder(self.model, self.p.get("compile", False))
        opt = make_optimizer(
            self.model,
            self.p["lr"],
            self.p["weight_decay"],
            fused=self.acceleration["fused_adamw"],
        )
        sched = make_scheduler(
            opt, self.p["warmup_steps"], self.total_steps * per_step, self.p["schedule"]
        )
        self.ctx = TrainContext(
            self.model,
            opt,
            sched,
            self.train_data,
            streams,
            self.p,
            self.device,
            dev=self.dev_data,
            pseudo_tasks=pseudo_tasks,
            data_parallel=check_parallelism(method_cls, run, streams),
        )
        self.method = method_cls(self.ctx, self.p)
        self.key = fingerprint(
            {
                "run": run.to_json(),
                "settings": repr(settings),
                "encoder": path_fingerprint(init_model or encoder),
                "pseudo_tasks": fingerprint(pseudo_tasks) if pseudo_tasks else None,
                **(
                    {"clusters": fingerprint({str(t): c for t, c in clusters.items()})}
                    if clusters
                    else {}
                ),
                "data": [path_fingerprint(Path(d) / "summary.json") for d in prepared_dirs],
                "sources": sorted(
                    (f"{t}/{sp}", [str(d) for d in ds])
                    for (t, sp), ds in getattr(prepared_dirs, "per_split", {}).items()
                ),
            }
        )

    # -- evaluation ------------------------------------------------------------------------

    def dev_scores(self) -> dict[str, dict[str, float]]:
        return {
            str(t): evaluate(
                self.model,
                d,
                self.labels[t.task],
                64,
                self.device,
                self.p.get("metrics"),
                self.acceleration["padding"],
                self.acceleration["precision"],
            )
            for t, d in self.dev_data.items()
        }

    # -- checkpoints -----------------------------------------------------------------------

    def selection_scores(self, scores: dict[str, dict[str, float]]) -> dict[str, float]:
        """The dev scores checkpoints are kept by: `mean` (over the run's TLPs) always, and with
        `selection: per-task` one per task (`task:<t>`, the mean over that task's TLPs)."""
        out = {"mean": mean_main(scores)}
        if self.p.get("selection", "mean") == "per-task":
            for task in dict.fromkeys(t.task for t in self.run.train_tlps):
                mine = {k: v for k, v in scores.items() if TLP.parse(k).task == task}
                if mine:  # (dev-split training: a task may have no unseen TLP to select on)
                    out[f"task:{task}"] = mean_main(mine)
        return out

    def _state(self, step: int, history: list, best: dict) -> dict[str, Any]:
        return {
            "key": self.key,
            "step": step,
            "optimizer": self.ctx.optimizer.state_dict(),
            "scheduler": self.ctx.scheduler.state_dict(),
            "streams": {str(t): s.state_dict() for t, s in self.ctx.streams.items()},
            "method": self.method.state_dict(),
            "inner_steps_done": self.ctx.inner_steps_done,
            "batches_drawn": self.ctx.batches_drawn,
            "rng": rng_state(),
            "history": history,
            "best": {
                sel: {**{k: v for k, v in b.items() if k != "weights"}, "weights_of": owner}
                for (sel, b), owner in zip(best.items(), self._owners(best).values())
            },
        }

    @staticmethod
    def _owners(best: dict) -> dict[str, str]:
        """Selection -> the selection whose checkpoint tensors hold its weights (selections won
        at the same evaluation share one copy, saved once)."""
        first: dict[int, str] = {}
        return {sel: first.setdefault(id(b["weights"]), sel) for sel, b in best.items()}

    def _best_extra(self, best: dict) -> dict[str, torch.Tensor]:
        """The kept weights as checkpoint tensors `best.<selection>.<parameter>`, each copy once."""
        owners = self._owners(best)
        return {
            f"best.{sel}.{k}": v
            for sel, b in best.items()
            if owners[sel] == sel
            for k, v in (b["weights"] or {}).items()
        }

    def _resume(self) -> tuple[int, list, dict]:
        if checkpoint_key(self.checkpoint_dir) != self.key:
            return 0, [], {}
        state, extra = load_checkpoint(self.checkpoint_dir, self.model)
        self.ctx.optimizer.load_state_dict(state["optimizer"])
        self.ctx.scheduler.load_state_dict(state["scheduler"])
        for t, s in self.ctx.streams.items():
            s.load_state_dict(state["streams"][str(t)])
        self.method.load_state_dict(state["method"])
        self.ctx.inner_steps_done = state["inner_steps_done"]
        self.ctx.batches_drawn = state.get("batches_drawn", 0)
        # this rank's own generators (several processes: rank 0 saved every rank's)
        ranks = state.get("rng_ranks", [state["rng"]])
        rank = distributed.world().rank
        set_rng_state(ranks[rank] if rank < len(ranks) else state["rng"])
        saved: dict[str, dict[str, torch.Tensor]] = {}
        for k, v in extra.items():
            sel, _, name = k[len("best.") :].partition(".")
            saved.setdefault(sel, {})[name] = v
        best = {}
        for sel, b in state["best"].items():
            b = dict(b)
            best[sel] = {**b, "weights": saved.get(b.pop("weights_of"))}
            best[sel].pop("weights_of", None)
        log.info("%s: resuming at step %d", self.run.id, state["step"])
        return state["step"], state["history"], best

    # -- the loop --------------------------------------------------------------------------

    def fit(self, out: str | Path, clear: bool = True) -> dict[str, Any]:
        """Train to the end (resuming if a matching checkpoint exists) and save the best model.

        `clear=False` keeps the checkpoints, for a caller with more work to do in the same job
        (predictions) that clears them itself once everything is written.
        """
        with sigterm_flag() as term:
            return self._fit(out, clear, term)

    def _checkpoint(self, step: int, history: list, best: dict) -> None:
        # every rank holds the same state but its own dropout generator: rank 0 saves it all
        rngs = distributed.gather_objects(rng_state())
        if not distributed.is_main():
            return
        state = self._state(step, history, best)
        if len(rngs) > 1:
            state["rng_ranks"] = rngs
        save_checkpoint(self.checkpoint_dir, self.model, state, self._best_extra(best))

    def _fit(self, out: str | Path, clear: bool, term: dict[str, bool]) -> dict[str, Any]:
        p = self.p
        step, history, best = self._resume()
        last_saved = step
        started = time.time()
        # several processes (torchrun): rank 0 alone shows progress, evaluates dev (the others
        # wait for it in their next all-reduce), keeps the best weights and writes every file
        main = distributed.is_main()
        bar = tqdm(
            total=self.total_steps,
            initial=step,
            desc=f"train {self.run.id}",
            unit="step",
            disable=not main,
        )
        while step < self.total_steps:
            logs = self.method.step()
            step += 1
            if not math.isfinite(logs["loss"]):  # nothing of this step is saved
                tlps = ", ".join(logs.get("tlps", [])) or "its TLPs"
                kept = (
                    f"the checkpoint of step {last_saved} in {self.checkpoint_dir} is kept"
                    if last_saved
                    else "no checkpoint was written yet"
                )
                raise TrainingError(
                    f"{self.run.id}: loss is {logs['loss']} at step {step} on {tlps}; {kept} "
                    "(lower lr, or check the data)"
                )
            entry: dict[str, Any] = {"step": step, "loss": logs["loss"]}
            bar.update(1)
            bar.set_postfix(loss=f"{logs['loss']:.3f}")
            evaluate_now = step % p["eval_every"] == 0 or step == self.total_steps
            if evaluate_now and self.dev_data and main:
                scores = self.dev_scores()
                entry["dev"] = {t: s["main"] for t, s in scores.items()}
                entry["dev_mean"] = mean_main(scores)
                # training batches so far, one gradient each (Lee et al. Fig. 7c's x axis)
                entry["batches"] = self.ctx.batches_drawn
                if p.get("grad_cosine_batches") and len(self.ctx.tlps) > 1:
                    # Sequential Reptile's Figure 4: mean pairwise cosine of per-task gradients
                    # (the run's TLPs, or the clusters of a `clusters` run: Fig. 4c-d)
                    entry["grad_cosine"] = task_gradient_cosine(
                        self.model,
                        self.ctx,
                        list(self.ctx.tlps),
                        n_batches=p["grad_cosine_batches"],
                        seed=p["seed"],
                        sketch=p.get("grad_cosine_sketch", 0),
                    )
                weights = None
                for sel, score in self.selection_scores(scores).items():
                    if score > best.get(sel, {}).get("score", float("-inf")):
                        if weights is None:  # one copy, shared by the selections it wins
                            weights = {
                                k: v.detach().clone() for k, v in self.model.state_dict().items()
                            }
                        best[sel] = {
                            "score": score,
                            "step": step,
                            "dev": scores,
                            "weights": weights,
                        }
            entry.update({k: v for k, v in logs.items() if k not in ("loss",)})
            history.append(entry)
            # preempted: keep this step's work, then stop (all ranks at the same step)
            if distributed.any_rank(term["set"]):
                self._checkpoint(step, history, best)
                bar.close()
                raise Interrupted(
                    f"{self.run.id}: SIGTERM at step {step} of {self.total_steps}: checkpoint "
                    f"written to {self.checkpoint_dir}; rerun to resume"
                )
            if step % p["checkpoint_every"] == 0 and step < self.total_steps:
                self._checkpoint(step, history, best)
                last_saved = step
        bar.close()
        if self.dev_data:
            mean = best.get("mean", {"score": float("-inf"), "step": 0, "weights": None})
            selection = p.get("selection", "mean")
        else:  # nothing unseen to select on: the last step (a fixed stopping iteration)
            mean = {"score": None, "step": self.total_steps, "weights": None}
            selection = "last"
        summary = {
            "run": self.run.to_json(),
            "options": {**self.method.options(), "acceleration": self.acceleration},
            # one split for every TLP, or per TLP (`dev_tlps`)
            "train_split": (
                next(iter(set(self.train_splits.values())))
                if len(set(self.train_splits.values())) == 1
                else {str(t): s for t, s in self.train_splits.items()}
            ),
            "selection_tlps": [str(t) for t in self.select_tlps],
            # `clusters`: the tasks the run trained on (Lee et al. §4.3) and their sizes
            **(
                {
                    "cluster_sizes": {str(t): len(d) for t, d in self.train_data.items()},
                    "clustering": self.cluster_summaries,
                }
                if "clusters" in self.p
                else {}
            ),
            "selection": selection,
            "total_steps": self.total_steps,
            "best_step": mean["step"],
            "best_dev_mean": mean["score"],
            "best_dev": mean.get("dev", {}),
            "inner_steps": self.ctx.inner_steps_done,
            "train_seconds_this_session": round(time.time() - started, 2),
        }
        per_task = {sel[5:]: b for sel, b in best.items() if sel.startswith("task:")}
        if per_task:
            summary["best_by_task"] = {
                t: {"step": b["step"], "dev_mean": b["score"]} for t, b in per_task.items()
            }
        if not main:  # rank 0 writes the model, history and summary
            return summary
        with atomic_dir(out) as tmp:
            for task, b in per_task.items():  # `model.<task>`: the checkpoint best for the task
                self.model.load_state_dict(b["weights"])
                self.model.save_pretrained(tmp / f"model.{task}", self.tokenizer)
            if mean["weights"] is not None:
                self.model.load_state_dict(mean["weights"])
            self.model.save_pretrained(tmp / "model", self.tokenizer)
            atomic_write_json(tmp / "history.json", history)
            atomic_write_json(tmp / "summary.json", summary)
        if clear:
            clear_checkpoint(self.checkpoint_dir)
        return summary
