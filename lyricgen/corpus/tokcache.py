"""Tokenize a corpus once, in a streaming pass, into a memory-mapped token-id cache.

The cache holds *raw* ids: every distinct token of the file gets an id in order of first
appearance, and `types.json` maps ids back to tokens. The vocabulary (min_freq, max_size)
is applied afterwards through a lookup array (`Stream.lut`), so one tokenization serves
every vocabulary setting and a vocabulary can never meet ids that were encoded for another
one. The cache is keyed by the corpus's SHA-256, the level, the encoding and the split, so a
changed corpus can never use a stale cache. Its files carry a CRC-32 that is checked on
every load; a truncated or damaged cache is rebuilt, and a cache is only ever published by
renaming a complete folder, so a full disk or a kill never leaves a half-written one in use.

Memory stays flat in the corpus size: the text is read a few megabytes at a time, ids go
straight to disk (uint16 when the types fit, else uint32), and counts come from
`numpy.bincount` over the memory map.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lyricgen.atomic import publish_folder
from lyricgen.config import DataConfig, rare_words, vocab_cap
from lyricgen.corpus.text import (
    NEWLINE,
    check_corpus_file,
    codec,
    decode_error,
    has_songs,
    is_blank,
)
from lyricgen.corpus.vocab import Vocab, id_dtype  # noqa: F401 - id_dtype: for callers
from lyricgen.errors import CorpusError

log = logging.getLogger(__name__)

FORMAT = 2  # 2: songs are found by text.has_songs (a blank line may hold spaces)
_CHUNK_LINES = 20_000  # lines per encoding chunk (and per jieba task)
_PARALLEL_MIN_CHARS = 300_000  # below this, a process pool costs more than it saves


def cache_root(configured: str | None = None) -> Path:
    """data.cache_dir, else $LYRICGEN_CACHE_DIR, else $XDG_CACHE_HOME/lyricgen, else ~/.cache."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("LYRICGEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lyricgen"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def iter_lines(path: Path, encoding: str, what: str = "corpus") -> Iterator[str]:
    """Lines without their line break; CRLF and CR count as line breaks, a BOM is dropped."""
    n = 0
    try:
        # newline=None: universal newlines, so \r\n and \r arrive as \n
        with open(path, encoding=codec(encoding), newline=None) as f:
            for n, line in enumerate(f, 1):  # noqa: B007 - n names the line in errors
                yield line[:-1] if line.endswith(NEWLINE) else line
    except UnicodeDecodeError:
        with open(path, "rb") as f:
            sample = f.read(1 << 20)
        raise decode_error(what, path, encoding, f"line {n + 1}", sample) from None


@dataclass
class Tokenized:
    """A tokenized corpus: raw ids (memory-mapped), their types, and where validation starts."""

    raw: np.ndarray  # (N,) uint16 or uint32, memory-mapped
    types: list[str]  # raw id -> token
    n_train: int  # raw[:n_train] is training text, raw[n_train:] validation
    train_chars: int
    folder: Path | None = None
    seconds: float = 0.0  # tokenization time (0 when read from the cache)
    chars: int = 0  # characters in the file


# ---------------------------------------------------------------- the split


def _scan(path: Path, encoding: str, what: str) -> tuple[int, bool, int]:
    """First pass: characters (every line counted with its line break), whether songs are
    separated by blank lines (`text.has_songs`), and the line count."""
    total = lines = 0

    def counted():
        nonlocal total, lines
        for line in iter_lines(path, encoding, what):
            total += len(line) + 1
            lines += 1
            yield line

    feed = counted()
    songs = has_songs(feed)
    for _ in feed:  # has_songs stops at the first song boundary; count the rest
        pass
    return total, songs, lines


