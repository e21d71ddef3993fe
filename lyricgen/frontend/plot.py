"""Training-curve pictures: loss and bits per character by epoch, from a run's metrics.jsonl.

matplotlib is an optional extra (`pip install "lyricgen[plot]"`) and is imported only inside
the drawing functions, so importing this module costs nothing. Pictures are drawn with the
Agg canvas through matplotlib's object-oriented API (no pyplot): nothing needs a display,
the process-wide backend is left alone (a notebook keeps its own), and no figure is kept
in pyplot's registry, so drawing after every epoch does not grow memory.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lyricgen.atomic import atomic_write
from lyricgen.errors import LyricgenError
from lyricgen.inspection.drawing import check_png_out, matplotlib_classes
from lyricgen.run.files import METRICS, read_history  # noqa: F401
from lyricgen.run.files import best_epoch as ckpt_best_epoch
from lyricgen.training.callbacks import Callback, RunInfo

log = logging.getLogger(__name__)

CURVES = "curves.png"
_FIGSIZE = (10.0, 4.0)  # inches
_DPI = 100


def best_epoch(history: Sequence[dict[str, Any]]) -> int | None:
    """The index of the best epoch (`checkpoint.best_epoch`), or None."""
    best = ckpt_best_epoch(list(history))
    return None if best is None else next(i for i, h in enumerate(history) if h is best)


def draw_curves(histories: Sequence[tuple[str, Sequence[dict[str, Any]]]], out: str | Path) -> Path:
    """Draw (label, history) runs into one PNG: losses left, validation bpc right; return its path."""
    out = check_png_out(Path(out))
    if not histories:
        raise LyricgenError("nothing to plot: give at least one run")
    figure_cls, canvas_cls, locator_cls = matplotlib_classes()
    fig = figure_cls(figsize=_FIGSIZE, dpi=_DPI)
    canvas_cls(fig)
    # fixed margins: an automatic layout engine would double the drawing time every epoch
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.85, wspace=0.22)
    loss_ax, bpc_ax = fig.subplots(1, 2)
    for k, (label, history) in enumerate(histories):
        colour = f"C{k % 10}"
        epochs = [_num(h.get("epoch", i + 1)) for i, h in enumerate(history)]
        train = [_num(h.get("train_loss")) for h in history]
        val = [_num(h.get("val_loss")) for h in history]
        bpc = [_num(h.get("val_bpc")) for h in history]
        dot = "o" if len(history) == 1 else None  # a one-point line would be invisible
        kw = {"color": colour, "marker": dot, "markersize": 3, "linewidth": 1.5}
        loss_ax.plot(epochs, train, linestyle="--", label=f"{label} train", **kw)
        loss_ax.plot(epochs, val, linestyle="-", label=f"{label} val", **kw)
        bpc_ax.plot(epochs, bpc, linestyle="-", label=label, **kw)
        best = best_epoch(history)
        if best is not None:
            e = epochs[best]
            e_text = f"{e:g}" if math.isfinite(e) else "?"
            star = {"color": colour, "marker": "*", "markersize": 11, "linestyle": "none"}
            loss_ax.plot([e], [val[best]], label=f"{label} best {e_text}", **star)
            bpc_ax.plot([e], [bpc[best]], **star)
    loss_ax.set_title("train (dashed) and validation loss")
    loss_ax.set_ylabel("cross-entropy (nats/token)")
    bpc_ax.set_title("validation bits per character")
    bpc_ax.set_ylabel("bits per character")
    for ax in (loss_ax, bpc_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(locator_cls(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    names = [label for label, _ in histories]
    fig.suptitle(
        f"lyricgen training curves: {names[0]}"
        if len(names) == 1
        else f"lyricgen training curves: {len(names)} runs"
    )
    with warnings.catch_warnings():
        # run names in Chinese: without a CJK font the glyphs become boxes, not a warning per epoch
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=_DPI))
    fig.clear()
    return out


def write_run_curves(run_dir: str | Path) -> Path:
    """Write curves.png into a run directory for that run alone; return its path."""
    run_dir = Path(run_dir)
    label = run_dir.resolve().name or str(run_dir)
    return draw_curves([(label, read_history(run_dir))], run_dir / CURVES)


def plot_runs(
    run_dirs: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None
) -> Path:
    """Overlay several runs in one PNG, labelled by run name (or `labels`); return its path."""
    runs = [Path(r) for r in run_dirs]
    out = check_png_out(Path(out))
    if not runs:
        raise LyricgenError("nothing to plot: give at least one run directory")
    if labels is None:
        labels = run_labels(runs)
    elif len(labels) != len(runs):
        raise LyricgenError(f"got {len(labels)} labels for {len(runs)} runs; give one per run")
    histories = [(label, read_history(run)) for label, run in zip(labels, runs, strict=True)]
    return draw_curves(histories, out)


def plot_main(runs: Sequence[str | Path], out: str | Path) -> str:
    """Plot runs into `out` and return the one-line message the CLI prints."""
    path = plot_runs(runs, out)
    return f"wrote {path} ({len(runs)} run{'' if len(runs) == 1 else 's'})"


def run_labels(runs: Sequence[Path]) -> list[str]:
    """Name each run by its directory name, or by its relative path where names collide."""
    names = [r.resolve().name or str(r) for r in runs]
    if len(set(names)) == len(names):
        return names
    return [_relative(r) for r in runs]


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path.resolve())
    except ValueError:  # another drive on Windows
        return str(path)


def _num(value: Any) -> float:
    """A metric as a float; missing or non-numeric values become NaN (a gap in the curve)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


class DrawCurves(Callback):
    """curves.png in the run directory (train.curves). A missing matplotlib or a drawing
    problem is logged once and never stops training."""

    def __init__(self) -> None:
        self.failed = False

    def on_epoch_end(self, run: RunInfo, metrics: dict) -> None:
        if not run.writes or not run.cfg.train.curves or self.failed:
            return
        try:
            write_run_curves(run.out)
        except (LyricgenError, OSError, ValueError, RuntimeError) as exc:
            self.failed = True
            log.info("curves.png not drawn: %s", exc)
