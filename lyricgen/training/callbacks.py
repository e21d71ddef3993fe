"""What a run does besides training, as callbacks (minGPT's `Trainer` has the same idea).

A callback gets the `Trainer` at the start of the run and after every epoch, once the
epoch's weights, state and metrics are written. `Trainer` runs `default_callbacks()` unless
given others; each one here writes only on the main process and never stops training.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from lyricgen import checkpoint as ckpt
from lyricgen.craft import originality
from lyricgen.errors import LyricgenError

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


class DrawCurves(Callback):
    """curves.png in the run directory (train.curves). A missing matplotlib or a drawing
    problem is logged once and never stops training."""

    def __init__(self) -> None:
        self.failed = False

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        if not trainer.dist.main or not trainer.cfg.train.curves or self.failed:
            return
        try:
            from lyricgen.frontend import plot

            plot.write_run_curves(trainer.out)
        except (LyricgenError, OSError, ValueError, RuntimeError) as exc:
            self.failed = True
            log.info("curves.png not drawn: %s", exc)


def default_callbacks() -> list[Callback]:
    return [GenerationAids(), DrawCurves()]