class _SplitFinder:
    """Finds the start of the held-out tail the way `text.train_val_split` does: the last
    block (song, or line when there are no songs) boundary at or before `cut`, never the
    first block, in one pass over the lines."""

    def __init__(self, cut_char: int, songs: bool):
        self.cut, self.songs = cut_char, songs
        self.char = 0
        self.best: tuple[int, int] | None = None  # (char, token) of the chosen block start
        self.first: tuple[int, int] | None = None  # start of the second block
        self._content = False
        self._pending = False  # a blank line closed a block; the next content line starts one

    def line(self, line: str, token_pos: int) -> None:
        if self.songs:
            blank = is_blank(line)
            if not blank and self._pending:
                self._start(token_pos)
                self._pending = False
            if blank and self._content:
                self._pending, self._content = True, False
            elif not blank:
                self._content = True
        elif self.char > 0:
            self._start(token_pos)
        self.char += len(line) + 1

    def _start(self, token_pos: int) -> None:
        here = (self.char, token_pos)
        if self.first is None:
            self.first = here
        if self.char <= self.cut:
            self.best = here

    def result(self) -> tuple[int, int] | None:
        return self.best or self.first


# ---------------------------------------------------------------- tokenizing


def _segment(lines: list[str]) -> list[list[str]]:
    """jieba on a chunk of lines (runs in pool workers too)."""
    from lyricgen.corpus.text import jieba_module

    lcut = jieba_module().lcut
    return [lcut(line, HMM=True) if line else [] for line in lines]


def _chunks(path: Path, encoding: str, what: str) -> Iterator[list[str]]:
    chunk: list[str] = []
    for line in iter_lines(path, encoding, what):
        chunk.append(line)
        if len(chunk) >= _CHUNK_LINES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _Encoder:
    """Assigns raw ids to tokens in order of first appearance and writes them to disk."""

    def __init__(self, out) -> None:
        self.out = out
        self.types: list[str] = []
        self.index: dict[str, int] = {}
        self.count = 0
        self._cp = np.full(0x110000, -1, dtype=np.int64)  # char level: code point -> raw id

    def chars(self, text: str) -> None:
        """Every character of `text` (line breaks included) is a token."""
        cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = self._cp[cps]
        unseen = ids < 0
        if unseen.any():
            new, first = np.unique(cps[unseen], return_index=True)
            for cp in new[np.argsort(first)].tolist():  # ids in order of first appearance
                self._cp[cp] = len(self.types)
                self.types.append(chr(cp))
            ids = self._cp[cps]
        self._write(ids.astype(np.uint32))

    def tokens(self, tokens: list[str]) -> None:
        index, types = self.index, self.types
        ids = np.empty(len(tokens), dtype=np.uint32)
        for i, tok in enumerate(tokens):
            j = index.get(tok)
            if j is None:
                j = index[tok] = len(types)
                types.append(tok)
            ids[i] = j
        self._write(ids)

    def _write(self, ids: np.ndarray) -> None:
        self.out.write(ids.tobytes())
        self.count += len(ids)


def _tokenize_into(
    path: Path, encoding: str, level: str, out, split: _SplitFinder | None, what: str
) -> _Encoder:
    enc = _Encoder(out)
    pool = None
    try:
        chunks = _chunks(path, encoding, what)
        if level == "word" and path.stat().st_size > _PARALLEL_MIN_CHARS and _workers() > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # forkserver/spawn: never fork a process that already runs torch's thread pools
            ctx = mp.get_context("forkserver" if os.name == "posix" else "spawn")
            pool = ProcessPoolExecutor(_workers(), mp_context=ctx)
            pairs = _ordered_map(pool, chunks, 2 * _workers())
        elif level == "word":
            pairs = ((c, _segment(c)) for c in chunks)
        else:
            pairs = ((c, None) for c in chunks)
        for lines, words in pairs:
            if split is not None:
                pos = enc.count
                for i, line in enumerate(lines):
                    split.line(line, pos)
                    pos += _n_tokens(line, level, words[i] if words is not None else None)
            if level == "char":
                enc.chars(NEWLINE.join(lines) + NEWLINE)
            else:
                toks: list[str] = []
                for i, line in enumerate(lines):
                    toks.extend(words[i] if words is not None else line.split())
                    toks.append(NEWLINE)
                enc.tokens(toks)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return enc


