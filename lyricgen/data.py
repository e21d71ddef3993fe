"""Token-id streams, sliding windows and stateful (truncated-BPTT) batches."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from lyricgen.errors import CorpusError
from lyricgen.text import NEWLINE
from lyricgen.vocab import UNK, Vocab


@dataclass
class Stream:
    """A corpus split as token ids, with each token's length in characters and, for tokens
    outside the vocabulary, the cost in nats of spelling them out (both for bpc)."""

    ids: torch.Tensor  # (N,) int64
    chars: torch.Tensor  # (N,) int64
    spell: torch.Tensor | None = None  # (N,) float64, 0 for known tokens

    def __len__(self) -> int:
        return len(self.ids)


def spelling_model(vocab: Vocab) -> tuple[dict[str, float], float]:
    """Character unigram log-probabilities from the vocabulary's training counts (add-one
    smoothed), and the log-probability of a character never seen."""
    counts: Counter[str] = Counter()
    for tok, n in zip(vocab.itos, vocab.counts, strict=True):
        if tok != UNK:
            for ch in tok:
                counts[ch] += n
    denom = sum(counts.values()) + len(counts) + 1
    return {ch: math.log((n + 1) / denom) for ch, n in counts.items()}, math.log(1 / denom)


def make_stream(tokens: list[str], vocab: Vocab, level: str) -> Stream:
    """Encode tokens; at level 'space' each word also counts the space that separates it.

    A token outside the vocabulary is scored as `<unk>`, which would make bits per
    character look better than they are (one `<unk>` stands for any unknown word). So each
    such token also carries the cost of spelling it out with a character unigram model;
    `evaluate` adds it to bpc, making word and char models comparable (open-vocabulary bpc).
    """
    extra = 1 if level == "space" else 0
    chars = [1 if t == NEWLINE else len(t) + extra for t in tokens]
    ids = vocab.encode(tokens)
    spell = [0.0] * len(tokens)
    if vocab.unk_id in ids:
        logp, unseen = spelling_model(vocab)
        for i, (tok, tid) in enumerate(zip(tokens, ids, strict=True)):
            if tid == vocab.unk_id:
                spell[i] = -sum(logp.get(ch, unseen) for ch in tok)
    return Stream(
        torch.tensor(ids, dtype=torch.long),
        torch.tensor(chars, dtype=torch.long),
        torch.tensor(spell, dtype=torch.float64),
    )


def window_starts(n_tokens: int, seq_len: int, stride: int) -> list[int]:
    """Start positions such that every token after the first is a target at least once.

    A window starting at s reads ids[s:s+seq_len] and predicts ids[s+1:s+seq_len+1]. The
    tutorial's dataset used starts 0..n/seq_len (stride 1, so only ~3% of the corpus);
    here starts advance by `stride` <= seq_len and a last window is aligned to the end.
    """
    last = n_tokens - seq_len - 1
    if last < 0:
        raise CorpusError(
            f"the training text has {n_tokens} tokens, fewer than one window of "
            f"data.seq_len + 1 = {seq_len + 1}; lower data.seq_len or add more text"
        )
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


class WindowDataset(torch.utils.data.Dataset):
    """Overlapping windows over one token stream: item i is (input, target), each (T,)."""

    def __init__(self, ids: torch.Tensor, seq_len: int, stride: int):
        self.ids = ids
        self.seq_len = seq_len
        self.starts = torch.tensor(window_starts(len(ids), seq_len, stride), dtype=torch.long)
        self._offsets = torch.arange(seq_len + 1)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch(torch.tensor([i]))
        return x[0], y[0]

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather many windows at once: returns x, y of shape (B, T)."""
        rows = self.ids[self.starts[index, None] + self._offsets]  # (B, T+1)
        return rows[:, :-1], rows[:, 1:]


def shuffled_batches(
    dataset: WindowDataset, batch_size: int, seed: int, epoch: int
) -> list[torch.Tensor]:
    """The epoch's batches of window indices; a pure function of (seed, epoch) so a resumed
    run replays exactly the same order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(len(dataset), generator=g)
    return [perm[i : i + batch_size] for i in range(0, len(perm), batch_size)]


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Lay a stream out as `batch_size` contiguous columns: (B, N // B)."""
    n = len(ids) // batch_size
    return ids[: n * batch_size].view(batch_size, n)


def stateful_batches(
    ids: torch.Tensor, batch_size: int, seq_len: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive (x, y) chunks of shape (B, <=T); row b of batch i+1 continues row b of
    batch i, so the hidden state can be carried across batches (truncated BPTT)."""
    if len(ids) < batch_size * 2:
        raise CorpusError(
            f"the training text has {len(ids)} tokens, too few for {batch_size} stateful "
            "streams; lower data.batch_size or add more text"
        )
    cols = batchify(ids, batch_size)  # (B, L)
    out = []
    for i in range(0, cols.size(1) - 1, seq_len):
        t = min(seq_len, cols.size(1) - 1 - i)
        out.append((cols[:, i : i + t], cols[:, i + 1 : i + 1 + t]))
    return out


def eval_chunks(
    stream: Stream, batch_size: int, seq_len: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Non-overlapping (x, y, y_chars) chunks for scoring a whole stream with carried state.

    The stream is cut into at most `batch_size` contiguous columns; each target is scored
    exactly once (the last few tokens that do not fill a column are dropped)."""
    n_targets = len(stream) - 1
    b = max(1, min(batch_size, n_targets // max(1, seq_len)))
    length = n_targets // b
    if length < 1:
        return
    idx = torch.arange(b)[:, None] * length + torch.arange(length + 1)  # (B, L+1)
    ids, chars = stream.ids[idx], stream.chars[idx]
    spell = (
        stream.spell[idx]
        if stream.spell is not None
        else torch.zeros(idx.shape, dtype=torch.float64)
    )
    for i in range(0, length, seq_len):
        j = min(i + seq_len, length)
        yield ids[:, i:j], ids[:, i + 1 : j + 1], chars[:, i + 1 : j + 1], spell[:, i + 1 : j + 1]
