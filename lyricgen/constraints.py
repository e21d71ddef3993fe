"""What may come next: constraints on generation, applied as masks over the vocabulary.

Every constraint has the same small interface (`Constraint`):

- `restrict(row, ok)` narrows the boolean mask `ok` (V,) of tokens allowed next for one
  sample (or beam) whose state is `row`;
- `observe(row, token)` updates that row's state with one more token (it sees the row as
  it was before the token).

`Constraints` composes the ones a request needs, in this order:

- `LineShape`: `--line-length N` lines and counted `--lines`; at most one blank line in a
  row. **Script-true form:** in a model whose vocabulary is mostly Han (CJK) characters a
  line's length counts Han characters, and only tokens made entirely of Han characters are
  generated inside such a line, so no Latin letter or digit takes the place of a character.
  Once the line is full, one trailing punctuation mark may come before the line break
  (where the vocabulary has punctuation). Other models count characters, and space-level
  models count words.
- `Acrostic` (藏头): line i starts with the i-th head character.
- `Rhyme` (押韵): lines end in one of the thirteen rhyme groups (十三辙, see `rhyme.py`).
- `NoRepeatNgram`: no n-gram occurs twice in a sample.
- `CopyGuard`: no `max_copy + 1` consecutive tokens of a line occur in the training text.

The repetition penalty is not a mask but a change of the logits (`penalize`).
"""

from __future__ import annotations

import unicodedata
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lyricgen.errors import GenerationError, UnknownTokenError
from lyricgen.rhyme import is_han
from lyricgen.text import NEWLINE
from lyricgen.vocab import Vocab

if TYPE_CHECKING:
    from lyricgen.copyindex import CopyIndex
    from lyricgen.generate import SamplingOptions

# A free line (no --line-length) that must rhyme: after this many counted characters only
# rhyming content is offered, and after HARD_CAP the line ends at its next rhyme.
SOFT_CAP = 14
HARD_CAP = 24
# A free line (no --line-length) of a counted song (--lines) ends after this many tokens,
# so a model caught in a loop (哈哈哈...) still writes its M lines.
MAX_LINE_TOKENS = 64


def _is_content(token: str) -> bool:
    """A token made only of letters/digits/CJK (no spaces, punctuation or line breaks)."""
    return bool(token) and all(unicodedata.category(c)[0] in "LN" for c in token)


def _is_punct(token: str) -> bool:
    return bool(token) and all(unicodedata.category(c)[0] == "P" for c in token)


class TokenTable:
    """Per-vocabulary arrays the constraints need, computed once per vocabulary
    (`TokenTable.of`), not once per request."""

    _cache: weakref.WeakKeyDictionary[Vocab, TokenTable] = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, vocab: Vocab) -> TokenTable:
        table = cls._cache.get(vocab)
        if table is None:  # two threads may both build it: same result, no harm
            table = cls._cache[vocab] = cls(vocab)
        return table

    def rhymes(self, saved: dict[str, list] | None):
        """(groups of each token's last Han character, the group of its usual reading,
        {group: mask of the in-line tokens ending in it}), from the run's saved table
        where it covers the vocabulary, else from pypinyin; computed once."""
        if self._rhymes is None:
            from lyricgen import rhyme

            chars = {c for c in self.last_han if c}
            table = saved or {}
            if not chars <= table.keys():  # no saved table (an older run): ask pypinyin
                table = rhyme.vocab_table(chars)
            end_groups = [frozenset(table[c][1]) if c else frozenset() for c in self.last_han]
            end_primary = [table[c][0] if c else None for c in self.last_han]
            masks = {
                g: np.array([g in gs for gs in end_groups], dtype=bool) & self.in_line
                for g in rhyme.GROUPS
            }
            self._rhymes = (end_groups, end_primary, masks)
        return self._rhymes

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        itos = vocab.itos
        self.size = len(itos)
        self.newline = vocab.stoi.get(NEWLINE)
        self.content = np.array([_is_content(t) for t in itos], dtype=bool)
        self.content[vocab.unk_id] = False
        self.han = np.array([sum(is_han(c) for c in t) for t in itos], dtype=np.int64)
        self.han_only = self.content & (self.han == np.array([len(t) for t in itos]))
        self.punct = np.array([_is_punct(t) for t in itos], dtype=bool)
        self.punct[vocab.unk_id] = False
        # "mostly CJK": most content entries are pure Han (a few Latin names do not count)
        self.cjk = vocab.level != "space" and self.han_only.sum() > 0.5 * self.content.sum()
        if vocab.level == "space":
            self.length = np.ones(self.size, dtype=np.int64)  # words
        elif self.cjk:
            self.length = self.han  # Han characters
        else:
            self.length = np.array([len(t) for t in itos], dtype=np.int64)
        # what may stand inside a shaped line
        self.in_line = self.han_only if self.cjk else self.content
        self.first = np.array([t[:1] for t in itos], dtype=object)
        self.last_han = [next((c for c in reversed(t) if is_han(c)), "") for t in itos]
        self.exempt = np.array([not t.strip() for t in itos], dtype=bool)  # line breaks, spaces
        self._rhymes = None
        # marks that close a sentence (and so, in lyrics, usually a line)
        self.final_punct = np.array(
            [bool(t) and all(c in "。！？!?…" for c in t) for t in itos], dtype=bool
        )
        self.newline_mask = np.zeros(self.size, dtype=bool)
        if self.newline is not None:
            self.newline_mask[self.newline] = True


