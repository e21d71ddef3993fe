"""`lyricgen corpus get` and `corpus verse`: the classical corpora, downloaded and mixed."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Annotated

import typer

from lyricgen.errors import CorpusError
from lyricgen.frontend.cli_common import _setup_logging, app

corpus_app = typer.Typer(
    help="Get the classical corpora (Song ci, Tang shi, Song shi) and build the verse mix.",
    no_args_is_help=True,
)
app.add_typer(corpus_app, name="corpus")

OutOption = Annotated[Path, typer.Option(help="Folder to write the corpus files into.")]


@corpus_app.command("get")
def get(
    name: Annotated[str, typer.Argument(help="songci (宋词), tangshi (全唐诗) or songshi (宋诗).")],
    out: OutOption = Path("corpora"),
    source: Annotated[
        str | None,
        typer.Option(
            help="URL of the chinese-poetry repository's files (default: GitHub at the "
            "pinned commit)."
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the downloaded JSON files (default: "
            "~/.cache/lyricgen/chinese-poetry/COMMIT, or under $LYRICGEN_CACHE_DIR)."
        ),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(hidden=True, help="Another list of source files (path, size, sha256)."),
    ] = None,
) -> None:
    """Download a classical corpus, check it and write it as NAME.txt in --out.

    The chinese-poetry collection's JSON files at a pinned commit, each checked against its
    SHA-256, converted to simplified characters (the shi; needs the corpus extra). Downloads
    are kept in --cache, and a rerun resumes an interrupted one."""
    from lyricgen.corpus import get as getmod

    _setup_logging()
    written = getmod.get(
        name,
        out,
        source or getmod.SOURCE,
        cache,
        manifest or getmod.MANIFEST,
        progress=_bar,
    )
    same = {True: ", the reference text", False: ", not the reference text"}
    for w in written:
        poems = f"{w.poems:,} poems, " if w.poems is not None else ""
        typer.echo(
            f"{w.path}: {poems}{w.lines:,} lines, {w.chars:,} chars, sha256 {w.sha256}"
            f"{same.get(w.reference, '')}"
        )


@corpus_app.command("verse")
def verse(
    from_: Annotated[
        Path,
        typer.Option("--from", help="Folder holding songci.txt, tangshi.txt and songshi.txt."),
    ] = Path("corpora"),
    out: OutOption = Path("corpora"),
) -> None:
    """Write the verse mix from the three classical corpora.

    verse_train.txt, verse_finish.txt, songci_val.txt and tang_val.txt in --out, from the songci.txt,
    tangshi.txt and songshi.txt of `lyricgen corpus get`."""
    from lyricgen.corpus import verse as versemod

    for name in ("songci", "tangshi", "songshi"):
        if not (from_ / f"{name}.txt").is_file():
            raise CorpusError(
                f"{from_ / f'{name}.txt'} not found; run `lyricgen corpus get {name}` first"
                + (f" (with --out {from_})" if from_ != Path("corpora") else "")
            )
    try:
        sizes = versemod.build(from_, out)
    except OSError as exc:
        full = exc.errno == errno.ENOSPC
        raise CorpusError(
            f"cannot write {exc.filename or out}: "
            + ("the disk is full; free some space and rerun" if full else str(exc.strerror))
        ) from None
    for name, chars in sizes.items():
        typer.echo(f"{out / name}: {chars:,} chars")


def _bar(**kwargs):
    """A tqdm bar on stderr, none when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(
        **kwargs,
        unit_scale=kwargs.get("unit") == "B",
        dynamic_ncols=True,
        leave=False,
        file=sys.stderr,
        disable=None,
    )
