"""What a training run carries from step to step besides the weights: where it stands
(`TrainState`, saved in train_state.pt so a resume continues exactly) and the request to stop
that a signal leaves (`StopRequest`)."""

from __future__ import annotations

import dataclasses
import faulthandler
import math
import os
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


STOP_GRACE = 25.0  # seconds; torchrun sends SIGKILL 30 s after it forwarded the signal


def stop_grace() -> float:
    """Seconds a process of a multi-process run may take to stop once signalled:
    LYRICGEN_STOP_GRACE, else STOP_GRACE (0 or less: no bound)."""
    try:
        return float(os.environ.get("LYRICGEN_STOP_GRACE", STOP_GRACE))
    except ValueError:
        return STOP_GRACE


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between batches, so training stops at a
    clean point (after an optimizer step) and the saved state resumes exactly. A second
    signal stops at once.

    In one process the second signal raises KeyboardInterrupt. In a run of several
    processes (torchrun: WORLD_SIZE > 1) an exception at an arbitrary point of one process
    would leave the others waiting for it in their next collective (the process group's
    timeout is 2 hours) or tear it down while they still talk to it, so there:

    - the second signal ends this process at once (`os._exit`, 128 + the signal's number,
      no final checkpoint), which closes its connections, so the others fail fast or,
      sent the same signal by torchrun, end the same way. torchrun sends it on a second
      Ctrl-C: SIGINT for the first, SIGTERM when the second interrupts its own shutdown;
    - the first signal arms a watchdog (faulthandler's, a C thread that needs neither the
      GIL nor a live interpreter): a process still alive `grace` seconds later writes every
      thread's Python stack to stderr and exits with status 1, so a stop can never hang,
      even if a collective or the teardown does, and the stacks say where it was.
    """

    def __init__(self, processes: int | None = None, grace: float | None = None) -> None:
        self.signum: int | None = None
        self._old: dict = {}
        if processes is None:
            processes = int(os.environ.get("WORLD_SIZE", "1") or 1)
        self.processes = processes
        self.grace = stop_grace() if grace is None else grace

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is None:  # first signal: stop after this step
            self.signum = signum
            if self.processes > 1 and self.grace > 0:
                faulthandler.dump_traceback_later(self.grace, exit=True)
            return
        if self.processes <= 1:  # second signal: stop now
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        # os.write: the signal may have come in the middle of a write to sys.stderr
        os.write(2, f"error: {name} again: stopping at once, without a final checkpoint\n".encode())
        os._exit(128 + signum)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