def _ordered_map(pool, chunks: Iterator[list[str]], in_flight: int):
    """(lines, words) in order, with at most `in_flight` chunks held at once (flat memory)."""
    from collections import deque

    queue: deque = deque()
    for chunk in chunks:
        queue.append((chunk, pool.submit(_segment, chunk)))
        if len(queue) >= in_flight:
            lines, fut = queue.popleft()
            yield lines, fut.result()
    while queue:
        lines, fut = queue.popleft()
        yield lines, fut.result()


def _n_tokens(line: str, level: str, words: list[str] | None) -> int:
    if level == "char":
        return len(line) + 1
    if level == "word":
        return len(words) + 1
    return len(line.split()) + 1


# ---------------------------------------------------------------- the cache


def _key(digest: str, level: str, encoding: str, val_fraction: float | None) -> str:
    spec = f"v{FORMAT}|{digest}|{level}|{encoding.lower()}|{val_fraction!r}"
    return hashlib.sha256(spec.encode()).hexdigest()[:32]


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            crc = zlib.crc32(block, crc)
    return crc


def _load(folder: Path) -> Tokenized | None:
    """The cached tokenization in `folder`, or None when it is missing or damaged."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        ids_path = folder / "ids.bin"
        dtype = np.dtype(meta["dtype"])
        if ids_path.stat().st_size != meta["n_tokens"] * dtype.itemsize:
            raise ValueError("truncated ids.bin")
        if _crc(ids_path) != meta["crc_ids"]:
            raise ValueError("ids.bin checksum mismatch")
        types_raw = (folder / "types.json").read_bytes()
        if zlib.crc32(types_raw) != meta["crc_types"]:
            raise ValueError("types.json checksum mismatch")
        types = json.loads(types_raw.decode("utf-8"))
        raw = (
            np.memmap(ids_path, dtype=dtype, mode="r")
            if meta["n_tokens"]
            else np.zeros(0, dtype=dtype)
        )
        return Tokenized(
            raw, types, meta["n_train"], meta["train_chars"], folder, chars=meta.get("chars", 0)
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("token cache %s is damaged (%s); rebuilding it", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None


def tokenize_file(
    path: str | Path,
    level: str,
    encoding: str = "utf-8",
    val_fraction: float | None = None,
    cache_dir: str | None = None,
    what: str = "corpus",
) -> Tokenized:
    """Tokenize `path` (or read its cached tokenization). With `val_fraction`, the last
    blocks (songs, or lines) holding that fraction of the characters are marked as validation."""
    p = check_corpus_file(path, what)
    t0 = time.perf_counter()
    root = cache_root(cache_dir)
    folder = root / _key(file_digest(p), level, encoding, val_fraction)
    cached = _load(folder)
    if cached is not None:
        seconds = time.perf_counter() - t0  # hashing the corpus and checking the cache
        log.info(
            "token cache: %s (%d tokens; hashed, read and checked in %.2f s, %.0f chars/s)",
            folder,
            len(cached.raw),
            seconds,
            cached.chars / max(seconds, 1e-9),
        )
        return cached
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    except OSError as exc:
        raise CorpusError(
            f"cannot create the token cache in {root} ({exc.strerror}); set data.cache_dir "
            "or LYRICGEN_CACHE_DIR to a writable folder"
        ) from None
    try:
        result = _build(p, level, encoding, val_fraction, tmp, what)
        publish_folder(tmp, folder, replace=False)  # the same cache: the first writer wins
        loaded = _load(folder)
        if loaded is None:
            raise CorpusError(f"the token cache {folder} could not be read back; try again")
        loaded.seconds = result
        return loaded
    except OSError as exc:
        raise CorpusError(
            f"cannot write the token cache in {root} ({exc.strerror}); free space or set "
            "data.cache_dir (or LYRICGEN_CACHE_DIR) to another folder"
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _build(
    path: Path, level: str, encoding: str, val_fraction: float | None, tmp: Path, what: str
) -> float:
    t0 = time.perf_counter()
    total, songs, n_lines = _scan(path, encoding, what)
    if total - n_lines == 0:  # only line breaks (and whitespace is checked below)
        raise CorpusError(f"{what} {path} contains only whitespace; give a file with lyric lines")
    split = None
    if val_fraction is not None:
        split = _SplitFinder(total - val_fraction * total, songs)
    with open(tmp / "ids32.bin", "wb") as out:
        enc = _tokenize_into(path, encoding, level, out, split, what)
        out.flush()
        os.fsync(out.fileno())
    if all(not t.strip() for t in enc.types):
        raise CorpusError(f"{what} {path} contains only whitespace; give a file with lyric lines")
    n_train, train_chars = enc.count, total
    if split is not None:
        found = split.result()
        if found is None:
            raise CorpusError(
                f"{what} {path} has a single line/song, so nothing can be held out for "
                "validation; add more lines or set data.val_corpus"
            )
        train_chars, n_train = found
    # uint16 halves the cache (and the pages training touches) when the types fit
    dtype = id_dtype(len(enc.types) - 1)
    src = tmp / "ids32.bin"
    dst = tmp / "ids.bin"
    if dtype == np.uint32:
        src.rename(dst)
    else:
        ids32 = np.memmap(src, dtype=np.uint32, mode="r") if enc.count else np.zeros(0, np.uint32)
        with open(dst, "wb") as out:
            for i in range(0, enc.count, 1 << 22):
                out.write(ids32[i : i + (1 << 22)].astype(np.uint16).tobytes())
        del ids32
        src.unlink()
    types_raw = json.dumps(enc.types, ensure_ascii=False).encode("utf-8")
    (tmp / "types.json").write_bytes(types_raw)
    seconds = time.perf_counter() - t0
    meta = {
        "format": FORMAT,
        "source": str(path),
        "level": level,
        "encoding": encoding,
        "val_fraction": val_fraction,
        "dtype": np.dtype(dtype).name,
        "n_tokens": enc.count,
        "n_train": n_train,
        "train_chars": train_chars,
        "chars": total,
        "n_types": len(enc.types),
        "crc_ids": _crc(dst),
        "crc_types": zlib.crc32(types_raw),
        "seconds": seconds,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    log.info(
        "tokenized %s: %d chars -> %d %s tokens (in %.1f s, %.0f chars/s)",
        path,
        total,
        enc.count,
        level,
        seconds,
        total / max(seconds, 1e-9),
    )
    return seconds


# ---------------------------------------------------------------- splits and vocabulary


@dataclass
class Splits:
    """Training and validation raw ids (memory maps) with the types each one's ids name."""

    train: np.ndarray
    train_types: list[str]
    val: np.ndarray
    val_types: list[str]
    train_chars: int


