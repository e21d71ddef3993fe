"""The two backends of the generation loop, each a `lyricgen.craft.stepper.Stepper`.

`TorchStepper` drives a `LyricsModel` (any device); `NumpyStepper` drives the torch-free
`NumpyLM` used for fast CPU generation. torch is imported only by `TorchStepper` itself.
"""

from __future__ import annotations

import numpy as np

from lyricgen.backends.numpy_rnn import NumpyLM


class TorchStepper:
    """Steps a `LyricsModel`; logits come back as NumPy arrays (B, V)."""

    def __init__(self, model):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.device = next(model.parameters()).device

    def start(self, ids: list[int], batch: int):
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor([ids] * batch, dtype=torch.long, device=self.device)  # (B, P)
            logits, hidden = self.model(x)
        return logits[:, -1].float().cpu().numpy(), hidden

    def step(self, tokens: np.ndarray, hidden):
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64)).to(self.device)
            logits, hidden = self.model(x[:, None], hidden)  # one token per row: (B, 1)
        return logits[:, -1].float().cpu().numpy(), hidden

    def select(self, hidden, index: np.ndarray):
        idx = self.torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device)
        if isinstance(hidden, tuple):
            return tuple(h.index_select(1, idx) for h in hidden)
        return hidden.index_select(1, idx)

    def replace_rows(self, dst, src, rows: np.ndarray):
        idx = self.torch.from_numpy(np.asarray(rows, dtype=np.int64)).to(self.device)
        with self.torch.inference_mode():  # the states are inference tensors
            for d, s in zip(*((dst, src) if isinstance(dst, tuple) else ((dst,), (src,))),
                            strict=True):  # fmt: skip
                d.index_copy_(1, idx, s.index_select(1, idx))
        return dst


class NumpyStepper:
    """Steps a `NumpyLM` (no torch)."""

    def __init__(self, lm: NumpyLM):
        self.lm = lm
        self.lstm = lm.rnn.cell == "lstm"

    def start(self, ids: list[int], batch: int):
        logits, state = self.lm.forward(np.array([ids], dtype=np.int64))  # one row, then copy
        rows = np.zeros(batch, dtype=np.int64)
        return np.repeat(logits[:, -1], batch, axis=0), self.select(state, rows)

    def step(self, tokens: np.ndarray, state):
        x = self.lm.embedding[np.asarray(tokens, dtype=np.int64)]  # (B, E)
        h, state = self.lm.rnn.step(x, state)  # (B, H)
        return self.lm.logits(h), state  # (B, V)

    def select(self, state, index: np.ndarray):
        index = np.asarray(index, dtype=np.int64)
        if self.lstm:
            return tuple(s[:, index] for s in state)
        return state[:, index]

    def replace_rows(self, dst, src, rows: np.ndarray):
        rows = np.asarray(rows, dtype=np.int64)
        for d, s in zip(*((dst, src) if self.lstm else ((dst,), (src,))), strict=True):
            d[:, rows] = s[:, rows]
        return dst
