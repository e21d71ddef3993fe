"""A copy guard for generated lyrics: which n-grams of the training text does a sequence reuse?

At generation time two questions must be answered fast, without torch:

* `CopyIndex.followers(context)`: which tokens t make `context + [t]` an n-gram that occurs in
  the training text (so a sampler can forbid them once a copied span gets too long);
* `CopyIndex.longest_match(seq)`: the longest contiguous span of `seq` found in the text.

Why a suffix array: every occurrence of an n-gram is the prefix of one suffix of the text, so
in the sorted list of suffixes (the suffix array, SA) all occurrences of a query form one
contiguous range, found by binary search in ~2*log2(n) slice compares. The followers are then
the tokens just after the query at the positions in that range. The SA is one int32 per
token, needs no pointers and memory-maps straight from disk, so loading costs milliseconds.

The K cap: suffixes are sorted by their first `k` tokens only (default 64), by prefix doubling
in NumPy (sort by 1 token, then by pairs of ranks (rank[i], rank[i+h]) for h = 1, 2, 4, ...;
only groups that are still tied are re-sorted, and the build stops as soon as none is). Queries
of up to k tokens are exact: suffixes that share their first k tokens are contiguous, whatever
their order. Longer queries (`count`, `contains`, `followers`) take the range of their first k
tokens and check the rest of each candidate; `longest_match` reports at most k tokens. The cap
bounds the number of doubling rounds (log2 k) even for text with long repeats, which is the
worst case for prefix doubling.

Separators: the text may hold a separator id (`sep`, for example the vocabulary size) between
songs. A query that contains it matches nothing and it is never a follower, so no n-gram
matches across a song boundary; each separator also gets a rank of its own while sorting, so
suffixes that reach one stop taking part in the doubling early. The end of the text sorts
before every token, exactly as a shorter list sorts before a longer one in Python, which is
what the binary search compares (text slices as lists against the query).

Chunking: a text longer than `chunk_tokens` (default 8M) is indexed in chunks [start, stop),
each sorted together with the k tokens that follow it (the overlap), so an n-gram that starts
in a chunk and runs past its end is still found, and exactly once: a chunk's SA keeps only
the suffixes that start inside it. Build memory is bounded by the chunk size (about 50 bytes
per token of a chunk: ~400 MiB for 8M tokens); queries consult every chunk.

Folder layout (written to `<name>.tmp-<pid>` and renamed into place, so nothing half-written
is ever visible at the folder):

    ids.npy     the token ids, separators included (uint16 when the largest id < 65535,
                else uint32)
    sa_<i>.npy  chunk i's suffix array: positions relative to the chunk's start, sorted by
                their first k tokens (int32; int64 only for a chunk of ~2**31 tokens)
    meta.json   {"format", "n", "k", "sep", "dtype", "chunks": [[start, stop], ...],
                 "meta": the caller's dict}
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lyricgen.atomic import publish_folder
from lyricgen.errors import LyricgenError

FORMAT = 1
DEFAULT_K = 64
DEFAULT_CHUNK_TOKENS = 8_000_000
_WRITE_BLOCK = 1 << 22  # tokens per block when copying ids to disk


# --------------------------------------------------------------------------------------
# Building


def suffix_array(ids: np.ndarray, k: int = DEFAULT_K, *, sep: int | None = None) -> np.ndarray:
    """Positions of `ids` (shape (n,)) sorted by the first `k` tokens of their suffixes.

    A suffix that ends (or reaches `sep`) within its first k tokens sorts before the longer
    ones sharing its prefix; suffixes equal in their first k tokens come in an arbitrary
    order. Returns int32 positions when n + k < 2**31, else int64; shape (n,).
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {ids.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return _sort_window(ids, len(ids), k, sep)


def _sort_window(window: np.ndarray, keep: int, k: int, sep: int | None) -> np.ndarray:
    """SA of the positions < `keep` of `window`, sorted by their first k tokens within it.

    Ranks are "head slots": rank[i] is the SA index of the first suffix of i's group (the
    suffixes equal to i's in the tokens sorted so far), so ranks order the groups, stay
    valid for suffixes that are already unique, and need no global renumbering per round.
    """
    size = len(window)
    if size == 0:
        return np.zeros(0, dtype=np.int32)
    # int32 positions and ranks (half the memory traffic) whenever position + k fits
    pos_t = np.int32 if size + k < 2**31 else np.int64
    # round 0: sort by the first token (a radix sort for uint16)
    sa = np.argsort(window, kind="stable").astype(pos_t)  # (size,)
    first = window[sa]  # (size,) tokens in SA order
    new = np.empty(size, dtype=bool)  # (size,) True where a group starts
    new[0] = True
    np.not_equal(first[1:], first[:-1], out=new[1:])
    if sep is not None:
        new |= first == sep  # every separator is a group of its own (saves rounds)
    del first
    head = _group_heads(new, np.arange(size, dtype=pos_t))  # (size,) head slot per SA slot
    rank = np.empty(size, dtype=pos_t)  # (size,) rank of each text position
    rank[sa] = head
    tied = _tied_slots(new)  # (u,) SA slots still in groups of two or more
    heads = head[tied]  # (u,) their ranks
    del new, head

    h = 1
    while h < k and len(tied):
        suf = sa[tied]  # (u,) suffixes to re-sort, in SA order (so grouped by rank)
        nxt = suf + h
        beyond = nxt >= size
        np.minimum(nxt, size - 1, out=nxt)
        key = heads.astype(np.int64) * (size + 1)  # (u,) rank[i] * (size + 1) ...
        second = rank[nxt]  # ... + 1 + rank[i + h]; 0 for a suffix that ends before i + h
        second[beyond] = -1
        key += second
        key += 1
        del nxt, beyond, second, heads
        order = np.argsort(key)
        key = key[order]
        suf = suf[order]
        del order
        sa[tied] = suf  # the tied groups keep their slots, now sorted by 2h tokens
        new = np.empty(len(key), dtype=bool)
        new[0] = True
        np.not_equal(key[1:], key[:-1], out=new[1:])
        del key
        heads = _group_heads(new, tied)  # (u,) the new head slots
        rank[suf] = heads
        del suf
        still = _tied_slots(new)
        tied, heads = tied[still], heads[still]
        del new, still
        h *= 2
    return sa[sa < keep] if keep < size else sa


def _group_heads(new: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """For each item, slots[first item of its group], given group-start flags (same shape)."""
    idx = np.arange(len(new), dtype=np.int32 if len(new) < 2**31 else np.int64)
    idx[~new] = 0
    np.maximum.accumulate(idx, out=idx)
    return slots[idx]


def _tied_slots(new: np.ndarray) -> np.ndarray:
    """Indices (int64) of the items in groups of two or more, given group-start flags."""
    alone = new.copy()  # a group starts here ...
    alone[:-1] &= new[1:]  # ... and the next item starts another one
    return np.flatnonzero(~alone)


def _ids_dtype(max_id: int) -> np.dtype:
    from lyricgen.corpus.tokcache import id_dtype

    return id_dtype(max_id + 1)  # the separator is max_id + 1


def build_index(
    ids: np.ndarray,
    folder: Path,
    *,
    sep: int | None = None,
    meta: dict | None = None,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    k: int = DEFAULT_K,
) -> None:
    """Index `ids` (shape (n,), non-negative integers, separators included) into `folder`.

    The folder is built as the sibling `<name>.tmp-<pid>` and renamed into place; an existing
    folder is replaced whole. `meta` (JSON-serialisable) comes back as `CopyIndex.meta`.
    """
    folder = Path(folder)
    ids = np.asarray(ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or len(ids) == 0):
        raise ValueError(f"ids must be a one-dimensional integer array, got {ids.dtype}{ids.shape}")
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
    if sep is not None and sep < 0:
        raise ValueError(f"sep must be a non-negative id, got {sep}")
    n = len(ids)
    lo, hi = (int(ids.min()), int(ids.max())) if n else (0, 0)
    if lo < 0 or hi > np.iinfo(np.uint32).max:
        raise ValueError(f"ids must lie in [0, 2**32), got [{lo}, {hi}]")
    dtype = _ids_dtype(hi)
    chunks = [[s, min(s + chunk_tokens, n)] for s in range(0, n, chunk_tokens)]
    info = {
        "format": FORMAT,
        "n": n,
        "k": k,
        "sep": sep,
        "dtype": dtype.name,
        "chunks": chunks,
        "meta": meta if meta is not None else {},
    }
    meta_text = json.dumps(info, indent=1, ensure_ascii=False)  # fails early if not JSON

    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    if tmp.exists():  # left by an earlier, killed build of this same process id
        _rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        _write_npy(tmp / "ids.npy", ids, dtype)
        for i, (start, stop) in enumerate(chunks):
            # the chunk plus k tokens of following context, in the stored dtype
            window = np.asarray(ids[start : min(stop + k, n)], dtype=dtype)
            sa = _sort_window(window, stop - start, k, sep)
            del window
            _write_npy(tmp / f"sa_{i}.npy", sa, sa.dtype)
            del sa
        with open(tmp / "meta.json", "w", encoding="utf-8") as f:
            f.write(meta_text)
            f.flush()
            os.fsync(f.fileno())
        publish_folder(tmp, folder)
    finally:
        if tmp.exists():
            _rmtree(tmp, ignore_errors=True)


def _rmtree(path: Path, ignore_errors: bool = False) -> None:
    import shutil  # only builds need it; generation imports this module too

    shutil.rmtree(path, ignore_errors=ignore_errors)


def _write_npy(path: Path, arr: np.ndarray, dtype: np.dtype) -> None:
    """np.save in blocks (so a dtype conversion never copies the whole array), then fsync."""
    with open(path, "wb") as f:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype))}
        header.update(fortran_order=False, shape=(len(arr),))
        np.lib.format.write_array_header_1_0(f, header)
        for i in range(0, len(arr), _WRITE_BLOCK):
            f.write(np.ascontiguousarray(arr[i : i + _WRITE_BLOCK], dtype=dtype).tobytes())
        f.flush()
        os.fsync(f.fileno())


