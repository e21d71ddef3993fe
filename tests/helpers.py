"""Checks and invocations that several test files share, each defined once."""

from __future__ import annotations

from typer.testing import CliRunner

from lyricgen.frontend.cli import app

runner = CliRunner()


def cli(*args, **kwargs):
    """`lyricgen ARGS...` in this process (Typer's CliRunner); paths may be Path objects."""
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def gen(run, *args):
    """`lyricgen generate --checkpoint RUN ARGS...`."""
    return cli("generate", "--checkpoint", run, *args)


def lines_of(text: str) -> list[str]:
    """The lines of a generated text, without its final line break."""
    return text.rstrip("\n").split("\n")


def same_weights(a: dict, b: dict) -> bool:
    """Two state_dicts hold the same tensors, bit for bit."""
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
