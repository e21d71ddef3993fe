"""Originality: the run's copy index (its training text, indexed for n-gram look-ups) and
how much of a generated text is copied from it.

`lyricgen train` indexes the corpus it trained on into `<run>/copy_index/` (see
`copyindex.py`); the copy guard (`--max-copy`) and the copy figures of `generate --json`
and `eval --samples` read it memory-mapped, so loading it costs milliseconds. The index
covers the whole corpus file, validation songs included: nothing should be copied from
either. A run trained before the index existed gets one on first use from a corpus path
the user gives (`--corpus`).

Very large corpora (over `MAX_INDEX_TOKENS` tokens) are not indexed at train time: the
build would cost more time and memory than the training run itself on a small machine;
`--corpus` builds it on demand instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from lyricgen.atomic import publish_folder
from lyricgen.corpus.text import NEWLINE
from lyricgen.corpus.vocab import Vocab, token_ids
from lyricgen.craft.clauseguard import ClauseGuard
from lyricgen.craft.copyindex import CopyIndex, build_index
from lyricgen.errors import RunDirError
from lyricgen.run.names import INDEX_DIR

log = logging.getLogger(__name__)

MAX_INDEX_TOKENS = 16_000_000


def corpus_ids(
    path: str | Path, vocab: Vocab, encoding: str, cache_dir: str | None, val_fraction=None
) -> tuple[np.ndarray, str]:
    """The vocabulary ids of a whole corpus file (through the token cache) and its SHA-256."""
    from lyricgen.corpus.tokcache import file_digest, tokenize_file

    tok = tokenize_file(path, vocab.level, encoding, val_fraction, cache_dir)
    # the copy index adds a separator above the largest id (copyindex._ids_dtype)
    return token_ids(tok.raw, tok.types, vocab), file_digest(Path(path))


def build_run_index(
    run_dir: str | Path,
    vocab: Vocab,
    corpus: str | Path,
    encoding: str = "utf-8",
    cache_dir: str | None = None,
    val_fraction: float | None = None,
    limit: int | None = MAX_INDEX_TOKENS,
) -> bool:
    """Index `corpus` into the run directory; False (and a log line) when it is over `limit`."""
    t0 = time.perf_counter()
    ids, digest = corpus_ids(corpus, vocab, encoding, cache_dir, val_fraction)
    if limit is not None and len(ids) > limit:
        log.info(
            "copy index: not built (%d tokens > %d); `lyricgen generate --max-copy N --corpus "
            "FILE` builds it when first needed",
            len(ids),
            limit,
        )
        return False
    meta = {"corpus": str(corpus), "sha256": digest, "level": vocab.level, "vocab": len(vocab)}
    target = Path(run_dir) / INDEX_DIR
    cached = _cache_folder(cache_dir, digest, vocab, val_fraction)
    if _copy_cached(cached, target, meta):
        log.info(
            "copy index: %d tokens, from the cache in %.1f s", len(ids), time.perf_counter() - t0
        )
        return True
    build_index(ids, target, meta=meta)
    log.info("copy index: %d tokens in %.1f s", len(ids), time.perf_counter() - t0)
    _copy_into_cache(target, cached)
    return True


def _cache_folder(cache_dir: str | None, digest: str, vocab: Vocab, val_fraction) -> Path:
    """Where the index of this corpus under this vocabulary is kept between runs (beside the
    token cache): a run trained again on the same text needs no new suffix sort."""
    from lyricgen.corpus.tokcache import cache_root

    key = hashlib.sha256(
        json.dumps([digest, vocab.level, vocab.itos, val_fraction], ensure_ascii=False).encode()
    ).hexdigest()[:32]
    return cache_root(cache_dir) / INDEX_DIR / key


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link where the file system allows (the cached index files are never written
    again: a new index is published as a new folder), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _copy_cached(cached: Path, target: Path, meta: dict) -> bool:
    """Put a cached index into the run (hard-linked where possible; its meta rewritten for
    this run as a new file); False when there is none or it cannot be read."""
    if not (cached / "meta.json").is_file():
        return False
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(cached, tmp, copy_function=_link_or_copy)
        info = json.loads((tmp / "meta.json").read_text(encoding="utf-8"))
        info["meta"] = meta
        (tmp / "meta.json").unlink()  # a link to the cache's meta: never write through it
        (tmp / "meta.json").write_text(json.dumps(info), encoding="utf-8")
        publish_folder(tmp, target)
    except (OSError, ValueError):
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    return True


def _copy_into_cache(target: Path, cached: Path) -> None:
    """Keep a copy of a fresh index in the cache; a cache that cannot be written is skipped."""
    tmp = cached.with_name(f"{cached.name}.tmp-{os.getpid()}")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(target, tmp)
        publish_folder(tmp, cached)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("copy index: not cached (%s)", exc)


def load_run_index(
    run_dir: str | Path,
    vocab: Vocab,
    corpus: str | Path | None = None,
    encoding: str = "utf-8",
    cache_dir: str | None = None,
    required: bool = False,
) -> CopyIndex | ClauseGuard | None:
    """The run's copy index; built first from `corpus` when the run has none. A shipped
    model has a compact guard instead (`clauseguard.ClauseGuard`). Without either (and no
    corpus), None, or a one-line error when `required`."""
    folder = Path(run_dir) / INDEX_DIR
    if not (folder / "meta.json").exists():
        from lyricgen.craft.clauseguard import GUARD_FILE

        if corpus is None and (Path(run_dir) / GUARD_FILE).is_file():
            return ClauseGuard.load(Path(run_dir))  # a shipped model's compact guard
        if corpus is None:
            if required:
                raise RunDirError(
                    f"{run_dir} has no copy index (it was trained before lyricgen built one, "
                    "or its corpus was too large); add --corpus FILE, the text it was trained "
                    "on, to build it once"
                )
            return None
        log.info("copy index: building it from %s", corpus)
        build_run_index(run_dir, vocab, corpus, encoding, cache_dir, limit=None)
    index = CopyIndex.load(folder)
    if index.meta.get("vocab") != len(vocab) or index.meta.get("level") != vocab.level:
        raise RunDirError(
            f"{folder} does not belong to this run's vocabulary; delete it and add --corpus "
            "FILE to rebuild it"
        )
    return index


def split_lines(ids: list[int], newline: int | None) -> list[list[int]]:
    """The non-empty lines of an id sequence."""
    out, line = [], []
    for tok in ids:
        if tok == newline:
            out.append(line)
            line = []
        else:
            line.append(tok)
    out.append(line)
    return [line for line in out if line]


def copy_figures(
    index: CopyIndex, vocab: Vocab, texts_ids: list[list[int]], n: int = 5, min_han: int = 6
) -> dict:
    """How much of generated texts (as id lists) is copied from the indexed text:
    `line_copy_rate`: lines with at least `min_han` Han characters (or tokens, without Han)
    that occur verbatim; `ngram_copy_rate`: n-token spans within lines that occur."""
    from lyricgen.craft.rhyme import is_han

    nl = vocab.stoi.get(NEWLINE)
    long_lines = copied_lines = spans = copied_spans = 0
    for ids in texts_ids:
        for line in split_lines(ids, nl):
            toks = vocab.decode(line)
            han = sum(is_han(c) for t in toks for c in t)
            if han >= min_han or (han == 0 and len(line) >= min_han):
                long_lines += 1
                copied_lines += bool(len(line) <= index.k and index.contains(line))
            for i in range(len(line) - n + 1):
                spans += 1
                copied_spans += bool(index.contains(line[i : i + n]))
    return {
        "line_copy_rate": copied_lines / long_lines if long_lines else None,
        "lines_checked": long_lines,
        f"copy_rate_{n}gram": copied_spans / spans if spans else None,
        "spans_checked": spans,
    }


def longest_copy(index: CopyIndex, vocab: Vocab, ids: list[int]) -> tuple[int, str]:
    """The longest run of tokens within one line of `ids` that occurs in the indexed text:
    (its length in tokens, its text)."""
    from lyricgen.corpus.text import detokenize

    best: tuple[int, list[int]] = (0, [])
    for line in split_lines(ids, vocab.stoi.get(NEWLINE)):
        if len(line) > best[0]:
            start, n = index.longest_match(line)
            if n > best[0]:
                best = (n, line[start : start + n])
    return best[0], detokenize(vocab.decode(best[1]), vocab.level)
