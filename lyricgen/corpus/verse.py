"""The verse corpus of the shipped model: Tang shi, Song shi and Song ci, with held-out text.

`lyricgen corpus verse` (the recipe in the README, "The shipped verse model") writes three files from the
three classical corpora (`lyricgen corpus get`):

- `verse_train.txt`: all of Song shi, the Tang poems not held out, and the first 95% of the
  songs of `songci.txt` (the training side of `configs/songci_char.yaml`'s split) written
  SONGCI_WEIGHT times, so that ci keep a fair share of a mix that is mostly shi;
- `songci_val.txt`: the last 5% of the songs of `songci.txt`, exactly the held-out text of
  `configs/songci_char.yaml`, so the two runs' held-out bpc compare;
- `tang_val.txt`: every TANG_EVERY-th poem of `tangshi.txt`, spread over the whole book;
- `verse_finish.txt`: the text of the finishing phase (`configs/verse_finish.yaml`): the
  Song ci training songs once and every FINISH_SHI_EVERY-th training shi, about as many
  characters, so the last, low-rate minutes settle on ci without forgetting shi.

The training side is the same text whatever the order, since a stateful run shuffles the
songs each epoch; the file is written in a fixed order so that its digest is reproducible.
"""

from __future__ import annotations

from pathlib import Path

from lyricgen.atomic import atomic_write
from lyricgen.corpus.text import split_blocks, train_val_split

SONGCI_VAL_FRACTION = 0.05  # configs/songci_char.yaml's data.val_fraction
SONGCI_WEIGHT = 3
TANG_EVERY = 50  # poem 49, 99, 149, ... of tangshi.txt is held out
FINISH_SHI_EVERY = 11  # the finishing mix: about as much shi as ci


def _song(block: str) -> str:
    """A block as one song followed by exactly one blank line."""
    return block.strip("\n") + "\n\n"


def build(folder: Path, out: Path) -> dict[str, int]:
    """Write the three files from folder/{songci,tangshi,songshi}.txt into `out`; returns
    the number of characters of each."""
    read = {
        n: (folder / f"{n}.txt").read_text(encoding="utf-8")
        for n in ("songci", "tangshi", "songshi")
    }
    ci_train, ci_val = train_val_split(read["songci"], SONGCI_VAL_FRACTION)
    tang = [b for b in split_blocks(read["tangshi"]) if b.strip()]
    tang_val = [b for i, b in enumerate(tang) if i % TANG_EVERY == TANG_EVERY - 1]
    tang_train = [b for i, b in enumerate(tang) if i % TANG_EVERY != TANG_EVERY - 1]
    parts = [_song(b) for b in tang_train]
    parts += [_song(b) for b in split_blocks(read["songshi"]) if b.strip()]
    shi = list(parts)
    ci = [_song(b) for b in split_blocks(ci_train) if b.strip()]
    parts += ci * SONGCI_WEIGHT
    finish = ci + shi[FINISH_SHI_EVERY - 1 :: FINISH_SHI_EVERY]
    texts = {
        "verse_train.txt": "".join(parts),
        "verse_finish.txt": "".join(finish),
        "songci_val.txt": ci_val,
        "tang_val.txt": "".join(_song(b) for b in tang_val),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        atomic_write(out / name, text.encode("utf-8"))
    return {name: len(text) for name, text in texts.items()}
