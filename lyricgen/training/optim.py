"""torch.optim's SGD, Adam and AdamW, called without torch.compile's wrappers.

Since torch 2.0 the optimizer methods (`add_param_group`, `zero_grad`, `step`, `state_dict`,
`load_state_dict`) are wrapped for torch.compile: `torch._disable_dynamo` and
`_use_grad_for_differentiable`. Each wrapper imports `torch._dynamo` on its first call, and
that import took 2.3 s on the 2-core benchmark machine (py-spy, docs/BENCHMARKS.md). That is
a sixth of a cached word-level run, paid again by every `lyricgen train`, for a compiler
lyricgen never uses.

So lyricgen subclasses torch's own optimizers and calls the functions inside those wrappers
(`inspect.unwrap`). The update is torch's (the fused CPU/CUDA kernels), the state_dict
format is torch's (checkpoints written before this resume as before), and LR schedulers,
GradScaler and optimizer hooks see a `torch.optim.Optimizer`. What the wrappers add is
compiler bookkeeping (graph breaks, disabling dynamo inside the call) and grad mode off
during `step`, which `step` here sets itself.
"""

from __future__ import annotations

from inspect import unwrap  # each wrapper sets __wrapped__ (functools.wraps)
from typing import Any

import torch
from torch.optim import Optimizer


class _Eager:
    """Mixin: the Optimizer methods without the wrappers that import torch._dynamo."""

    _torch_cls: type[Optimizer]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        unwrap(Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        unwrap(Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return unwrap(Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        unwrap(Optimizer.load_state_dict)(self, state_dict)

    def step(self, closure=None):  # noqa: ANN001, ANN201
        with torch.no_grad():  # what _use_grad_for_differentiable sets (differentiable=False)
            return unwrap(self._torch_cls.step)(self, closure)


class SGD(_Eager, torch.optim.SGD):
    _torch_cls = torch.optim.SGD


class Adam(_Eager, torch.optim.Adam):
    _torch_cls = torch.optim.Adam


class AdamW(_Eager, torch.optim.AdamW):
    _torch_cls = torch.optim.AdamW


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(model: torch.nn.Module, train_cfg) -> Optimizer:
    """train.optimizer over `model`'s parameters, weight decay on the weight matrices only."""
    # No weight decay on biases: decay is for the weight matrices.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": train_cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    cls = OPTIMIZERS[train_cfg.optimizer]
    # Adam's weight decay is L2 in the gradient; AdamW decouples it (Loshchilov & Hutter).
    kwargs: dict[str, Any] = {"lr": train_cfg.lr}
    if train_cfg.optimizer == "sgd":
        kwargs["momentum"] = train_cfg.momentum
    # One fused kernel for every parameter (CPU and CUDA since torch 2.4); older torch
    # versions get the multi-tensor (foreach) path.
    try:
        return cls(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return cls(groups, foreach=True, **kwargs)
