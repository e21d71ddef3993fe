"""Checks and invocations that several test files share, each defined once."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from lyricgen.frontend.cli import app

from .conftest import REPO, fresh_python

_runner = CliRunner()


def cli(*args, **kwargs):
    """`lyricgen ARGS...` in this process (Typer's CliRunner; `input=` feeds stdin); paths
    and numbers may be given as they are: every argument is passed as its str()."""
    return _runner.invoke(app, [str(a) for a in args], **kwargs)


def gen(run, *args, **kwargs):
    """`lyricgen generate --checkpoint RUN ARGS...`."""
    return cli("generate", "--checkpoint", run, *args, **kwargs)


def one_line_error(r, says: str, code: int | None = None) -> None:
    """The command `r` (a `cli` result) failed, with exit code `code` when given, and said
    why in one line that contains `says`: no traceback, no uncaught exception."""
    if code is None:
        assert r.exit_code != 0, r.output
    else:
        assert r.exit_code == code, r.output
    assert len(r.output.strip().splitlines()) == 1 and says in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output


def lyricgen_process(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m lyricgen ARGS...` in a fresh interpreter from the repository root, its
    output captured as text: for what only a new process shows (the entry point, exit codes)."""
    cmd = [sys.executable, "-m", "lyricgen", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def cli_without(args: list, absent: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Run `lyricgen ARGS` in a fresh interpreter and fail unless it exits 0 without
    importing any of the modules `absent`."""
    args = [str(a) for a in args]
    code = (
        "import sys\n"
        "from lyricgen.frontend.cli import app\n"
        f"try:\n    app({args!r})\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        f"loaded = [m for m in {absent!r} if m in sys.modules]\n"
        "assert not loaded, f'imported {loaded}'\n"
    )
    return fresh_python(code)


def lines_of(text: str) -> list[str]:
    """The lines of a generated text, without its final line break."""
    return text.rstrip("\n").split("\n")


def same_weights(a: dict, b: dict) -> bool:
    """Two state_dicts hold the same tensors, bit for bit."""
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
