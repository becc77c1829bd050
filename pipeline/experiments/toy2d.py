"""Lee et al. (2022) §4.1's synthetic experiment (Figure 3), run through the real methods.

Three tasks on φ ∈ R², with minima x_1 = (0, 10), x_2 = (0, 0), x_3 = (10, 0):

    L_i(φ) = −200 · exp(−0.2 · ‖φ − x_i‖₂),         start φ0 = (20, 5),

the MTL objective being Σ_i L_i. The paper prints the exponent as +0.2·‖φ − x_i‖, which has no
minimum at x_i (it is −∞ at infinity); the sign used here (−0.2) is the one that makes x_i the
tasks' optima, as the text says ("we define three local optima x_1, x_2, x_3").

Nothing here re-implements an algorithm: `run_method` builds the method class registered in
`pipeline.methods.get_method` (MTL, PCGrad, GradVac, GradNorm, RecAdam, Reptile, Sequential
Reptile) on a `ToyContext`, a `TrainContext` whose "model" is the two numbers φ, and calls the
method's own `step()`. What the toy changes, and only that:

* `Toy2D`: φ is the parameter `encoder.phi` (float64), so `model.encoder` is what RecAdam anchors,
  what `surgery_params: encoder` selects, and GradNorm's "last shared layer" (task_gradients).
  `forward(center)` is L(φ) for the minimum `center`, plus `offset`.
* `ToyContext` overrides `batch` (a task has no data: an empty dict, one "batch" per epoch),
  `loss` (L_i(φ) of the TLP's task index) and `functional_loss` (`torch.func.functional_call` on
  the toy model). `sizes`, `inner_step`, `mean_loss_step` and `outer_step` are the engine's own.
  The train splits and streams are stand-ins with one example and one batch per epoch, so every
  TLP has the same size (uniform sampling whatever the temperature) and MTL's `concat` plan with
  `tasks_per_step: 3` visits all three tasks in every step.
* TLPs are `TLP("toy", "x1")` … `TLP("toy", "x3")`, built directly: `TLP.parse` would refuse the
  task name "toy" (not a task of `records.TASK_TYPES`), and no method reads the task type.
* The context's loss is L_i + `offset` with offset 200 by default, so every task loss lies in
  [0, 200): the gradients are unchanged (so is every method but GradNorm), and GradNorm's
  training rate L_i(t)/L_i(0) is defined (gradnorm.py sets r_i = 1 for a non-positive L_i(0)).
  The reported losses (`Trajectory.losses`, `analyse`) are the paper's L_i, without the offset.

The optimizer is plain SGD (or Adam, `optimizer="adam"`) with the engine's constant schedule
(`pipeline.optim.make_scheduler(opt, 0, total, "constant")`); `run_method`'s params reach the
method exactly as a run's params do in the trainer (flat: seed, lr, steps and the method's own
keys, completed from `config.method_params` defaults inside each method).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.engine import TrainContext
from pipeline.methods import get_method
from pipeline.optim import make_scheduler
from pipeline.records import TLP

#: the three task optima x_1, x_2, x_3 (Lee et al. §4.1)
MINIMA: tuple[tuple[float, float], ...] = ((0.0, 10.0), (0.0, 0.0), (10.0, 0.0))
START: tuple[float, float] = (20.0, 5.0)
SCALE, RATE = 200.0, 0.2
#: added to the context's task losses (not to reported losses): see the module docstring
OFFSET = 200.0
#: "in one of the MTL local minima" = within this distance of some x_i. The summed loss has a
#: strict local minimum exactly at each x_i (its cone there has slope 40, the other two tasks
#: pull with at most 2·40·e^(-2) ≈ 10.8), so constant-lr SGD ends oscillating around one; 1.0
#: is ~7 of MTL's steps at the minimum (lr 0.01 · ≈14) and a tenth of the distance between minima.
RADIUS = 1.0

METHODS = ("mtl", "pcgrad", "gradvac", "gradnorm", "recadam", "reptile", "seq_reptile")
BASELINES = ("mtl", "pcgrad", "gradvac", "gradnorm", "recadam")

#: per-method options for the toy (real option names; everything else is the method's default).
#: All three tasks in every step for the multi-task baselines; `reduction: mean` so their step is
#: on the mean of the task gradients, as MTL's mean loss (the default `sum` would triple the lr).
#: RecAdam: γ keeps the authors' lr·γ (3e-5 · 5000 = 0.15) at lr 0.01, and the annealing
#: midpoint t0 sits at a quarter of the 1000-step run (the authors' t0 = 1000 is for BERT runs);
#: with γ = 5000 at lr 0.01 the decoupled penalty step (factor 1 − lr·γ = −49) diverges.
#: Reptile: m = 3 distinct tasks, k inner steps each; Sequential Reptile: K = 10, η = 0.1.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "mtl": {"mixing": "concat", "tasks_per_step": 3},
    "pcgrad": {"tasks_per_step": 3, "reduction": "mean"},
    "gradvac": {"tasks_per_step": 3, "reduction": "mean"},
    "gradnorm": {"tasks_per_step": 3, "reduction": "mean"},
    "recadam": {
        "mixing": "concat",
        "tasks_per_step": 3,
        "gamma": 15.0,
        "anneal_k": 0.05,
        "anneal_t0": 250.0,
    },
    "reptile": {"m": 3, "k": 10, "replacement": False},
    "seq_reptile": {"inner_steps": 10, "eta": 0.1},
}
DEFAULT_LR, DEFAULT_STEPS, DEFAULT_SEED = 0.01, 1000, 0


def tlps_for(tasks: Sequence[int] = (0, 1, 2)) -> list[TLP]:
    return [TLP("toy", f"x{i + 1}") for i in tasks]


# -- the loss in closed form -----------------------------------------------------------------


def task_loss(phi: Sequence[float], i: int) -> float:
    """L_i(φ) = −200·exp(−0.2·‖φ − x_i‖)."""
    d = np.asarray(phi, np.float64) - np.asarray(MINIMA[i])
    return float(-SCALE * math.exp(-RATE * float(np.linalg.norm(d))))


def task_grad(phi: Sequence[float], i: int) -> np.ndarray:
    """∇L_i(φ) = 200·0.2·exp(−0.2 r)·(φ − x_i)/r, r = ‖φ − x_i‖; 0 at x_i itself (the cone's
    apex, where the gradient is undefined; torch's norm backward also gives 0 there)."""
    d = np.asarray(phi, np.float64) - np.asarray(MINIMA[i])
    r = float(np.linalg.norm(d))
    if r == 0.0:
        return np.zeros(2)
    return SCALE * RATE * math.exp(-RATE * r) * d / r


def sum_loss(phi: Sequence[float]) -> float:
    return sum(task_loss(phi, i) for i in range(len(MINIMA)))


def mean_pairwise_cosine(grads: Sequence[np.ndarray]) -> float:
    """Mean over task pairs of cos(g_i, g_j); pairs with a zero gradient are left out (nan when
    none is left)."""
    cos = []
    for a in range(len(grads)):
        for b in range(a + 1, len(grads)):
            na, nb = np.linalg.norm(grads[a]), np.linalg.norm(grads[b])
            if na > 0 and nb > 0:
                cos.append(float(grads[a] @ grads[b] / (na * nb)))
    return float(np.mean(cos)) if cos else math.nan


def gradient_cosine(phi: Sequence[float]) -> float:
    """The mean pairwise cosine of the three task gradients at φ (Figure 3h)."""
    return mean_pairwise_cosine([task_grad(phi, i) for i in range(len(MINIMA))])


def sum_loss_grid(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """`sum_loss` at every point of a grid (xs, ys of one shape), vectorised."""
    return sum(-SCALE * np.exp(-RATE * np.hypot(xs - a, ys - b)) for a, b in MINIMA)


def gradient_cosine_grid(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """`gradient_cosine` at every point of a grid, vectorised: the mean over task pairs of the
    cosine of their gradients, pairs with a zero gradient (a grid point on some x_i) left out.
    The cosine does not depend on the gradients' lengths, so the unit vectors (φ − x_i)/r do."""
    units = []
    for a, b in MINIMA:
        dx, dy = xs - a, ys - b
        r = np.hypot(dx, dy)
        with np.errstate(invalid="ignore", divide="ignore"):
            units.append((np.where(r > 0, dx / r, np.nan), np.where(r > 0, dy / r, np.nan)))
    total, count = np.zeros(np.shape(xs)), np.zeros(np.shape(xs))
    for i in range(len(units)):
        for j in range(i + 1, len(units)):
            cos = units[i][0] * units[j][0] + units[i][1] * units[j][1]
            ok = ~np.isnan(cos)
            total += np.where(ok, cos, 0.0)
            count += ok
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# -- the model and its context ---------------------------------------------------------------


class _Phi(nn.Module):
    def __init__(self, start: Sequence[float]) -> None:
        super().__init__()
        self.phi = nn.Parameter(torch.tensor(list(start), dtype=torch.float64))


class Toy2D(nn.Module):
    """φ ∈ R² as a model: `encoder.phi` (so encoder-level methods act on it)."""

    def __init__(self, start: Sequence[float] = START, offset: float = OFFSET) -> None:
        super().__init__()
        self.encoder = _Phi(start)
        self.offset = offset

    @property
    def phi(self) -> torch.Tensor:
        return self.encoder.phi

    def forward(self, center: torch.Tensor) -> torch.Tensor:
        r = torch.linalg.vector_norm(self.encoder.phi - center)
        return -SCALE * torch.exp(-RATE * r) + self.offset


class _OneBatch:
    """A stream stand-in: one batch per epoch (nothing to draw)."""

    def __init__(self) -> None:
        self.epoch = 0

    def next(self) -> torch.Tensor:
        self.epoch += 1
        return torch.zeros(0, dtype=torch.long)

    def batches_per_epoch(self) -> int:
        return 1

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": 0}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = state["epoch"]


@dataclass
class _OneExample:
    """A train split stand-in: one example, no tensors (equal sizes for every task)."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return 1


class ToyContext(TrainContext):
    """TrainContext over Toy2D: `batch`, `loss` and `functional_loss` replaced, nothing else."""

    centers: dict[TLP, torch.Tensor]

    def batch(self, tlp: TLP) -> dict[str, torch.Tensor]:
        self.streams[tlp].next()
        return {}

    def loss(self, tlp: TLP, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        del batch
        return self.model(self.centers[tlp])

    def functional_loss(
        self, params: dict[str, torch.Tensor], tlp: TLP, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        del batch
        return torch.func.functional_call(self.model, params, (self.centers[tlp],))


def make_context(
    params: Mapping[str, Any],
    total_inner_steps: int,
    optimizer: str = "sgd",
    start: Sequence[float] = START,
    tasks: Sequence[int] = (0, 1, 2),
    offset: float = OFFSET,
) -> ToyContext:
    model = Toy2D(start, offset)
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=params["lr"])
    elif optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=params["lr"])
    else:
        raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r}")
    sched = make_scheduler(opt, 0, total_inner_steps, "constant")
    tlps = tlps_for(tasks)
    ctx = ToyContext(
        model,
        opt,
        sched,
        {t: _OneExample() for t in tlps},
        {t: _OneBatch() for t in tlps},
        dict(params),
        torch.device("cpu"),
    )
    ctx.centers = {t: torch.tensor(MINIMA[i], dtype=torch.float64) for t, i in zip(tlps, tasks)}
    return ctx


# -- runs --------------------------------------------------------------------------------------


@dataclass
class Trajectory:
    """φ before the first step and after each step, the paper's task losses L_i (no offset) and
    the mean pairwise gradient cosine at each of those points."""

    method: str
    settings: dict[str, Any]
    points: np.ndarray  # (steps + 1, 2)
    losses: np.ndarray  # (steps + 1, 3)
    cosines: np.ndarray  # (steps + 1,)
    options: dict[str, Any] = field(default_factory=dict)
    method_type: type | None = None


def run_params(
    name: str, options: Mapping[str, Any] | None, steps: int, lr: float, seed: int
) -> dict[str, Any]:
    """A run's flat params, as the trainer passes them: seed, lr, steps and the method's keys
    (the method completes them from its `config.method_params` defaults)."""
    opts = dict(DEFAULT_OPTIONS.get(name, {}) if options is None else options)
    return {"seed": seed, "lr": lr, "steps": steps, "weight_decay": 0.0, **opts}


def run_method(
    name: str,
    params: Mapping[str, Any] | None = None,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = DEFAULT_SEED,
    optimizer: str = "sgd",
    start: Sequence[float] = START,
    tasks: Sequence[int] = (0, 1, 2),
    offset: float = OFFSET,
) -> Trajectory:
    """`steps` steps of the registered method `name` (meta-steps for Reptile-style methods) on
    the toy; `params`: the method's options (None: DEFAULT_OPTIONS[name]; {} the pure defaults)."""
    p = run_params(name, params, steps, lr, seed)
    cls = get_method(name)
    torch.manual_seed(seed)
    ctx = make_context(
        p, cls.total_steps(p, steps) * cls.inner_steps_per_step(p), optimizer, start, tasks, offset
    )
    cls.prepare_model(ctx.model, p)
    method = cls(ctx, p)
    pts = [ctx.model.phi.detach().numpy().copy()]
    for _ in range(steps):
        method.step()
        pts.append(ctx.model.phi.detach().numpy().copy())
    points = np.asarray(pts, dtype=np.float64)
    losses = np.array([[task_loss(x, i) for i in range(len(MINIMA))] for x in points])
    cosines = np.array([gradient_cosine(x) for x in points])
    settings = {
        "lr": lr,
        "steps": steps,
        "seed": seed,
        "optimizer": optimizer,
        "start": list(start),
        "params": {k: v for k, v in p.items() if k not in ("seed", "lr", "steps")},
        "inner_steps_per_step": cls.inner_steps_per_step(p),
    }
    return Trajectory(
        name, settings, points, losses, cosines, _jsonable(method.options()), type(method)
    )


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float | int | str | bool) or obj is None:
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


# -- analysis ----------------------------------------------------------------------------------


def end_summary(traj: Trajectory, radius: float = RADIUS) -> dict[str, Any]:
    end = traj.points[-1]
    dists = [float(np.linalg.norm(end - np.asarray(m))) for m in MINIMA]
    nearest = int(np.argmin(dists))
    cos = traj.cosines[~np.isnan(traj.cosines)]
    return {
        "end": [float(end[0]), float(end[1])],
        "nearest_minimum": f"x{nearest + 1}",
        "distance_to_nearest": dists[nearest],
        "in_mtl_minimum": bool(dists[nearest] <= radius),
        "sum_loss_end": sum_loss(end),
        "cosine_end": float(gradient_cosine(end)),
        "cosine_mean": float(cos.mean()) if len(cos) else math.nan,
        "settings": traj.settings,
    }


def analyse(trajectories: Mapping[str, Trajectory], radius: float = RADIUS) -> dict[str, Any]:
    """Per method: end point, nearest x_i, whether it ended in one of the MTL local minima
    (within `radius` of some x_i), Σ L_i at the end, the gradient cosine at the end and its mean
    along the trajectory. Then the paper's three claims, each with `holds` and the settings:

    1. every baseline present (mtl, pcgrad, gradvac, gradnorm, recadam) ends in an MTL minimum;
    2. Reptile does not, and its end point's gradient cosine is lower than Sequential Reptile's;
    3. Sequential Reptile does not, its end cosine is higher than Reptile's, and its Σ L_i at
       the end is below Σ L_i(φ0) (it traded loss against alignment, not stayed put).

    "Low" and "high" cosine are relative (Reptile vs Sequential Reptile), the comparison Figure
    3h makes; the absolute numbers are reported beside the verdicts.
    """
    per = {name: end_summary(t, radius) for name, t in trajectories.items()}
    start_loss = sum_loss(START)
    claims: dict[str, Any] = {}
    base = [b for b in BASELINES if b in per]
    if base:
        claims["1_baselines_in_mtl_minima"] = {
            "holds": all(per[b]["in_mtl_minimum"] for b in base),
            "methods": {
                b: per[b]["nearest_minimum"] if per[b]["in_mtl_minimum"] else None for b in base
            },
            "settings": {b: per[b]["settings"] for b in base},
        }
    rep, seq = per.get("reptile"), per.get("seq_reptile")
    if rep is not None and seq is not None:
        claims["2_reptile_avoids_minima_low_cosine"] = {
            "holds": bool(not rep["in_mtl_minimum"] and rep["cosine_end"] < seq["cosine_end"]),
            "in_mtl_minimum": rep["in_mtl_minimum"],
            "cosine_end": rep["cosine_end"],
            "seq_reptile_cosine_end": seq["cosine_end"],
            "settings": rep["settings"],
        }
        claims["3_seq_reptile_tradeoff_high_cosine"] = {
            "holds": bool(
                not seq["in_mtl_minimum"]
                and seq["cosine_end"] > rep["cosine_end"]
                and seq["sum_loss_end"] < start_loss
            ),
            "in_mtl_minimum": seq["in_mtl_minimum"],
            "cosine_end": seq["cosine_end"],
            "reptile_cosine_end": rep["cosine_end"],
            "sum_loss_end": seq["sum_loss_end"],
            "sum_loss_start": start_loss,
            "settings": seq["settings"],
        }
    return {"radius": radius, "start": list(START), "methods": per, "claims": claims}


#: `run_method`'s signature, for `run_all` and `sweep` (a memoising runner shares their runs)
Runner = Callable[..., Trajectory]


def run_all(
    methods: Sequence[str] = METHODS,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = DEFAULT_SEED,
    optimizer: str = "sgd",
    run: Runner = run_method,
) -> dict[str, Trajectory]:
    return {m: run(m, None, steps, lr, seed, optimizer) for m in methods}


#: what a sweep cell keeps of each method's `end_summary`
CELL_KEYS = (
    "end",
    "nearest_minimum",
    "distance_to_nearest",
    "in_mtl_minimum",
    "cosine_end",
    "sum_loss_end",
)


def sweep(
    lrs: Sequence[float] = (0.005, 0.01, 0.02),
    ks: Sequence[int] = (5, 10, 20),
    steps: int = DEFAULT_STEPS,
    seed: int = DEFAULT_SEED,
    optimizer: str = "sgd",
    radius: float = RADIUS,
    run: Runner = run_method,
) -> list[dict[str, Any]]:
    """Reptile (k = K) and Sequential Reptile (inner_steps = K) per (inner lr, K) cell, the other
    options as DEFAULT_OPTIONS; each cell's verdicts for claims 2 and 3."""
    cells = []
    for lr in lrs:
        for k in ks:
            trajs = {
                "reptile": run(
                    "reptile", {**DEFAULT_OPTIONS["reptile"], "k": k}, steps, lr, seed, optimizer
                ),
                "seq_reptile": run(
                    "seq_reptile",
                    {**DEFAULT_OPTIONS["seq_reptile"], "inner_steps": k},
                    steps,
                    lr,
                    seed,
                    optimizer,
                ),
            }
            res = analyse(trajs, radius)
            cells.append(
                {
                    "lr": lr,
                    "K": k,
                    **{m: {x: res["methods"][m][x] for x in CELL_KEYS} for m in trajs},
                    "claim2": res["claims"]["2_reptile_avoids_minima_low_cosine"]["holds"],
                    "claim3": res["claims"]["3_seq_reptile_tradeoff_high_cosine"]["holds"],
                }
            )
    return cells
