"""Revising a draft: rewrite chosen lines, fill blank ones, keep every other line byte for byte.

A left-to-right model can still use what comes after a line. The candidates for line i are
drawn from the model after lines 1..i-1 (K at once, under every constraint of the request),
then each is ranked by the log-probability of the whole text:

    log P(line i | lines before) + log P(the kept lines after | lines before, line i)

the second term by one teacher-forced pass over the following kept lines, batched over the
K candidates. So a new line leads into what follows it, which ranking by the line alone
cannot see (`rank="line"` does that, for comparison).

Lines are numbered as the draft's lines are (1 = its first line, blank lines counted). The
lines to write are those named (`lines`), each line made only of `_` (`____`), and each blank
line between two text lines (under a form, only as many as the form's line count needs, and
not at the form's stanza break). Under a form (given, or recognised from the draft's line
shapes), the kept lines fix their characters in the form's positions, so a new line keeps
the form's lengths and tones and rhymes with the kept lines' rhyme group.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from lyricgen.corpus.text import NEWLINE, detokenize
from lyricgen.corpus.vocab import Vocab
from lyricgen.craft.constraints import Constraints, TokenTable
from lyricgen.craft.generate import (
    _context,
    control_for,
    control_marks,
    draw_lines,
    encode_prompt,
    line_score,
)
from lyricgen.craft.options import DEFAULT_CANDIDATES, SamplingOptions
from lyricgen.craft.plan import Plan
from lyricgen.craft.rhyme import is_han
from lyricgen.craft.sampling import log_softmax
from lyricgen.craft.stepper import Stepper
from lyricgen.errors import GenerationError

if TYPE_CHECKING:
    from lyricgen.craft.copyindex import CopyIndex
    from lyricgen.craft.forms import Form

MAX_DRAFT_CHARS = 20_000
# candidates drawn for each line written, when --candidates is not given: measured on 100
# held-out Song ci songs (docs/BENCHMARKS.md, "Writing about something"), 64 ranked by the
# whole text give a likelier whole text than a left-to-right fill of the line (16 ranked by
# the line alone) in 89% of the songs, against 70% for 16; a one-line revision stays well
# under 2 s as a whole process
REVISE_CANDIDATES = 64
RANKS = ("text", "line")


@dataclass
class Alternative:
    """One candidate for a line: its text, its log-probability given the lines before, and
    that of the kept lines after it given it (0 where nothing follows)."""

    text: str
    line_logprob: float
    rest_logprob: float

    @property
    def score(self) -> float:
        return self.line_logprob + self.rest_logprob

    def to_dict(self) -> dict:
        return {"text": self.text, "line_logprob": round(self.line_logprob, 4),
                "rest_logprob": round(self.rest_logprob, 4),
                "score": round(self.score, 4)}  # fmt: skip


@dataclass
class Revision:
    """The revised text, the lines written (1-based), each one's alternatives (best first;
    the first is the one in `text`), the form variant kept and the keywords' plan."""

    text: str
    lines: list[int]
    alternatives: dict[int, list[Alternative]] = field(default_factory=dict)
    form: str | None = None
    plan: Plan | None = None
    logprob: float = 0.0  # the whole text's log-likelihood under the model

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "lines": self.lines,
            "alternatives": {
                str(k): [a.to_dict() for a in v] for k, v in self.alternatives.items()
            },
            "logprob": round(self.logprob, 4),
            **({"form": self.form} if self.form else {}),
            **({"plan": self.plan.to_dict()} if self.plan else {}),
        }


def read_draft(text: str, max_chars: int = MAX_DRAFT_CHARS) -> list[str]:
    """The draft's lines; one-line errors for an empty draft, one that is not text, or one
    over `max_chars`."""
    if "\x00" in text:
        raise GenerationError("the draft is not text (it holds NUL bytes); give a UTF-8 text file")
    if len(text) > max_chars:
        raise GenerationError(
            f"the draft has {len(text)} characters; revise at most {max_chars} at a time"
        )
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not any(ln.strip() for ln in lines):
        raise GenerationError("the draft is empty; give the text to revise")
    return lines


def _is_blankmark(line: str) -> bool:
    s = line.strip()
    return bool(s) and all(c in "_＿" for c in s)


def _clauses(line: str) -> list[tuple[int, str]]:
    """(Han characters, mark) of each clause of a line."""
    out, n = [], 0
    for ch in line.strip():
        if is_han(ch) or ch in "_＿":
            n += 1
        elif n and not ch.isspace():
            out.append((n, ch))
            n = 0
    if n:
        out.append((n, ""))
    return out


