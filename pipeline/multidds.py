"""MultiDDS: TLP sampling probabilities learned from dev-gradient alignment.

Tarunesh et al. (2021) §3.2.3 and Algorithm 1 (after Wang et al. 2020b): P(i) = softmax(ψ)_i with
ψ initialised so that P = q (ψ = log q), and, after a meta-step,

    R(i) = cos(g_dev, g_train,i)                 one reward per train TLP
    ψ ← ψ + lr · Σ_i R(i) ∇ψ log P(i)            REINFORCE, plain SGD (§4.2)

where ∇ψ_j Σ_i R(i) log P(i) = R(j) − P(j) Σ_i R(i). Algorithm 1 does this after every meta-step;
the authors' code every 10 (`--update_dds`, seed-implementations §1.2, T6). `update_every` (a
method key, default 10 as the code; 1 is Algorithm 1) chooses. D_dev is the target TLP or a set of
dev TLPs (§4.3 settings (a)–(d)): `resolve_dev` reads "task/lang", "lang:<l>", "task:<t>" or "all".

Reward modes (`reward`) and their options (`Rewards`, recorded in the method's options):
  * `cosine` (default, the paper's Eq. 6): g = gradient of the loss on one batch at the current
    θ, flattened over `reward_params`:
      - `encoder` (default): the shared encoder's parameters (the task heads are not shared);
      - `all`: every trainable parameter, as Wang et al. (2020b) and the reference code (the
        head of a train TLP's task and those of the dev TLPs' tasks then enter the vectors).
    With several dev TLPs (one batch each), `dev_reduce`:
      - `mean-gradient` (default): R(i) = cos(mean_d g_dev,d, g_train,i), the gradient of the
        mean dev loss (Algorithm 1's single g_dev);
      - `mean-cosine`: R(i) = mean_d cos(g_dev,d, g_train,i), as the reference code.
    Both use the same batches (one per dev TLP, one per train TLP, so they differ in the
    reduction only; the reference draws a train batch per (train, dev) pair); with one dev TLP
    they are the same number.
  * `faithful` (the reference code, `main_dds.py`): per (train TLP, dev TLP) pair, a fresh AdamW
    takes one step on a train batch and then one step on a dev batch; R is the cosine between the
    two parameter displacements over all parameters, averaged over dev TLPs. That is
    `reward_params: all` and `dev_reduce: mean-cosine` by construction, and the mode must be
    configured so (anything else is a ConfigError; with one dev TLP `mean-gradient` is the same
    number and is accepted). The second displacement carries Adam's first moment from the first
    step, so it is not the dev direction alone; that is what the reference computes, and why it
    is not the default.

Both modes run with dropout off (deterministic rewards that draw nothing from the RNG used for
training), draw their batches from their own streams (so training sees the same data order
whether or not rewards are computed), and leave weights, `.grad` and the training optimizer as
they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pipeline.analysis import (
    cosine,
    eval_mode,
    flat_gradient,
    preserved_rng,
    shared_parameters,
    stream_seed,
    tlp_loss,
)
from pipeline.engine import BatchStream, TrainContext, restore, snapshot
from pipeline.errors import ConfigError, PipelineError
from pipeline.features import SplitData
from pipeline.records import TLP
from pipeline.tasks import for_task
from pipeline.tasks.qa import NO_OFFSET, ExtractiveQA, answer_positions

REWARDS = ("cosine", "faithful")
REWARD_PARAMS = ("encoder", "all")
DEV_REDUCE = ("mean-gradient", "mean-cosine")


def resolve_dev(spec: str, pool: Sequence[TLP]) -> list[TLP]:
    """D_dev from a spec, among the run's TLPs: "task/lang", "lang:<l>", "task:<t>" or "all"."""
    if spec == "all":
        chosen = list(pool)
    elif spec.startswith(("lang:", "task:")):
        kind, _, value = spec.partition(":")
        chosen = [t for t in pool if (t.lang if kind == "lang" else t.task) == value]
    else:
        try:
            target = TLP.parse(spec)
        except PipelineError as e:
            raise ConfigError(f"multidds.dev: {e}") from None
        chosen = [target] if target in pool else []
    if not chosen:
        raise ConfigError(
            f"multidds.dev: {spec!r} matches no TLP of this run ({', '.join(str(t) for t in pool)})"
        )
    return chosen


