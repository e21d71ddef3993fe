"""`lyricgen train`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from lyricgen.frontend.cli_common import (
    Cell,
    ConfigOption,
    CorpusOption,
    Device,
    PrecisionName,
    _fail,
    _overrides,
    _resolve_config,
    _setup_logging,
    app,
)


@app.command()
def train(
    config: ConfigOption = None,
    corpus: CorpusOption = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (overrides out_dir).")] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Number of epochs (overrides train.epochs).")
    ] = None,
    cell: Annotated[
        Cell | None, typer.Option(help="Recurrent cell (overrides model.cell).")
    ] = None,
    device: Annotated[
        Device | None, typer.Option(help="auto picks cuda, then mps, then cpu.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides train.seed).")] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after this much training time (train.max_minutes).")
    ] = None,
    precision: Annotated[
        PrecisionName | None,
        typer.Option(help="Autocast precision (train.precision); fp16 needs a CUDA GPU."),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Fine-tune: start from this run's weights (its cell, sizes and vocabulary, "
            "extended with this corpus's tokens)."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a trained run already in --out.")
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override any config key: --set model.hidden_size=512 (repeatable)."
        ),
    ] = None,
) -> None:
    """Train a model on a corpus and write a run directory (weights, vocab, config, metrics)."""
    _setup_logging()
    try:
        overrides = _overrides(
            set_,
            **{
                "data.corpus": str(corpus) if corpus else None,
                "out_dir": str(out) if out else None,
                "train.epochs": epochs,
                "model.cell": cell.value if cell else None,
                "train.device": device.value if device else None,
                "train.seed": seed,
                "train.max_minutes": max_minutes,
                "train.precision": precision.value if precision else None,
                "train.init_from": str(init_from) if init_from else None,
            },
        )
        if resume:
            cfg = _resume_config(config, out, overrides)
        else:
            cfg = _resolve_config(config, overrides)
        history = _fit(cfg, resume, overwrite, set(overrides))
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    except OSError as exc:
        raise _fail(
            f"cannot write the run directory ({exc.strerror}: {exc.filename}); free space "
            "or choose another --out",
            1,
        ) from None
    if history and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 reports
        _print_done(history, cfg)


def _fit(cfg, resume: bool, overwrite: bool, explicit: set[str]) -> list[dict]:
    """Train with the library's callbacks, curves.png and the terminal's progress bar."""
    from lyricgen.frontend.plot import DrawCurves
    from lyricgen.frontend.progress import ProgressBar
    from lyricgen.training.callbacks import default_callbacks
    from lyricgen.training.trainer import fit

    callbacks = [*default_callbacks(), DrawCurves(), ProgressBar()]
    return fit(cfg, resume=resume, overwrite=overwrite, explicit=explicit, callbacks=callbacks)


def _print_done(history: list[dict], cfg) -> None:
    """The run's summary line and what to do next."""
    from lyricgen.run.files import best_epoch

    best = best_epoch(history) or history[-1]
    kept = (
        f"model.safetensors holds the last epoch ({history[-1]['epoch']})"
        if cfg.train.keep == "last"
        else f"model.safetensors holds the best (epoch {best['epoch']})"
    )
    typer.echo(
        f"done: {len(history)} epochs, best val ppl {best['val_ppl']:.2f}, "
        f"bpc {best['val_bpc']:.3f} (epoch {best['epoch']}); {kept}; run directory {cfg.out_dir}"
    )
    typer.echo(f"next: lyricgen generate --checkpoint {cfg.out_dir} --start <text>")


def _resume_config(config: Path | None, out: Path | None, overrides: dict[str, Any]):
    """On --resume the run directory's own config.yaml defines the run; overrides apply."""
    from lyricgen.config import apply_overrides, from_dict
    from lyricgen.run.files import load_run_config

    if out is None:
        out = Path(_resolve_config(config, {}).out_dir)
    cfg = load_run_config(out)
    raw = apply_overrides(cfg.to_dict(), overrides, str(out / "config.yaml"))
    cfg = from_dict(raw, str(out / "config.yaml"))
    cfg.out_dir = str(out)
    return cfg
