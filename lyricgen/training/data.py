"""Token-id streams, sliding windows and stateful (truncated-BPTT) batches.

A `Stream` is a (possibly memory-mapped) array of raw token ids plus lookup tables from a
raw id to its vocabulary id, its length in characters and its spelling cost, so training
and scoring touch only the windows they use and memory does not grow with the corpus.
Batches come out time-major, (T, B), the layout the RNN kernels want.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lyricgen.corpus.text import CONTENT, LINE_BREAK, NEWLINE, token_kind
from lyricgen.corpus.vocab import UNK, Vocab, expand_pieces, type_lut, type_pieces
from lyricgen.errors import CorpusError


@dataclass
class Stream:
    """A corpus split as raw token ids and the tables that turn them into vocabulary ids,
    character counts and (for tokens outside the vocabulary) spelling costs, for bpc."""

    raw: np.ndarray  # (N,) raw ids, often a read-only memory map
    lut: np.ndarray  # (n_types,) int64: raw id -> vocabulary id
    chars_of: np.ndarray  # (n_types,) int64: characters each raw type stands for
    spell_of: np.ndarray  # (n_types,) float64: nats to spell out an unknown type, else 0
    kind_of: np.ndarray | None = None  # (n_types,) int8: text.token_kind of each type

    def __len__(self) -> int:
        return len(self.raw)

    def ids(self, index=slice(None)) -> np.ndarray:
        """Vocabulary ids (int64) at `index` (a slice or an integer array of any shape)."""
        return self.lut[self.raw[index]]

    def subset(self, start: int, stop: int | None = None) -> Stream:
        return Stream(self.raw[start:stop], self.lut, self.chars_of, self.spell_of, self.kind_of)


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


def spelling_costs(words: Sequence[str], vocab: Vocab) -> np.ndarray:
    """Nats to spell out each word with `spelling_model`'s character unigrams (vectorised:
    a word vocabulary can leave hundreds of thousands of types unknown)."""
    if not words:
        return np.zeros(0, dtype=np.float64)
    logp, unseen = spelling_model(vocab)
    lengths = np.fromiter(map(len, words), np.int64, len(words))
    points = np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    distinct, which = np.unique(points, return_inverse=True)
    char_logp = np.array([logp.get(chr(c), unseen) for c in distinct.tolist()])
    owner = np.repeat(np.arange(len(words)), lengths)
    return -np.bincount(owner, weights=char_logp[which], minlength=len(words))


def make_streams_from_types(
    raws: Sequence[np.ndarray], types: Sequence[str], vocab: Vocab
) -> list[Stream]:
    """One `Stream` per raw-id array in `raws`, all over the same `types` (a corpus's
    training and held-out parts): the per-type tables are built once. At level 'space'
    each word also counts the space that separates it.

    A token outside the vocabulary is scored as `<unk>`, which would make bits per
    character look better than they are (one `<unk>` stands for any unknown word). So each
    such token also carries the cost of spelling it out with a character unigram model;
    `evaluate` adds it to bpc, making word and char models comparable (open-vocabulary bpc).
    A vocabulary that spells rare words out (`Vocab.rare == "chars"`) gets a stream of its
    own ids instead (in memory, 2 or 4 bytes a token), where the model itself scores the
    characters of each rare word.
    """
    extra = 1 if vocab.level == "space" else 0
    pieces = type_pieces(types, vocab)
    if pieces is not None:
        # rare words spelled out in characters: the stream holds vocabulary ids, and only a
        # character never seen in training (an <unk>) costs its spelling
        itos = vocab.itos
        chars_of = np.fromiter((1 if t == NEWLINE else max(1, len(t)) for t in itos), np.int64)
        chars_of[vocab.unk_id] = 1  # an <unk> here stands for one character
        spell_of = np.zeros(len(itos), dtype=np.float64)
        spell_of[vocab.unk_id] = -spelling_model(vocab)[1]
        lut = np.arange(len(itos), dtype=np.int64)
        kind_of = token_kinds(itos)
        return [
            Stream(expand_pieces(raw, pieces, vocab), lut, chars_of, spell_of, kind_of)
            for raw in raws
        ]
    lut = type_lut(types, vocab)
    chars_of = np.fromiter(
        (1 if t == NEWLINE else len(t) + extra for t in types), np.int64, len(types)
    )
    spell_of = np.zeros(len(types), dtype=np.float64)
    unknown = np.flatnonzero(lut == vocab.unk_id)
    spell_of[unknown] = spelling_costs([types[i] for i in unknown.tolist()], vocab)
    return [Stream(raw, lut, chars_of, spell_of, token_kinds(types)) for raw in raws]


def token_kinds(types: Sequence[str]) -> np.ndarray:
    """`text.token_kind` of each type (int8), for `song_starts`."""
    return np.fromiter(map(token_kind, types), np.int8, len(types))


def make_stream_from_types(raw: np.ndarray, types: Sequence[str], vocab: Vocab) -> Stream:
    """`make_streams_from_types` for one raw-id array."""
    return make_streams_from_types([raw], types, vocab)[0]


def make_stream(tokens: list[str], vocab: Vocab, level: str | None = None) -> Stream:
    """A stream from an in-memory token list (short texts; corpora go through tokcache)."""
    index: dict[str, int] = {}
    raw = np.fromiter((index.setdefault(t, len(index)) for t in tokens), np.uint32, len(tokens))
    return make_stream_from_types(raw, list(index), vocab)


def window_starts(n_tokens: int, seq_len: int, stride: int) -> np.ndarray:
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
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def _to_torch(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


class WindowDataset(torch.utils.data.Dataset):
    """Overlapping windows over one stream: item i is (input, target), each (T,)."""

    def __init__(self, stream: Stream, seq_len: int, stride: int):
        self.stream = stream
        self.seq_len = seq_len
        self.starts = window_starts(len(stream), seq_len, stride)
        self._offsets = np.arange(seq_len + 1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch(np.array([i]))
        return x[:, 0], y[:, 0]

    def batch(self, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather many windows at once: returns x, y of shape (T, B), time-major."""
        rows = self.stream.ids(self.starts[np.asarray(index), None] + self._offsets)  # (B, T+1)
        cols = _to_torch(rows.T)  # (T+1, B)
        return cols[:-1], cols[1:]


