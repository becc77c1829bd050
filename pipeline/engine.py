"""Training primitives shared by every method: batch streams, the inner step, parameter snapshots.

DESIGN.md "methods as compositions": an inner step is one optimizer step of the shared model on
one batch of one TLP; a trajectory is a sequence of inner steps; an outer update interpolates the
parameters. Methods (pipeline/methods/) compose these and nothing else touches the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from pipeline.features import SplitData, take
from pipeline.records import TLP
from pipeline.runtime import distributed
from pipeline.runtime.acceleration import autocast
from pipeline.tasks import for_task

#: batches per sorting window of length-grouped streams (HF Trainer's megabatch multiplier)
LENGTH_GROUP_BATCHES = 50


class BatchStream:
    """Endless batches of one TLP: epoch e visits a permutation seeded by (seed, e).

    The state is two integers, so a resumed run continues with exactly the same batches.
    An incomplete last batch of an epoch is dropped (every batch has the same size).

    With `group_by_length` (and the examples' `lengths`), an epoch visits exactly the same
    examples as without (the permutation's first n // batch_size · batch_size), but each window
    of LENGTH_GROUP_BATCHES batches is sorted by length (stable, longest first) before it is cut
    into batches, and the epoch's batches are then shuffled with the same generator: batches of
    similar lengths, so dynamic padding (features.trim_padding) cuts most of the padding away.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        lengths: torch.Tensor | None = None,
        group_by_length: bool = False,
    ) -> None:
        self.n, self.batch_size, self.seed = n, min(batch_size, n), seed
        if group_by_length and (lengths is None or len(lengths) != n):
            raise ValueError("group_by_length needs one length per example")
        self.lengths = lengths if group_by_length else None
        self.epoch, self.pos = 0, 0
        self._perm: torch.Tensor | None = None

    def _permutation(self) -> torch.Tensor:
        if self._perm is None:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            perm = torch.randperm(self.n, generator=g)
            if self.lengths is not None:
                perm = self._grouped(perm, g)
            self._perm = perm
        return self._perm

    def _grouped(self, perm: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """The epoch's examples in length-sorted windows, cut into batches, batches shuffled."""
        bs = self.batch_size
        used = (self.n // bs) * bs
        window = bs * LENGTH_GROUP_BATCHES
        parts = []
        for i in range(0, used, window):
            chunk = perm[i : min(i + window, used)]
            order = torch.argsort(self.lengths[chunk], descending=True, stable=True)
            parts.append(chunk[order])
        batches = torch.cat(parts).view(-1, bs)
        batches = batches[torch.randperm(len(batches), generator=g)]
        return torch.cat([batches.reshape(-1), perm[used:]])

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > self.n:
            self.epoch, self.pos, self._perm = self.epoch + 1, 0, None
        idx = self._permutation()[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos, self._perm = state["epoch"], state["pos"], None


@dataclass
class TrainContext:
    """What a method may use: the model, its inner optimizer, and per-TLP batch streams."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    train: dict[TLP, SplitData]
    streams: dict[TLP, BatchStream]
    params: dict[str, Any]
    device: torch.device
    inner_steps_done: int = 0
    #: training batches drawn so far (each costs one gradient computation): Lee et al. Fig. 7c
    batches_drawn: int = 0
    last_grads: dict[str, Any] = field(default_factory=dict)
    dev: dict[TLP, SplitData] | None = (
        None  # dev splits, for methods that learn from dev (MultiDDS)
    )
    #: the run's pseudo-tasks (X-METRA-ADA: record ids per support and query), read by the job
    pseudo_tasks: dict[str, Any] | None = None
    #: several processes, one shard of every batch each (pipeline/runtime/distributed.py):
    #: `mean_loss_step` keeps this rank's rows, `outer_step` averages the gradients first
    data_parallel: bool = False

    @property
    def tlps(self) -> list[TLP]:
        return list(self.train)

    def sizes(self, unit: str = "examples") -> list[float]:
        """Dataset size per TLP in examples (features) or in batches, for sampling weights."""
        if unit == "batches":
            return [float(self.streams[t].batches_per_epoch()) for t in self.tlps]
        return [float(len(self.train[t])) for t in self.tlps]

    def take(
        self, tensors: dict[str, torch.Tensor], rows: torch.Tensor | slice
    ) -> dict[str, torch.Tensor]:
        """`rows` of `tensors` as a batch on the device, with the run's padding and pinning
        (every method draws its batches through here or `batch`)."""
        return take(
            tensors,
            rows,
            self.device,
            self.params.get("padding", "dynamic"),
            self.params.get("pin_memory", True),
        )

    def batch(self, tlp: TLP) -> dict[str, torch.Tensor]:
        idx = self.streams[tlp].next()
        self.batches_drawn += 1
        return self.take(self.train[tlp].tensors, idx)

    def autocast(self):
        """The forward pass's precision: bf16 autocast under `precision: bf16`, else a no-op."""
        return autocast(self.device, self.params.get("precision", "fp32"))

    def loss(self, tlp: TLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.autocast():
            return for_task(tlp.task).loss(self.model(tlp.task, batch), batch)

    def functional_loss(
        self, params: dict[str, torch.Tensor], tlp: TLP, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The loss of `tlp` on `batch` with the model's parameters replaced by `params`
        (`torch.func.functional_call`; names missing from `params` keep the model's own): how
        MAML-style methods evaluate adapted parameters without copying the model."""
        with self.autocast():
            out = torch.func.functional_call(self.model, params, (tlp.task, batch))
            return for_task(tlp.task).loss(out, batch)

    def outer_step(self, logged: torch.Tensor | None = None) -> None:
        """Apply the accumulated `.grad`: clipping, one optimizer and one scheduler step,
        `.grad` cleared, one optimizer step counted (every method's step ends here).

        Data-parallel (`data_parallel`): first `.grad` (and `logged`, the step's loss) become
        their mean over the ranks, in one flat all-reduce, so clipping sees the global batch's
        gradient and every rank takes the same step on the same parameters.
        """
        if self.data_parallel:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            distributed.all_reduce_mean_(grads + ([logged] if logged is not None else []))
        if self.params.get("max_grad_norm"):
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params["max_grad_norm"])
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.inner_steps_done += 1

    def inner_step(self, tlp: TLP) -> float:
        """One optimizer step of the shared model on the next batch of `tlp`."""
        return self.mean_loss_step([tlp])

    def mean_loss_step(self, tlps: Sequence[TLP]) -> float:
        """One optimizer step on (1/n) Σ_j loss(next batch of tlps[j]) (repeats allowed).

        Train mode, gradients of the n batch losses accumulated (each scaled by 1/n, one graph
        alive at a time), clipping, one optimizer and one scheduler step, `.grad` cleared, one
        inner step counted; returns the mean batch loss. With one TLP this is the plain inner
        step, bit for bit (dividing by 1 is exact).
        """
        n = len(tlps)
        if n < 1:
            raise ValueError("mean_loss_step needs at least one TLP")
        self.model.train()
        total = 0.0
        for tlp in tlps:
            batch = self.batch(tlp)
            share = 1.0
            if self.data_parallel:  # every rank drew the same global batch: keep my rows
                # weighted by my share of what the loss averages over (labelled tokens for
                # tagging: shards hold unequal counts), the ranks' mean is the global loss
                task = for_task(tlp.task)
                whole = task.loss_count(batch)
                batch = distributed.shard(batch)
                if whole:
                    share = task.loss_count(batch) * distributed.world().size / whole
            loss = self.loss(tlp, batch)
            (loss * share / n).backward()
            total += loss.item() * share
        if self.data_parallel:  # the global batch's loss, averaged with the gradients
            logged = torch.tensor([total], dtype=torch.float64, device=self.device)
            self.outer_step(logged)
            return logged.item() / n
        self.outer_step()
        return total / n

    def skip_inner_steps(self, tlp: TLP, k: int) -> None:
        """Account for k inner steps on `tlp` that another rank runs (parallel Reptile over
        several processes): its stream, the schedule and the counters advance exactly as if they
        ran here, so this rank's next trajectory gets the batches and learning rates the
        single-process run would give it."""
        import warnings

        with warnings.catch_warnings():  # scheduler.step() with no optimizer.step() is meant
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
            for _ in range(k):
                self.streams[tlp].next()
                self.batches_drawn += 1
                self.scheduler.step()
                self.inner_steps_done += 1


def second_order():
    """A context for forward passes that will be differentiated twice (second-order MAML,
    MetaXL's look-ahead): scaled-dot-product attention on its math kernel, the one whose
    backward is itself differentiable (the flash and memory-efficient kernels, chosen by
    default on CPU and GPU, have no double backward)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


def snapshot(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """A detached copy of the parameter values (no model deep copy)."""
    return [p.detach().clone() for p in params]


@torch.no_grad()
def restore(params: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> None:
    torch._foreach_copy_(list(params), list(values))


@torch.no_grad()
def interpolate(
    params: Sequence[torch.Tensor],
    start: Sequence[torch.Tensor],
    end: Sequence[torch.Tensor],
    weight: float,
) -> None:
    """params ← start + weight·(end − start), in place, via lerp.

    lerp is exact at the end points: weight 1 gives `end` bit for bit and weight 0 gives `start`,
    which is what makes the identities (MTL = Sequential Reptile with β = 1) exact.
    """
    out = [torch.lerp(s, e, weight) for s, e in zip(start, end, strict=True)]
    torch._foreach_copy_(list(params), out)
