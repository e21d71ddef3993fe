"""`LyricsModel`: Embedding -> RNN/LSTM/GRU -> Linear, one interface for every cell."""

from __future__ import annotations

import torch
from torch import nn

from lyricgen.config import CELLS, ModelConfig
from lyricgen.errors import ConfigError

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class LyricsModel(nn.Module):
    """A recurrent language model: `forward(ids, hidden) -> (logits, hidden)`."""

    def __init__(self, vocab_size: int, cfg: ModelConfig):
        super().__init__()
        if cfg.cell not in CELLS:
            raise ValueError(f"unknown cell {cfg.cell!r}; choose one of {', '.join(CELLS)}")
        if cfg.bidirectional:
            raise ValueError("a left-to-right generator cannot use a bidirectional RNN")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, cfg.embedding_dim)
        self.drop = nn.Dropout(cfg.dropout)
        # nn.RNN/LSTM/GRU only apply dropout between layers, so one layer gets none there.
        rnn_dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        kwargs = dict(
            input_size=cfg.embedding_dim,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=rnn_dropout,
            # The RNN always runs time-major: oneDNN's LSTM and cuDNN want (T, B, E), and a
            # batch-first nn.LSTM would transpose and copy its input and output every call.
            batch_first=False,
        )
        if cfg.cell == "rnn":
            self.rnn = nn.RNN(nonlinearity=cfg.nonlinearity, **kwargs)
        elif cfg.cell == "lstm":
            self.rnn = nn.LSTM(**kwargs)
        else:
            self.rnn = nn.GRU(**kwargs)
        self.decoder = nn.Linear(cfg.hidden_size, vocab_size)
        if cfg.tie_weights:
            # Press & Wolf 2017: sharing input and output embeddings regularises and saves V*H.
            self.decoder.weight = self.embedding.weight
        self.rnn_fp32 = False  # set where the RNN kernel has no bf16 (lyricgen.precision)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if not self.cfg.tie_weights:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(
        self, ids: torch.Tensor, hidden: Hidden | None = None, time_major: bool = False
    ) -> tuple[torch.Tensor, Hidden]:
        """ids (B, T) -> logits (B, T, V) and the hidden state after the last step; with
        `time_major`, ids (T, B) -> logits (T, B, V) (what training uses: no copies)."""
        if not time_major:
            ids = ids.t()  # (T, B)
        x = self.drop(self.embedding(ids))  # (T, B, E)
        if self.rnn_fp32:  # the RNN kernel has no bf16 here: see lyricgen.precision
            with torch.autocast(x.device.type, enabled=False):
                out, hidden = self.rnn(x.float(), _float(hidden))
        else:
            out, hidden = self.rnn(x, hidden)  # (T, B, H)
        logits = self.decoder(self.drop(out))  # (T, B, V)
        if not time_major:
            logits = logits.transpose(0, 1)  # (B, T, V), a view
        return logits, hidden


def map_hidden(hidden: Hidden | None, fn) -> Hidden | None:
    """Apply `fn` to the hidden state's tensor, or to both of an LSTM's (h, c)."""
    if hidden is None:
        return None
    if isinstance(hidden, tuple):
        return tuple(fn(h) for h in hidden)
    return fn(hidden)


def _float(hidden: Hidden | None) -> Hidden | None:
    return map_hidden(hidden, lambda h: h.float())


def detach(hidden: Hidden | None) -> Hidden | None:
    """Cut the graph between batches (truncated BPTT) but keep the state's values."""
    return map_hidden(hidden, lambda h: h.detach())


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if name == "mps" and not mps:
        raise ConfigError(
            "--device mps: Apple's MPS is not available here; use --device cpu or auto"
        )
    return torch.device(name)
