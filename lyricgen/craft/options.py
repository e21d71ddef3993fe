"""The generation options: one dataclass, the single source of truth for every front end.

`SamplingOptions` lists everything `generate` can be asked for, with each option's type,
default, help text and allowed range or choices (field metadata). Two methods check a request,
and nothing else checks options: `validate` checks the values and how they combine (ranges
and choices come from the metadata, as in `config`), and `check_for_model` checks them
against the start text and the model that is to write (its vocabulary and copy index). What only the
constraints can find out is theirs to report: a form position the vocabulary has no character
for (when they build their tables), a start text whose line is already too long or whose tones
break the form (when they read it).
The CLI's `generate` flags, the `:key value` lines of `--interactive`, the JSON fields of
`lyricgen serve` and `lyricgen.load(...).generate(...)` all derive from it through
`option_specs`, `options_from_mapping` and `parse_option_text`.

This module imports neither numpy nor torch, so the CLI can build its flags from it at
start-up without cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from lyricgen.errors import GenerationError
from lyricgen.typed import TypeMismatch, bounds, coerce, out_of_range

MAX_LENGTH = 100_000
MAX_COPY = 63  # the copy index answers n-grams of up to 64 tokens
# --max-copy when it is not given and the run has a copy index, by tokenization level:
# measured to cost no sample quality (docs/BENCHMARKS.md, "Lyric craft")
DEFAULT_MAX_COPY = {"char": 6, "word": 4, "space": 5}
RHYME_LINES = ("all", "even")
TONES = ("form", "off")
RHYME_BOOKS = ("pingshui", "xinyun", "shisanzhe")  # see lyricgen.craft.books
KEYWORD_MODES = ("must", "prefer")
# off: measured in docs/BENCHMARKS.md ("Writing about something")
EXPAND = ("off", "related", "embedding")
THEME_METHODS = ("tfidf", "textrank", "corpus")  # see lyricgen.craft.plan
TONE_FIT = ("soft", "strict", "off")  # see lyricgen.craft.tonefit
REFRAIN = ("rhyme", "repeat", "off")  # see tonefit.Echo
# --candidates when it is not given, for requests with shaped lines (forms, line lengths,
# rhyme): measured in docs/BENCHMARKS.md ("Forms"); free text samples token by token
DEFAULT_CANDIDATES = 8
# --candidates for requests with keywords (--keywords, --theme): a forced keyword is a rare
# character, and more candidates let the ranking find the lines where the model finds it
# likeliest: on the shipped verse model, over 12 forms, the samples' perplexity with keywords
# against without fell from a median 1.27x (max 1.59x) with 8 to 0.96x (max 1.18x) with 32
# (docs/BENCHMARKS.md, "Writing about something"); a 七绝 with three keywords stays near 1 s
KEYWORD_CANDIDATES = 32
MAX_CANDIDATES = 64


def _opt(default, help: str, *, lo=None, hi=None, lo_open=False, off: str = "", **extra):
    """A SamplingOptions field with the help text every front end shows, its allowed range
    (`lo`, `hi`) and, in `off`, the value that turns it off, named in range errors."""
    meta = {"help": help, **bounds(lo, hi, lo_open=lo_open), "off": off, **extra}
    return field(default=default, metadata=meta)


@dataclass
class SamplingOptions:
    """Everything `generate` can be asked for; `validate` gives one-line errors.

    This class is the single list of generation options: the CLI's flags, the `:key value`
    lines of `--interactive` and the JSON fields of `lyricgen serve` are all derived from
    its fields (name, type, default and the `help` metadata), see `option_specs`.
    """

    length: int | None = _opt(
        None,
        "Most tokens to generate after the start (default 99; with --lines, until the last line).",
        lo=1,
        hi=MAX_LENGTH,
    )
    temperature: float = _opt(0.8, "< 1 is safer, > 1 is wilder.")
    top_k: int = _opt(0, "Sample only among the k likeliest tokens (0: off).", lo=0, off="0")
    top_p: float = _opt(
        0.95,
        "Nucleus: the likeliest tokens holding this mass (1: off).",
        lo=0,
        hi=1,
        lo_open=True,
        off="1",
    )
    greedy: bool = _opt(False, "Always take the likeliest token.")
    num_samples: int = _opt(1, "Samples to write, generated as one batch.", lo=1, hi=1024)
    seed: int | None = _opt(None, "Seed for reproducible samples.", lo=0, hi=2**63 - 1)
    repetition_penalty: float = _opt(
        1.1, "CTRL-style penalty on tokens already used (1: off).", lo=1.0, off="1"
    )
    no_repeat_ngram: int = _opt(
        0, "Never repeat an n-gram of this many tokens (0: off).", lo=0, off="0"
    )
    acrostic: str | None = _opt(None, "藏头: one line per character, each starting with it.")
    line_length: int | None = _opt(
        None, "Exactly N characters per line (Han characters in a Chinese model).", lo=1, hi=200
    )
    line_lengths: str | None = _opt(
        None,
        "Han characters of each line, e.g. 6,6,5,6,2,2,6 (the list repeats past its end "
        "when --lines asks for more).",
    )
    lines: int | None = _opt(None, "Exactly M lines, then stop.", lo=1, hi=1000)
    form: str | None = _opt(
        None,
        "格律: write in a 近体诗 or 词牌 form, e.g. 七绝 or 鹧鸪天 (`lyricgen forms` lists them).",
    )
    tones: str | None = _opt(
        None,
        "平仄 under --form: form (every fixed position kept; the default) or off.",
        choices=TONES,
    )
    rhyme_book: str | None = _opt(
        None,
        "Rhyme book: pingshui (平水韵, default under --form), xinyun (中华新韵) or "
        "shisanzhe (十三辙, default for free lyrics).",
        choices=RHYME_BOOKS,
    )
    candidates: int | None = _opt(
        None,
        "Draw K candidates of each line as one batch and keep the likeliest (default "
        f"{KEYWORD_CANDIDATES} with --keywords or --theme, {DEFAULT_CANDIDATES} with --form, "
        "--line-length(s), --rhyme or a melody, else 1).",
        lo=1,
        hi=MAX_CANDIDATES,
        off="1",
    )
    stop_at_blank: bool = _opt(False, "End a sample at a blank line (end of song).")
    beam: int = _opt(0, "Beam search with this many beams (0: sample).", lo=0, hi=64, off="0")
    length_penalty: float = _opt(1.0, "Beam ranking: log-prob / length ** this.", lo=0)
    prefix: str | None = _opt(None, "Text fed before the start to set the mood; not printed.")
    rhyme: str | None = _opt(
        None,
        "押韵: 'auto' (lines rhyme with the first) or a group of the rhyme book, e.g. 江阳 or "
        "ang (十三辙), 一东 (平水韵), 十唐 (中华新韵).",
    )
    rhyme_lines: str = _opt(
        "all", "Which lines rhyme: all, or even (2, 4, 6, ...).", choices=RHYME_LINES
    )
    # no line holds more than this many consecutive corpus tokens; None: DEFAULT_MAX_COPY
    # for the level when a copy index is at hand; 0: off
    max_copy: int | None = _opt(
        None,
        "Copy guard: no line holds more than N consecutive tokens of the training text "
        "(default, where the run has a copy index: 6 characters, 4 words; 0: off).",
        lo=0,
        hi=MAX_COPY,
        off="0",
    )

    keywords: str | None = _opt(
        None,
        "Words the text is about, e.g. 秋,月,故乡: each appears, on the line the plan gives "
        "it, wherever the model finds it likeliest in that line.",
    )
    theme: str | None = _opt(
        None, "A sentence the text is about; its keywords are chosen from it (printed)."
    )
    theme_method: str = _opt(
        "tfidf",
        "How --theme chooses keywords: tfidf or textrank (jieba's), or corpus (TF-IDF with "
        "the IDF of the run's own training text).",
        choices=THEME_METHODS,
    )
    keyword_mode: str = _opt(
        "must",
        "must (every keyword appears) or prefer (keywords are only favoured).",
        choices=KEYWORD_MODES,
    )
    expand: str = _opt(
        "off",
        "Lines without a keyword: off, related (nudged towards words found near the "
        "keywords in the training text) or embedding (towards the characters nearest the "
        "keywords in the model's own embedding).",
        choices=EXPAND,
    )
    template: str | None = _opt(
        None,
        "Fixed characters: e.g. 明月__，____。 keeps every character but _ in place (with "
        "--form, checked against it; / or a line break ends a line).",
    )
    jianpu: str | None = _opt(
        None,
        "填词: a melody in numbered notation (简谱), e.g. '1=D 4/4 | 3 5 6 1' | 6 5 3 - |': "
        "each phrase becomes a line, one character per note (docs/MELODY.md).",
    )
    phrases: str | None = _opt(
        None,
        "Cut the melody into phrases of these many syllables, e.g. 8,8,7,9 (default: at "
        "rests, long notes and / marks).",
    )
    tone_fit: str | None = _opt(
        None,
        "With a melody: soft (the tones follow the tune where the model allows; the "
        "default), strict (no character on an unacceptable step) or off.",
        choices=TONE_FIT,
    )
    refrain: str | None = _opt(
        None,
        "With a melody, a phrase whose notes repeat an earlier one's: rhyme (its line ends "
        "in the earlier line's rhyme; the default), repeat (the same words) or off.",
        choices=REFRAIN,
    )
    explain: bool = _opt(
        False,
        "Show how sure the model was of each token: its probability, the entropy of the "
        "model's distribution and the 5 likeliest alternatives.",
    )

    def validate(self) -> None:
        """Every value in its range or among its choices (from the field metadata), and the
        options consistent with each other; one-line errors."""
        for f in fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            choices = f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                names = ", ".join(choices[:-1]) + " or " + choices[-1]
                raise GenerationError(f"{flag} is {value!r}; choose {names}")
            problem = out_of_range(value, f.metadata)
            if problem:
                off = f.metadata.get("off")
                raise GenerationError(
                    f"{flag} is {value}; {problem}" + (f" ({off} turns it off)" if off else "")
                )
        if self.explain and self.beam:
            raise GenerationError(
                "--explain follows sampling one token at a time; beam search keeps several "
                "partial texts, so leave out --beam (or --explain)"
            )
        if not self.greedy and not self.beam and not self.temperature > 0:
            raise GenerationError(
                f"--temperature is {self.temperature}; it must be > 0 (use --greedy for argmax)"
            )
        if self.acrostic is not None:
            if not self.heads:
                raise GenerationError("--acrostic is empty; give the head characters, e.g. 我爱你")
            if self.lines is not None and self.lines != len(self.heads):
                raise GenerationError(
                    f"--lines is {self.lines} but --acrostic has {len(self.heads)} characters; "
                    "leave --lines out or make them equal"
                )
        if self.beam and self.num_samples > self.beam:
            raise GenerationError(
                f"--num-samples is {self.num_samples} but --beam is {self.beam}; beam search "
                "returns at most one sample per beam"
            )
        if self.beam and (self.candidates or 1) > 1:
            raise GenerationError(
                "--candidates and --beam are two searches; choose one (--candidates 1 "
                "turns line candidates off)"
            )
        self._validate_forms()
        self._validate_subject()
        self._validate_melody()
        if self.rhyme is not None and self.rhyme.strip().lower() != "auto":
            from lyricgen.craft.books import book

            book(self.book).parse_group(self.rhyme)

    def check_for_model(
        self, start: str, *, level: str, line_breaks: bool, han: bool, copy_index: bool
    ) -> None:
        """The options against the start text and the model that is to write them: its
        tokenization `level`, whether its vocabulary has a line break and Han characters,
        and whether the run has a copy index. `validate` has run."""
        if self.acrostic and start.strip():
            raise GenerationError(
                "--start and --acrostic cannot be combined: the acrostic decides how each line "
                "begins (use --prefix to set the mood)"
            )
        if not self.n_lines and not start.strip() and not (self.keywords or self.theme):
            raise GenerationError(
                "--start is empty; give at least one word, e.g. --start 星星 (or --lines M, "
                "--form or --acrostic to begin a song from scratch)"
            )
        shaped = self.n_lines or self.line_length_list or self.rhyme or self.form
        if shaped and not line_breaks:
            raise GenerationError(
                "this model's vocabulary has no line break, so it cannot shape lines"
            )
        if self.template is not None and self.form is None and (level != "char" or not han):
            raise GenerationError(
                f"--template needs a character-level Chinese model (this run is {level} level); "
                "each _ is one character"
            )
        if self.form is not None and (level != "char" or not han):
            raise GenerationError(
                f"--form needs a character-level Chinese model (this run is "
                f"{level} level{'' if han else ', without Han characters'}): "
                "tones and rhymes are kept per character; train one with "
                "--set data.level=char, e.g. --config songci_char"
            )
        if self.copy_limit(level, copy_index) is not None and not copy_index:
            raise GenerationError(
                "--max-copy needs the run's copy index; this run has none (give --corpus "
                "FILE, the text it was trained on, to build it)"
            )

    def _validate_melody(self) -> None:
        """--jianpu (or a melody given beside the options), --phrases and --tone-fit."""
        if self.phrases is not None:
            from lyricgen.craft.forms import parse_line_lengths

            try:
                parse_line_lengths(self.phrases)
            except GenerationError as exc:
                raise GenerationError(str(exc).replace("--line-lengths", "--phrases")) from None

    def check_melody(self, have_melody: bool) -> None:
        """The options that a melody replaces or needs: one-line errors."""
        if not have_melody:
            for name, value in (("--phrases", self.phrases), ("--tone-fit", self.tone_fit),
                                ("--refrain", self.refrain)):  # fmt: skip
                if value is not None:
                    raise GenerationError(f"{name} needs a melody (--melody FILE or --jianpu)")
            return
        for name, value in (("--line-length", self.line_length),
                            ("--line-lengths", self.line_lengths), ("--lines", self.lines),
                            ("--form", self.form), ("--template", self.template),
                            ("--acrostic", self.acrostic)):  # fmt: skip
            if value is not None:
                raise GenerationError(
                    f"the melody sets the lines and their lengths; leave {name} out "
                    "(--phrases cuts the melody differently)"
                )

    def _validate_subject(self) -> None:
        """--keywords, --theme and --template, and how they meet the rest."""
        if self.keywords is not None and self.theme is not None:
            raise GenerationError("--keywords and --theme both say what to write about; give one")
        if self.keywords is not None:
            from lyricgen.craft.plan import parse_keywords

            parse_keywords(self.keywords)
        if self.theme is not None and not self.theme.strip():
            raise GenerationError(
                "--theme is empty; describe the subject, e.g. 一个人在秋夜想念家乡"
            )
        if self.template is None:
            return
        from lyricgen.craft.forms import parse_template

        lines = sum(parse_template(self.template).line_ends)
        if self.acrostic is not None and self.form is None and len(self.heads) != lines:
            raise GenerationError(
                f"--acrostic has {len(self.heads)} characters but --template has {lines} "
                "lines; give one head character per line"
            )
        for name, value in (("--line-length", self.line_length),
                            ("--line-lengths", self.line_lengths), ("--lines", self.lines)):  # fmt: skip
            if value is not None:
                raise GenerationError(
                    f"--template sets the lines and their lengths; leave {name} out"
                )
        if self.rhyme and self.form is None:
            raise GenerationError(
                "--rhyme with --template needs --form (the form says which clauses rhyme)"
            )

    def _validate_forms(self) -> None:
        """--form, --line-lengths, --tones and --rhyme-book, and how they meet the rest."""
        if self.line_lengths is not None:
            from lyricgen.craft.forms import parse_line_lengths

            parse_line_lengths(self.line_lengths)
            if self.line_length is not None:
                raise GenerationError(
                    "--line-length and --line-lengths both set the line lengths; give one"
                )
        if self.form is None:
            if self.tones == "form":
                raise GenerationError(
                    "--tones form needs --form (the tones come from a form's pattern), "
                    "e.g. --form 七绝"
                )
            if self.rhyme_book not in (None, "shisanzhe"):
                raise GenerationError(
                    f"--rhyme-book {self.rhyme_book} applies to --form; free lines rhyme by "
                    "十三辙 (leave --rhyme-book out, or add --form)"
                )
            return
        form = self.form_template
        if self.line_length is not None and any(c.length != self.line_length for c in form.clauses):
            raise GenerationError(
                f"--form {form.name} has clauses of {form.lengths} characters, which "
                f"contradicts --line-length {self.line_length}; leave --line-length out"
            )
        if self.line_lengths is not None:
            raise GenerationError(
                f"--form {form.name} sets its own clause lengths ({form.lengths}); leave "
                "--line-lengths out"
            )
        if self.lines is not None and self.lines != form.lines:
            raise GenerationError(
                f"--form {form.name} has {form.lines} lines, which contradicts --lines "
                f"{self.lines}; leave --lines out"
            )
        if self.acrostic is not None and len(self.heads) != form.lines:
            raise GenerationError(
                f"--acrostic has {len(self.heads)} characters but --form {form.name} has "
                f"{form.lines} lines; give one head character per line"
            )
        if self.rhyme_lines != "all":
            raise GenerationError(
                f"--rhyme-lines applies to free lines; --form {form.name} says which clauses rhyme"
            )
        if self.length is not None and self.length < form.tokens:
            raise GenerationError(
                f"--length {self.length} is shorter than --form {form.name}, which takes "
                f"{form.tokens} tokens; leave --length out"
            )

    @property
    def form_template(self):
        """The `forms.Form` that --form names, or None."""
        if self.form is None:
            return None
        from lyricgen.craft.forms import find_form

        return find_form(self.form)

    @property
    def book(self) -> str:
        """The rhyme book in force: --rhyme-book, else pingshui under --form, else 十三辙."""
        return self.rhyme_book or ("pingshui" if self.form else "shisanzhe")

    @property
    def line_length_list(self) -> list[int] | None:
        """The counted length of each line (it repeats), or None for free lines."""
        if self.line_lengths is not None:
            from lyricgen.craft.forms import parse_line_lengths

            return parse_line_lengths(self.line_lengths)
        return [self.line_length] if self.line_length is not None else None

    @property
    def n_candidates(self) -> int:
        """Candidates drawn per line: --candidates, else DEFAULT_CANDIDATES for shaped or
        rhyming lines (1 under --greedy or --beam, where candidates would be alike)."""
        if self.candidates is not None:
            return self.candidates
        if self.greedy or self.beam:
            return 1
        if self.keywords or self.theme:
            return KEYWORD_CANDIDATES
        shaped = self.form or self.line_length or self.line_lengths or self.rhyme
        if shaped or self.template:
            return DEFAULT_CANDIDATES
        return 1

    def copy_limit(self, level: str, have_index: bool) -> int | None:
        """The copy guard's N for a model of this level, or None when it is off."""
        if self.max_copy is None:
            return DEFAULT_MAX_COPY.get(level) if have_index else None
        return self.max_copy or None

    @property
    def heads(self) -> str:
        return "".join(self.acrostic.split()) if self.acrostic else ""

    @property
    def n_lines(self) -> int | None:
        if self.form is not None:
            return self.form_template.lines
        if self.template is not None:
            from lyricgen.craft.forms import parse_template

            return sum(parse_template(self.template).line_ends)
        if self.acrostic:
            return len(self.heads)
        if self.lines is None and self.line_lengths is not None:
            return len(self.line_length_list)
        return self.lines

    @property
    def max_tokens(self) -> int:
        if self.length is not None:
            return self.length
        return MAX_LENGTH if self.n_lines else 99


