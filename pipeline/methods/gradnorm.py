"""GradNorm (Chen et al. 2018), a baseline of Lee et al. (2022) Tables 1-2: learn task-loss
weights so that every task trains at a similar rate.

The network minimises L(t) = Σ_i w_i(t) L_i(t). The weights learn from a second loss on the
gradient norms at W, the last shared layer (Chen et al. §3, L_grad is their Eq. 2, Algorithm 1):

    G_i(t)  = ‖∇_W w_i(t) L_i(t)‖ = w_i(t) ‖∇_W L_i(t)‖,      Ḡ(t) = mean_i G_i(t),
    L̃_i(t) = L_i(t) / L_i(0),        r_i(t) = L̃_i(t) / mean_j L̃_j(t)   (inverse training rate),
    L_grad  = Σ_i | G_i(t) − Ḡ(t) · r_i(t)^α |,

with the target Ḡ·r_i^α held constant ("we then differentiate L_grad only with respect to w_i").
Since G_i is linear in w_i, ∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α) · ‖∇_W L_i‖: no second-order
graph is needed. Why: a task whose loss falls slowly (r_i > 1) is given a larger gradient share,
a fast one a smaller, and α sets how strongly rates are pulled together. After the gradient step
on w the weights are renormalised so that Σ_i w_i = T (Algorithm 1), keeping the overall scale of
L fixed; the network's own update uses w(t), the weights before that step.

Here a task is a TLP (one batch of its own per step), w is one weight per TLP of the run,
initialised to 1 and checkpointed, and L_i(0) is the first loss a TLP is seen with (Algorithm 1:
"L_i(0)" at t = 0; a TLP not drawn in the first step gets it at its first draw). Each step takes
one backward per task (task_gradients.task_gradient_stream), reads ‖∇_W L_i‖ from it and adds
w_i ∇L_i to `.grad` (heads included: the weight scales the whole task loss), so it costs the T
backward passes of an MTL step of T batches and no (T, D) buffer.

Options (recorded in `options()`; defaults first):

* `alpha` 1.5: the value Chen et al. use for NYUv2 (and LibMTL's default).
* `weight_lr` 0.025: plain gradient descent on w (Algorithm 1 leaves the weight optimiser
  open; LibMTL trains its weights with the model's optimizer instead). Ours, not a paper value.
* `norm_params` last-layer: W = the last transformer block (task_gradients.last_shared_layer);
  `encoder`: every encoder parameter, as LibMTL (`_get_grads` over `get_share_params()`).
* `tasks_per_step` 8, `temperature` 5, `sampling_sizes`, `reduction` sum (Σ_i w_i L_i, the paper;
  `mean` divides by T): as PCGrad.

When a step draws only some TLPs (T below the run's), Ḡ and r_i are means over the step's tasks,
and the renormalisation rescales the step's weights to their sum before the update, so undrawn
weights stay and Σ w stays at the number of TLPs: with every TLP drawn, this is the paper's
Σ_i w_i = T exactly. A weight that the step would push below 0 is clipped at 0 before the
renormalisation (ours; the paper does not say).

Where LibMTL (1.1.5, `weighting/GradNorm.py`) differs: weights parametrised as T·softmax(ℓ)
(so they stay positive and sum to T without renormalisation), ℓ trained by the model's optimizer,
norms over all shared parameters, L_i(0) = the first epoch's mean loss and plain equal weights
during that epoch. The default here follows the paper; `norm_params: encoder` gives LibMTL's W.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from pipeline.engine import TrainContext
from pipeline.errors import ConfigError
from pipeline.methods.task_gradients import (
    MultiGradientMethod,
    encoder_params,
    last_shared_layer,
    task_gradient_stream,
    trainable,
)
from pipeline.methods.trajectory import check_choice

NORM_PARAMS = ("last-layer", "encoder")


def gradnorm_weight_grad(
    weights: np.ndarray,
    norms: np.ndarray,
    losses: np.ndarray,
    initial: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """∂L_grad/∂w_i = sign(G_i − Ḡ r_i^α) ‖∇_W L_i‖ with G_i = w_i ‖∇_W L_i‖ (Chen et al. Eq. 2,
    target constant). A task whose L_i(0) is not positive has no training rate: r_i = 1."""
    w, n = np.asarray(weights, np.float64), np.asarray(norms, np.float64)
    lo, l0 = np.asarray(losses, np.float64), np.asarray(initial, np.float64)
    g = w * n
    ratio = np.where(l0 > 0, lo / np.where(l0 > 0, l0, 1.0), 1.0)
    r = ratio / ratio.mean() if ratio.mean() > 0 else np.ones_like(ratio)
    target = g.mean() * r**alpha
    return np.sign(g - target) * n


def gradnorm_update(weights: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
    """w − lr·grad, clipped at 0, rescaled to the sum w had (Algorithm 1's renormalisation)."""
    w = np.asarray(weights, np.float64)
    new = np.clip(w - lr * np.asarray(grad, np.float64), 0.0, None)
    total = new.sum()
    return w.copy() if total <= 0 else new * (w.sum() / total)


class GradNorm(MultiGradientMethod):
    name = "gradnorm"

    def __init__(self, ctx: TrainContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.alpha = float(self.p["alpha"])
        self.weight_lr = float(self.p["weight_lr"])
        if self.alpha < 0 or self.weight_lr < 0:
            raise ConfigError(
                f"gradnorm: alpha and weight_lr must be >= 0, got {self.alpha}, {self.weight_lr}"
            )
        self.norm_params = check_choice("norm_params", self.p["norm_params"], NORM_PARAMS)
        layer = (
            last_shared_layer(ctx.model)
            if self.norm_params == "last-layer"
            else encoder_params(ctx.model)
        )
        self._w_ids = {id(p) for p in layer}
        n = len(ctx.tlps)
        self.weights = np.ones(n, dtype=np.float64)
        self.initial = np.full(n, math.nan, dtype=np.float64)

    def step(self) -> dict[str, Any]:
        ctx = self.ctx
        idx = self.draw()
        tlps = [ctx.tlps[i] for i in idx]
        params = trainable(ctx.model)
        w = self.weights[idx]
        coef = w * self.scale(len(idx))
        for p in params:
            p.grad = None
        norms, losses = [], []
        # (no torch.no_grad() around the loop: the stream runs each task's forward inside it;
        # the gradients it yields carry no graph)
        for t, (loss, grads) in enumerate(task_gradient_stream(ctx, tlps, params)):
            sq = torch.zeros((), dtype=torch.float64, device=ctx.device)
            for p, g in zip(params, grads):
                if g is None:
                    continue
                if id(p) in self._w_ids:
                    sq += g.double().pow(2).sum()
                if p.grad is None:
                    p.grad = g.mul_(float(coef[t]))
                else:
                    p.grad.add_(g, alpha=float(coef[t]))
            del grads
            norms.append(math.sqrt(sq.item()))
            losses.append(loss)
        for k, i in enumerate(idx):  # L_i(0): the loss a TLP is first seen with
            if math.isnan(self.initial[i]):
                self.initial[i] = losses[k]
        dw = gradnorm_weight_grad(
            w, np.array(norms), np.array(losses), self.initial[idx], self.alpha
        )
        self.weights[idx] = gradnorm_update(w, dw, self.weight_lr)
        ctx.outer_step()  # the network's step on Σ_i w_i(t) L_i(t) (or its mean)
        return {
            "loss": sum(losses) / len(losses),
            "tlps": [str(t) for t in tlps],
            "task_weights": {str(ctx.tlps[i]): float(self.weights[i]) for i in idx},
        }

    def options(self) -> dict[str, Any]:
        return {
            **self.sampling_options(),
            "alpha": self.alpha,
            "weight_lr": self.weight_lr,
            "weight_optimizer": "sgd",
            "norm_params": self.norm_params,
            "weights_init": 1.0,
            "renormalise": "sum of the step's weights kept (sum w = number of TLPs)",
            "initial_loss": "first batch loss of each TLP",
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "weights": self.weights.tolist(),
            "initial": self.initial.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.weights = np.asarray(state["weights"], dtype=np.float64)
        self.initial = np.asarray(state["initial"], dtype=np.float64)