@dataclass
class Row:
    """The generation state of one sample (or beam)."""

    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    line_ids: list[int] = field(default_factory=list)  # ids of the current line so far
    line_chars: int = 0  # counted length of the current line
    lines_done: int = 0  # line breaks so far (blank lines included)
    text_lines: int = 0  # non-empty lines finished
    last_newline: bool = True  # the previous token was a line break (or nothing yet)
    after_punct: bool = False  # the previous token was punctuation
    done: bool = False
    # rhyme: the group the rhyming lines must end in (auto: set by the first such line),
    # the groups of all readings of the current line's last Han character, and the group
    # of its usual reading
    rhyme_target: frozenset[str] | None = None
    line_groups: frozenset[str] = frozenset()
    line_primary: str | None = None
    # incremental views of context + tokens, so each step costs O(1) in the sample's length
    recent: list[int] = field(default_factory=list)  # the last few ids
    seen: set[int] = field(default_factory=set)  # ids used so far (repetition penalty)
    ngrams: dict[tuple, set[int]] = field(default_factory=dict)  # (n-1)-gram -> next ids

    def copy(self) -> Row:
        return replace(
            self,
            tokens=list(self.tokens),
            logprobs=list(self.logprobs),
            line_ids=list(self.line_ids),
            recent=list(self.recent),
            seen=set(self.seen),
            ngrams={k: set(v) for k, v in self.ngrams.items()},
        )


class Constraint(Protocol):
    def restrict(self, row: Row, ok: np.ndarray) -> None:
        """Narrow `ok` (V,) in place to the tokens this constraint allows next."""

    def observe(self, row: Row, token: int) -> None:
        """Update the row's state for this constraint with one more token."""


class LineShape:
    """Exactly `line_length` counted characters per line; no empty lines while lines are
    counted (and no free line longer than MAX_LINE_TOKENS then); at most one blank line in
    a row."""

    def __init__(self, t: TokenTable, line_length: int | None, counted: bool):
        self.t, self.line_length, self.counted = t, line_length, counted
        self.end_only = t.newline_mask
        self.end_or_punct = (
            t.newline_mask | t.punct
        )  # one trailing mark, where the vocabulary has them

    def restrict(self, row: Row, ok: np.ndarray) -> None:
        t = self.t
        if self.line_length is not None:
            remaining = self.line_length - row.line_chars
            if remaining <= 0:
                ok &= self.end_only if row.after_punct else self.end_or_punct
                return
            ok &= t.in_line & (t.length <= remaining)
            return
        if self.counted and row.last_newline:
            ok[t.newline] = False
        if self.counted and len(row.line_ids) >= MAX_LINE_TOKENS:
            ok &= t.newline_mask
            return
        if t.newline is not None and row.recent[-2:] == [t.newline, t.newline]:
            ok[t.newline] = False

    def observe(self, row: Row, token: int) -> None:
        pass  # the line state itself is kept by `Constraints`