def _form_lines(form: Form) -> list[list[tuple[int, str]]]:
    """(length, mark) of each clause of each text line of the form."""
    return [[(form.clauses[k].length, form.clauses[k].mark) for k in ln]
            for ln in form.line_clauses()]  # fmt: skip


def _tone_fit(form: Form, text_lines: list[str]) -> int:
    """How many of the lines' characters (and blanks) stand where the form's tones allow
    them under 平水韵."""
    from lyricgen.craft.books import EITHER, book

    ps = book("pingshui")
    chars = [c for ln in text_lines for c in ln if is_han(c) or c in "_＿"]
    tones = "".join(c.tones for c in form.clauses)
    return sum(t == EITHER or t in ps.tones(c) for c, t in zip(chars, tones, strict=False))


def _fits_line(draft_line: str, shape: list[tuple[int, str]]) -> bool:
    got = _clauses(draft_line)
    return len(got) == len(shape) and all(
        n == m and (not mk or mk == fm) for (n, mk), (m, fm) in zip(got, shape, strict=True)
    )


def recognise_form(text_lines: list[str]) -> list[Form]:
    """The forms whose lines the draft's text lines keep (lengths and marks; `____` lines
    take any shape), best tone fit first; empty when none."""
    from lyricgen.craft.forms import all_forms

    found = []
    for f in all_forms():
        shapes = _form_lines(f)
        if len(shapes) != len(text_lines):
            continue
        if all(_is_blankmark(ln) or _fits_line(ln, sh) for ln, sh in zip(text_lines, shapes,
                                                                         strict=True)):  # fmt: skip
            found.append((-_tone_fit(f, text_lines), f.kind != "近体诗", f))
    found.sort(key=lambda x: (x[0], x[1]))
    best = [f for fit, _, f in found if fit == found[0][0]] if found else []
    return best


def revise(
    stepper: Stepper,
    vocab: Vocab,
    draft: str,
    lines: list[int] | None,
    opts: SamplingOptions | None = None,
    *,
    copy_index: CopyIndex | None = None,
    rhyme_table: dict[str, list] | None = None,
    show: int = 0,
    rank: str = "text",
    max_chars: int = MAX_DRAFT_CHARS,
    partial: bool = False,
    keyword_control: bool = False,
) -> Revision:
    """Rewrite `lines` (1-based) of `draft` and fill its blank lines; see the module
    docstring. `show`: keep the `show` best alternatives of each line (at least that many
    candidates are drawn). `rank`: "text" (the whole text's probability) or "line" (the
    line's mean log-probability, as `generate` ranks). `partial`: the draft is the start of a
    form (for --pick), so it may hold fewer lines than the form."""
    opts = opts or SamplingOptions()
    if rank not in RANKS:
        raise GenerationError(f"rank is {rank!r}; choose text or line")
    draft_lines = read_draft(draft, max_chars)
    opts.validate()
    if opts.acrostic or opts.template or opts.lines or opts.line_length or opts.line_lengths:
        raise GenerationError(
            "revise keeps the draft's own lines: leave out --acrostic, --template, --lines and "
            "--line-length(s)"
        )
    if opts.jianpu or opts.phrases or opts.tone_fit or opts.refrain:
        raise GenerationError(
            "revise does not follow a melody: score a lyric against one with `lyricgen fit`, "
            "or write to it with `lyricgen generate --jianpu/--melody`"
        )
    n = len(draft_lines)
    for i in lines or []:
        if not 1 <= i <= n:
            raise GenerationError(f"--line {i} is out of range; the draft has lines 1 to {n}")
    # which draft lines are text lines (the form's lines), and which of them to write
    text_idx = [i for i, ln in enumerate(draft_lines) if ln.strip()]
    named = {i - 1 for i in lines or []}
    forms = _forms_for(opts, draft_lines, text_idx, named, partial)
    blanks = [i for i in range(text_idx[0], text_idx[-1]) if not draft_lines[i].strip()]
    if forms is not None:
        need = forms[0].lines - len(text_idx)
        if need > 0 and not partial:
            stanza = _stanza_blank(forms[0], draft_lines, text_idx)
            blanks = [i for i in blanks if i != stanza][:need]
        else:
            blanks = []
    gaps = sorted(named | {i for i in text_idx if _is_blankmark(draft_lines[i])} | set(blanks))
    if not gaps:
        raise GenerationError(
            "nothing to revise: name lines with --line (e.g. --line 3,5) or mark them ____"
        )
    order = sorted(set(text_idx) | set(gaps))  # the text lines of the new text
    return _revise(stepper, vocab, draft_lines, order, gaps, forms, opts, copy_index,
                   rhyme_table, show, rank, keyword_control=keyword_control)  # fmt: skip


