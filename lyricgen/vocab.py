"""`Vocab`: token <-> id mapping with `<unk>`, frequency cut-offs and JSON persistence."""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterable, Sequence

UNK = "<unk>"
SPECIALS = (UNK,)
FORMAT_VERSION = 1


class Vocab:
    """An ordered token list; id = position. Specials come first, then by frequency."""

    def __init__(
        self, tokens: Sequence[str], counts: Sequence[int] | None = None, level: str = "char"
    ):
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")
        self.counts = list(counts) if counts is not None else [0] * len(self.itos)
        self.level = level
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
    ) -> Vocab:
        """From (token, count) pairs with distinct tokens, as `build` would order them."""
        counter = {t: int(c) for t, c in counts if c > 0 and t not in SPECIALS}
        kept = [(t, c) for t, c in counter.items() if c >= min_freq]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            kept = kept[: max(0, max_size - len(SPECIALS))]
        kept_set = {t for t, _ in kept}
        unk_count = sum(c for t, c in counter.items() if t not in kept_set)
        return cls(
            [*SPECIALS, *(t for t, _ in kept)], [unk_count, *(c for _, c in kept)], level=level
        )

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; tokens not in the vocabulary become `<unk>`."""
        get, unk = self.stoi.get, self.unk_id
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
        return cls(tokens, data.get("counts"), level=data.get("level", "char"))
