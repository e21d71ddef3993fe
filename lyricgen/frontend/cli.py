"""The `lyricgen` command line: parse options -> load config -> call the library -> print.

The library reports through return values, exceptions and `logging`; this module and the
server (`serve.py`) turn them into output. A `LyricgenError` from any command becomes one
line, `error: ...`, with the error's exit code, in one place (`_Commands.invoke`).
torch-heavy modules are imported inside the commands so that `lyricgen --help` starts fast.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
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
            typer.echo(f"error: {exc}", err=True)
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


def _fail(exc: BaseException, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
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
        from lyricgen.frontend.plot import DrawCurves
        from lyricgen.frontend.progress import ProgressBar
        from lyricgen.training.callbacks import default_callbacks
        from lyricgen.training.trainer import fit

        history = fit(
            cfg,
            resume=resume,
            overwrite=overwrite,
            explicit=set(overrides),
            callbacks=[*default_callbacks(), DrawCurves(), ProgressBar()],
        )
    except KeyboardInterrupt:
        raise _fail("interrupted", 130) from None
    except OSError as exc:
        raise _fail(
            f"cannot write the run directory ({exc.strerror}: {exc.filename}); free space "
            "or choose another --out",
            1,
        ) from None
    if history and os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 reports
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


def _generate(
    start: Annotated[str, typer.Option(help="Start text, e.g. 星星.")] = "",
    checkpoint: Annotated[
        Path, typer.Option(help="Run directory written by `lyricgen train`.")
    ] = lyricgen.DEFAULT_RUN,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print samples with tokens, log-probs and perplexity.")
    ] = False,
    interactive: Annotated[
        bool, typer.Option("--interactive", help="Read start texts (and :key value) from stdin.")
    ] = False,
    corpus: Annotated[
        Path | None,
        typer.Option(help="The run's training corpus, to build its copy index if it has none."),
    ] = None,
    device: Annotated[
        Device, typer.Option(help="Where to run the model (auto: the CPU, in NumPy).")
    ] = Device.auto,
    backend: Annotated[
        Backend,
        typer.Option(
            help="auto: NumPy on the CPU (starts fast, no torch import), torch otherwise."
        ),
    ] = Backend.auto,
    **sampling: Any,
) -> None:
    """Write lyrics that continue a start text (or follow an acrostic)."""
    import lyricgen
    from lyricgen.craft.options import options_from_mapping

    values = {k: v.value if isinstance(v, Enum) else v for k, v in sampling.items()}
    opts = options_from_mapping(values)
    lyricist = lyricgen.load(
        checkpoint, backend.value, device.value, corpus, require_index=bool(opts.max_copy)
    )
    if interactive:
        _interactive(lyricist, opts, as_json)
        return
    _generate_once(lyricist, start, opts, as_json)


def _sampling_parameters() -> list[inspect.Parameter]:
    """One CLI option per SamplingOptions field: name, type, default and help come from
    there (lyricgen/craft/options.py), so the flags cannot drift from the library."""
    from lyricgen.craft.options import option_specs

    params = []
    for spec in option_specs():
        default: Any = spec.default
        if spec.kind is bool:
            annotation: Any = Annotated[bool, typer.Option(spec.flag, help=spec.help)]
        elif spec.choices:
            choice = Enum(
                spec.name.title().replace("_", ""), {c: c for c in spec.choices}, type=str
            )
            kind = choice | None if spec.optional else choice
            annotation = Annotated[kind, typer.Option(help=spec.help)]
            default = None if spec.default is None else choice(spec.default)
        else:
            kind = spec.kind | None if spec.optional else spec.kind
            annotation = Annotated[kind, typer.Option(help=spec.help)]
        params.append(
            inspect.Parameter(
                spec.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return params


def _register_generate() -> None:
    fixed = inspect.signature(_generate, eval_str=True)
    params = [p for p in fixed.parameters.values() if p.kind is not p.VAR_KEYWORD]
    params = [p.replace(kind=p.KEYWORD_ONLY) for p in params] + _sampling_parameters()
    _generate.__signature__ = fixed.replace(parameters=params)  # type: ignore[attr-defined]
    _generate.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    app.command("generate")(_generate)


_register_generate()


def _generate_once(lyricist, start: str, opts, as_json: bool) -> None:
    """Generate and print; streams token by token when stdout is a terminal."""
    vocab = lyricist.vocab
    stream = (
        sys.stdout.isatty()
        and not as_json
        and opts.num_samples == 1
        and not opts.beam
        and not opts.explain
    )
    if stream:
        typer.echo(start, nl=False)
        lyricist.generate(
            start, opts, on_token=lambda i, tok: typer.echo(_stream_piece(tok, vocab), nl=False)
        )
        typer.echo("")
        return
    samples = lyricist.generate(start, opts)
    if as_json:
        for s in samples:
            typer.echo(json.dumps(s.to_dict(), ensure_ascii=False))
        return
    if opts.explain:
        from lyricgen.frontend.explain import print_explained

        print_explained(samples, start, vocab.level)
        return
    for i, s in enumerate(samples):
        if i:
            typer.echo("\n----\n")
        typer.echo(s.text.rstrip("\n"))


def _stream_piece(token: str, vocab) -> str:
    if vocab.level == "space" and token != "\n":
        return " " + token
    return token


def _interactive(lyricist, opts, as_json: bool) -> None:
    """Read start texts line by line until EOF; `:key value` changes an option."""
    from lyricgen.craft.options import parse_option_text

    prompt = sys.stdin.isatty()
    while True:
        if prompt:
            typer.echo("> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            return
        line = line.rstrip("\n")
        try:
            if line.startswith(":"):
                key, _, value = line[1:].strip().partition(" ")
                opts = parse_option_text(key, value, opts)
                continue
            if not line.strip() and not opts.acrostic:
                continue
            _generate_once(lyricist, line.strip(), opts, as_json)
        except LyricgenError as exc:
            typer.echo(f"error: {exc}", err=True)


@app.command("eval")
def eval_(
    corpus: Annotated[
        Path | None, typer.Option(help="Text file to score (perplexity, bits per character).")
    ] = None,
    checkpoint: Annotated[Path, typer.Option(help="Run directory.")] = lyricgen.DEFAULT_RUN,
    samples: Annotated[
        int, typer.Option(help="Also generate N samples and report their quality (0: off).")
    ] = 0,
    start: Annotated[
        str | None, typer.Option(help="Start text of every sample (default: frequent words).")
    ] = None,
    lines: Annotated[int | None, typer.Option(help="Lines per sample (default 8).")] = None,
    form: Annotated[
        str | None,
        typer.Option(
            help="Generate in a form (七绝, 鹧鸪天, ...) and report format, tone and "
            "rhyme accuracy."
        ),
    ] = None,
    rhyme_book: Annotated[
        str | None, typer.Option(help="Rhyme book for --form: pingshui, xinyun or shisanzhe.")
    ] = None,
    tones: Annotated[str | None, typer.Option(help="Tones under --form: form or off.")] = None,
    candidates: Annotated[
        int | None, typer.Option(help="Line candidates (default: as generate).")
    ] = None,
    line_length: Annotated[
        int | None, typer.Option(help="Generate N-character lines and report line-form accuracy.")
    ] = None,
    rhyme: Annotated[
        str | None, typer.Option(help="Generate with --rhyme (auto or a group).")
    ] = None,
    max_copy: Annotated[
        int | None, typer.Option(help="Generate with --max-copy N (default: as generate).")
    ] = None,
    seed: Annotated[int, typer.Option(help="First sample's seed (then seed+1, ...).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    device: Annotated[Device, typer.Option(help="Where to run the model.")] = Device.auto,
) -> None:
    """Perplexity and bits per character on a text file, and/or the quality of generated
    samples (distinct-n, repeated lines, rhyme, copying, line form)."""
    if samples < 0 or samples > 10_000:
        raise LyricgenError(f"--samples is {samples}; give 1 to 10000 (0: no samples)")
    if corpus is None and samples == 0:
        raise LyricgenError(
            "give --corpus FILE to score a text, --samples N to measure generated lyrics, or both"
        )
    r: dict[str, Any] = {}
    if corpus is not None:
        from lyricgen.training.evaluation import score_text

        r = score_text(checkpoint, corpus, device.value)
    if samples:
        opts = dict(
            lines=lines,
            line_length=line_length,
            rhyme=rhyme,
            max_copy=max_copy,
            form=form,
            rhyme_book=rhyme_book,
            tones=tones,
            candidates=candidates,
        )
        r["quality"] = _quality(checkpoint, samples, start, opts, seed)
    if as_json:
        typer.echo(json.dumps(r, ensure_ascii=False))
        return
    if corpus is not None:
        typer.echo(
            f"{corpus}: perplexity {r['ppl']:.2f} per token, {r['bpc']:.3f} bits per character "
            f"({r['tokens']} tokens, {r['chars']} characters, {r['unk_rate']:.1%} <unk>)"
        )
        if r.get("corpus_rhyme_rate") is not None:
            typer.echo(f"the text's own rhyme rate: {r['corpus_rhyme_rate']:.1%}")
    if samples:
        q = r["quality"]

        def pct(key: str) -> str:
            return "n/a" if q.get(key) is None else f"{q[key]:.1%}"

        typer.echo(
            f"{q['samples']} samples, {q['lines']} lines: distinct-1 {q['distinct_1']:.3f}, "
            f"distinct-2 {q['distinct_2']:.3f}, lines repeated 3x {pct('repeat3_rate')}, "
            f"rhyme rate {pct('rhyme_rate')}, sample ppl {q['sample_ppl']:.1f}"
        )
        if "line_copy_rate" in q:
            typer.echo(
                f"copied: {pct('line_copy_rate')} of {q['lines_checked']} long lines verbatim, "
                f"{pct('copy_rate_5gram')} of 5-token spans"
            )
        if q.get("line_form_accuracy") is not None:
            typer.echo(f"line form ({line_length} characters): {pct('line_form_accuracy')}")
        if q.get("form"):
            typer.echo(
                f"form {q['form']} ({q['rhyme_book']}): format {pct('format_accuracy')}, "
                f"tones {pct('tone_accuracy')}, rhyme {pct('rhyme_accuracy')}; "
                f"{q['seconds_per_sample']:.2f} s a sample"
            )


def _quality(checkpoint, samples, start, values: dict, seed):
    import lyricgen
    from lyricgen.craft.options import options_from_mapping
    from lyricgen.inspection.quality import quality_report

    opts = options_from_mapping({k: v for k, v in values.items() if v is not None})
    lyricist = lyricgen.load(checkpoint, require_index=bool(opts.max_copy))
    return quality_report(lyricist, samples, opts, [start] if start else None, seed)


@app.command("inspect")
def inspect_cells(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
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
    from lyricgen.inspection import units as cells

    report = cells.inspect_run(run, corpus, tokens, top)
    written = cells.write_outputs(report, out)
    if as_json:
        typer.echo(cells.summary_json(report, written))
        return
    typer.echo(f"read {report.tokens:,} tokens of {report.source} in {report.seconds:.1f} s")
    for f, units in report.best.items():
        measure = "eta" if f == "rhyme_group" else "r"
        listed = ", ".join(f"{u.name} {measure}={u.score:+.3f}" for u in units)
        typer.echo(f"  {cells.DESCRIPTIONS[f]}: {listed}")
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
    from lyricgen.corpus.vocabstats import stats_from_corpus, stats_from_run

    if top is not None and top < 0:
        raise LyricgenError(f"--top is {top}; give a number >= 0")
    if (similar is not None or map_ is not None) and checkpoint is None:
        raise LyricgenError(
            "--similar and --map read a trained model; add --checkpoint RUN (a run directory)"
        )
    if similar is not None or map_ is not None:
        _embedding_views(checkpoint, similar, map_, top, as_json)
        return
    top = 20 if top is None else top
    if checkpoint is not None:
        info = stats_from_run(checkpoint, top, lookup or [])
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
        return
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


def main() -> None:
    """Console entry point: usage errors become one line (`error: ...`) with exit code 2."""
    app._add_completion = _wants_completion()
    try:
        code = app(standalone_mode=False)
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # Typer/Click usage errors (bad option values, missing options) carry exit_code and
        # format_message; anything else is a bug and keeps its traceback.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            typer.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
