"""`Vocab`: token <-> id mapping with `<unk>`, frequency cut-offs and JSON persistence.

At word level a vocabulary may spell rare words out (`rare="chars"`): every character of the
training text (seen at least `min_freq` times) is an entry, beside the most frequent words,
and a word outside the vocabulary becomes the ids of its characters instead of one `<unk>`.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

UNK = "<unk>"
SPECIALS = (UNK,)
FORMAT_VERSION = 1


class Vocab:
    """An ordered token list; id = position. Specials come first, then by frequency."""

    def __init__(
        self,
        tokens: Sequence[str],
        counts: Sequence[int] | None = None,
        level: str = "char",
        rare: str = "unk",
    ):
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")
        self.counts = list(counts) if counts is not None else [0] * len(self.itos)
        self.level = level
        self.rare = rare  # "chars": unknown words are spelled out (see `pieces`)
        self.unk_id = self.stoi[UNK]

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        min_freq: int = 1,
        max_size: int | None = None,
        level: str = "char",
    ) -> Vocab:
        """Count tokens in one pass; order by frequency, ties broken by the token itself."""
        return cls.from_counts(Counter(tokens).items(), min_freq, max_size, level)

    @classmethod
    def from_counts(
        cls,
        counts: Iterable[tuple[str, int]],
        min_freq: int = 1,
        max_size: int | None = None,
        level: str = "char",
        rare: str = "unk",
    ) -> Vocab:
        """From (token, count) pairs with distinct tokens, as `build` would order them. With
        `rare="chars"` the characters come first (all of those seen `min_freq` times, up to
        `max_size`), the most frequent longer words fill the rest, and the counts are those
        of the text with every other word spelled out."""
        counter = {t: int(c) for t, c in counts if c > 0 and t not in SPECIALS}
        room = None if max_size is None else max(0, max_size - len(SPECIALS))
        if rare == "chars":
            return cls._spelling(counter, min_freq, room, level)
        kept = [(t, c) for t, c in counter.items() if c >= min_freq]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        if room is not None:
            kept = kept[:room]
        kept_set = {t for t, _ in kept}
        unk_count = sum(c for t, c in counter.items() if t not in kept_set)
        return cls(
            [*SPECIALS, *(t for t, _ in kept)], [unk_count, *(c for _, c in kept)], level=level
        )

    @classmethod
    def _spelling(
        cls, counter: dict[str, int], min_freq: int, room: int | None, level: str
    ) -> Vocab:
        chars: Counter[str] = Counter()
        for t, c in counter.items():
            for ch in t:
                chars[ch] += c
        alphabet = sorted(
            ((ch, c) for ch, c in chars.items() if c >= min_freq), key=lambda x: (-x[1], x[0])
        )
        if room is not None:
            alphabet = alphabet[:room]
        keep = {ch for ch, _ in alphabet}
        words = sorted(
            ((t, c) for t, c in counter.items() if len(t) > 1 and c >= min_freq),
            key=lambda x: (-x[1], x[0]),
        )
        if room is not None:
            words = words[: room - len(keep)]
        keep.update(t for t, _ in words)
        final: Counter[str] = Counter()  # the counts of the spelled-out text
        unk = 0
        for t, c in counter.items():
            if t in keep:
                final[t] += c
                continue
            for ch in t:
                if ch in keep:
                    final[ch] += c
                else:
                    unk += c
        ordered = sorted(keep, key=lambda t: (-final[t], t))
        return cls([*SPECIALS, *ordered], [unk, *(final[t] for t in ordered)], level, "chars")

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def pieces(self, token: str) -> list[int]:
        """The ids `token` becomes: its own id; outside the vocabulary `<unk>`, or under
        `rare="chars"` the ids of its characters (`<unk>` for a character never seen)."""
        i = self.stoi.get(token)
        if i is not None:
            return [i]
        if self.rare == "chars" and token:
            return [self.stoi.get(ch, self.unk_id) for ch in token]
        return [self.unk_id]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; a token not in the vocabulary becomes `pieces(token)`."""
        get, unk = self.stoi.get, self.unk_id
        if self.rare == "chars":
            return [i for t in tokens for i in self.pieces(t)]
        return [get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def suggest(self, token: str, n: int = 5) -> list[str]:
        """Vocabulary entries close to `token`: sharing characters first, then by spelling."""
        shared = [t for t in self.itos[len(SPECIALS) :] if t.strip() and set(t) & set(token)]
        shared.sort(key=lambda t: -self.counts[self.stoi[t]])
        close = difflib.get_close_matches(token, self.itos[len(SPECIALS) :], n=n, cutoff=0.5)
        out: list[str] = []
        for t in [*close, *shared]:
            if t not in out:
                out.append(t)
        if not out:  # nothing resembles it: offer the most frequent printable entries
            out = [t for t in self.itos[len(SPECIALS) :] if t.strip()][:n]
        return out[:n]

    def to_dict(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "level": self.level,
            "tokens": self.itos,
            "counts": self.counts,
            "rare": self.rare,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=0)

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        if not isinstance(data, dict) or "tokens" not in data:
            raise ValueError("not a lyricgen vocabulary (no 'tokens' list)")
        tokens = data["tokens"]
        if not isinstance(tokens, list) or UNK not in tokens:
            raise ValueError("vocabulary has no '<unk>' entry")
        rare = data.get("rare", "unk")
        if rare not in ("unk", "chars"):
            raise ValueError(f"vocabulary 'rare' is {rare!r}; expected unk or chars")
        return cls(tokens, data.get("counts"), level=data.get("level", "char"), rare=rare)


def id_dtype(largest: int) -> np.dtype:
    """The one rule for storing token ids: uint16 when every value to be stored (ids, and
    any separator a caller adds) is at most `largest` <= 65535, else uint32."""
    return np.dtype(np.uint16 if largest <= np.iinfo(np.uint16).max else np.uint32)


def type_pieces(types: Sequence[str], vocab: Vocab) -> tuple[np.ndarray, np.ndarray] | None:
    """For raw types that spell out to several ids (`Vocab.pieces`): each type's number of
    ids and all their ids end to end; None when every type is one id (always the case
    unless the vocabulary spells rare words out)."""
    if vocab.rare != "chars":
        return None
    pieces = [vocab.pieces(t) for t in types]
    if all(len(p) == 1 for p in pieces):
        return None
    lengths = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
    flat = np.fromiter((i for p in pieces for i in p), np.int64, int(lengths.sum()))
    return lengths, flat


def expand_pieces(
    raw: np.ndarray, table: tuple[np.ndarray, np.ndarray], vocab: Vocab
) -> np.ndarray:
    """The vocabulary ids of a raw-id stream under `type_pieces`' table."""
    lengths, flat = table
    first = np.cumsum(lengths) - lengths  # where each type's pieces begin in `flat`
    n = lengths[raw]
    total = int(n.sum())
    # piece k of the output: the (k - start of its token)-th piece of its token's type
    starts = np.repeat(np.cumsum(n) - n, n)
    within = np.arange(total, dtype=np.int64) - starts
    ids = flat[np.repeat(first[raw], n) + within]
    return ids.astype(id_dtype(len(vocab) - 1))


def stream_ids(raw: np.ndarray, types: Sequence[str], vocab: Vocab) -> np.ndarray | None:
    """The vocabulary ids of a raw-id stream whose tokens are `types`, when some type spells
    out to several ids (`Vocab.pieces`); None when every type is one id, so the caller can
    keep mapping raw ids through a table instead of holding the ids in memory."""
    table = type_pieces(types, vocab)
    return None if table is None else expand_pieces(raw, table, vocab)


def type_lut(types: Sequence[str], vocab: Vocab) -> np.ndarray:
    """The vocabulary id (int64) of each raw type, `<unk>` where it has none."""
    get, unk = vocab.stoi.get, vocab.unk_id
    return np.fromiter((get(t, unk) for t in types), np.int64, len(types))


def token_ids(raw: np.ndarray, types: Sequence[str], vocab: Vocab) -> np.ndarray:
    """The vocabulary ids of a raw-id stream, in memory: spelled out where the vocabulary
    spells rare words (`stream_ids`), else one id per raw token through a lookup table."""
    spelled = stream_ids(raw, types, vocab)
    if spelled is not None:
        return spelled
    return type_lut(types, vocab).astype(id_dtype(len(vocab)))[raw]
