"""What every command of the `lyricgen` command line shares: the Typer app, its error
handling, the option types, logging and config resolution.

The library reports through return values, exceptions and `logging`; the command line and
the server (`serve.py`) turn them into output. Every error line the command line prints is
`_error`'s (`error: ...` on stderr): a `LyricgenError` from any command, with the error's exit
code, through `_Commands.invoke`; an interrupted or failed write through `_fail`; a bad
`:key value` line of `--interactive`, which goes on reading; and usage errors in `cli.main`.
torch-heavy modules are imported inside the commands so that `lyricgen --help` starts fast.
"""

from __future__ import annotations

import logging
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

import lyricgen
from lyricgen.errors import LyricgenError


class _Commands(TyperGroup):
    """Every command runs through `invoke`: the one place a LyricgenError becomes a one-line
    message and an exit code (for `main()` and for CliRunner alike)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LyricgenError as exc:
            _error(exc)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Commands,
    help="Train recurrent language models on song lyrics and write new lyrics with them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lyricgen {lyricgen.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Train recurrent language models on song lyrics and write new lyrics with them."""


# options shared by `train` and `vocab`
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        help="YAML config file, or a shipped config's name (`lyricgen configs`); default: "
        "configs/default.yaml, or the shipped default outside the repository."
    ),
]
CorpusOption = Annotated[
    Path | None, typer.Option(help="Corpus text file (overrides data.corpus).")
]
# options shared by `generate` and `revise`
RunOption = Annotated[
    Path | None,
    typer.Option(
        help="Run directory written by `lyricgen train`, or a shipped model's name "
        "(`lyricgen models`); default: checkpoints/default once trained, else the shipped "
        "verse model."
    ),
]


def run_path(checkpoint: Path | None) -> Path:
    """The run directory --checkpoint means (a folder, a shipped model, or the default)."""
    from lyricgen.run.models import resolve
    from lyricgen.run.names import DEFAULT_RUN

    return resolve(checkpoint, DEFAULT_RUN).path


IndexCorpusOption = Annotated[
    Path | None,
    typer.Option(help="The run's training corpus, to build its copy index if it has none."),
]


class Cell(str, Enum):
    rnn = "rnn"
    lstm = "lstm"
    gru = "gru"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class PrecisionName(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Backend(str, Enum):
    auto = "auto"
    numpy = "numpy"
    torch = "torch"


class Level(str, Enum):
    char = "char"
    word = "word"
    space = "space"


def _error(message: object) -> None:
    """Print one error line, `error: ...`, on stderr: every error the command line shows."""
    typer.echo(f"error: {message}", err=True)


def _fail(exc: BaseException, code: int = 1) -> typer.Exit:
    """Print `exc` as an error line and return the exit that ends the command with `code`."""
    _error(exc)
    return typer.Exit(code)


class _EchoHandler(logging.Handler):
    """Logs to whatever sys.stderr is at the time (CliRunner swaps it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(self.format(record), err=True)


def _setup_logging() -> None:
    root = logging.getLogger("lyricgen")
    if not any(isinstance(h, _EchoHandler) for h in root.handlers):
        handler = _EchoHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("jieba").setLevel(logging.WARNING)


def _resolve_config(config: Path | None, overrides: dict[str, Any]):
    """A config file, or a shipped config by name (lyricgen/frontend/shipped.py): `lyricgen train`
    works from any folder."""
    from lyricgen.config import DataConfig, load_config
    from lyricgen.frontend import shipped

    path = shipped.find_config(config)
    cfg = load_config(path, overrides)
    folder = shipped.configs_dir()
    if (folder is not None and path.resolve().parent == folder.resolve()) or (
        cfg.data.corpus == DataConfig.corpus
    ):
        cfg.data.corpus = shipped.resolve_data_path(cfg.data.corpus)
        cfg.data.val_corpus = shipped.resolve_data_path(cfg.data.val_corpus)
    return cfg


def _overrides(sets: list[str] | None, **named: Any) -> dict[str, Any]:
    from lyricgen.config import parse_override

    out = dict(parse_override(s) for s in sets or [])
    out.update({k: v for k, v in named.items() if v is not None})
    return out


def _show(token: str) -> str:
    return {"\n": "\\n", " ": "<space>", "\t": "\\t"}.get(token, token)


def _read_draft(path: Path) -> str:
    """The draft's text (stdin for -); one-line errors for a missing file or one that is not
    UTF-8 text."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except FileNotFoundError:
        raise LyricgenError(
            f"draft {path} does not exist; give a text file (or - for stdin)"
        ) from None
    except IsADirectoryError:
        raise LyricgenError(f"draft {path} is a folder; give a text file") from None
    except OSError as exc:
        raise LyricgenError(f"draft {path} cannot be read ({exc.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise LyricgenError(f"draft {path} is not UTF-8 text; save it as UTF-8") from None
