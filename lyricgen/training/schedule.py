"""The learning rate at every step, in one object.

`train.scheduler` chooses the shape:

- `cosine`: linear warmup over `train.warmup_steps`, then cosine decay to
  `train.min_lr_ratio` x `train.lr`. With `train.max_minutes` set, progress is the larger of
  the step fraction and the time fraction, so the decay finishes when the time budget runs
  out rather than at an epoch count the budget never reaches.
- `wsd` (warmup, stable, decay; Hägele et al. 2024): the warmup, then `train.lr` held until
  the last `train.decay_fraction` of the run, then a 1 - sqrt decay to `train.min_lr_ratio`
  x `train.lr`. Progress is measured as for `cosine`.
- `none`: the warmup, then a constant rate.
- `step` and `plateau`: torch's StepLR and ReduceLROnPlateau, acting once per epoch.
"""

from __future__ import annotations

import math

import torch

from lyricgen.config import TrainConfig


def lr_factor(
    train_cfg: TrainConfig, step: int, total_steps: int, time_fraction: float = 0.0
) -> float:
    """The multiple of `train_cfg.lr` at optimizer step `step` (warmup, then the cosine decay)."""
    if step < train_cfg.warmup_steps:
        return (step + 1) / train_cfg.warmup_steps
    if train_cfg.scheduler not in ("cosine", "wsd"):
        return 1.0
    progress = (step - train_cfg.warmup_steps) / max(1, total_steps - train_cfg.warmup_steps)
    progress = min(1.0, max(progress, time_fraction))
    if train_cfg.scheduler == "cosine":
        decay = 0.5 * (1 + math.cos(math.pi * progress))
    else:
        into = (progress - (1 - train_cfg.decay_fraction)) / train_cfg.decay_fraction
        decay = 1 - math.sqrt(min(1.0, max(0.0, into)))
    return train_cfg.min_lr_ratio + (1 - train_cfg.min_lr_ratio) * decay


class Schedule:
    """Sets the optimizer's learning rate before each step and after each epoch."""

    def __init__(self, opt: torch.optim.Optimizer, train_cfg: TrainConfig, total_steps: int):
        self.opt, self.train_cfg, self.total_steps = opt, train_cfg, total_steps
        self.per_step = train_cfg.scheduler in ("cosine", "wsd", "none")
        self.per_epoch: torch.optim.lr_scheduler.LRScheduler | None = None
        if train_cfg.scheduler == "step":
            self.per_epoch = torch.optim.lr_scheduler.StepLR(
                opt, train_cfg.step_size, train_cfg.gamma
            )
        elif train_cfg.scheduler == "plateau":
            self.per_epoch = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, factor=train_cfg.gamma, patience=1
            )

    def before_step(self, step: int, time_fraction: float) -> None:
        """`time_fraction`: the share of `train.max_minutes` used so far (0 without one)."""
        if self.per_step:
            lr = self.train_cfg.lr * lr_factor(
                self.train_cfg, step, self.total_steps, time_fraction
            )
            for g in self.opt.param_groups:
                g["lr"] = lr

    def end_epoch(self, val_loss: float) -> None:
        if self.train_cfg.scheduler == "step":
            self.per_epoch.step()
        elif self.train_cfg.scheduler == "plateau":
            self.per_epoch.step(val_loss)

    @property
    def lr(self) -> float:
        return self.opt.param_groups[0]["lr"]

    def state_dict(self) -> dict | None:
        return self.per_epoch.state_dict() if self.per_epoch is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.per_epoch is not None:
            self.per_epoch.load_state_dict(state)
