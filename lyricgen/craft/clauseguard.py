"""The compact copy guard of a shipped model: a Bloom filter of the training text's clauses.

The suffix-array copy index (`copyindex.py`) answers any `--max-copy N` exactly, but for the
22M characters of Tang and Song verse it would weigh hundreds of megabytes. A model that
ships inside the package carries this instead: 8 MiB of bits that hold three kinds of key
from every line of the training text, a clause being a run of characters between marks
(，。？！ and the like):

- every run of 7 consecutive characters inside a clause (a 七言 clause is one such run);
- every clause of 5 or 6 characters;
- every line of 5 or more characters whose clauses are all shorter than 5 (春去也，花落也).

A character that would complete a key is masked while the line is written, so the guard
promises, with no exception: no clause of 5 or more characters is a clause of the training
text, no 7 consecutive characters of a clause occur inside one of its clauses (the default
`--max-copy 6` within clauses), and so no line of 5 or more characters is one of its lines.
Across a mark it promises nothing (明月光，疑是地 is 7 characters of a line but two clauses).

A Bloom filter has no false negatives, so the promise holds exactly; its false positives
only mask a character that would have been fine. With K = 4 probes into 2^26 bits for about
2.8M keys, the expected rate is 0.06% (measured at export, `copy_guard.json`).

Keys are hashed from Unicode code points, not token ids, so the filter does not depend on a
vocabulary: a run fine-tuned from the shipped model (a larger vocabulary) could use it too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lyricgen.corpus.text import is_han
from lyricgen.craft.constraints import Constraint, SampleState, TokenTable
from lyricgen.errors import RunDirError

GUARD_FILE = "copy_guard.npy"
GUARD_META = "copy_guard.json"
FORMAT = 1
BITS = 26  # 2^26 bits: 8 MiB
PROBES = 4
GRAM = 7  # characters in a within-clause run (the default --max-copy 6, plus one)
MIN_CLAUSE = 5
SEPARATOR = 0  # the code point a line key puts between clauses
_P = 0x100000001B3  # FNV-1a's 64-bit prime, as the multiplier of a polynomial hash
_MASK = (1 << 64) - 1
SEEDS = {"gram": 0x9E3779B97F4A7C15, "clause": 0xC2B2AE3D27D4EB4F, "line": 0x165667B19E3779F9}


def is_mark(ch: str) -> bool:
    """Whether `ch` separates clauses: anything but a Han character, letter or digit."""
    return not (is_han(ch) or ch.isalnum())


def _roll(h: int, codes: Iterable[int]) -> int:
    for c in codes:
        h = (h * _P + c + 1) & _MASK
    return h


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 values (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _probes(h: np.ndarray, bits: int) -> np.ndarray:
    """(n, PROBES) bit positions of hashes `h` (double hashing)."""
    x = _mix(h.astype(np.uint64))
    mask = np.uint64((1 << bits) - 1)
    a = x & mask
    b = (x >> np.uint64(32)) | np.uint64(1)
    steps = np.arange(PROBES, dtype=np.uint64)
    return (a[:, None] + steps[None, :] * b[:, None]) & mask


def clauses_of(line: str) -> list[str]:
    """The clauses of a line: its runs of characters between marks."""
    out, cur = [], []
    for ch in line:
        if is_mark(ch):
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def keys_of_line(line: str) -> Iterable[tuple[str, tuple[int, ...]]]:
    """(kind, code points) of every key one line of text holds."""
    clauses = clauses_of(line)
    for c in clauses:
        codes = tuple(map(ord, c))
        if MIN_CLAUSE <= len(c) < GRAM:
            yield "clause", codes
        for i in range(len(c) - GRAM + 1):
            yield "gram", codes[i : i + GRAM]
    if clauses and max(map(len, clauses)) < MIN_CLAUSE and sum(map(len, clauses)) >= MIN_CLAUSE:
        codes: list[int] = []
        for i, c in enumerate(clauses):
            if i:
                codes.append(SEPARATOR)
            codes.extend(map(ord, c))
        yield "line", tuple(codes)


def key_hashes(lines: Iterable[str]) -> tuple[np.ndarray, dict[str, int]]:
    """The distinct keys' hashes (uint64) of these lines, and how many of each kind."""
    seen: dict[str, set[tuple[int, ...]]] = {k: set() for k in SEEDS}
    for line in lines:
        for kind, codes in keys_of_line(line):
            seen[kind].add(codes)
    hashes = [_roll(SEEDS[kind], codes) for kind, keys in seen.items() for codes in keys]
    return np.array(hashes, dtype=np.uint64), {k: len(v) for k, v in seen.items()}


