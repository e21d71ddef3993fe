"""What a run does besides training, as callbacks (minGPT's `Trainer` has the same idea).

A callback gets the `Trainer` at the start of the run and after every epoch, once the
epoch's weights, state and metrics are written. `Trainer` runs `default_callbacks()` unless
given others; each one writes only on the main process and never stops training. Drawing
curves.png is a front end's callback (`frontend.plot.DrawCurves`), added by `lyricgen train`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lyricgen import checkpoint as ckpt
from lyricgen.craft import originality

if TYPE_CHECKING:
    from lyricgen.training.trainer import Trainer

log = logging.getLogger(__name__)


class Callback:
    def on_run_start(self, trainer: Trainer) -> None:
        """After the run directory is set up (fresh or resumed), before the first step."""

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        """After the epoch's validation and writes; `metrics` is the epoch's history entry."""


class GenerationAids(Callback):
    """Once per run: the vocabulary's rhyme table and the corpus's copy index, which
    generation reads from the run directory."""

    def on_run_start(self, trainer: Trainer) -> None:
        if not trainer.dist.main:
            return
        out, d = trainer.out, trainer.cfg.data
        if not (out / ckpt.RHYME).exists():
            ckpt.save_rhyme_table(out, trainer.vocab)
        if not d.copy_index or (out / originality.INDEX_DIR / "meta.json").exists():
            return
        val_fraction = None if d.val_corpus else d.val_fraction
        originality.build_run_index(
            out, trainer.vocab, d.corpus, d.encoding, d.cache_dir, val_fraction
        )


def default_callbacks() -> list[Callback]:
    """What every run does: the generation aids. The CLI adds `frontend.plot.DrawCurves`
    (the training wing never imports the front ends)."""
    return [GenerationAids()]
