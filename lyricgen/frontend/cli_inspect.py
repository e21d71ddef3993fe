"""`lyricgen inspect`, `forms` and `vocab`: looking at a model, the forms and a vocabulary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lyricgen.errors import LyricgenError
from lyricgen.frontend.cli_common import (
    ConfigOption,
    CorpusOption,
    Level,
    _overrides,
    _resolve_config,
    _setup_logging,
    _show,
    app,
    run_path,
)


@app.command("inspect")
def inspect_units(
    run: Annotated[Path, typer.Argument(help="Run directory, or a shipped model's name.")],
    corpus: Annotated[
        Path | None,
        typer.Option(help="Text to read (default: the run's own held-out split)."),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(help="The HTML page to write (and a PNG beside it, with the plot extra)."),
    ] = Path("cells.html"),
    tokens: Annotated[int, typer.Option(help="Read at most this many tokens.")] = 100_000,
    top: Annotated[int, typer.Option(help="Units listed per property.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Find the hidden units that track the position in the line, the tokens left in it,
    the first line of a song and the coming rhyme, and draw them over the text."""
    _setup_logging()
    if out.suffix.lower() not in (".html", ".htm"):
        raise LyricgenError(f"--out must name an .html file, got {out}")
    if not out.parent.is_dir():
        raise LyricgenError(
            f"folder {out.parent} does not exist; create it first (mkdir -p {out.parent})"
        )
    if tokens < 1 or top < 1:
        raise LyricgenError("--tokens and --top must be at least 1")
    from lyricgen.inspection import units as unitmod

    report = unitmod.inspect_run(run_path(run), corpus, tokens, top)
    written = unitmod.write_outputs(report, out)
    if as_json:
        typer.echo(unitmod.summary_json(report, written))
        return
    typer.echo(f"read {report.tokens:,} tokens of {report.source} in {report.seconds:.1f} s")
    for f, units in report.best.items():
        measure = "eta" if f == "rhyme_group" else "r"
        listed = ", ".join(f"{u.name} {measure}={u.score:+.3f}" for u in units)
        typer.echo(f"  {unitmod.DESCRIPTIONS[f]}: {listed}")
    typer.echo("wrote " + ", ".join(str(p) for p in written))


def _embedding_views(run: Path, similar: str | None, map_: Path | None, top, as_json) -> None:
    from lyricgen.inspection import neighbours

    if map_ is not None:
        path, facts = neighbours.draw_map(run, map_, 200 if top is None else top)
        if similar is None and as_json:
            typer.echo(json.dumps(facts, ensure_ascii=False))
            return
        if not as_json:
            tone = (
                f"; PC{facts['tone_component']} follows the tone class (平/仄), r = "
                f"{facts['tone_r']:+.2f}"
                if "tone_r" in facts
                else ""
            )
            typer.echo(f"wrote {path} ({facts['tokens']} tokens{tone})")
        if similar is None:
            return
    info = neighbours.similar(run, similar, 10 if top is None else top)
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False))
        return

    def row(items):
        return "  ".join(f"{_show(x['token'])} {x['cosine']:.2f}" for x in items)

    typer.echo(f"nearest to {_show(similar)} (count {info['count']}), by cosine similarity:")
    typer.echo(f"  input embedding: {row(info['input'])}")
    if info["output"] is None:
        typer.echo("  output layer:    the same vectors (tie_weights: the layers share them)")
    else:
        typer.echo(f"  output layer:    {row(info['output'])}")