class Acrostic:
    """Line i begins with a token starting with the i-th head character."""

    def __init__(self, t: TokenTable, heads: str):
        self.heads = heads
        self.masks = {}
        for ch in heads:
            mask = (t.first == ch) & t.in_line
            if not mask.any():
                hint = "、".join(t.vocab.suggest(ch))
                raise UnknownTokenError(
                    f"--acrostic: no vocabulary entry starts with {ch!r}, so no line can begin "
                    f"with it; try one of: {hint}"
                )
            self.masks[ch] = mask

    def restrict(self, row: Row, ok: np.ndarray) -> None:
        if row.last_newline and row.lines_done < len(self.heads):
            ok &= self.masks[self.heads[row.lines_done]]

    def observe(self, row: Row, token: int) -> None:
        pass


class NoRepeatNgram:
    """No n-gram of ids occurs twice in context + sample (the n-gram table lives in the
    row and is kept by `Constraints`)."""

    def __init__(self, n: int):
        self.n = n

    def restrict(self, row: Row, ok: np.ndarray) -> None:
        key = tuple(row.recent[len(row.recent) - self.n + 1 :]) if self.n > 1 else ()
        banned = row.ngrams.get(key)
        if banned:
            ok[list(banned)] = False

    def observe(self, row: Row, token: int) -> None:
        pass


class Rhyme:
    """Rhyming lines end in a character of the target rhyme group.

    `spec` is a group name (see `rhyme.parse_group`) or "auto": the first rhyming line
    chooses, and the group of its last Han character's usual reading becomes the target. A
    candidate character with several readings rhymes if any of them is in the target group.
    `every` is "all" (every line rhymes) or
    "even" (lines 2, 4, 6, ... rhyme; line 2 chooses under auto). With `line_length` the
    token that fills the line must rhyme; on free lines a line break is allowed only after a
    rhyming character.
    """

    def __init__(
        self,
        t: TokenTable,
        spec: str,
        every: str,
        line_length: int | None,
        table: dict[str, list] | None = None,
    ):
        from lyricgen import rhyme

        if not any(t.last_han):
            raise GenerationError(
                "--rhyme needs a Chinese model: this vocabulary has no Han characters to rhyme"
            )
        self.t, self.every, self.line_length = t, every, line_length
        # per-token groups and masks: computed once per vocabulary (TokenTable.rhymes)
        self.end_groups, self.end_primary, self.group_masks = t.rhymes(table)
        self._mask_cache: dict[frozenset[str], np.ndarray] = {}
        auto = spec.strip().lower() == "auto"
        self.fixed = None if auto else frozenset([rhyme.parse_group(spec)])
        if self.fixed is not None:
            (g,) = self.fixed
            fits = self.group_masks[g]
            if line_length is not None:
                fits = fits & (t.length <= line_length)
            if not fits.any():
                raise GenerationError(
                    f"--rhyme {spec}: no vocabulary entry"
                    f"{f' of at most {line_length} characters' if line_length else ''} ends "
                    f"in the rhyme group {g}; choose another group or --rhyme auto"
                )

    def _target(self, row: Row) -> frozenset[str] | None:
        if self.every == "even" and row.text_lines % 2 == 0:
            return None
        return self.fixed or row.rhyme_target

    def _mask(self, target: frozenset[str]) -> np.ndarray:
        m = self._mask_cache.get(target)
        if m is None:
            m = np.zeros(self.t.size, dtype=bool)
            for g in target:
                m |= self.group_masks[g]
            self._mask_cache[target] = m
        return m

    def restrict(self, row: Row, ok: np.ndarray) -> None:
        target = self._target(row)
        if target is None:
            return
        t, rhyming = self.t, self._mask(target)
        if self.line_length is not None:
            remaining = self.line_length - row.line_chars
            if remaining > 0:  # the token that fills the line must rhyme
                ok &= rhyming | ~(t.in_line & (t.length == remaining))
            return
        if row.last_newline:
            return
        ends_in_rhyme = bool(row.line_groups & target)
        if row.line_chars >= HARD_CAP and ends_in_rhyme:
            ok &= self.t.newline_mask  # long enough: end the line at its rhyme
            return
        if row.line_chars >= SOFT_CAP:
            # a long line: only rhyming characters now (not spaces or punctuation, which a
            # model refused its line break would otherwise repeat), then the line break
            ok &= rhyming | (self.t.newline_mask if ends_in_rhyme else False)
            return
        if not ends_in_rhyme:
            # the line may not end yet: no line break, no sentence-closing mark (。！？), and
            # after a space or mark a word comes next (a model refused its line break would
            # otherwise pour spaces or ～～～ into the line)
            ok[t.newline] = False
            ok &= ~t.final_punct
            if row.recent and not t.content[row.recent[-1]]:
                ok &= t.content

    def observe(self, row: Row, token: int) -> None:
        if token == self.t.newline:
            if (
                row.line_ids
                and self.fixed is None
                and row.rhyme_target is None
                and (self.every == "all" or row.text_lines % 2 == 1)
                and row.line_primary is not None
            ):
                row.rhyme_target = frozenset([row.line_primary])
            row.line_groups, row.line_primary = frozenset(), None
        elif self.end_groups[token]:
            row.line_groups = self.end_groups[token]
            row.line_primary = self.end_primary[token]
        elif self.t.content[token]:
            # a non-Han word (or a character without a reading) ends the line unrhymed
            row.line_groups, row.line_primary = frozenset(), None


