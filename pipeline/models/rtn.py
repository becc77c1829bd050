"""MetaXL's representation transformation network (RTN, Xia et al. 2021 §2.2, Eq. 1).

    g_φ(h) = w2ᵀ ReLU(w1ᵀ h + b1) + b2,   w1 ∈ R^{d×r}, w2 ∈ R^{r×d}, r < d (a bottleneck)

inserted after one or several layers of the encoder (0: the embedding layer's output, i: the
i-th Transformer layer's output, `last` = N: the last hidden states, the paper's default L12)
and applied to source-language examples only: a target example, and every example at test time,
goes through the plain encoder; the RTN is discarded when the model is saved.

`transform` names what the authors' code does instead of Eq. 1 (seed-implementations §3.2, X6):

* `eq1` (default): g_φ(h) as above, replacing h.
* `residual_gate`: h + σ(s)·MLP(h.detach()), where the up-projection outputs d + 1 values per
  token and the last one, s, gates the residual (the reference's tied gate); no gradient flows
  from the RTN into the layers below it.

The RTN is a submodule of the model (`model.rtn`), so `torch.func.functional_call` can swap its
parameters φ like any other (the look-ahead of MetaXL differentiates through them), checkpoints
hold it (exact resume), and forward hooks on the chosen layers apply it only inside
`applied(model)`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from pipeline.errors import ConfigError

TRANSFORMS = ("eq1", "residual_gate")
#: the submodule name of the RTNs on a model (parameters `rtn.nets.<layer>.…`)
RTN_ATTR = "rtn"


class RTN(nn.Module):
    """One representation transformation network on d-dimensional token states."""

    def __init__(self, hidden: int, bottleneck: int, transform: str = "eq1") -> None:
        super().__init__()
        if transform not in TRANSFORMS:
            raise ConfigError(
                f"transform: expected one of {', '.join(TRANSFORMS)}, got {transform!r}"
            )
        if not 0 < bottleneck < hidden:
            raise ConfigError(
                f"bottleneck: expected 0 < r < d = {hidden} (the RTN compresses), got {bottleneck}"
            )
        self.transform = transform
        self.down = nn.Linear(hidden, bottleneck)  # w1, b1
        self.up = nn.Linear(bottleneck, hidden + (transform == "residual_gate"))  # w2, b2

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.transform == "eq1":
            return self.up(torch.relu(self.down(h)))
        out = self.up(torch.relu(self.down(h.detach())))
        return h + torch.sigmoid(out[..., -1:]) * out[..., :-1]


class RTNs(nn.Module):
    """The RTNs of a model, one per insertion layer, and whether they are applied now."""

    def __init__(self, layers: Sequence[int], hidden: int, bottleneck: int, transform: str) -> None:
        super().__init__()
        self.layers = [int(x) for x in layers]
        self.nets = nn.ModuleDict({str(x): RTN(hidden, bottleneck, transform) for x in self.layers})
        self.active = False


def layer_index(value: Any, n_layers: int) -> int:
    """`last` -> N; an int 0..N as given (0 = after the embeddings)."""
    if value == "last":
        return n_layers
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= n_layers:
        raise ConfigError(
            f"rtn_layers: expected 'last' or an integer 0..{n_layers} (the encoder has "
            f"{n_layers} layers; 0 is the embedding layer), got {value!r}"
        )
    return value


def _hooked_module(encoder: nn.Module, layer: int) -> nn.Module:
    """The module whose output is the representation after `layer`."""
    if layer == 0:
        return encoder.embeddings
    return encoder.encoder.layer[layer - 1]


def attach(
    model: nn.Module,
    layers: Sequence[Any],
    bottleneck: int | None,
    transform: str,
    seed: int,
) -> RTNs:
    """Add RTNs after `layers` of `model.encoder` (as `model.rtn`), initialized from `seed`
    without touching the global RNG (the run's dropout sequence stays that of the plain
    model); `bottleneck` None = d / 2 (the paper's 384 for XLM-R base's 768)."""
    encoder = model.encoder
    hidden = encoder.config.hidden_size
    n = encoder.config.num_hidden_layers
    idx = list(dict.fromkeys(layer_index(x, n) for x in layers))
    if not idx:
        raise ConfigError("rtn_layers: expected at least one layer")
    r = hidden // 2 if bottleneck is None else int(bottleneck)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rtns = RTNs(idx, hidden, r, transform)
    device = next(model.parameters()).device
    rtns.to(device)
    model.add_module(RTN_ATTR, rtns)
    for layer in idx:
        net_name = str(layer)

        def hook(module: nn.Module, args: Any, output: Any, _name: str = net_name) -> Any:
            if not rtns.active:
                return None
            net = rtns.nets[_name]  # looked up at call time: functional_call's φ is used
            if isinstance(output, tuple):
                return (net(output[0]), *output[1:])
            return net(output)

        _hooked_module(encoder, layer).register_forward_hook(hook)
    return rtns


def rtn_of(model: nn.Module) -> RTNs | None:
    return getattr(model, RTN_ATTR, None)


def phi_names(model: nn.Module) -> list[str]:
    """The names of φ (the RTN parameters) in `model.named_parameters()`."""
    return [k for k, _ in model.named_parameters() if k.split(".", 1)[0] == RTN_ATTR]


@contextmanager
def applied(model: nn.Module) -> Iterator[None]:
    """Within the block, source examples: the model's RTNs transform the hooked layers' output
    (a model without RTNs is unchanged)."""
    rtns = rtn_of(model)
    if rtns is None:
        yield
        return
    before, rtns.active = rtns.active, True
    try:
        yield
    finally:
        rtns.active = before