# --------------------------------------------------------------------------------------
# Querying


class CopyIndex:
    """A loaded (memory-mapped) index; see the module docstring. Build it with `build_index`."""

    def __init__(
        self, folder: Path, ids: np.ndarray, sas: list[np.ndarray], info: dict[str, Any]
    ) -> None:
        self.folder = folder
        self.meta: dict = info["meta"]  # the caller's dict given to build_index
        self.k: int = info["k"]
        self.sep: int | None = info["sep"]
        self.chunks: list[tuple[int, int]] = [(int(a), int(b)) for a, b in info["chunks"]]
        self._n = int(info["n"])
        self._ids = ids  # (n,) plain ndarray views of the memory maps: cheap scalar access
        self._sas = sas  # one (stop - start,) array per chunk
        self._starts = [a for a, _ in self.chunks]
        self._alphabet: np.ndarray | None = None

    @classmethod
    def load(cls, folder: Path) -> CopyIndex:
        """Memory-map an index built by `build_index`; LyricgenError if missing or damaged."""
        folder = Path(folder)
        if not folder.is_dir():
            raise LyricgenError(f"copy index {folder} does not exist; build it first (build_index)")
        try:
            try:
                info = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"meta.json is unreadable: {exc}") from None
            if not isinstance(info, dict) or info.get("format") != FORMAT:
                raise ValueError(f"meta.json is not a format-{FORMAT} copy index")
            n, k, chunks = int(info["n"]), int(info["k"]), info["chunks"]
            if not isinstance(info["meta"], dict):
                raise ValueError("meta.json has no caller meta dict")
            if info["sep"] is not None:
                info["sep"] = int(info["sep"])
            ids = _load_npy(folder / "ids.npy", n)
            if ids.dtype.name != info["dtype"]:
                raise ValueError(f"ids.npy holds {ids.dtype}, meta.json says {info['dtype']}")
            sas = []
            expect = 0
            for i, (start, stop) in enumerate(chunks):
                if start != expect or stop <= start:
                    raise ValueError("meta.json's chunks do not tile the text")
                sa = _load_npy(folder / f"sa_{i}.npy", stop - start)
                if sa.dtype not in (np.int32, np.int64):
                    raise ValueError(f"sa_{i}.npy holds {sa.dtype}, not int32/int64")
                sas.append(sa)
                expect = stop
            if expect != n or k < 2:
                raise ValueError("meta.json's chunks do not cover the text")
        except FileNotFoundError as exc:
            raise LyricgenError(
                f"copy index {folder} is damaged ({Path(exc.filename or '?').name} is missing); "
                "delete it and build it again"
            ) from None
        except KeyError as exc:
            raise LyricgenError(
                f"copy index {folder} is damaged (meta.json lacks {exc}); "
                "delete it and build it again"
            ) from None
        except (OSError, ValueError, TypeError, IndexError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise LyricgenError(
                f"copy index {folder} is damaged ({reason}); delete it and build it again"
            ) from None
        return cls(folder, ids, sas, info)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"CopyIndex({str(self.folder)!r}, n={self._n}, k={self.k}, chunks={len(self._sas)})"

    @property
    def ids(self) -> np.ndarray:
        """The indexed token ids, separators included (n,), memory-mapped."""
        return self._ids

    # -- queries ------------------------------------------------------------------------

    def occurrences(self, seq: Sequence[int]) -> np.ndarray:
        """Start positions (unsorted, int64) of every occurrence of `seq` in the text."""
        q = _as_list(seq)
        if not q or (self.sep is not None and self.sep in q):
            return np.zeros(0, dtype=np.int64)
        pos = self._positions(q)
        return np.zeros(0, dtype=np.int64) if pos is None else np.asarray(pos, dtype=np.int64)

    def followers(self, context: Sequence[int]) -> np.ndarray:
        """Sorted unique ids t (int64, shape (m,)) such that context + [t] occurs in the text.

        The separator is never among them. An empty context gives every distinct id of the
        text. Contexts of up to k - 1 tokens cost one SA range per chunk; longer ones are
        exact too, by checking each occurrence of their first k tokens.
        """
        q = _as_list(context)
        m = len(q)
        if m == 0:
            return self.alphabet()
        pos = self._positions(q)  # (r,) global starts of the context's occurrences
        if pos is None:
            return np.zeros(0, dtype=np.int64)
        pos = pos + m
        pos = pos[pos < self._n]
        vals = self._ids[pos]  # (r,)
        if len(vals) > 4096 and vals.dtype == np.uint16:  # a common context: count, not sort
            out = np.flatnonzero(np.bincount(vals))
        else:
            out = np.unique(vals).astype(np.int64)
        return out[out != self.sep] if self.sep is not None else out

    def count(self, seq: Sequence[int]) -> int:
        """How many times `seq` occurs in the text (overlapping occurrences count; 0 if empty)."""
        q = _as_list(seq)
        if not q or (self.sep is not None and self.sep in q):
            return 0
        if len(q) <= self.k:
            return sum(hi - lo for lo, hi in self._ranges(q))
        pos = self._positions(q)
        return 0 if pos is None else len(pos)

    def contains(self, seq: Sequence[int]) -> bool:
        """Whether `seq` occurs in the text (the empty sequence does)."""
        q = _as_list(seq)
        if not q:
            return True
        if len(q) <= self.k:
            if self.sep is not None and self.sep in q:
                return False
            return any(lo < hi for lo, hi in (self._search(c, q) for c in self._chunk_ids()))
        return self.count(q) > 0

    def longest_match(self, seq: Sequence[int]) -> tuple[int, int]:
        """(start, length) of the longest span of `seq` that occurs in the text, length <= k.

        Ties go to the earliest start; (0, 0) when nothing (or nothing non-empty) matches.
        Each start only looks for a span longer than the best so far: one SA search for
        seq[i : i + best + 1] per chunk, and when that occurs, growth one token at a time by
        narrowing the SA range to the next token. So a sequence of L tokens costs about L
        searches plus at most k narrowings per chunk.
        """
        q = _as_list(seq)
        total = len(q)
        k, sep = self.k, self.sep
        # limit[i]: how far a span from i may reach before the separator, the end or k
        limit = [0] * total
        reach = total
        for i in range(total - 1, -1, -1):
            if sep is not None and q[i] == sep:
                reach = i
            limit[i] = min(reach - i, k)
        best_start, best_len = 0, 0
        for i in range(total):
            if best_len >= min(k, total - i):
                break  # no span from here on can be longer
            for c in self._chunk_ids():
                if best_len >= limit[i]:
                    break
                lo, hi = self._search(c, q[i : i + best_len + 1])
                if lo == hi:
                    continue
                length = best_len + 1
                while length < limit[i]:
                    lo2, hi2 = self._narrow(c, lo, hi, length, q[i + length])
                    if lo2 == hi2:
                        break
                    lo, hi = lo2, hi2
                    length += 1
                best_start, best_len = i, length
        return best_start, best_len

    def alphabet(self) -> np.ndarray:
        """Every distinct id of the text but the separator, sorted (int64, computed once)."""
        if self._alphabet is None:
            ids = self._ids
            if ids.dtype == np.uint16:
                counts = np.zeros(1 << 16, dtype=np.int64)
                for i in range(0, len(ids), _WRITE_BLOCK):
                    counts += np.bincount(ids[i : i + _WRITE_BLOCK], minlength=1 << 16)
                vals = np.flatnonzero(counts)
            else:
                vals = np.unique(ids)
            if self.sep is not None:
                vals = vals[vals != self.sep]
            self._alphabet = vals.astype(np.int64)
        return self._alphabet.copy()

    # -- internals ----------------------------------------------------------------------

    def _chunk_ids(self) -> range:
        return range(len(self._sas))

    def _ranges(self, q: list[int]) -> list[tuple[int, int]]:
        """Per chunk, the SA range [lo, hi) of the suffixes starting with q (len(q) <= k)."""
        return [self._search(c, q) for c in self._chunk_ids()]

    def _search(self, c: int, q: list[int]) -> tuple[int, int]:
        """Binary search chunk c's SA for q (len(q) <= k, no separator): its range [lo, hi).

        A slice of the text compares with q as Python lists do, which is the SA's order:
        a slice cut short by the end of the text sorts first.
        """
        sa, ids, base, m = self._sas[c], self._ids, self._starts[c], len(q)
        lo, hi = 0, len(sa)
        top = hi  # the smallest index known to hold a suffix > q
        while lo < hi:
            mid = (lo + hi) >> 1
            p = base + sa.item(mid)
            s = ids[p : p + m].tolist()
            if s < q:
                lo = mid + 1
            else:
                hi = mid
                if s != q:
                    top = mid
        first, hi = lo, top
        while lo < hi:
            mid = (lo + hi) >> 1
            p = base + sa.item(mid)
            if ids[p : p + m].tolist() <= q:
                lo = mid + 1
            else:
                hi = mid
        return first, lo

    def _narrow(self, c: int, lo: int, hi: int, off: int, t: int) -> tuple[int, int]:
        """Within SA range [lo, hi) (suffixes sharing `off` < k tokens), those whose token at
        offset `off` is t (not the separator). A suffix ended before `off` sorts first."""
        sa, ids, base, n = self._sas[c], self._ids, self._starts[c] + off, self._n
        a, b = lo, hi
        while a < b:
            mid = (a + b) >> 1
            p = base + sa.item(mid)
            if (ids.item(p) if p < n else -1) < t:
                a = mid + 1
            else:
                b = mid
        first = a
        b = hi
        while a < b:
            mid = (a + b) >> 1
            p = base + sa.item(mid)
            if (ids.item(p) if p < n else -1) <= t:
                a = mid + 1
            else:
                b = mid
        return first, a

    def _positions(self, q: list[int]) -> np.ndarray | None:
        """Global start positions (int64, unsorted) of q's occurrences; None if there are none."""
        if self.sep is not None and self.sep in q:
            return None
        head = q[: self.k]
        parts = []
        for c in self._chunk_ids():
            lo, hi = self._search(c, head)
            if lo < hi:
                parts.append(self._sas[c][lo:hi].astype(np.int64) + self._starts[c])
        if not parts:
            return None
        pos = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if len(q) > self.k:  # check the tokens past the first k, one column at a time
            pos = pos[pos + len(q) <= self._n]
            for j in range(self.k, len(q)):
                if not len(pos):
                    return None
                pos = pos[self._ids[pos + j] == q[j]]
        return pos if len(pos) else None


def _as_list(seq: Sequence[int]) -> list[int]:
    if isinstance(seq, np.ndarray):
        return seq.tolist()
    return [int(t) for t in seq]


def _load_npy(path: Path, length: int) -> np.ndarray:
    """A plain ndarray view of the memory-mapped 1-D array in `path`, checked to hold `length`."""
    if not path.is_file():
        raise FileNotFoundError(2, "missing", str(path))
    try:
        if length == 0:
            arr = np.load(path, allow_pickle=False)  # mmap cannot map an empty array
        else:
            arr = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path.name} is unreadable: {exc}") from None
    if arr.ndim != 1 or len(arr) != length:
        raise ValueError(f"{path.name} holds {arr.shape} items, meta.json says {length}")
    return arr