def labelled_tensors(split: SplitData) -> dict[str, torch.Tensor]:
    """Model inputs and training labels of a split, also for eval-featurized QA.

    Dev splits are featurized for prediction; for every task type but QA that already includes the
    labels. QA eval features keep context offsets instead of answer positions, so the positions
    are derived here with the training featurizer's own rule (qa.answer_positions).
    """
    task = for_task(split.tlp.task)
    need = task.model_columns(True)
    missing = [c for c in need if c not in task.model_columns(False) and c not in split.tensors]
    if not missing:
        return split.tensors
    if not isinstance(task, ExtractiveQA):
        raise PipelineError(f"{split.tlp} {split.split}: no label columns {missing} for a loss")
    offsets = np.asarray(split.features["offset_mapping"], dtype=np.int64)
    answers = dict(zip(split.records["id"], split.records["answers"], strict=True))
    start_char = np.full(len(offsets), -1, dtype=np.int64)
    end_char = np.full(len(offsets), -1, dtype=np.int64)
    for i, ex in enumerate(split.features["example_id"]):
        ans = answers[ex]
        if ans["answer_start"] and ans["text"] and ans["text"][0]:
            start_char[i] = ans["answer_start"][0]
            end_char[i] = ans["answer_start"][0] + len(ans["text"][0])
    start, end = answer_positions(offsets, offsets[:, :, 0] != NO_OFFSET, start_char, end_char)
    out = dict(split.tensors)
    out["start_positions"] = torch.as_tensor(start, dtype=torch.long)
    out["end_positions"] = torch.as_tensor(end, dtype=torch.long)
    return out