def build_guard(
    texts: Iterable[str], folder: Path, bits: int = BITS, sources: list[str] | None = None
) -> dict:
    """Write the filter of every line of `texts` into `folder` (GUARD_FILE and GUARD_META);
    returns the meta, with the false-positive rate measured on random keys."""
    from lyricgen.atomic import atomic_write

    hashes, counts = key_hashes(line for t in texts for line in t.splitlines())
    flags = np.zeros(1 << bits, dtype=bool)
    for lo in range(0, len(hashes), 1 << 20):
        flags[_probes(hashes[lo : lo + (1 << 20)], bits).ravel()] = True
    packed = np.packbits(flags, bitorder="little")
    rng = np.random.default_rng(0)
    trial = rng.integers(0, 1 << 63, size=200_000, dtype=np.int64).astype(np.uint64)
    false_rate = float(_lookup(packed, trial, bits).mean())
    meta = {
        "format": FORMAT,
        "bits": bits,
        "probes": PROBES,
        "gram": GRAM,
        "min_clause": MIN_CLAUSE,
        "keys": counts,
        "fill": float(flags.mean()),
        "false_positive_rate": false_rate,
        "sources": sources or [],
    }
    folder.mkdir(parents=True, exist_ok=True)

    def write(f) -> None:
        np.save(f, packed)

    atomic_write(folder / GUARD_FILE, write)
    atomic_write(folder / GUARD_META, json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    return meta


def _lookup(packed: np.ndarray, hashes: np.ndarray, bits: int) -> np.ndarray:
    """Whether each hash is (probably) a key: all its probe bits are set."""
    pos = _probes(hashes, bits)
    got = (
        packed[(pos >> np.uint64(3)).astype(np.int64)] >> (pos & np.uint64(7)).astype(np.uint8)
    ) & 1
    return got.all(axis=1)


class ClauseGuard:
    """A loaded filter (memory-mapped): what `Lyricist.copy_index` holds for a model that
    ships one. It answers `blocked` for candidate characters; it cannot count or locate
    copies the way `CopyIndex` does."""

    compact = True

    def __init__(self, packed: np.ndarray, meta: dict):
        self.packed, self.meta, self.bits = packed, meta, int(meta["bits"])
        self.gram = int(meta.get("gram", GRAM))

    @classmethod
    def load(cls, folder: Path) -> ClauseGuard:
        try:
            meta = json.loads((folder / GUARD_META).read_text(encoding="utf-8"))
            packed = np.load(folder / GUARD_FILE, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise RunDirError(
                f"{folder / GUARD_FILE} cannot be read ({str(exc)[:80]}); reinstall lyricgen "
                "or restore the file"
            ) from None
        if meta.get("format") != FORMAT or packed.shape != ((1 << int(meta["bits"])) // 8,):
            raise RunDirError(
                f"{folder / GUARD_FILE} is damaged (it does not fit {GUARD_META}); reinstall "
                "lyricgen or restore the file"
            )
        return cls(packed, meta)

    def __repr__(self) -> str:
        return f"ClauseGuard({sum(self.meta['keys'].values())} keys, {self.bits} bits)"

    def contains_line(self, line: str) -> bool:
        """Whether the guard holds any key of this line (a line it would have refused)."""
        hashes = [_roll(SEEDS[kind], codes) for kind, codes in keys_of_line(line)]
        return bool(hashes) and bool(
            _lookup(self.packed, np.array(hashes, np.uint64), self.bits).any()
        )

    def blocked(self, line: str, candidates: str | np.ndarray) -> np.ndarray:
        """Which candidates (single characters, no marks; or their code points plus one,
        uint64) would complete a key if written after `line`, the line so far."""
        if isinstance(candidates, str):
            candidates = np.array([ord(c) + 1 for c in candidates], dtype=np.uint64)
        codes = candidates
        keys = self._prefix_keys(line)
        out = np.zeros(len(codes), dtype=bool)
        if not keys or not len(codes):
            return out
        for h in keys:
            base = np.uint64((h * _P) & _MASK)
            out |= _lookup(self.packed, codes + base, self.bits)
        return out

    def _prefix_keys(self, line: str) -> list[int]:
        """The rolled hash of each key that one more character would complete."""
        end = len(line)
        start = end
        while start > 0 and not is_mark(line[start - 1]):
            start -= 1
        clause = line[start:end]
        n = len(clause) + 1  # the clause's length with the candidate
        keys = []
        if MIN_CLAUSE <= n < GRAM:
            keys.append(_roll(SEEDS["clause"], map(ord, clause)))
        if n >= GRAM:
            keys.append(_roll(SEEDS["gram"], map(ord, clause[-(GRAM - 1) :])))
        if n >= MIN_CLAUSE or start == 0:
            return keys
        prior = clauses_of(line[:start])  # a line of short clauses only
        if all(len(c) < MIN_CLAUSE for c in prior):
            if sum(map(len, prior)) + n >= MIN_CLAUSE and prior:
                codes: list[int] = []
                for c in prior:
                    codes.extend(map(ord, c))
                    codes.append(SEPARATOR)
                keys.append(_roll(SEEDS["line"], [*codes, *map(ord, clause)]))
        return keys

    def constraint(self, table: TokenTable) -> GuardConstraint:
        return GuardConstraint(table, self)


class GuardConstraint(Constraint):
    """The compact guard as a (soft) constraint: a character that would complete a key of
    the training text is masked."""

    hard = False

    def __init__(self, table: TokenTable, guard: ClauseGuard):
        self.table, self.guard = table, guard
        itos = table.vocab.itos
        self.chars = np.array([len(t) == 1 and not is_mark(t) for t in itos], dtype=bool)
        self.chars[table.vocab.unk_id] = False
        self.codes = np.array([ord(t[0]) + 1 if t else 0 for t in itos], dtype=np.uint64)

    def restrict(self, row: SampleState, state: None, ok: np.ndarray) -> None:
        itos = self.table.vocab.itos
        line = "".join(itos[i] for i in row.line_ids)
        if len(line) + 1 < MIN_CLAUSE:
            return
        cand = np.flatnonzero(ok & self.chars)
        if len(cand):
            ok[cand[self.guard.blocked(line, self.codes[cand])]] = False
