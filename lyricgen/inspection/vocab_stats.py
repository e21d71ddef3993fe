"""Vocabulary statistics for `lyricgen vocab`: from a corpus (as training would build it)
or from a trained run's vocab.json. Needs no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lyricgen.config import Config
from lyricgen.corpus.vocab import SPECIALS, Vocab
from lyricgen.errors import RunDirError


def _summary(vocab: Vocab, top: int, lookups: list[str]) -> dict:
    entries = [(t, vocab.counts[i]) for i, t in enumerate(vocab.itos) if t not in SPECIALS]
    total = sum(vocab.counts)
    return {
        "level": vocab.level,
        "size": len(vocab),
        "train_tokens": total,
        "coverage": 1 - vocab.counts[vocab.unk_id] / total if total else 0.0,
        "top": entries[:top],
        "lookups": [
            {
                "token": t,
                "id": vocab.stoi.get(t),
                "count": vocab.counts[vocab.stoi[t]] if t in vocab else 0,
                "close": [] if t in vocab else vocab.suggest(t),
            }
            for t in lookups
        ],
    }


def stats_from_corpus(cfg: Config, top: int = 20, lookups: list[str] = ()) -> dict:
    """Build the vocabulary exactly as `lyricgen train` would and describe it."""
    from lyricgen.corpus.tokcache import build_vocab, corpus_splits, count_types

    d = cfg.data
    splits = corpus_splits(d)
    vocab = build_vocab(splits, d)
    info = {"source": str(d.corpus), **_summary(vocab, top, list(lookups))}
    known = np.fromiter(
        (t in vocab.stoi for t in splits.val_types), np.int64, len(splits.val_types)
    )
    n_val = len(splits.val)
    val_known = int(known @ count_types(splits.val, len(known))) if n_val else 0
    info["val_tokens"] = n_val
    info["val_coverage"] = val_known / n_val if n_val else None
    return info


def stats_from_run(run_dir: str | Path, top: int = 20, lookups: list[str] = ()) -> dict:
    """Describe a trained run's vocabulary (reads vocab.json only)."""
    from lyricgen.run.files import load_vocab

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(
            f"run directory {run_dir} does not exist; pass the folder `lyricgen train` wrote"
        )
    vocab = load_vocab(run_dir)
    return {
        "source": str(run_dir),
        **_summary(vocab, top, list(lookups)),
        "val_tokens": None,
        "val_coverage": None,
    }