class ShuffledBatches:
    """One epoch of batches of window indices, a pure function of (seed, epoch), so a resumed
    run replays the same order. With several processes, each global batch is cut into
    `world` equal, disjoint parts and process `rank` trains on its part, so the global batch
    and the order do not depend on the number of processes."""

    def __init__(
        self,
        dataset: WindowDataset,
        batch_size: int,
        seed: int,
        epoch: int,
        rank: int = 0,
        world: int = 1,
    ):
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        self.perm = torch.randperm(len(dataset), generator=g).numpy()
        self.dataset, self.batch_size, self.rank, self.world = dataset, batch_size, rank, world
        self.n = self.count(len(dataset), batch_size, world)

    @staticmethod
    def count(windows: int, batch_size: int, world: int = 1) -> int:
        """Batches in an epoch: one process keeps a last partial batch; several drop it so
        every process has equal work."""
        return math.ceil(windows / batch_size) if world == 1 else windows // batch_size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        part = self.batch_size // self.world
        lo = i * self.batch_size + self.rank * part
        hi = lo + part if self.world > 1 else lo + self.batch_size
        return self.dataset.batch(self.perm[lo:hi])


def song_starts(stream: Stream, chunk: int = 1 << 24) -> np.ndarray:
    """Where the songs of `stream` start, as the token cache's split finds them: position 0,
    then the start of every line with content that follows a blank line (`text.is_blank`:
    its tokens are all whitespace) that follows content. A song runs to the next start, its
    closing blank lines included. Without `stream.kind_of`, or without blank lines, the
    stream is one song. The stream is read `chunk` tokens at a time (it may be a memory map
    of any size), keeping only the unfinished line's state between chunks."""
    starts = [np.zeros(1, dtype=np.int64)]
    if stream.kind_of is None:
        return starts[0]
    kind, raw, n = stream.kind_of, stream.raw, len(stream.raw)
    line_start, line_content = 0, False  # the line not yet ended
    seen, prev_blank = False, False  # content in ended lines; the last ended line was blank

    def ended(begins: np.ndarray, content: np.ndarray) -> None:
        """Lines that start at `begins` have ended; `content`: which of them hold some."""
        nonlocal seen, prev_blank
        before = np.concatenate([[prev_blank], ~content[:-1]])  # the line above is blank
        seen_above = np.logical_or.accumulate(np.concatenate([[seen], content[:-1]]))
        starts.append(begins[content & before & seen_above].astype(np.int64))
        seen, prev_blank = bool(seen_above[-1] or content[-1]), not content[-1]

    for lo in range(0, n, chunk):
        k = kind[raw[lo : lo + chunk]]
        breaks = np.flatnonzero(k == LINE_BREAK)
        is_content = k == CONTENT
        if len(breaks):
            before = np.concatenate([[0], np.cumsum(is_content)])  # content tokens in k[:i]
            begin = np.concatenate([[0], breaks[:-1] + 1])
            content = before[breaks] > before[begin]
            content[0] |= line_content
            ended(np.concatenate([[line_start], lo + breaks[:-1] + 1]), content)
            line_start, line_content = lo + int(breaks[-1]) + 1, False
            is_content = is_content[breaks[-1] + 1 :]
        line_content |= bool(is_content.any())
    if line_start < n:  # a last line without a line break
        ended(np.array([line_start]), np.array([line_content]))
    return np.concatenate(starts)