class MultiDDS:
    """ψ and its REINFORCE update (float64 numpy; checkpointed as a list)."""

    def __init__(self, init_probs: Sequence[float], lr: float) -> None:
        p = np.asarray(init_probs, dtype=np.float64)
        if (p <= 0).any():
            raise ValueError(f"initial probabilities must be positive, got {p}")
        self.psi = np.log(p / p.sum())
        self.lr = lr

    def probs(self) -> np.ndarray:
        z = np.exp(self.psi - self.psi.max())
        return z / z.sum()

    def update(self, rewards: Sequence[float]) -> np.ndarray:
        """ψ ← ψ + lr·(R − P·ΣR) (the gradient of Σ_i R_i log P_i); returns the new P."""
        r = np.asarray(rewards, dtype=np.float64)
        self.psi = self.psi + self.lr * (r - self.probs() * r.sum())
        return self.probs()

    def state_dict(self) -> dict[str, Any]:
        return {"psi": self.psi.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.psi = np.asarray(state["psi"], dtype=np.float64)


class Rewards:
    """R(i) for every train TLP of a context, from batches of its own train and dev streams.

    `reward`, `reward_params` and `dev_reduce` as in the module docstring; `reward_params` and
    `dev_reduce` default (None) to the mode's own: `encoder` / `mean-gradient` for `cosine`,
    `all` / `mean-cosine` for `faithful`.
    """

    def __init__(
        self,
        ctx: TrainContext,
        dev_tlps: Sequence[TLP],
        mode: str,
        seed: int,
        reward_params: str | None = None,
        dev_reduce: str | None = None,
    ) -> None:
        if mode not in REWARDS:
            raise ConfigError(
                f"multidds.reward: expected one of {', '.join(REWARDS)}, got {mode!r}"
            )
        faithful = mode == "faithful"
        reward_params = reward_params or ("all" if faithful else "encoder")
        dev_reduce = dev_reduce or ("mean-cosine" if faithful else "mean-gradient")
        if reward_params not in REWARD_PARAMS:
            raise ConfigError(
                f"multidds.reward_params: expected one of {', '.join(REWARD_PARAMS)}, "
                f"got {reward_params!r}"
            )
        if dev_reduce not in DEV_REDUCE:
            raise ConfigError(
                f"multidds.dev_reduce: expected one of {', '.join(DEV_REDUCE)}, got {dev_reduce!r}"
            )
        if faithful and (
            reward_params != "all" or (dev_reduce != "mean-cosine" and len(dev_tlps) > 1)
        ):
            raise ConfigError(
                "multidds.reward: faithful is the reference code's reward, AdamW displacements "
                "over all parameters with the per-(train, dev) pair cosines averaged: set "
                "reward_params: all and dev_reduce: mean-cosine (got reward_params: "
                f"{reward_params}, dev_reduce: {dev_reduce} with {len(dev_tlps)} dev TLPs), "
                "or use reward: cosine"
            )
        if ctx.dev is None:
            raise PipelineError("MultiDDS needs dev data: the TrainContext has no `dev` splits")
        missing = [str(t) for t in dev_tlps if t not in ctx.dev]
        if missing:
            raise ConfigError(f"multidds.dev: no dev data for {', '.join(missing)}")
        self.ctx, self.mode, self.dev_tlps = ctx, mode, list(dev_tlps)
        self.reward_params, self.dev_reduce = reward_params, dev_reduce
        bs = int(ctx.params["batch_size"])
        self.dev = {t: labelled_tensors(ctx.dev[t]) for t in self.dev_tlps}
        self.train_streams = {
            t: BatchStream(len(d), bs, stream_seed(seed, "dds-train", t))
            for t, d in ctx.train.items()
        }
        self.dev_streams = {
            t: BatchStream(len(ctx.dev[t]), bs, stream_seed(seed, "dds-dev", t))
            for t in self.dev_tlps
        }

    def options(self) -> dict[str, Any]:
        """What the rewards are, for the method's options."""
        if self.mode == "faithful":
            vectors = (
                "AdamW displacements (fresh AdamW per (train, dev) pair: train step, dev step)"
            )
        else:
            vectors = "gradients of one batch loss"
        return {
            "reward": self.mode,
            "reward_params": self.reward_params,
            "dev_reduce": self.dev_reduce,
            "reward_vectors": vectors,
        }

    def _batch(
        self, tensors: dict[str, torch.Tensor], stream: BatchStream
    ) -> dict[str, torch.Tensor]:
        return self.ctx.take(tensors, stream.next())

    def train_batch(self, tlp: TLP) -> dict[str, torch.Tensor]:
        return self._batch(self.ctx.train[tlp].tensors, self.train_streams[tlp])

    def dev_batch(self, tlp: TLP) -> dict[str, torch.Tensor]:
        return self._batch(self.dev[tlp], self.dev_streams[tlp])

    def __call__(self) -> np.ndarray:
        """One reward per train TLP, in ctx.tlps order."""
        model = self.ctx.model
        with preserved_rng(), eval_mode(model):
            if self.mode == "cosine":
                return self._cosine(model)
            return self._faithful(model)

    def _params(self, model: torch.nn.Module) -> list[torch.nn.Parameter]:
        if self.reward_params == "encoder":
            return shared_parameters(model)
        return [p for p in model.parameters() if p.requires_grad]

    def _cosine(self, model: torch.nn.Module) -> np.ndarray:
        params = self._params(model)
        if self.dev_reduce == "mean-cosine":
            g_devs = [
                flat_gradient(tlp_loss(model, d, self.dev_batch(d)), params) for d in self.dev_tlps
            ]
            out = []
            for t in self.ctx.tlps:
                g = flat_gradient(tlp_loss(model, t, self.train_batch(t)), params)
                out.append(sum(cosine(g_d, g) for g_d in g_devs) / len(g_devs))
            return np.array(out)
        g_dev: torch.Tensor | None = None
        for t in self.dev_tlps:  # gradient of the mean dev loss, one TLP graph at a time
            g = flat_gradient(tlp_loss(model, t, self.dev_batch(t)), params)
            g_dev = g if g_dev is None else g_dev.add_(g)
        assert g_dev is not None
        g_dev.div_(len(self.dev_tlps))
        return np.array(
            [
                cosine(g_dev, flat_gradient(tlp_loss(model, t, self.train_batch(t)), params))
                for t in self.ctx.tlps
            ]
        )

    def _adam(self) -> torch.optim.AdamW:
        """A fresh AdamW over the training optimizer's groups, at their current hyperparameters."""
        groups = []
        for g in self.ctx.optimizer.param_groups:
            groups.append(
                {
                    "params": g["params"],
                    "lr": g["lr"],
                    "weight_decay": g.get("weight_decay", 0.0),
                    "betas": g.get("betas", (0.9, 0.999)),
                    "eps": g.get("eps", 1e-8),
                }
            )
        return torch.optim.AdamW(groups)

    def _adam_step(
        self, model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor
    ) -> None:
        model.zero_grad(set_to_none=True)
        loss.backward()
        if self.ctx.params.get("max_grad_norm"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.ctx.params["max_grad_norm"])
        opt.step()

    def _faithful(self, model: torch.nn.Module) -> np.ndarray:
        params = [p for p in model.parameters() if p.requires_grad]
        theta = snapshot(params)
        out = []
        try:
            for t in self.ctx.tlps:
                total = 0.0
                for d in self.dev_tlps:
                    opt = self._adam()
                    self._adam_step(model, opt, tlp_loss(model, t, self.train_batch(t)))
                    after_train = snapshot(params)
                    self._adam_step(model, opt, tlp_loss(model, d, self.dev_batch(d)))
                    with torch.no_grad():
                        d_train = torch.cat(
                            [(a - b).reshape(-1) for a, b in zip(after_train, theta)]
                        )
                        d_dev = torch.cat(
                            [(p - a).reshape(-1) for p, a in zip(params, after_train)]
                        )
                    total += cosine(d_train, d_dev)
                    restore(params, theta)
                out.append(total / len(self.dev_tlps))
        finally:
            restore(params, theta)
            model.zero_grad(set_to_none=True)
        return np.array(out)

    def state_dict(self) -> dict[str, Any]:
        return {
            "train": {str(t): s.state_dict() for t, s in self.train_streams.items()},
            "dev": {str(t): s.state_dict() for t, s in self.dev_streams.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for t, s in self.train_streams.items():
            s.load_state_dict(state["train"][str(t)])
        for t, s in self.dev_streams.items():
            s.load_state_dict(state["dev"][str(t)])