@app.command()
def forms(
    query: Annotated[
        str, typer.Argument(help="Show the forms whose name contains this (all when empty).")
    ] = "",
    pattern: Annotated[
        bool, typer.Option("--pattern", help="Draw each form's pattern (one form: always).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the forms as JSON.")] = False,
) -> None:
    """List the forms --form writes in: 近体诗 (五绝 七绝 五律 七律) and 40 词牌, with their
    clause lengths, rhymes and tone patterns (平 ○, 仄 ●, either ◐, rhyme ◎)."""
    from lyricgen.craft.forms import LEGEND, search_forms

    found = search_forms(query)
    if not found:
        raise LyricgenError(f"no form's name contains {query!r}; `lyricgen forms` lists all")
    if as_json:
        typer.echo(json.dumps([f.to_dict() for f in found], ensure_ascii=False))
        return
    draw = pattern or len(found) == 1
    for f in found:
        names = " / ".join(n for n in f.names if n != f.name)
        typer.echo(
            f"{f.name:<14} {f.kind}  {f.lengths}  ({f.length} 字, {f.rhyme_note()})"
            f"{'  also: ' + names if names else ''}"
        )
        if draw:
            typer.echo(f.pattern() + "\n")
    if draw:
        typer.echo(LEGEND)


@app.command()
def vocab(
    config: ConfigOption = None,
    corpus: CorpusOption = None,
    level: Annotated[
        Level | None, typer.Option(help="Tokenization level (overrides data.level).")
    ] = None,
    min_freq: Annotated[int | None, typer.Option(help="Drop tokens seen fewer times.")] = None,
    top: Annotated[
        int | None,
        typer.Option(
            help="How many tokens to list: the most frequent (default 20), neighbours of "
            "--similar (10) or tokens on --map (200)."
        ),
    ] = None,
    lookup: Annotated[list[str] | None, typer.Option(help="Look up a token (repeatable).")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Read a trained run's vocab.json instead of a corpus.")
    ] = None,
    similar: Annotated[
        str | None,
        typer.Option(
            help="With --checkpoint: the tokens nearest to this one (cosine) in the input "
            "embedding, and in the output layer where it has vectors of its own."
        ),
    ] = None,
    map_: Annotated[
        Path | None,
        typer.Option(
            "--map",
            help="With --checkpoint: draw a PCA map of the most frequent tokens' embeddings "
            "to this .png (needs the plot extra).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set data.max_size=5000."),
    ] = None,
) -> None:
    """Vocabulary statistics: size, coverage, most frequent tokens, look-ups; with a trained
    run, embedding neighbours (--similar) and a map (--map)."""
    _setup_logging()
    from lyricgen.inspection.vocab_stats import stats_from_corpus, stats_from_run

    if top is not None and top < 0:
        raise LyricgenError(f"--top is {top}; give a number >= 0")
    if (similar is not None or map_ is not None) and checkpoint is None:
        raise LyricgenError(
            "--similar and --map read a trained model; add --checkpoint RUN (a run directory)"
        )
    if similar is not None or map_ is not None:
        _embedding_views(run_path(checkpoint), similar, map_, top, as_json)
        return
    top = 20 if top is None else top
    if checkpoint is not None:
        info = stats_from_run(run_path(checkpoint), top, lookup or [])
    else:
        overrides = _overrides(
            set_,
            **{
                "data.corpus": str(corpus) if corpus else None,
                "data.level": level.value if level else None,
                "data.min_freq": min_freq,
            },
        )
        info = stats_from_corpus(_resolve_config(config, overrides), top, lookup or [])
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False))
    else:
        _print_vocab(info)


def _print_vocab(info: dict) -> None:
    """`lyricgen vocab`'s statistics as text."""
    typer.echo(f"source: {info['source']}  level: {info['level']}")
    typer.echo(f"size: {info['size']} entries (including <unk>)")
    typer.echo(f"training tokens: {info['train_tokens']}, coverage {info['coverage']:.2%}")
    if info.get("val_coverage") is not None:
        typer.echo(
            f"validation coverage: {info['val_coverage']:.2%} of {info['val_tokens']} tokens"
        )
    if info["top"]:
        typer.echo("most frequent: " + "  ".join(f"{_show(t)} {c}" for t, c in info["top"]))
    for item in info["lookups"]:
        if item["id"] is not None:
            typer.echo(f"{item['token']}: id {item['id']}, count {item['count']}")
        else:
            typer.echo(f"{item['token']}: not in the vocabulary; close: {'、'.join(item['close'])}")