def _forms_for(opts, draft_lines, text_idx, named, partial) -> list[Form] | None:
    from lyricgen.craft.forms import form_variants

    text_lines = [draft_lines[i] for i in text_idx]
    if opts.form is not None:
        forms = form_variants(opts.form)
        shapes = _form_lines(forms[0])
        if len(text_lines) > len(shapes):
            raise GenerationError(
                f"the draft has {len(text_lines)} lines but {forms[0].name} has {len(shapes)}"
            )
        for j, (ln, sh) in enumerate(zip(text_lines, shapes, strict=False)):
            if not _is_blankmark(ln) and text_idx[j] not in named and not _fits_line(ln, sh):
                want = "，".join(str(m) for m, _ in sh)
                raise GenerationError(
                    f"draft line {text_idx[j] + 1} ({ln.strip()}) does not keep line {j + 1} "
                    f"of {forms[0].name} ({want} characters with its marks); fix it or "
                    "name it with --line"
                )
        return _best_tone_fit(forms, text_lines)
    if partial:
        return None
    found = recognise_form(text_lines)
    return found or None


def _best_tone_fit(forms: list[Form], text_lines: list[str]) -> list[Form]:
    if len(forms) == 1:
        return forms
    fit = [_tone_fit(f, text_lines) for f in forms]
    best = max(fit)
    return [f for f, s in zip(forms, fit, strict=True) if s == best]


def _stanza_blank(form: Form, draft_lines, text_idx) -> int | None:
    """The draft line index of the blank line at the form's stanza break, if there is one."""
    ends = [k for k, c in enumerate(form.clauses) if c.stanza_end]
    if not ends:
        return None
    lines_before = sum(c.line_end for c in form.clauses[: ends[0] + 1])
    if lines_before < len(text_idx):
        i = text_idx[lines_before - 1] + 1
        return i if i < len(draft_lines) and not draft_lines[i].strip() else None
    return None


