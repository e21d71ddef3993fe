"""`lyricgen generate` (with --interactive) and `lyricgen eval`: writing lyrics and measuring
what was written."""

from __future__ import annotations

import inspect
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

import lyricgen
from lyricgen.errors import LyricgenError
from lyricgen.frontend.cli_common import (
    Backend,
    Device,
    IndexCorpusOption,
    RunOption,
    _error,
    _read_draft,
    app,
    run_path,
)
from lyricgen.frontend.cli_melody import MelodyOption, MidiOutOption, TrackOption


def _generate(
    start: Annotated[str, typer.Option(help="Start text, e.g. 星星.")] = "",
    checkpoint: RunOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print samples with tokens, log-probs and perplexity.")
    ] = False,
    interactive: Annotated[
        bool, typer.Option("--interactive", help="Read start texts (and :key value) from stdin.")
    ] = False,
    pick: Annotated[
        bool,
        typer.Option(
            "--pick",
            help="Write line by line with you (in a terminal): choose each line among "
            "numbered candidates, type your own, or ask for more.",
        ),
    ] = False,
    plan: Annotated[
        bool, typer.Option("--plan", help="Print the plan: the keywords of each line (stderr).")
    ] = False,
    corpus: IndexCorpusOption = None,
    melody: MelodyOption = None,
    track: TrackOption = None,
    midi_out: MidiOutOption = None,
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
    if pick and (interactive or as_json):
        raise LyricgenError("--pick is its own conversation; leave out --interactive and --json")
    if pick and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise LyricgenError(
            "--pick needs a terminal to ask you which line to keep; run it in one (or use "
            "`lyricgen revise --show K` to list alternatives)"
        )
    tune = None
    if melody is not None or track is not None or midi_out is not None:
        from lyricgen.frontend.cli_melody import read_melody

        tune = read_melody(melody, opts.jianpu, track)
        if midi_out is not None and tune is None and opts.jianpu is None:
            raise LyricgenError(
                "--midi-out writes the tune with the lyric; give --melody or --jianpu"
            )
        if tune is not None and (pick or interactive):
            raise LyricgenError("--melody writes one song; leave out --pick and --interactive")
    lyricist = lyricgen.load(
        checkpoint, backend.value, device.value, corpus, require_index=bool(opts.max_copy)
    )
    if pick or interactive:
        typer.echo(lyricist.label, err=True)  # which model writes
    if pick:
        from lyricgen.frontend.pick import pick_lines

        pick_lines(lyricist, start, opts)
        return
    if interactive:
        _interactive(lyricist, opts, as_json)
        return
    _generate_once(lyricist, start, opts, as_json, show_plan=plan, melody=tune,
                   midi_out=midi_out)  # fmt: skip


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


def _register(fn, name: str, leave_out: frozenset[str] = frozenset()) -> None:
    """Register `fn` as the command `name` with its own parameters (a leading positional
    argument stays positional, the rest become options) followed by one option per
    generation option, less `leave_out`."""
    fixed = inspect.signature(fn, eval_str=True)
    own = [p for p in fixed.parameters.values() if p.kind is not p.VAR_KEYWORD]
    params = [p if p.default is inspect.Parameter.empty else p.replace(kind=p.KEYWORD_ONLY)
              for p in own]  # fmt: skip
    params += [p for p in _sampling_parameters() if p.name not in leave_out]
    fn.__signature__ = fixed.replace(parameters=params)  # type: ignore[attr-defined]
    fn.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    app.command(name)(fn)


_register(_generate, "generate")


class Rank(str, Enum):
    text = "text"
    line = "line"


def _revise(
    draft: Annotated[
        Path, typer.Argument(help="The draft: a text file, or - to read it from stdin.")
    ],
    line: Annotated[
        str | None,
        typer.Option(
            help="Lines to rewrite, 1-based as in the file: 3, or 3,5 (lines of _ "
            "and blank lines between text lines are filled anyway)."
        ),  # fmt: skip
    ] = None,
    show: Annotated[
        int, typer.Option(help="List the K best alternatives of each line with their scores.")
    ] = 0,
    rank: Annotated[
        Rank,
        typer.Option(
            help="text: by the whole text's probability, the lines after included; "
            "line: by the line alone."
        ),  # fmt: skip
    ] = Rank.text,
    checkpoint: RunOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the revision as one JSON object.")
    ] = False,
    corpus: IndexCorpusOption = None,
    backend: Annotated[Backend, typer.Option(help="auto: NumPy on the CPU.")] = Backend.auto,
    **sampling: Any,
) -> None:
    """Rewrite chosen lines of a draft (and fill its ____ and blank lines), keeping every
    other line byte for byte; candidates are ranked by the whole text's probability."""
    from lyricgen.craft.options import options_from_mapping

    if not 0 <= show <= 64:
        raise LyricgenError(f"--show is {show}; give 1 to 64 (0: just the revised text)")
    lines = _parse_lines(line) if line is not None else None
    text = _read_draft(draft)
    values = {k: v.value if isinstance(v, Enum) else v for k, v in sampling.items()}
    opts = options_from_mapping(values)
    lyricist = lyricgen.load(checkpoint, backend.value, "auto", corpus,
                             require_index=bool(opts.max_copy))  # fmt: skip
    r = lyricist.revise(text, lines, opts, show=show, rank=rank.value)
    if not as_json:
        typer.echo(lyricist.label, err=True)
    if as_json:
        typer.echo(json.dumps(r.to_dict(), ensure_ascii=False))
        return
    if r.plan is not None and r.plan.theme_method:
        typer.echo(f"keywords (--theme): {'、'.join(r.plan.keywords)}", err=True)
    if r.form and r.form != opts.form:
        typer.echo(f"form: {r.form}", err=True)
    if show:
        for n, alts in r.alternatives.items():
            typer.echo(f"line {n}:")
            for i, a in enumerate(alts[:show], 1):
                typer.echo(f"  {i}. {a.text}   (score {a.score:.2f}: line {a.line_logprob:.2f}"
                           f", rest {a.rest_logprob:.2f})")  # fmt: skip
        return
    typer.echo(r.text)


