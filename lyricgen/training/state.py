"""What a training run carries from step to step besides the weights: where it stands
(`TrainState`, saved in train_state.pt so a resume continues exactly) and the request to stop
that a signal leaves (`StopRequest`)."""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
from dataclasses import dataclass, field


@dataclass
class TrainState:
    """Where training stands; saved in train_state.pt so a resume continues exactly."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch finished
    step: int = 0  # optimizer steps taken
    best_val: float = math.inf
    bad_epochs: int = 0  # epochs since validation last improved (early stopping)
    elapsed: float = 0.0  # seconds of training (the max_minutes budget)
    history: list[dict] = field(default_factory=list)

    @classmethod
    def from_saved(cls, saved: dict) -> TrainState:
        return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls)})

    def record(self, metrics: dict, val_loss: float) -> bool:
        """Add an epoch's metrics to the history; returns whether validation improved."""
        self.history.append(metrics)
        improved = val_loss < self.best_val
        if improved:
            self.best_val, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
        metrics["best"] = improved
        return improved


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between batches, so training stops at a
    clean point (after an optimizer step) and the saved state resumes exactly. A second
    signal stops at once (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
