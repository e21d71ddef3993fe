"""What a run does besides training, as callbacks (minGPT's `Trainer` and Lightning have the
same idea): the one observer interface of a run, progress reporting included.

A callback sees a `RunInfo`, a small frozen record of the run (its folder, its resolved
config, its vocabulary, whether this process writes), never the trainer itself. The trainer
calls every hook on every process; a hook that writes or draws does so only where
`run.writes` (rank 0). `Trainer` runs `default_callbacks()` unless given others; a callback
never stops training except by raising. Drawing curves.png and the terminal's progress bar
are the front end's callbacks (`frontend.plot.DrawCurves`, the CLI's bar), added by
`lyricgen train`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from lyricgen.config import Config
from lyricgen.corpus.vocab import Vocab
from lyricgen.craft import originality, rhyme
from lyricgen.run import files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """What a callback sees of a run."""

    out: Path  # the run directory
    cfg: Config  # as the run resolved it (adaptive cutoffs filled in)
    vocab: Vocab
    writes: bool  # this process writes the run directory (rank 0 under torchrun)


class Callback:
    """The hooks of a run, each a no-op here."""

    def on_run_start(self, run: RunInfo) -> None:
        """After the run directory is set up (fresh or resumed), before the first step."""

    def on_epoch_start(self, run: RunInfo, epoch: int, batches: int, done: int) -> None:
        """Epoch `epoch` (from 1) of `batches` batches starts, `done` of them already done
        (a resume)."""

    def on_log(self, run: RunInfo, batch: int, loss: float, tokens_per_s: float) -> None:
        """Every train.log_every steps: the batches done in the epoch, the mean loss and the
        tokens/s (all processes) since the last call."""

    def on_epoch_end(self, run: RunInfo, metrics: dict) -> None:
        """After the epoch's validation and writes; `metrics` is the epoch's history entry."""

    def on_run_end(self, run: RunInfo) -> None:
        """When training stops, however it stops (finished, early, time, signal, error)."""


class GenerationAids(Callback):
    """Once per run: the vocabulary's rhyme table and the corpus's copy index, which
    generation reads from the run directory."""

    def on_run_start(self, run: RunInfo) -> None:
        if not run.writes:
            return
        out, d = run.out, run.cfg.data
        if not (out / files.RHYME).exists():
            rhyme.save_rhyme_table(out, run.vocab)
        if not d.copy_index or (out / files.INDEX_DIR / "meta.json").exists():
            return
        val_fraction = None if d.val_corpus else d.val_fraction
        originality.build_run_index(out, run.vocab, d.corpus, d.encoding, d.cache_dir, val_fraction)


def default_callbacks() -> list[Callback]:
    """What every run does: the generation aids. The CLI adds `frontend.plot.DrawCurves`
    and its progress bar (the training wing never imports the front ends)."""
    return [GenerationAids()]