def _parse_lines(text: str) -> list[int]:
    out = []
    for part in text.replace("，", ",").split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise LyricgenError(
                f"--line {text!r}: {part!r} is not a line number; give e.g. 3 or 3,5"
            )
        out.append(int(part))
    return sorted(set(out))


# options a revision takes from the draft itself
REVISE_LEAVES_OUT = {"acrostic", "template", "lines", "line_length", "line_lengths", "length",
                     "num_samples", "beam", "length_penalty", "stop_at_blank", "explain",
                     "jianpu", "phrases", "tone_fit", "refrain"}  # fmt: skip


_register(_revise, "revise", frozenset(REVISE_LEAVES_OUT))


def _generate_once(lyricist, start: str, opts, as_json: bool, show_plan: bool = False,
                   melody=None, midi_out: Path | None = None) -> None:  # fmt: skip
    """Generate and print; streams token by token when stdout is a terminal. With a melody
    each line is shown under its notes."""
    vocab = lyricist.vocab
    sung = melody is not None or opts.jianpu is not None
    stream = (
        sys.stdout.isatty()
        and not as_json
        and opts.num_samples == 1
        and not opts.beam
        and not opts.explain
        and not show_plan
        and not (opts.theme or opts.form)  # their choices are printed before the text
        and not sung  # the notes are shown above the lines
    )
    if stream:
        typer.echo(start, nl=False)
        lyricist.generate(
            start, opts, on_token=lambda i, tok: typer.echo(_stream_piece(tok, vocab), nl=False)
        )
        typer.echo("")
        typer.echo(lyricist.label, err=True)  # which model wrote it
        return
    samples = lyricist.generate(start, opts, melody=melody)
    if not as_json:
        typer.echo(lyricist.label, err=True)
    _print_choices(samples, opts, show_plan)
    if midi_out is not None and samples and samples[0].fit is not None:
        from lyricgen.frontend.cli_melody import write_midi_out

        chars = [c.char for ln in samples[0].fit.lines for c in ln]
        write_midi_out(samples[0].fit.melody, chars, midi_out)
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
        if s.fit is not None:
            from lyricgen.frontend.cli_melody import render, summary

            typer.echo(render(s.fit, [ln for ln in s.text.splitlines() if ln.strip()]))
            typer.echo(summary(s.fit), err=True)
            continue
        typer.echo(s.text.rstrip("\n"))


def _print_choices(samples, opts, show_plan: bool) -> None:
    """On stderr: the keywords a --theme chose, the form variant of a bare name, the plan."""
    if not samples:
        return
    s = samples[0]
    if s.plan is not None and s.plan.theme_method:
        typer.echo(f"keywords (--theme, {s.plan.theme_method}): {'、'.join(s.plan.keywords)}",
                   err=True)  # fmt: skip
    variants = sorted({x.variant for x in samples if x.variant and x.variant != opts.form})
    if variants:
        typer.echo(f"form: {'; '.join(variants)}", err=True)
    if show_plan:
        typer.echo(s.plan.describe() if s.plan is not None else "plan: no keywords", err=True)


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
            _error(exc)


@app.command("eval")
def eval_(
    corpus: Annotated[
        Path | None, typer.Option(help="Text file to score (perplexity, bits per character).")
    ] = None,
    checkpoint: RunOption = None,
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

        r = score_text(run_path(checkpoint), corpus, device.value)
    if samples:
        option_values = dict(
            lines=lines,
            line_length=line_length,
            rhyme=rhyme,
            max_copy=max_copy,
            form=form,
            rhyme_book=rhyme_book,
            tones=tones,
            candidates=candidates,
        )
        r["quality"] = _quality(checkpoint, samples, start, option_values, seed)
    if as_json:
        typer.echo(json.dumps(r, ensure_ascii=False))
    else:
        _print_eval(r, corpus, line_length)


def _print_eval(r: dict[str, Any], corpus: Path | None, line_length: int | None) -> None:
    """`lyricgen eval`'s report as text: the text's scores, then the samples' quality."""
    if corpus is not None:
        typer.echo(
            f"{corpus}: perplexity {r['ppl']:.2f} per token, {r['bpc']:.3f} bits per character "
            f"({r['tokens']} tokens, {r['chars']} characters, {r['unk_rate']:.1%} <unk>)"
        )
        if r.get("corpus_rhyme_rate") is not None:
            typer.echo(f"the text's own rhyme rate: {r['corpus_rhyme_rate']:.1%}")
    q = r.get("quality")
    if not q:
        return

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