def _revise(stepper, vocab, draft_lines, order, gaps, forms, opts, copy_index, rhyme_table,
            show, rank, gap_length=None, keyword_control=False) -> Revision:  # fmt: skip
    from lyricgen.craft.generate import prepare

    table = TokenTable.of(vocab)
    if table.newline is None:
        raise GenerationError(
            "this model's vocabulary has no line break, so it cannot revise lines"
        )
    tokens: dict[int, list[int]] = {}
    for i in order:
        if i not in gaps:
            tokens[i] = _encode_kept(draft_lines[i].strip(), vocab)
    fixed: dict[tuple[int, int], int] = {}
    lengths: list[int | None] | None = None
    book_name = opts.rhyme_book or ("pingshui" if forms is not None else "shisanzhe")
    if forms is None and vocab.level == "char" and table.cjk:
        shaped = _draft_form([draft_lines[i] for i in order], [i in gaps for i in order])
        forms = [shaped] if shaped is not None else None
    if forms is not None:
        if vocab.level != "char":
            raise GenerationError("a form needs a character-level Chinese model")
        shapes = _form_lines(forms[0])
        k0 = 0
        for j, i in enumerate(order):
            n_clauses = len(shapes[j]) if j < len(shapes) else 0
            if i not in gaps:
                chars = [t for t in tokens[i] if table.single_han[t] or t == vocab.unk_id]
                pos = [(k, p) for k in range(k0, k0 + n_clauses)
                       for p in range(forms[0].clauses[k].length)]  # fmt: skip
                fixed.update(zip(pos, chars, strict=False))
            k0 += n_clauses
    else:
        lengths = []
        for i in order:
            if i in gaps:
                ln = draft_lines[i].strip()
                if gap_length is not None or not ln:
                    lengths.append(gap_length)
                else:
                    lengths.append(len(ln) if _is_blankmark(ln) else _counted(ln, vocab, table))
            else:
                lengths.append(None)
    # keywords go to the lines being written, where they are not in the kept text already
    kept_text = "".join(draft_lines[i] for i in order if i not in gaps)
    req_opts = replace(opts, template=None)
    plan = None
    if opts.keywords or opts.theme:
        req = prepare(vocab, "", replace(req_opts, form=None, lines=None), copy_index)
        words = [w for w in req.plan.keywords if w not in kept_text] if req.plan else []
        plan = (
            _plan_gaps(words, order, gaps, forms, fixed, book_name, opts, vocab) if words else None
        )
        if plan is not None and req.plan is not None:
            plan.theme_method = req.plan.theme_method
    ids, _ = _context(vocab, "", opts, control_for(plan, keyword_control))
    inner = replace(opts, form=None, lines=len(order), rhyme_book=book_name)
    cons = Constraints(vocab, inner, ids, copy_index, rhyme_table, forms=forms, fixed=fixed,
                       plan=plan, banned=control_marks(vocab) if keyword_control else None)  # fmt: skip
    if lengths is not None and cons.shape is not None:
        cons.shape.lengths = lengths
    k = max(opts.candidates or REVISE_CANDIDATES, show, 1)
    rng = np.random.default_rng(opts.seed)
    logits, hidden = stepper.start(ids, 1)
    row = cons.start_state([])
    total = 0.0
    new_lines: dict[int, str] = {}
    alternatives: dict[int, list] = {}
    for j, i in enumerate(order):
        if i not in gaps:
            total += _feed(
                stepper, cons, row, tokens[i] + [table.newline], logits, hidden, out := []
            )
            logits, hidden = out
            continue
        rows = [row.copy() for _ in range(k)]
        begin = len(row.tokens)
        kl, kh = draw_lines(stepper, cons, opts, rng, rows, logits[[0] * k],
                            stepper.select(hidden, np.zeros(k, dtype=np.int64)))  # fmt: skip
        nxt = next((g for g in gaps if g > i), None)
        suffix = [t for i2 in order[j + 1 :] if nxt is None or i2 < nxt
                  for t in tokens[i2] + [table.newline]]  # fmt: skip
        rest = _score_suffix(stepper, kl, kh, suffix) if suffix else np.zeros(k)
        texts = [_line_text(r.tokens[begin:], vocab) for r in rows]
        line_lp = np.array([sum(r.logprobs[begin:]) for r in rows])
        if rank == "text":
            score = line_lp + rest
        else:
            score = np.array([line_score(r, begin, row.seen, table) for r in rows])
        # a line named for rewriting gets a new one: its old text is no candidate, unless
        # the model writes nothing else
        old = draft_lines[i].strip()
        if any(t != old for t in texts):
            score = np.where([t == old for t in texts], -np.inf, score)
        alts: list[Alternative] = []
        seen_texts: set[str] = set()
        for c in np.argsort(-score, kind="stable"):
            if texts[c] in seen_texts or not texts[c] or not np.isfinite(score[c]):
                continue
            seen_texts.add(texts[c])
            alts.append(Alternative(texts[c], float(line_lp[c]), float(rest[c])))
        best = int(np.argmax(score))
        row = rows[best]
        total += float(line_lp[best])
        logits = kl[[best]]
        hidden = stepper.select(kh, np.array([best]))
        new_lines[i] = texts[best]
        alternatives[i + 1] = alts[: max(show, 1)]
    # the rest of the text's log-likelihood is in `total` for kept lines, the lines written
    # add theirs; the new text keeps every other line byte for byte
    out = []
    for i, ln in enumerate(draft_lines):
        out.append(new_lines.get(i, ln))
    variant = cons.variant(row)
    return Revision("\n".join(out), [i + 1 for i in gaps], alternatives,
                    variant.name if variant is not None and variant.kind != "template" else None,
                    plan, total)  # fmt: skip


def _draft_form(lines: list[str], gap: list[bool]) -> Form | None:
    """A free draft of Han characters and marks as a form of its own (no tones or rhymes):
    each line's clauses as they stand, so a rewritten line keeps its clause lengths and
    marks; None where a line holds anything else, or a blank line is to be filled."""
    import unicodedata

    from lyricgen.craft.forms import Template

    slots, marks, ends = [], [], []
    for ln, is_gap in zip(lines, gap, strict=True):
        text = ln.strip()
        if not text:
            return None
        if _is_blankmark(text):
            slots.append((None,) * len(text))
            marks.append("")
            ends.append(True)
            continue
        cur: list = []
        for ch in text:
            if is_han(ch):
                cur.append(None if is_gap else ch)
            elif unicodedata.category(ch)[0] == "P" and cur:
                slots.append(tuple(cur))
                marks.append(ch)
                ends.append(False)
                cur = []
            else:
                return None
        if cur:
            slots.append(tuple(cur))
            marks.append("")
            ends.append(False)
        ends[-1] = True
    t = Template(tuple(slots), tuple(marks), tuple(ends), (False,) * len(slots))
    return t.form()


