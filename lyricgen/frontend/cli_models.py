"""`lyricgen models`: the shipped models and the user's runs; `models export` ships a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lyricgen.frontend.cli_common import app

models_app = typer.Typer(
    help="The models that ship with lyricgen and your own runs (use one with --checkpoint NAME).",
    invoke_without_command=True,
)
app.add_typer(models_app, name="models")


@models_app.callback()
def models(
    ctx: typer.Context,
    runs: Annotated[Path, typer.Option(help="Folder holding your runs.")] = Path("checkpoints"),
) -> None:
    """List the shipped models and the runs under --runs, with their held-out bpc."""
    if ctx.invoked_subcommand is not None:
        return
    from lyricgen.frontend.export import list_models
    from lyricgen.run.models import DEFAULT_MODEL

    rows = list_models(runs)
    if not rows:
        typer.echo("no shipped models and no runs; train one with `lyricgen train`")
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        bpc = f"{r['val_bpc']:.3f} bpc" if r["val_bpc"] is not None else "no epoch yet"
        if r["kind"] == "shipped":
            mark = " (default)" if r["name"] == DEFAULT_MODEL else ""
            typer.echo(
                f"{r['name']:<{width}}  shipped{mark}, {r['mb']:.1f} MB, held-out {bpc}: {r['about']}"
            )
        else:
            typer.echo(f"{r['name']:<{width}}  your run, held-out {bpc}")
    typer.echo("(use one with --checkpoint NAME; a run in checkpoints/default is the default)")


@models_app.command("export")
def export(
    run: Annotated[Path, typer.Argument(help="The finished run directory to ship.")],
    name: Annotated[str, typer.Option(help="The model's name (--checkpoint NAME).")],
    guard: Annotated[
        list[Path],
        typer.Option(help="The run's training text, for the compact copy guard (repeatable)."),
    ],
    about: Annotated[str, typer.Option(help="One line saying what the model is.")] = "",
    out: Annotated[
        Path | None, typer.Option(help="Folder for the model (default: the package's).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full-precision", help="Keep the weights in fp32.")
    ] = False,
) -> None:
    """Make a finished run a model that ships with the package: half-precision weights,
    its compact copy guard and a manifest of checksums."""
    from lyricgen.frontend.export import export_model

    folder = export_model(run, name, guard, about, out, half=not full)
    size = sum(p.stat().st_size for p in folder.iterdir())
    typer.echo(f"wrote {folder} ({size / 1e6:.1f} MB)")