@dataclass(frozen=True)
class OptionSpec:
    """One generation option as front ends see it."""

    name: str
    kind: type  # int, float, bool or str
    default: Any
    optional: bool  # None is a value (meaning "not set")
    help: str
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def option_specs() -> list[OptionSpec]:
    """The generation options, derived from SamplingOptions' fields."""
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    out = []
    for f in fields(SamplingOptions):
        tp = str(f.type)
        base = tp.replace(" | None", "").strip()
        out.append(
            OptionSpec(
                f.name,
                kinds[base],
                f.default,
                "None" in tp,
                f.metadata.get("help", ""),
                f.metadata.get("choices"),
            )
        )
    return out


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _coerce_option(spec: OptionSpec, value: Any, where: str) -> Any:
    """A JSON/Python value checked against the option's type (ints pass as floats)."""
    if value is None:
        if spec.optional:
            return None
        name = spec.kind.__name__
        raise GenerationError(f"{where}{spec.name} cannot be null; give {_article(name)} {name}")
    try:
        value = coerce(value, spec.kind.__name__)
    except TypeMismatch as exc:
        raise GenerationError(f"{where}{spec.name} must be {exc}, not {value!r}") from None
    if spec.choices and value not in spec.choices:
        raise GenerationError(
            f"{where}{spec.name} is {value!r}; choose {' or '.join(spec.choices)}"
        )
    return value


