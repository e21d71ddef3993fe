"""How the generation loop reaches a model: the `Stepper` interface.

A stepper turns token ids into next-token logits (NumPy arrays, (B, V)) and carries the
recurrent state between calls, so the loop in `generate` does not know which library runs
the network. Its implementations live in `lyricgen.backends.steppers` (torch and NumPy); the
craft wing sees only this interface and never imports torch.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Stepper(Protocol):
    """What `generate` needs from a model."""

    def start(self, ids: list[int], batch: int) -> tuple[np.ndarray, Any]:
        """Feed the context `ids` and return (logits (batch, V), state) for `batch` copies."""

    def step(self, tokens: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """Feed one token per row (B,) and return (logits (B, V), new state)."""

    def select(self, state: Any, index: np.ndarray) -> Any:
        """Reorder or duplicate the rows of `state` (beam search); always a new state."""

    def replace_rows(self, dst: Any, src: Any, rows: np.ndarray) -> Any:
        """`dst` with its `rows` replaced by those of `src` (same batch size; dst is one
        that `select` made, so it may be changed in place); returns it."""