def corpus_splits(d: DataConfig) -> Splits:
    """data.corpus tokenized (through the cache), split into training and validation: the
    last data.val_fraction of songs (or lines), or the whole of data.val_corpus. With
    data.keyword_lines, the training text carries control lines (`control.py`)."""
    from lyricgen.corpus.control import control_corpus

    d = control_corpus(d, cache_root(d.cache_dir))
    if d.val_corpus:
        tr = tokenize_file(d.corpus, d.level, d.encoding, None, d.cache_dir)
        va = tokenize_file(
            d.val_corpus, d.level, d.encoding, None, d.cache_dir, "validation corpus"
        )
        return Splits(tr.raw, tr.types, va.raw, va.types, tr.chars)
    tok = tokenize_file(d.corpus, d.level, d.encoding, d.val_fraction, d.cache_dir)
    return Splits(
        tok.raw[: tok.n_train], tok.types, tok.raw[tok.n_train :], tok.types, tok.train_chars
    )


def count_types(raw: np.ndarray, n_types: int, chunk: int = 1 << 24) -> np.ndarray:
    """How often each raw id occurs, reading a memory map a chunk at a time."""
    counts = np.zeros(n_types, dtype=np.int64)
    for i in range(0, len(raw), chunk):
        counts += np.bincount(raw[i : i + chunk], minlength=n_types)
    return counts


def build_vocab(splits: Splits, d: DataConfig) -> Vocab:
    """The vocabulary of the training split only, counted without a list of tokens."""
    counts = count_types(splits.train, len(splits.train_types))
    return Vocab.from_counts(
        zip(splits.train_types, counts.tolist(), strict=True),
        d.min_freq,
        vocab_cap(d),
        d.level,
        rare_words(d),
    )
