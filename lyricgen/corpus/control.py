"""Keyword-conditioned training text: CTRL-style control lines (`data.keyword_lines`).

A share of the training songs is preceded by one line holding the song's keywords between
〔 〕 (its three Han characters of highest TF-IDF, the IDF counted over the training songs),
so that a run learns to write about the keywords such a line names; the other songs keep no
line, so the run still writes without one. Which songs get one is drawn with a fixed seed,
so every process of a run (and a resumed run) reads the same text. The held-out text is
left as it is. The two texts are written once into the token cache's folder, keyed by the
corpus's digest and the settings, and the run then reads them as data.corpus and
data.val_corpus. `control_line` is the line `generate --keywords` feeds such a run.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

from lyricgen.atomic import atomic_write
from lyricgen.config import DataConfig
from lyricgen.corpus.text import check_corpus_file, is_han, split_blocks, train_val_split

OPEN, CLOSE = "〔", "〕"
KEYWORDS_PER_SONG = 3
SEED = 20261204


def control_line(words: list[str]) -> str:
    """The control line for these keywords: 〔秋月故乡〕."""
    return OPEN + "".join(words) + CLOSE


def song_keywords(blocks: list[str], k: int = KEYWORDS_PER_SONG) -> list[list[str]]:
    """Each block's k Han characters of highest TF-IDF (IDF over the blocks)."""
    df: Counter = Counter()
    for b in blocks:
        df.update({c for c in b if is_han(c)})
    n = len(blocks)
    out = []
    for b in blocks:
        tf = Counter(c for c in b if is_han(c))
        ranked = sorted(tf, key=lambda c: (-tf[c] * math.log(n / df[c] + 1), c))
        out.append(ranked[:k])
    return out


def control_corpus(d: DataConfig, root: Path) -> DataConfig:
    """`d` reading the keyword-conditioned training text and the plain held-out text
    (written once under `root`, the token cache's folder), with keyword_lines spent; `d`
    itself when 0."""
    if not d.keyword_lines:
        return d
    raw = check_corpus_file(d.corpus).read_bytes()
    key = hashlib.sha256(
        raw + f"|{d.encoding}|{d.val_fraction}|{d.val_corpus}|{d.keyword_lines}".encode()
    ).hexdigest()[:32]
    folder = root / "control" / key
    train_path, val_path = folder / "train.txt", folder / "val.txt"
    if not train_path.exists() or (not d.val_corpus and not val_path.exists()):
        text = raw.decode(d.encoding)
        if d.val_corpus:
            train, val = text, None
        else:
            train, val = train_val_split(text, d.val_fraction)
        blocks = split_blocks(train)
        rng = random.Random(SEED)
        out = []
        for block, words in zip(blocks, song_keywords(blocks), strict=True):
            if words and rng.random() < d.keyword_lines:
                out.append(control_line(words) + "\n" + block)
            else:
                out.append(block)
        folder.mkdir(parents=True, exist_ok=True)
        if val is not None:
            atomic_write(val_path, val.encode(d.encoding))
        atomic_write(train_path, "".join(out).encode(d.encoding))
    return replace(
        d,
        corpus=str(train_path),
        val_corpus=d.val_corpus or str(val_path),
        keyword_lines=0.0,
    )
