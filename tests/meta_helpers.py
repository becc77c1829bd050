"""Helpers for the Reptile / MultiDDS / analysis tests: small Trainer runs and toy contexts.

Toy contexts are real `TrainContext`s around models whose gradients are known in closed form,
so expected values can be computed by hand.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.config import Run
from pipeline.engine import BatchStream, TrainContext
from pipeline.features import SplitData
from pipeline.records import TLP
from pipeline.tasks import FeatureSettings
from pipeline.trainer import Trainer

SETTINGS = FeatureSettings(
    max_length=32, doc_stride=16, max_query_length=8, max_answer_length=5, n_best=5
)
BASE: dict[str, Any] = {
    "seed": 3,
    "steps": 6,
    "batch_size": 4,
    "lr": 1e-3,
    "weight_decay": 0.01,
    "warmup_steps": 2,
    "schedule": "linear",
    "max_grad_norm": 1.0,
    "eval_every": 3,
    "checkpoint_every": 2,
    "max_dev_examples": None,
}
TLPS3 = ["nli/l0", "ner/l1", "qa/l0"]


def make_run(method: str, tlps: list[str], **over: Any) -> Run:
    t = tuple(TLP.parse(x) for x in tlps)
    return Run(f"{method}-test", method, method, t, t, {**BASE, "method": method, **over})


def trainer(world: dict, run: Run, ckpt: str | Path, **extra: Any) -> Trainer:
    torch.set_num_threads(1)
    return Trainer(
        run,
        world["encoder"],
        [world["prepared"]],
        SETTINGS,
        ckpt,
        torch.device("cpu"),
        cache_dir=world["root"] / "features",
        **extra,
    )


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Killed(Exception):
    """Stands in for a SIGKILL in the resume tests."""


def kill_at(t: Trainer, call: int) -> None:
    """Make the `call`-th `method.step()` of `t` raise Killed (the steps before it run)."""
    step, calls = t.method.step, {"n": 0}

    def dying_step() -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == call:
            raise Killed
        return step()

    t.method.step = dying_step  # type: ignore[method-assign]


def assert_resumes_bit_identically(
    world: dict, run: Run, tmp: Path, call: int = 4, make: Any = None
) -> None:
    """A run killed at its `call`-th step and resumed from its checkpoint ends with the same
    weights and history as an uninterrupted one (`make`: the trainer factory, default
    `trainer`)."""
    make = make or trainer
    full = make(world, run, tmp / "ckpt-full")
    full.fit(tmp / "out-full")
    killed = make(world, run, tmp / "ckpt")
    kill_at(killed, call)
    try:
        killed.fit(tmp / "out")
    except Killed:
        pass
    else:
        raise AssertionError(f"the run finished before step {call}")
    resumed = make(world, run, tmp / "ckpt")
    resumed.fit(tmp / "out")
    assert same(weights(full.model), weights(resumed.model))
    history = (tmp / "out" / "history.json").read_text()
    assert history == (tmp / "out-full" / "history.json").read_text()


# -- toy contexts ------------------------------------------------------------------------------


def toy_split(tlp: TLP, tensors: dict[str, torch.Tensor], split: str = "train") -> SplitData:
    n = len(next(iter(tensors.values())))
    return SplitData(tlp, split, Path("."), None, list(range(n)), tensors, FeatureSettings())  # type: ignore[arg-type]


def toy_context(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: dict[TLP, SplitData],
    params: dict[str, Any],
    dev: dict[TLP, SplitData] | None = None,
    cls: type[TrainContext] = TrainContext,
    **extra: Any,
) -> TrainContext:
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    streams = {
        t: BatchStream(len(d), params["batch_size"], i) for i, (t, d) in enumerate(train.items())
    }
    return cls(
        model, optimizer, sched, train, streams, params, torch.device("cpu"), dev=dev, **extra
    )


class Scalar(nn.Module):
    """One parameter w; the loss of TLP t is ½(w − c_t)² (QuadraticContext), so an SGD step with
    learning rate α moves w to w + α(c_t − w): every trajectory is computable by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


