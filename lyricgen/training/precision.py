"""Mixed precision: autocast for the forward pass and loss, a GradScaler for fp16."""

from __future__ import annotations

import contextlib
import logging

import torch

from lyricgen.errors import ConfigError

log = logging.getLogger(__name__)

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """`train.precision` on a device: `autocast()` is entered anew for each step's forward
    pass and loss (one context around the whole loop would keep stale low-precision copies
    of the weights); backward and the optimizer step run outside it."""

    def __init__(self, name: str, device: torch.device, model: torch.nn.Module):
        self.name, self.device = name, device
        self.dtype = DTYPES[name]
        if name == "fp16" and device.type != "cuda":
            raise ConfigError(
                f"train.precision fp16 needs a CUDA GPU (training on {device.type} has no fp16 "
                "autocast with loss scaling); use --precision bf16 or fp32"
            )
        if name == "bf16" and device.type == "mps":
            raise ConfigError("train.precision bf16 is not supported on MPS; use fp32")
        # fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range
        self.scaler = torch.amp.GradScaler("cuda") if name == "fp16" else None
        if name == "bf16" and not _rnn_runs(model, device):
            model.rnn_fp32 = True
            kernels = "cuDNN" if device.type == "cuda" else "oneDNN" if device.type == "cpu" else ""
            log.warning(
                "bf16: %s cannot run this %s in bf16 here, so the recurrent layer runs in fp32 "
                "and the embedding and output layers in bf16",
                kernels or device.type,
                model.cfg.cell.upper(),
            )

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Gradients of `loss`; under fp16 of the scaled loss (small gradients would
        underflow to zero)."""
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide fp16's scaled gradients back to their true size, so that clipping sees true
        magnitudes; nothing to do at fp32 or bf16."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
            self.scaler.update()

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def _rnn_runs(model: torch.nn.Module, device: torch.device) -> bool:
    """Whether the model's RNN runs forward and backward under bf16 autocast here."""
    rnn = model.rnn
    try:
        x = torch.zeros(3, 2, rnn.input_size, device=device, requires_grad=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out, _ = rnn(x)
        out.float().sum().backward()
        model.zero_grad(set_to_none=True)
        return True
    except RuntimeError:
        model.zero_grad(set_to_none=True)
        return False