class StatefulBatches:
    """Consecutive (x, y) chunks of shape (<=T, b); column j of batch i+1 continues column j
    of batch i, so the hidden state can be carried across batches (truncated BPTT).

    The stream is laid out as `batch_size` contiguous columns; process `rank` of `world`
    owns columns [rank * b, (rank + 1) * b) with b = batch_size // world.

    Given `songs` (their start positions, `song_starts`), `set_epoch` lays the songs out in
    a new order before the columns are cut: a function of `seed` and the epoch only, so every
    process and every resume sees the same layout. Without it, every epoch would read the
    same songs after the same songs, in the same 64-token windows, and the model could learn
    the order of the training file, which held-out text does not share."""

    def __init__(
        self,
        stream: Stream,
        batch_size: int,
        seq_len: int,
        rank: int = 0,
        world: int = 1,
        songs: np.ndarray | None = None,
        seed: int = 0,
    ):
        if len(stream) < batch_size * 2:
            raise CorpusError(
                f"the training text has {len(stream)} tokens, too few for {batch_size} stateful "
                "streams; lower data.batch_size or add more text"
            )
        self.stream, self.seq_len = stream, seq_len
        self.length = len(stream) // batch_size  # tokens per column
        b = batch_size // world
        self.columns = np.arange(rank * b, (rank + 1) * b, dtype=np.int64) * self.length
        self.n = math.ceil((self.length - 1) / seq_len)
        self.songs = songs if songs is not None and len(songs) > 1 else None
        self.seed = seed
        # this epoch's order: the songs' start positions, and where each begins in the layout
        self._layout: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        """Lay the songs out in this epoch's order (no-op without songs)."""
        if self.songs is None:
            return
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.songs))
        lengths = np.diff(self.songs, append=len(self.stream))[order]
        offsets = np.zeros(len(order), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        self._layout = (self.songs[order], offsets)

    def _positions(self, index: np.ndarray) -> np.ndarray:
        """Stream positions of laid-out positions."""
        if self._layout is None:
            return index
        starts, offsets = self._layout
        song = np.searchsorted(offsets, index, side="right") - 1
        return starts[song] + (index - offsets[song])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = i * self.seq_len
        t = min(self.seq_len, self.length - 1 - start)
        index = np.arange(start, start + t + 1, dtype=np.int64)[:, None] + self.columns
        cols = _to_torch(self.stream.ids(self._positions(index)))  # (t+1, b)
        return cols[:-1], cols[1:]


def eval_chunks(
    stream: Stream, batch_size: int, seq_len: int, rank: int = 0, world: int = 1
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Non-overlapping (x, y, y_chars, y_spell) chunks, time-major (T, b), for scoring a whole
    stream with carried state, gathered a chunk at a time.

    The stream is cut into at most `batch_size` contiguous columns; each target is scored
    exactly once (the last few tokens that do not fill a column are dropped). With several
    processes, process `rank` scores columns rank, rank + world, ..."""
    n_targets = len(stream) - 1
    b = max(1, min(batch_size, n_targets // max(1, seq_len)))
    length = n_targets // b
    if length < 1:
        return
    columns = (np.arange(b, dtype=np.int64) * length)[rank::world]
    if len(columns) == 0:
        return
    for i in range(0, length, seq_len):
        j = min(i + seq_len, length)
        index = np.arange(i, j + 1, dtype=np.int64)[:, None] + columns  # (T+1, b)
        raw = stream.raw[index]
        ids = _to_torch(stream.lut[raw])
        target = raw[1:]
        yield (
            ids[:-1],
            ids[1:],
            torch.from_numpy(stream.chars_of[target]),
            torch.from_numpy(stream.spell_of[target]),
        )