@dataclass
class QuadraticContext(TrainContext):
    targets: dict[TLP, float] = field(default_factory=dict)

    def loss(self, tlp: TLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return 0.5 * (self.model.w - self.targets[tlp]) ** 2


def quadratic_context(
    targets: dict[str, float],
    lr: float,
    momentum: float = 0.0,
    sizes: dict[str, int] | None = None,
    with_dev: bool = False,
    **params: Any,
) -> QuadraticContext:
    model = Scalar()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    tlps = {TLP.parse(t): c for t, c in targets.items()}
    n = {TLP.parse(t): k for t, k in (sizes or {}).items()}
    train = {t: toy_split(t, {"x": torch.zeros(n.get(t, 4), 1)}) for t in tlps}
    p = {"seed": 0, "batch_size": 1, **params}
    dev = dict(train) if with_dev else None
    ctx = toy_context(model, opt, train, p, dev=dev, cls=QuadraticContext, targets=tlps)
    assert isinstance(ctx, QuadraticContext)
    return ctx


class Linear(nn.Module):
    """logits = x Wᵀ with W shared by every task (the "encoder"), zero at the start."""

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.encoder = nn.Linear(dim, classes, bias=False)
        nn.init.zeros_(self.encoder.weight)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.encoder(batch["x"])}


def opposite_labels_context(lr: float = 0.1, **params: Any) -> TrainContext:
    """Two NLI TLPs with the same inputs and opposite labels (A: class 0, B: class 1), dev = same.

    At W = 0 the softmax is uniform, so dL/dlogits = p − onehot(y) is (−½, ½) for A and (½, −½)
    for B: the two gradients are exact negatives (cosine −1); a TLP with A's labels has cosine 1.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, generator=g)
    a, b = TLP("nli", "l0"), TLP("nli", "l1")
    data = {
        a: toy_split(a, {"x": x, "labels": torch.zeros(8, dtype=torch.long)}),
        b: toy_split(b, {"x": x, "labels": torch.ones(8, dtype=torch.long)}),
    }
    model = Linear(5, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    p = {"seed": 0, "batch_size": 8, **params}
    return toy_context(model, opt, data, p, dev=dict(data))


class Headed(nn.Module):
    """A shared encoder (linear, tanh) and one linear head per task, randomly initialised from a
    seed: unlike `Linear`, "all parameters" (encoder + heads) differ from the encoder's, and a
    TLP's loss has no gradient on the heads of other tasks."""

    def __init__(self, dim: int, hidden: int, tasks: tuple[str, ...], seed: int = 0) -> None:
        super().__init__()
        self.encoder = nn.Linear(dim, hidden)
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, 2) for t in tasks})
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.heads[task](torch.tanh(self.encoder(batch["x"])))}


def headed_context(
    tlps: tuple[str, ...] = ("nli/l0", "nli/l1", "pa/l0"),
    sizes: tuple[int, ...] = (8, 12, 16),
    lr: float = 0.05,
    weight_decay: float = 0.01,
    seed: int = 0,
    **params: Any,
) -> TrainContext:
    """Classification TLPs (nli, pa: logits + labels) on a `Headed` model with AdamW: random
    inputs and labels, train and dev drawn separately, `sizes` examples each."""
    g = torch.Generator().manual_seed(seed + 1)
    parsed = [TLP.parse(t) for t in tlps]

    def split(t: TLP, n: int, name: str) -> SplitData:
        x = torch.randn(n, 5, generator=g)
        return toy_split(t, {"x": x, "labels": torch.randint(0, 2, (n,), generator=g)}, name)

    train = {t: split(t, n, "train") for t, n in zip(parsed, sizes, strict=True)}
    dev = {t: split(t, n, "dev") for t, n in zip(parsed, sizes, strict=True)}
    model = Headed(5, 4, tuple(sorted({t.task for t in parsed})), seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    p = {"seed": seed, "batch_size": 4, **params}
    return toy_context(model, opt, train, p, dev=dev)


def batch_of(split: SplitData, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in split.tensors.items()}


# -- optimizer state, compared tensor by tensor ------------------------------------------------


def optimizer_state(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """A deep copy of `opt.state_dict()` (tensors cloned), to compare later with `same_state`."""
    return copy.deepcopy(opt.state_dict())


def same_state(a: Any, b: Any) -> bool:
    """Structural equality with torch.equal (same dtype, shape and values) on every tensor."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same_state(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and a == b
