"""The terminal's view of training: a tqdm bar per epoch and one line per finished epoch,
on stderr, from the main process only. A training callback like any other."""

from __future__ import annotations

import sys

import typer

from lyricgen.training.callbacks import Callback, RunInfo


class ProgressBar(Callback):
    def __init__(self) -> None:
        self.bar = None

    def on_epoch_start(self, run: RunInfo, epoch: int, batches: int, done: int) -> None:
        if not run.writes:
            return
        from tqdm import tqdm

        self._close()
        self.bar = tqdm(
            total=batches,
            initial=done,
            desc=f"epoch {epoch}",
            unit="batch",
            dynamic_ncols=True,
            leave=False,
            file=sys.stderr,
            disable=None,
        )  # None: no bar when stderr is not a terminal

    def on_log(self, run: RunInfo, batch: int, loss: float, tokens_per_s: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
            self.bar.update(batch - self.bar.n)

    def on_epoch_end(self, run: RunInfo, metrics: dict) -> None:
        if not run.writes:
            return
        self._close()
        m = metrics
        typer.echo(
            f"epoch {m['epoch']:>3}  train loss {m['train_loss']:.3f}  val loss {m['val_loss']:.3f}"
            f"  ppl {m['val_ppl']:.2f}  bpc {m['val_bpc']:.3f}  {m['tokens_per_s']:,.0f} tok/s"
            f"{'  *best' if m.get('best') else ''}",
            err=True,
        )

    def on_run_end(self, run: RunInfo) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
