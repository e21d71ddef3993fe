"""Several training processes (torchrun): process-group set-up and the few collectives
the training loop needs. With one process every helper is a no-op."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch


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


def from_env(device_name: str) -> Dist:
    """Join the process group that torchrun describes in the environment (gloo on a CPU,
    nccl on CUDA GPUs); a plain `lyricgen train` is one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank)
        # generous: the other processes wait at a barrier while one tokenizes a big corpus
        torch.distributed.init_process_group(
            "nccl" if cuda else "gloo", timeout=datetime.timedelta(hours=2)
        )
    return Dist(rank, world, local_rank)


def shutdown(dist: Dist) -> None:
    if dist.active and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