def _encode_kept(line: str, vocab: Vocab) -> list[int]:
    """A kept line's ids; a character (or word) the vocabulary lacks is read as <unk>: the
    line is kept as it is, and the model reads what it can of it."""
    from lyricgen.corpus.text import tokenize
    from lyricgen.errors import UnknownTokenError

    try:
        return vocab.encode(encode_prompt(line, vocab, "draft"))
    except UnknownTokenError:
        return [vocab.stoi.get(t, vocab.unk_id) for t in tokenize(line, vocab.level)]


def _counted(line: str, vocab: Vocab, table: TokenTable) -> int | None:
    """A line's length as `--line-length` counts it: Han characters in a Chinese model,
    else tokens; None for a line with nothing to count."""
    from lyricgen.corpus.text import tokenize

    if table.cjk:
        n = sum(is_han(c) for c in line)
    else:
        n = sum(1 for t in tokenize(line, vocab.level) if t.strip())
    return n or None


def _line_text(ids: list[int], vocab: Vocab) -> str:
    toks = vocab.decode([t for t in ids if vocab.itos[t] != NEWLINE])
    return detokenize(toks, vocab.level)


def _feed(stepper, cons, row, toks, logits, hidden, out) -> float:
    """Teacher-force `toks` through the model and the constraints' state (batch of one);
    appends (logits, hidden) after them to `out`; returns their log-probability."""
    total = 0.0
    for t in toks:
        lp = float(log_softmax(logits)[0, t])
        total += lp
        cons.advance(row, t, lp)
        logits, hidden = stepper.step(np.array([t]), hidden)
    out.extend([logits, hidden])
    return total


def _score_suffix(stepper, logits, hidden, suffix: list[int]) -> np.ndarray:
    """The log-probability of `suffix` after each row's state (B,), one batched pass."""
    b = len(logits)
    total = np.zeros(b)
    for t in suffix:
        total += log_softmax(logits)[:, t]
        logits, hidden = stepper.step(np.full(b, t), hidden)
    return total


def _plan_gaps(words, order, gaps, forms, fixed, book_name, opts, vocab) -> Plan:
    """Keywords spread over the lines being written (under a form, each where it fits)."""
    gap_lines = [j for j, i in enumerate(order) if i in gaps]
    lines: list[list[str]] = [[] for _ in order]
    if forms is not None:
        from lyricgen.craft.plan import Slots

        fixed_chars = {kp: vocab.itos[t] for kp, t in fixed.items()}
        slots = Slots(forms[0], book_name, opts.tones != "off" and forms[0].tonal, fixed_chars)
    for n, w in enumerate(words):
        want = gap_lines[n * len(gap_lines) // len(words)]
        for j in sorted(gap_lines, key=lambda g: (abs(g - want), g)):
            if forms is None or slots.place(lines[j] + [w], j) is not None:
                lines[j].append(w)
                break
        else:
            raise GenerationError(
                f"--keywords: {w!r} fits none of the lines being written; give another keyword "
                "or revise more lines"
            )
    return Plan(words, lines, [])


def next_line(
    stepper: Stepper,
    vocab: Vocab,
    kept: list[str],
    opts: SamplingOptions,
    *,
    k: int = DEFAULT_CANDIDATES,
    copy_index: CopyIndex | None = None,
    rhyme_table: dict[str, list] | None = None,
    keyword_control: bool = False,
) -> list[Alternative]:
    """Candidates for the line after `kept` (the lines written so far), best first: under
    --form, the form's next line; else a line of --line-length characters, or a free one."""
    from lyricgen.craft.forms import form_variants

    forms = None
    if opts.form is not None:
        forms = _best_tone_fit(form_variants(opts.form), kept)
        if len(kept) >= forms[0].lines:
            return []
    draft_lines = [*kept, ""]
    order = list(range(len(draft_lines)))
    r = _revise(stepper, vocab, draft_lines, order, [len(kept)], forms,
                replace(opts, line_length=None), copy_index, rhyme_table, k, "line",
                gap_length=opts.line_length, keyword_control=keyword_control)  # fmt: skip
    return r.alternatives.get(len(kept) + 1, [])
