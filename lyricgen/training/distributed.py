"""Several training processes (torchrun): process-group set-up and teardown and the few
collectives the training loop needs. With one process every helper is a no-op.

How a multi-process run ends (see also `state.StopRequest`):

- `shutdown` destroys the process group before the process exits, after a barrier when
  every process got there the same way (a finished run, or a stop all agreed on), so no
  process tears its connections down while another is still in a collective with it. A
  gloo process that exits with its group alive while a peer still sends to it can die of
  SIGABRT at exit ("terminate called without an active exception"); with the group
  destroyed first it exits cleanly and the peer gets a one-line RuntimeError instead.
- the worker then leaves with `os._exit` (`leave_if_joined`, called by the CLI), skipping the
  interpreter's finalization, where C++ destructors racing gloo's threads could still end
  a finished worker with SIGABRT ("terminate called without an active exception").
- under torchrun each worker asks Linux for SIGTERM when torchrun dies (PR_SET_PDEATHSIG),
  so a torchrun that is killed, or that exits on a third Ctrl-C while its workers are
  still stopping, never leaves them running on their own.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import sys
from dataclasses import dataclass

import torch

from lyricgen.errors import TrainingInterrupted

log = logging.getLogger(__name__)


@dataclass
class Dist:
    """Where this process stands among `world` training processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0 alone writes the run directory and reports progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum over all processes."""
        if not self.active:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Element-wise 'true on some process': all processes agree on when to stop."""
        if not self.active:
            return flags
        tensor = torch.tensor([float(f) for f in flags], device=device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return [bool(v) for v in tensor.tolist()]

    def gather_columns(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate every process's (L, b, H) state along the batch dimension."""
        if not self.active:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world)]
        torch.distributed.all_gather(parts, tensor.contiguous())
        return torch.cat(parts, dim=1)

    def my_columns(self, tensor: torch.Tensor) -> torch.Tensor:
        """This process's share of a gathered (L, B, H) state."""
        b = tensor.size(1) // self.world
        return tensor[:, self.rank * b : (self.rank + 1) * b]


def die_with_launcher() -> bool:
    """Under torchrun on Linux: have the kernel send this process SIGTERM when torchrun
    exits (the signal StopRequest turns into a clean stop, or into an immediate exit when
    it is the second). True when it took effect."""
    if not sys.platform.startswith("linux") or "TORCHELASTIC_RUN_ID" not in os.environ:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        return libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


_joined = False  # this process joined a process group (from_env): see leave_if_joined


def leave_if_joined(code: int) -> None:
    """End a process that joined a multi-process run with os._exit(code) once its output is
    flushed; return at once in any other process. `shutdown` has destroyed the group by
    then, and every file the run writes is written and closed: skipping the interpreter's
    finalization skips the C++ destructors that, racing gloo's threads, ended a finished
    worker now and then with SIGABRT ("terminate called without an active exception", no
    Python frame left), which made torchrun stop the others and fail the run."""
    if not _joined:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def from_env(device_name: str) -> Dist:
    """Join the process group that torchrun describes in the environment (gloo on a CPU,
    nccl on CUDA GPUs); a plain `lyricgen train` is one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    die_with_launcher()
    global _joined
    _joined = True
    if not torch.distributed.is_initialized():
        cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank)
        # generous: the other processes wait at a barrier while one tokenizes a big corpus
        torch.distributed.init_process_group(
            "nccl" if cuda else "gloo", timeout=datetime.timedelta(hours=2)
        )
    return Dist(rank, world, local_rank)


def shutdown(dist: Dist, orderly: bool | None = None) -> None:
    """Leave the process group; call it on every path out of training (a `finally`).

    `orderly`: every process got here the same way (a finished run, or a stop they all
    agreed on), so a barrier first is safe and makes no process close its connections while
    another is still in an earlier collective. None: orderly unless an exception other than
    TrainingInterrupted is being handled (a failure may be this process's alone: the others
    would never reach the barrier)."""
    if not (dist.active and torch.distributed.is_initialized()):
        return
    if orderly is None:
        exc = sys.exc_info()[1]
        orderly = exc is None or isinstance(exc, TrainingInterrupted)
    if orderly:
        try:
            torch.distributed.barrier()
        except RuntimeError as exc:  # a peer is gone: nothing left to wait for
            log.warning(
                "rank %d: the last barrier failed: %s", dist.rank, " ".join(str(exc).split())
            )
    torch.distributed.destroy_process_group()