def options_from_mapping(
    values: dict[str, Any], base: SamplingOptions | None = None, where: str = ""
) -> SamplingOptions:
    """SamplingOptions from a mapping of option names (JSON fields, keyword arguments) to
    typed values, on top of `base`; unknown names and wrong types are one-line errors."""
    specs = {s.name: s for s in option_specs()}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise GenerationError(
            f"{where}unknown option {unknown[0]!r}; known: {', '.join(sorted(specs))}"
        )
    changes = {k: _coerce_option(specs[k], v, where) for k, v in values.items()}
    opts = replace(base or SamplingOptions(), **changes)
    opts.validate()
    return opts


def parse_option_text(name: str, text: str, base: SamplingOptions) -> SamplingOptions:
    """`:name value` of --interactive: the value is read as the option's type; no value
    (or none/off/null) restores the default, and a flag alone switches it on."""
    specs = {s.name: s for s in option_specs()}
    key = name.replace("-", "_")
    if key not in specs:
        raise GenerationError(f"unknown option :{key}; known: {', '.join(sorted(specs))}")
    spec, text = specs[key], text.strip()
    if spec.kind is bool:
        value: Any = text.lower() not in ("0", "false", "no", "off")
    elif not text or text.lower() in ("none", "null", "off"):
        value = spec.default
    else:
        try:
            value = spec.kind(text)
        except ValueError:
            name = spec.kind.__name__
            raise GenerationError(f":{key} needs {_article(name)} {name}, got {text!r}") from None
    opts = replace(base, **{key: value})
    opts.validate()
    return opts