class CopyGuard:
    """No `n + 1` consecutive tokens of a line occur in the indexed training text: a token
    that would complete such a run is masked (a line break is never masked)."""

    def __init__(self, t: TokenTable, index: CopyIndex, n: int):
        self.t, self.index, self.n = t, index, n

    def restrict(self, row: Row, ok: np.ndarray) -> None:
        if len(row.line_ids) < self.n:
            return
        followers = self.index.followers(row.line_ids[-self.n :])
        followers = followers[followers < self.t.size]
        if len(followers):
            keep = bool(ok[self.t.newline]) if self.t.newline is not None else False
            ok[followers] = False
            if self.t.newline is not None:
                ok[self.t.newline] = keep

    def observe(self, row: Row, token: int) -> None:
        pass


class Constraints:
    """The constraints of one request: builds each row's allowed-token mask and keeps the
    row state up to date."""

    def __init__(
        self,
        vocab: Vocab,
        opts: SamplingOptions,
        context: list[int],
        copy_index: CopyIndex | None = None,
        rhyme_table: dict[str, list] | None = None,
    ):
        self.t = t = TokenTable.of(vocab)
        self.opts = opts
        self.context = context  # ids fed before generation (no-repeat n-grams span them)
        self.n_lines = opts.n_lines
        if (self.n_lines or opts.line_length or opts.rhyme) and t.newline is None:
            raise GenerationError(
                "this model's vocabulary has no line break, so it cannot shape lines"
            )
        self.items: list[Constraint] = [LineShape(t, opts.line_length, bool(self.n_lines))]
        if opts.heads:
            self.items.append(Acrostic(t, opts.heads))
        if opts.rhyme:
            self.items.append(Rhyme(t, opts.rhyme, opts.rhyme_lines, opts.line_length, rhyme_table))
        if opts.no_repeat_ngram:
            self.items.append(NoRepeatNgram(opts.no_repeat_ngram))
        limit = opts.copy_limit(vocab.level, copy_index is not None)
        if limit is not None:
            if copy_index is None:
                raise GenerationError(
                    "--max-copy needs the run's copy index; this run has none (give --corpus "
                    "FILE, the text it was trained on, to build it)"
                )
            self.items.append(CopyGuard(t, copy_index, limit))

    def allowed(self, row: Row) -> np.ndarray:
        ok = np.ones(self.t.size, dtype=bool)
        ok[self.t.vocab.unk_id] = False
        for c in self.items:
            c.restrict(row, ok)
        if not ok.any():
            if row.last_newline and self.opts.line_length is not None:
                # not even a line's first token fits: the request itself is impossible
                raise GenerationError(self._impossible(row))
            # nothing fits (e.g. a word model whose only tokens are too long): end the line
            ok[self.t.newline if self.t.newline is not None else self.t.vocab.unk_id] = True
        return ok

    def _impossible(self, row: Row) -> str:
        o = self.opts
        what = [f"--line-length {o.line_length}"]
        if o.heads and row.lines_done < len(o.heads):
            what.insert(0, f"--acrostic's {o.heads[row.lines_done]!r}")
        if o.rhyme:
            target = "/".join(sorted(row.rhyme_target or [])) or o.rhyme
            what.append(f"--rhyme {target}")
        joined = what[0] if len(what) == 1 else ", ".join(what[:-1]) + " and " + what[-1]
        return (
            f"line {row.lines_done + 1}: no vocabulary entry satisfies {joined} together; "
            "loosen one of them (e.g. a longer --line-length)"
        )

    def penalize(self, logits: np.ndarray, rows: list[Row]) -> np.ndarray:
        """CTRL's repetition penalty: logits of ids already used are divided by it
        (multiplied when negative); line breaks and spaces are exempt."""
        p = self.opts.repetition_penalty
        if p == 1.0:
            return logits
        logits = logits.copy()
        for b, row in enumerate(rows):
            seen = np.fromiter(row.seen, dtype=np.int64, count=len(row.seen))
            seen = seen[~self.t.exempt[seen]]
            v = logits[b, seen]
            logits[b, seen] = np.where(v > 0, v / p, v * p)
        return logits

    # ----------------------------------------------------------------- row state
    def _remember(self, row: Row, token: int) -> None:
        """Seen ids, n-grams and recent ids (context and sample alike)."""
        n = max(self.opts.no_repeat_ngram, 1)
        row.seen.add(token)
        if self.opts.no_repeat_ngram and len(row.recent) >= n - 1:
            key = tuple(row.recent[len(row.recent) - n + 1 :]) if n > 1 else ()
            row.ngrams.setdefault(key, set()).add(token)
        row.recent.append(token)
        del row.recent[: max(0, len(row.recent) - max(n, 2))]

    def _track(self, row: Row, token: int) -> None:
        """The line state (of the printed text: the start and the sample)."""
        for c in self.items:
            c.observe(row, token)
        t = self.t
        if token == t.newline:
            if row.line_ids:
                row.text_lines += 1
            row.lines_done += 1
            row.line_chars = 0
            row.line_ids = []
            row.last_newline = True
            row.after_punct = False
        else:
            row.line_chars += int(t.length[token])
            row.line_ids.append(token)
            row.last_newline = False
            row.after_punct = bool(t.punct[token])

    def start_row(self, prompt: list[int]) -> Row:
        """The state after the context has been fed and the start text printed."""
        row = Row()
        for tok in self.context:
            self._remember(row, tok)
        for tok in prompt:
            self._track(row, tok)
        return row

    def advance(self, row: Row, token: int, logprob: float) -> None:
        was_blank = row.last_newline
        self._remember(row, token)
        self._track(row, token)
        row.tokens.append(token)
        row.logprobs.append(logprob)
        if token == self.t.newline:
            if was_blank and self.opts.stop_at_blank and row.tokens[:-1]:
                row.done = True  # a blank line ends the song
            if self.n_lines and row.lines_done >= self.n_lines:
                row.done = True
        if len(row.tokens) >= self.opts.max_tokens:
            row.done = True
