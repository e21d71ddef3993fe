"""The `lyricgen` command line: parse options -> load config -> call the library -> print.

Each command is one function in a module of its group, registered on the one Typer app
(`cli_common.app`): `cli_train` (train), `cli_generate` (generate, eval), `cli_inspect`
(inspect, forms, vocab), `cli_corpus` (corpus get, corpus verse), and here the small ones
(configs, serve, plot) and `main`, the console entry point. Error lines are printed by
`cli_common._error`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from lyricgen.errors import LyricgenError
from lyricgen.frontend import (  # noqa: F401 - they register their commands
    cli_corpus,
    cli_generate,
    cli_inspect,
    cli_melody,
    cli_models,
    cli_train,
)
from lyricgen.frontend.cli_common import _error, app

__all__ = ["app", "main"]


@app.command()
def configs() -> None:
    """The shipped configs, usable by name from any folder: --config NAME."""
    from lyricgen.frontend import shipped

    rows = shipped.list_configs()
    if not rows:
        raise LyricgenError("no shipped configs found; reinstall lyricgen")
    width = max(len(name) for name, _, _ in rows)
    for name, _, about in rows:
        typer.echo(f"{name:<{width}}  {about.rstrip(':')}")
    typer.echo(f"(in {rows[0][1].parent}; use one with --config NAME, or copy it and edit)")


@app.command()
def serve(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            "-c",
            help="Run to serve; repeat for several (default checkpoints/default).",
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 127.0.0.1 keeps it on this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8000,
) -> None:
    """A local web page and JSON API for writing lyrics (needs the serve extra)."""
    from lyricgen.frontend.serve import serve_main  # before numpy: it pins BLAS to one thread

    serve_main(checkpoint or [], host, port)


@app.command()
def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to overlay.")],
    out: Annotated[Path, typer.Option(help="The picture to write (.png).")] = Path("curves.png"),
) -> None:
    """Training curves of one or more runs in one picture (needs the plot extra)."""
    from lyricgen.frontend.plot import plot_main

    typer.echo(plot_main(runs, out))


def _wants_completion() -> bool:
    """Typer's shell completion costs every start-up about 25 ms (measured in docs/
    BENCHMARKS.md "Looking inside"), so its options exist only when they are used: the
    shell's completion calls (_LYRICGEN_COMPLETE set) and --install/--show-completion."""
    asked = any(k.endswith("LYRICGEN_COMPLETE") for k in os.environ)  # lyricgen, python -m
    return asked or any(a in ("--install-completion", "--show-completion") for a in sys.argv[1:])


def _exit(code: int) -> None:
    """Exit with `code`; a worker of a multi-process run leaves through
    `distributed.leave_if_joined` (os._exit once its output is flushed). The module is
    looked up, not imported: it is loaded only where training ran, and importing it would
    load torch into every command's exit."""
    dist = sys.modules.get("lyricgen.training.distributed")
    if dist is not None:
        dist.leave_if_joined(code)
    sys.exit(code)


def main() -> None:
    """Console entry point: usage errors become one line (`error: ...`) with exit code 2."""
    app._add_completion = _wants_completion()
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        _error("interrupted")
        _exit(130)
    except Exception as exc:
        # Typer/Click usage errors (bad option values, missing options) carry exit_code and
        # format_message; anything else is a bug and keeps its traceback.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _error(f"{exc.format_message()}{hint}")
            _exit(exc.exit_code)
        raise
    _exit(code if isinstance(code, int) else 0)
