"""A training run's directory as one object: opened fresh or for a resume, locked while
training, and the one place that writes the run's files during training.

`files.py` holds the file formats (each file written atomically); `RunDir` decides which
files a fresh run clears, when the lock is taken, and that only the main process writes.
Under torchrun every process holds a `RunDir`, but only rank 0's writes anything.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from lyricgen.config import Config
from lyricgen.corpus.vocab import Vocab
from lyricgen.errors import RunDirError
from lyricgen.run import files as ckpt

if TYPE_CHECKING:
    import torch


class RunDir:
    def __init__(self, path: Path, writer: bool, stack: contextlib.ExitStack):
        """`writer`: this process writes the files (rank 0); `stack` holds the lock."""
        self.path, self.writer, self.stack = Path(path), writer, stack

    def open(self, resume: bool, overwrite: bool) -> tuple[dict | None, Vocab | None]:
        """(saved state, vocabulary) of the run being resumed, else (None, None) after making
        sure no finished run is overwritten by accident."""
        out = self.path
        if not resume:
            if not overwrite and any((out / f).exists() for f in (ckpt.STATE, ckpt.WEIGHTS)):
                raise RunDirError(
                    f"{out} already holds a trained run; continue it with --resume, replace it "
                    "with --overwrite, or choose another --out"
                )
            return None, None
        if not out.is_dir():
            raise RunDirError(f"run directory {out} does not exist, so there is nothing to resume")
        if self.writer:
            self.stack.enter_context(ckpt.RunLock(out))
            ckpt.remove_temp_files(out)  # left by a kill in the middle of a write
        return ckpt.load_train_state(out / ckpt.STATE), ckpt.load_vocab(out)

    def claim(self, resume: bool) -> None:
        """Called once the input is known to be good: prove the folder writable before any
        training time is spent, and lock it (a resume took the lock in `open`)."""
        if self.writer:
            ckpt.ensure_writable(self.path)
            if not resume:
                self.stack.enter_context(ckpt.RunLock(self.path))

    def start_fresh(self, cfg: Config, vocab: Vocab) -> None:
        """The config and vocabulary of a new run; whatever an earlier run left is removed."""
        if not self.writer:
            return
        ckpt.save_run_files(self.path, cfg, vocab)
        for stale in (ckpt.WEIGHTS, ckpt.STATE, ckpt.METRICS, ckpt.RHYME):
            (self.path / stale).unlink(missing_ok=True)
        shutil.rmtree(self.path / ckpt.INDEX_DIR, ignore_errors=True)

    def resumed(self, cfg: Config, vocab: Vocab, history: list[dict]) -> None:
        """Record the resumed config (it may override train.epochs) and rewrite the metrics:
        a kill may have come before their last write."""
        if self.writer:
            ckpt.save_run_files(self.path, cfg, vocab)
            ckpt.write_metrics(self.path, history)

    def save_state(self, state: dict) -> None:
        if self.writer:
            ckpt.save_train_state(state, self.path / ckpt.STATE)

    def save_weights(self, model: torch.nn.Module) -> None:
        if self.writer:
            ckpt.save_weights(model, self.path / ckpt.WEIGHTS)

    def write_metrics(self, history: list[dict]) -> None:
        if self.writer:
            ckpt.write_metrics(self.path, history)
