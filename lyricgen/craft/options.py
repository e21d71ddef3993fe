"""The generation options: one dataclass, the single source of truth for every front end.

`SamplingOptions` lists everything `generate` can be asked for, with each option's type,
default and help text (field metadata). `validate` is the only place values are checked.
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
from lyricgen.typed import TypeMismatch, coerce

MAX_LENGTH = 100_000
MAX_COPY = 63  # the copy index answers n-grams of up to 64 tokens
# --max-copy when it is not given and the run has a copy index, by tokenization level:
# measured to cost no sample quality (docs/BENCHMARKS.md, "Lyric craft")
DEFAULT_MAX_COPY = {"char": 6, "word": 4, "space": 5}
RHYME_LINES = ("all", "even")
TONES = ("form", "off")
RHYME_BOOKS = ("pingshui", "xinyun", "shisanzhe")  # see lyricgen.craft.books
# --candidates when it is not given, for requests with shaped lines (forms, line lengths,
# rhyme): measured in docs/BENCHMARKS.md ("Forms"); free text samples token by token
DEFAULT_CANDIDATES = 8
MAX_CANDIDATES = 64


def _opt(default, help: str, **extra):
    """A SamplingOptions field with the help text every front end shows."""
    return field(default=default, metadata={"help": help, **extra})


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
    )
    temperature: float = _opt(0.8, "< 1 is safer, > 1 is wilder.")
    top_k: int = _opt(0, "Sample only among the k likeliest tokens (0: off).")
    top_p: float = _opt(0.95, "Nucleus: the likeliest tokens holding this mass (1: off).")
    greedy: bool = _opt(False, "Always take the likeliest token.")
    num_samples: int = _opt(1, "Samples to write, generated as one batch.")
    seed: int | None = _opt(None, "Seed for reproducible samples.")
    repetition_penalty: float = _opt(1.1, "CTRL-style penalty on tokens already used (1: off).")
    no_repeat_ngram: int = _opt(0, "Never repeat an n-gram of this many tokens (0: off).")
    acrostic: str | None = _opt(None, "藏头: one line per character, each starting with it.")
    line_length: int | None = _opt(
        None, "Exactly N characters per line (Han characters in a Chinese model)."
    )
    line_lengths: str | None = _opt(
        None,
        "Han characters of each line, e.g. 6,6,5,6,2,2,6 (the list repeats past its end "
        "when --lines asks for more).",
    )
    lines: int | None = _opt(None, "Exactly M lines, then stop.")
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
        f"{DEFAULT_CANDIDATES} with --form, --line-length(s) or --rhyme, else 1).",
    )
    stop_at_blank: bool = _opt(False, "End a sample at a blank line (end of song).")
    beam: int = _opt(0, "Beam search with this many beams (0: sample).")
    length_penalty: float = _opt(1.0, "Beam ranking: log-prob / length ** this.")
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
    )

    explain: bool = _opt(
        False,
        "Show how sure the model was of each token: its probability, the entropy of the "
        "model's distribution and the 5 likeliest alternatives.",
    )

    def validate(self) -> None:
        if self.explain and self.beam:
            raise GenerationError(
                "--explain follows sampling one token at a time; beam search keeps several "
                "partial texts, so leave out --beam (or --explain)"
            )
        if self.length is not None and not 1 <= self.length <= MAX_LENGTH:
            raise GenerationError(
                f"--length is {self.length}; give a number from 1 to {MAX_LENGTH}"
            )
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise GenerationError(f"--seed is {self.seed}; give a number from 0 to 2**63 - 1")
        if not self.greedy and not self.beam and not self.temperature > 0:
            raise GenerationError(
                f"--temperature is {self.temperature}; it must be > 0 (use --greedy for argmax)"
            )
        if self.top_k < 0:
            raise GenerationError(f"--top-k is {self.top_k}; it must be >= 0 (0 turns it off)")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"--top-p is {self.top_p}; it must be in (0, 1] (1 turns it off)")
        if not 1 <= self.num_samples <= 1024:
            raise GenerationError(
                f"--num-samples is {self.num_samples}; give a number from 1 to 1024"
            )
        if not self.repetition_penalty >= 1.0:
            raise GenerationError(
                f"--repetition-penalty is {self.repetition_penalty}; it must be >= 1 (1 turns it off)"
            )
        if self.no_repeat_ngram < 0:
            raise GenerationError(
                f"--no-repeat-ngram is {self.no_repeat_ngram}; it must be >= 0 (0 turns it off)"
            )
        if self.line_length is not None and not 1 <= self.line_length <= 200:
            raise GenerationError(f"--line-length is {self.line_length}; give 1 to 200 characters")
        if self.lines is not None and not 1 <= self.lines <= 1000:
            raise GenerationError(f"--lines is {self.lines}; give 1 to 1000 lines")
        if self.acrostic is not None:
            heads = "".join(self.acrostic.split())
            if not heads:
                raise GenerationError("--acrostic is empty; give the head characters, e.g. 我爱你")
            if self.lines is not None and self.lines != len(heads):
                raise GenerationError(
                    f"--lines is {self.lines} but --acrostic has {len(heads)} characters; "
                    "leave --lines out or make them equal"
                )
        if not 0 <= self.beam <= 64:
            raise GenerationError(f"--beam is {self.beam}; give 2 to 64 (0 turns beam search off)")
        if self.beam and self.num_samples > self.beam:
            raise GenerationError(
                f"--num-samples is {self.num_samples} but --beam is {self.beam}; beam search "
                "returns at most one sample per beam"
            )
        if self.length_penalty < 0:
            raise GenerationError(f"--length-penalty is {self.length_penalty}; it must be >= 0")
        if self.rhyme_lines not in RHYME_LINES:
            raise GenerationError(f"--rhyme-lines is {self.rhyme_lines!r}; choose all or even")
        self._validate_forms()
        if self.rhyme is not None and self.rhyme.strip().lower() != "auto":
            from lyricgen.craft.books import book

            book(self.book).parse_group(self.rhyme)
        if self.candidates is not None:
            if not 1 <= self.candidates <= MAX_CANDIDATES:
                raise GenerationError(
                    f"--candidates is {self.candidates}; give 1 to {MAX_CANDIDATES} (1 turns "
                    "line-level search off)"
                )
            if self.beam and self.candidates > 1:
                raise GenerationError(
                    "--candidates and --beam are two searches; choose one (--candidates 1 "
                    "turns line candidates off)"
                )
        if self.max_copy is not None and not 0 <= self.max_copy <= MAX_COPY:
            raise GenerationError(
                f"--max-copy is {self.max_copy}; give 1 to {MAX_COPY} tokens (0 turns the "
                "copy guard off)"
            )

    def _validate_forms(self) -> None:
        """--form, --line-lengths, --tones and --rhyme-book, and how they meet the rest."""
        if self.tones is not None and self.tones not in TONES:
            raise GenerationError(f"--tones is {self.tones!r}; choose form or off")
        if self.rhyme_book is not None and self.rhyme_book not in RHYME_BOOKS:
            raise GenerationError(
                f"--rhyme-book is {self.rhyme_book!r}; choose {', '.join(RHYME_BOOKS)}"
            )
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
        shaped = self.form or self.line_length or self.line_lengths or self.rhyme
        return DEFAULT_CANDIDATES if shaped else 1

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
