"""`lyricgen generate --pick`: write a text line by line with the writer, in a terminal.

Each line is offered as numbered candidates (drawn together, every constraint applied,
best first); the writer keeps one by its number, types a line of their own, asks for more
(`m`), or finishes (`q`). The next line follows the choice. Under --form the text ends with
the form's last line; otherwise with --lines M lines, or when the writer says q.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import typer

from lyricgen.errors import LyricgenError

SHOWN = 5


def pick_lines(lyricist, start: str, opts) -> None:
    from lyricgen.craft.revise import _fits_line, _form_lines, next_line

    if start.strip() or opts.acrostic or opts.template:
        raise LyricgenError(
            "--pick writes whole lines with you; leave out --start, --acrostic and --template "
            "(--prefix sets the mood, --keywords the subject)"
        )
    if opts.keywords or opts.theme:
        raise LyricgenError(
            "--pick lets you choose each line; give the subject with --prefix (keywords need a "
            "plan over the whole text: use `lyricgen revise` on a draft of ____ lines)"
        )
    total = opts.form_template.lines if opts.form else opts.n_lines
    kept: list[str] = []
    seed = opts.seed if opts.seed is not None else 0
    shape = _form_lines(opts.form_template) if opts.form else None
    while total is None or len(kept) < total:
        alts = next_line(
            lyricist.stepper, lyricist.vocab, kept, replace(opts, seed=seed),
            k=max(opts.n_candidates, 8), copy_index=lyricist.copy_index,
            rhyme_table=lyricist.rhyme_table if opts.rhyme else None,
            keyword_control=lyricist.keyword_control,
        )  # fmt: skip
        seed += 1
        if not alts:
            break
        typer.echo(f"\nline {len(kept) + 1}" + (f" of {total}" if total else "") + ":")
        for i, a in enumerate(alts[:SHOWN], 1):
            typer.echo(f"  {i}. {a.text}")
        while True:
            typer.echo("number to keep, m for more, q to finish, or type your line: ", nl=False)
            answer = sys.stdin.readline()
            if not answer:  # end of input
                answer = "q"
            answer = answer.strip()
            if answer.isdigit() and 1 <= int(answer) <= min(SHOWN, len(alts)):
                kept.append(alts[int(answer) - 1].text)
                break
            if answer.lower() in ("m", "q", ""):
                break
            if shape is not None and not _fits_line(answer, shape[len(kept)]):
                want = "，".join(str(n) for n, _ in shape[len(kept)])
                typer.echo(f"  that line does not keep the form here ({want} characters with "
                           "its marks); try again", err=True)  # fmt: skip
                continue
            kept.append(answer)
            break
        if answer.lower() == "q":
            break
    typer.echo("\n" + "\n".join(kept))
