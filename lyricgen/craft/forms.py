"""Forms (格律): the clause lengths, marks, line and stanza breaks, tones and rhymes of
近体诗 and 词牌, and per-line lengths (`--line-lengths`).

A `Form` is a sequence of `Clause`s. Each clause has its length in Han characters, one
tone mark per position (平, 仄, or 中 for either), the mark that follows it (，。、), the
rhyme set it belongs to (None, or a label such as "A"; a tune that changes its rhyme, 换韵,
has several), and whether a line or a stanza ends after it.

- **近体诗** (五绝, 七绝, 五律, 七律) are built here from the rules of regulated verse
  (王力《汉语诗律学》): four line patterns (仄起/平起 by the second character, 平收/仄收
  by the last), each line's second character opposite to the line before it within a couplet
  (对) and equal to it across couplets (粘); even lines (and the first, where 首句入韵)
  rhyme on 平. The first character of a five-character line, and the first and third of a
  seven-character one, are free (一三五不论) except where freeing them would leave a lone 平
  in a 平收 line (孤平): there they stay fixed.
- **词牌** are read from `data/cipai.json`: the 40 most frequent named tunes of the
  complete Song ci, each in the form most of its songs take (the 正体 in nearly every case;
  `tools/derive_cipai.py` documents how lengths, marks, tones and rhymes were counted).

`lyricgen forms` lists them; `find_form` looks one up by any of its names.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass, field
from importlib import resources

from lyricgen.craft.books import EITHER, PING, ZE
from lyricgen.errors import GenerationError

MARKS = ("，", "。", "、")
SYMBOLS = {PING: "○", ZE: "●", EITHER: "◐"}
RHYME_SYMBOL = "◎"
LEGEND = "平 ○  仄 ●  either ◐  rhyme ◎"


@dataclass(frozen=True)
class Clause:
    tones: str  # one of 平/仄/中 per position
    mark: str  # the mark after the clause: ， 。 or 、
    rhyme: str | None = None  # rhyme set label, or None
    line_end: bool = False
    stanza_end: bool = False

    @property
    def length(self) -> int:
        return len(self.tones)

    def to_dict(self) -> dict:
        return {"length": self.length, "tones": self.tones, "mark": self.mark,
                "rhyme": self.rhyme, "line_end": self.line_end,
                "stanza_end": self.stanza_end}  # fmt: skip


@dataclass(frozen=True)
class Form:
    name: str
    kind: str  # 近体诗, 词牌 or lengths
    clauses: tuple[Clause, ...]
    rhymes: dict[str, str] = field(default_factory=dict)  # rhyme set -> 平 or 仄
    names: tuple[str, ...] = ()
    note: str = ""
    tonal: bool = True  # False: lengths only (--line-lengths)

    @property
    def lines(self) -> int:
        return sum(c.line_end for c in self.clauses)

    @property
    def length(self) -> int:
        return sum(c.length for c in self.clauses)

    def line_clauses(self) -> list[list[int]]:
        """The indices of the clauses each text line holds."""
        lines: list[list[int]] = [[]]
        for k, c in enumerate(self.clauses):
            lines[-1].append(k)
            if c.line_end and k < len(self.clauses) - 1:
                lines.append([])
        return lines

    @property
    def tokens(self) -> int:
        """Tokens a character model writes for it: characters, marks and line breaks."""
        return self.length + len(self.clauses) + self.lines

    @property
    def lengths(self) -> str:
        return "-".join(str(c.length) for c in self.clauses)

    def pattern(self) -> str:
        """The form drawn with ○ ● ◐ ◎ and its marks, laid out as it is written."""
        out = []
        for c in self.clauses:
            sym = [SYMBOLS[t] for t in c.tones]
            if c.rhyme is not None:
                sym[-1] = RHYME_SYMBOL
            out.append("".join(sym) + c.mark)
            if c.line_end:
                out.append("\n")
            if c.stanza_end:
                out.append("\n")
        return "".join(out).rstrip("\n")

    def rhyme_note(self) -> str:
        if not self.rhymes:
            return ""
        if len(self.rhymes) == 1:
            return f"{next(iter(self.rhymes.values()))}韵"
        return "换韵 " + " ".join(f"{k}:{v}" for k, v in self.rhymes.items())

    def to_dict(self) -> dict:
        return {
            "name": self.name, "names": list(self.names or (self.name,)), "kind": self.kind,
            "lengths": self.lengths, "lines": self.lines, "characters": self.length,
            "rhymes": self.rhymes, "rhyme_note": self.rhyme_note(), "note": self.note,
            "pattern": self.pattern(), "clauses": [c.to_dict() for c in self.clauses],
        }  # fmt: skip


# ------------------------------------------------------------------------------ 近体诗

# one line by (second character's tone, last character's tone); 中 = free position
_LINES = {
    5: {(ZE, ZE): "中仄平平仄", (ZE, PING): "中仄仄平平",
        (PING, ZE): "中平平仄仄", (PING, PING): "平平仄仄平"},
    7: {(PING, ZE): "中平中仄平平仄", (PING, PING): "中平中仄仄平平",
        (ZE, ZE): "中仄中平平仄仄", (ZE, PING): "中仄平平仄仄平"},
}  # fmt: skip
_OTHER = {PING: ZE, ZE: PING}
JINTI = {"五绝": (5, 4), "七绝": (7, 4), "五律": (5, 8), "七律": (7, 8)}
# the variant a bare name means: five-character verse mostly starts 仄起 without a rhyme in
# the first line, seven-character verse 平起 with one
_DEFAULT_VARIANT = {5: ("仄起", False), 7: ("平起", True)}


def jinti(name: str, start: str, first_rhymes: bool) -> Form:
    """A 近体 form: name in JINTI, start 平起 or 仄起 (the first line's second character),
    first_rhymes: whether the first line rhymes (首句入韵)."""
    size, n = JINTI[name]
    second = PING if start == "平起" else ZE
    clauses = []
    for i in range(n):
        if i:
            second = _OTHER[second] if i % 2 else second  # 对 within a couplet, 粘 across
        rhymed = i % 2 == 1 or (i == 0 and first_rhymes)
        tones = _LINES[size][(second, PING if rhymed else ZE)]
        clauses.append(Clause(tones, "。" if i % 2 else "，", "A" if rhymed else None,
                              line_end=i % 2 == 1))  # fmt: skip
    full = f"{name}·{start}{'首句入韵' if first_rhymes else '首句不入韵'}"
    names = [full, f"{name}·{start}{'入韵' if first_rhymes else '不入韵'}"]
    if _DEFAULT_VARIANT[size] == (start, first_rhymes):
        names.insert(0, name)
    return Form(full, "近体诗", tuple(clauses), {"A": PING}, tuple(names),
                note=f"{size}言{n}句，平声韵，{start}，{'首句入韵' if first_rhymes else '首句不入韵'}")  # fmt: skip


# ------------------------------------------------------------------------------ 词牌


def _cipai() -> list[Form]:
    data = json.loads(
        resources.files("lyricgen.craft").joinpath("data/cipai.json").read_text("utf-8")
    )
    forms = []
    for t in data["tunes"]:
        clauses = tuple(
            Clause(c["tones"], c["mark"], c["rhyme"], c["line_end"], c["stanza_end"])
            for c in t["clauses"]
        )
        note = f"第{t['rank']}位，{t['songs']}首，{round(100 * t['share'])}% 合此体"
        forms.append(Form(t["name"], "词牌", clauses, dict(t["rhymes"]), tuple(t["names"]), note))
    return forms


@functools.lru_cache(maxsize=1)
def all_forms() -> tuple[Form, ...]:
    """Every named form: the 近体 variants, then the 40 词牌 in order of frequency."""
    out = []
    for name in JINTI:
        for start in ("平起", "仄起"):
            for first in (True, False):
                out.append(jinti(name, start, first))
    # bare names first, so that the listing starts with 五绝 rather than a variant
    out.sort(key=lambda f: (list(JINTI).index(f.name.split("·")[0]), f.name not in _bare()))
    return tuple(out) + tuple(_cipai())


def _bare() -> set[str]:
    return {
        jinti(n, *_DEFAULT_VARIANT[JINTI[n][0]]).name for n in JINTI
    }  # the variants bare names stand for


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, Form]:
    idx: dict[str, Form] = {}
    for f in all_forms():
        for n in f.names or (f.name,):
            idx.setdefault(_norm(n), f)
        if f.kind == "词牌" and len(f.names) > 1:  # the corpus's own spelling, 望江南・忆江南
            idx.setdefault(_norm("·".join(f.names)), f)
    return idx


def _norm(name: str) -> str:
    return name.strip().replace("・", "·").replace(".", "·").replace(" ", "")


def find_form(name: str) -> Form:
    """The form called name (any of its names); a one-line error suggests close names."""
    idx = _index()
    found = idx.get(_norm(name))
    if found is not None:
        return found
    names = list(idx)
    close = [n for n in names if _norm(name) and _norm(name) in n][:5]
    close += [n for n in difflib.get_close_matches(_norm(name), names, n=5, cutoff=0.3)
              if n not in close]  # fmt: skip
    hint = "、".join(close[:5]) if close else "、".join(names[:6]) + " ..."
    raise GenerationError(
        f"--form {name!r} is not a known form; did you mean: {hint}? (`lyricgen forms` lists all)"
    )


def search_forms(query: str = "") -> list[Form]:
    """Forms whose name or pattern length contains query (all of them for an empty query)."""
    q = _norm(query)
    return [f for f in all_forms() if not q or any(q in _norm(n) for n in f.names or (f.name,))]


# ------------------------------------------------------------------------------ --line-lengths


def parse_line_lengths(text: str) -> list[int]:
    """'6,6,5,6' -> [6, 6, 5, 6]; zero, negative or non-numeric entries are an error."""
    parts = [p.strip() for p in text.replace("，", ",").split(",")]
    out = []
    for p in parts:
        if not p.isdigit() or not 1 <= int(p) <= 200:
            raise GenerationError(
                f"--line-lengths {text!r}: {p!r} is not a line length; give whole numbers "
                "from 1 to 200 separated by commas, e.g. 6,6,5,6,2,2,6"
            )
        out.append(int(p))
    return out


# ------------------------------------------------------------------------------ variants


def form_variants(name: str) -> list[Form]:
    """The forms a --form name allows: a bare 近体 name (七绝) stands for its four variants
    (平起/仄起, 首句入韵 or not), the usual one first; any other name for itself."""
    key = _norm(name)
    if key in JINTI:
        size = JINTI[key][0]
        default = _DEFAULT_VARIANT[size]
        combos = [default] + [
            (s, f) for s in ("平起", "仄起") for f in (True, False) if (s, f) != default
        ]
        return [jinti(key, s, f) for s, f in combos]
    return [find_form(name)]


# ------------------------------------------------------------------------------ templates

BLANKS = "_＿"
LINE_BREAKS = "/\n"
SENTENCE_ENDS = "。！？!?"


@dataclass(frozen=True)
class Template:
    """A text with fixed characters and blanks (`--template 明月__，____。`): one list of
    slots per clause (a character, or None for a blank the model writes), the clause's mark
    ("" where a line break or the end closes it), and where lines and stanzas end."""

    slots: tuple[tuple[str | None, ...], ...]
    marks: tuple[str, ...]
    line_ends: tuple[bool, ...]
    stanza_ends: tuple[bool, ...]

    @property
    def blanks(self) -> int:
        return sum(s is None for c in self.slots for s in c)

    def fixed(self) -> dict[tuple[int, int], str]:
        """(clause, position) -> the fixed character there."""
        return {(k, p): s for k, c in enumerate(self.slots) for p, s in enumerate(c) if s}

    def form(self) -> Form:
        """The template as a form of its own: its lengths and marks, no tones or rhymes."""
        clauses = tuple(
            Clause(EITHER * len(s), m, None, e, st)
            for s, m, e, st in zip(
                self.slots, self.marks, self.line_ends, self.stanza_ends, strict=True
            )  # fmt: skip
        )
        return Form("template", "template", clauses, {}, ("template",),
                    note="--template", tonal=False)  # fmt: skip


def parse_template(text: str) -> Template:
    """'明月__，____。/…' -> Template. `_` (or ＿) is a blank, a punctuation mark closes a
    clause, `/` or a line break closes a line (a blank line, a stanza); without any line
    break, a line ends at each 。！？ and at the end. One-line errors for an empty template or
    one without a blank."""
    import unicodedata

    if not text or not text.strip():
        raise GenerationError("--template is empty; write the text with _ for each character "
                               "to generate, e.g. 明月__，____。")  # fmt: skip
    explicit_lines = any(c in LINE_BREAKS for c in text.strip())
    slots: list[tuple] = []
    marks: list[str] = []
    line_ends: list[bool] = []
    stanza_ends: list[bool] = []
    cur: list[str | None] = []

    def close(mark: str, line_end: bool) -> None:
        nonlocal cur
        if cur:
            slots.append(tuple(cur))
            marks.append(mark)
            line_ends.append(line_end)
            stanza_ends.append(False)
        elif mark and marks and not marks[-1]:
            marks[-1] = mark  # a mark right after a line break belongs to nothing: keep it
        cur = []

    text = text.strip().replace("\r\n", "\n")
    for i, ch in enumerate(text):
        if ch in LINE_BREAKS:
            if cur:
                close("", True)
            elif line_ends and ch == "\n" and text[i - 1 : i] == "\n":
                stanza_ends[-1] = True
            elif line_ends:
                line_ends[-1] = True
            continue
        if ch.isspace():
            continue
        if ch in BLANKS:
            cur.append(None)
        elif unicodedata.category(ch)[0] == "P":
            if not cur:
                raise GenerationError(
                    f"--template: the mark {ch!r} at character {i + 1} closes no clause; put "
                    "characters or _ before each mark"
                )
            close(ch, not explicit_lines and ch in SENTENCE_ENDS)
        else:
            cur.append(ch)
    close("", True)
    line_ends[-1] = True
    stanza_ends[-1] = False
    t = Template(tuple(slots), tuple(marks), tuple(line_ends), tuple(stanza_ends))
    if not t.blanks:
        raise GenerationError(
            "--template has no _ to fill; mark each character the model should write with _"
        )
    return t


def check_template(t: Template, form: Form) -> None:
    """The template's clause lengths and marks against the form's; one-line error naming
    the first clause that differs. Line breaks in the template do not count (the form
    decides them); a clause the template closes with a line break takes the form's mark."""
    if len(t.slots) != len(form.clauses):
        raise GenerationError(
            f"--template has {len(t.slots)} clauses but {form.name} has {len(form.clauses)} "
            f"({form.lengths}); write one clause per clause of the form"
        )
    for k, (s, m, c) in enumerate(zip(t.slots, t.marks, form.clauses, strict=True)):
        if len(s) != c.length:
            raise GenerationError(
                f"--template: clause {k + 1} has {len(s)} characters but {form.name} has "
                f"{c.length} there ({form.lengths})"
            )
        if m and m != c.mark:
            raise GenerationError(
                f"--template: clause {k + 1} ends in {m!r} but {form.name} puts {c.mark!r} there"
            )
