"""What may come next: constraints on generation, applied as masks over the vocabulary.

Every constraint has the same small interface (`Constraint`):

- `start()` makes the constraint's own state for a new sample (None for a stateless one);
- `restrict(row, state, ok)` narrows the boolean mask `ok` (V,) of tokens allowed next
  for one sample (or beam, or candidate line) whose shared line state is `row`;
- `observe(row, state, token)` updates the constraint's state with one more token (it sees
  the row as it was before the token).

The state every constraint may read, the line being written (its tokens, its counted
length, the lines done), lives in `SampleState` and is kept by `Constraints`; what only one
constraint needs (the rhyme chosen so far, a form's clause and position, the n-grams seen)
lives in that constraint's own state, one slot per constraint in `SampleState.states`.

`Constraints` composes the ones a request needs, in this order:

- `LineShape`: `--line-length N` or `--line-lengths 6,6,5` lines and counted `--lines`; at
  most one blank line in a row. **Script-true form:** in a model whose vocabulary is mostly
  Han (CJK) characters a line's length counts Han characters, and only tokens made entirely
  of Han characters are generated inside such a line. Once the line is full, one trailing
  punctuation mark may come before the line break (where the vocabulary has punctuation).
  Other models count characters, and space-level models count words.
- `FormShape` (`--form`): a 近体诗 or 词牌 template (`forms.py`): each clause's length, the
  tone class (平/仄) of every fixed position under the rhyme book (`books.py`), the mark
  after each clause, the line breaks, and the rhyme sets (one group of the book per set).
- `Acrostic` (藏头): line i starts with the i-th head character.
- `Rhyme` (押韵): lines end in one of the thirteen rhyme groups (十三辙, see `rhyme.py`).
- `NoRepeatNgram`: no n-gram occurs twice in a sample.
- `CopyGuard`: no `max_copy + 1` consecutive tokens of a line occur in the training text
  (a shipped model's compact guard instead: `clauseguard.GuardConstraint`).

The first four are **hard**: generation never breaks them. The last two are **soft**:
where they would leave nothing that the hard ones allow, they give way for that token.
The repetition penalty is not a mask but a change of the logits (`penalize`).
"""

from __future__ import annotations

import unicodedata
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lyricgen.corpus.text import NEWLINE
from lyricgen.corpus.vocab import Vocab
from lyricgen.craft.rhyme import is_han
from lyricgen.errors import GenerationError, UnknownTokenError

if TYPE_CHECKING:
    from lyricgen.craft.copyindex import CopyIndex
    from lyricgen.craft.forms import Form
    from lyricgen.craft.options import SamplingOptions

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


class RhymeTable(NamedTuple):
    """What the 十三辙 rhyme constraint needs of a vocabulary, per token."""

    end_groups: list[frozenset[str]]  # groups of all readings of its last Han character
    end_primary: list[str | None]  # the group of that character's usual reading
    masks: dict[str, np.ndarray]  # group -> in-line tokens ending in it


class BookTable(NamedTuple):
    """What a form needs of a vocabulary under one rhyme book, per token (single Han
    characters only; every other token is False everywhere)."""

    ping: np.ndarray  # (V,) may be 平
    ze: np.ndarray  # (V,) may be 仄
    groups: list[frozenset[str]]  # rhyme groups of each token
    masks: dict[str, np.ndarray]  # group -> tokens in it


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
        self.single_han = self.han_only & (self.han == 1)
        self.first = np.array([t[:1] for t in itos], dtype=object)
        self.last_han = [next((c for c in reversed(t) if is_han(c)), "") for t in itos]
        self.exempt = np.array([not t.strip() for t in itos], dtype=bool)  # line breaks, spaces
        self._rhymes: RhymeTable | None = None
        self._books: dict[str, BookTable] = {}
        # marks that close a sentence (and so, in lyrics, usually a line)
        self.final_punct = np.array(
            [bool(t) and all(c in "。！？!?…" for c in t) for t in itos], dtype=bool
        )
        self.newline_mask = np.zeros(self.size, dtype=bool)
        if self.newline is not None:
            self.newline_mask[self.newline] = True

    def rhymes(self, saved: dict[str, list] | None) -> RhymeTable:
        """The 十三辙 groups of every token's last Han character, from the run's saved
        table where it covers the vocabulary, else from pypinyin; computed once."""
        if self._rhymes is None:
            from lyricgen.craft import rhyme

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
            self._rhymes = RhymeTable(end_groups, end_primary, masks)
        return self._rhymes

    def book(self, name: str) -> BookTable:
        """Tone classes and rhyme groups of every single-Han-character token under the
        rhyme book `name` (books.py); computed once per vocabulary and book."""
        table = self._books.get(name)
        if table is None:
            from lyricgen.craft.books import PING, ZE, book

            b = book(name)
            chars = [
                t if ok else "" for t, ok in zip(self.vocab.itos, self.single_han, strict=True)
            ]
            tones = [b.tones(c) if c else frozenset() for c in chars]
            groups = [b.groups(c) if c else frozenset() for c in chars]
            masks: dict[str, np.ndarray] = {}
            for i, gs in enumerate(groups):
                for g in gs:
                    masks.setdefault(g, np.zeros(self.size, dtype=bool))[i] = True
            table = BookTable(
                np.array([PING in t for t in tones], dtype=bool),
                np.array([ZE in t for t in tones], dtype=bool),
                groups,
                masks,
            )
            self._books[name] = table
        return table


@dataclass
class SampleState:
    """The generation state of one sample (or beam, or candidate line): the line state every
    constraint may read, and one slot of private state per constraint (`states`)."""

    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    line_ids: list[int] = field(default_factory=list)  # ids of the current line so far
    line_chars: int = 0  # counted length of the current line
    lines_done: int = 0  # line breaks so far (blank lines included)
    text_lines: int = 0  # non-empty lines finished
    last_newline: bool = True  # the previous token was a line break (or nothing yet)
    after_punct: bool = False  # the previous token was punctuation
    done: bool = False
    # the constraints left nothing in mid-line and the line was ended to go on: a line
    # candidate in this state loses (generate._sample_lines)
    broken: bool = False
    # incremental views of context + tokens, so each step costs O(1) in the sample's length
    recent: list[int] = field(default_factory=list)  # the last few ids
    seen: set[int] = field(default_factory=set)  # ids used so far (repetition penalty)
    states: list[Any] = field(default_factory=list)  # one per constraint, see Constraint.start
    # --explain: per token, what the model thought (generate.TokenExplanation), else None
    why: list[Any] | None = None

    def copy(self) -> SampleState:
        return replace(
            self,
            tokens=list(self.tokens),
            logprobs=list(self.logprobs),
            why=list(self.why) if self.why is not None else None,
            line_ids=list(self.line_ids),
            recent=list(self.recent),
            seen=set(self.seen),
            states=[s.copy() if s is not None else None for s in self.states],
        )


class Constraint:
    """The interface of a constraint; a stateless one overrides only `restrict`."""

    hard = True  # soft constraints give way where nothing else would be left
    # observe the whole context (the --prefix too) rather than only the printed text
    sees_context = False

    def start(self) -> Any:
        """This constraint's state for a new row (an object with `copy()`), or None."""
        return None

    def restrict(self, row: SampleState, state: Any, ok: np.ndarray) -> None:
        """Narrow `ok` (V,) in place to the tokens this constraint allows next."""
        raise NotImplementedError

    def observe(self, row: SampleState, state: Any, token: int) -> None:
        """Update this constraint's state with one more token (row as before it)."""


class LineShape(Constraint):
    """Lines of the given counted lengths (line i has lengths[i % len(lengths)]); no empty
    lines while lines are counted (and no free line longer than MAX_LINE_TOKENS then); at
    most one blank line in a row."""

    def __init__(self, table: TokenTable, lengths: list[int] | None, counted: bool):
        self.table, self.lengths, self.counted = table, lengths, counted
        self.end_only = table.newline_mask
        self.end_or_punct = (
            table.newline_mask | table.punct
        )  # one trailing mark, where there are any

    def target(self, row: SampleState) -> int | None:
        """The counted length of the row's current line, or None for a free line."""
        return self.lengths[row.lines_done % len(self.lengths)] if self.lengths else None

    def restrict(self, row: SampleState, state: None, ok: np.ndarray) -> None:
        table, n = self.table, self.target(row)
        if n is not None:
            remaining = n - row.line_chars
            if remaining <= 0:
                ok &= self.end_only if row.after_punct else self.end_or_punct
                return
            ok &= table.in_line & (table.length <= remaining)
            return
        if self.counted and row.last_newline:
            ok[table.newline] = False
            ok &= ~table.punct  # a counted line begins with words, not a mark
        if self.counted and len(row.line_ids) >= MAX_LINE_TOKENS:
            ok &= table.newline_mask
            return
        if table.newline is not None and row.recent[-2:] == [table.newline, table.newline]:
            ok[table.newline] = False


class Acrostic(Constraint):
    """Line i begins with a token starting with the i-th head character."""

    def __init__(self, table: TokenTable, heads: str):
        self.heads = heads
        self.masks = {}
        for ch in heads:
            mask = (table.first == ch) & table.in_line
            if not mask.any():
                hint = "、".join(table.vocab.suggest(ch))
                raise UnknownTokenError(
                    f"--acrostic: no vocabulary entry starts with {ch!r}, so no line can begin "
                    f"with it; try one of: {hint}"
                )
            self.masks[ch] = mask

    def restrict(self, row: SampleState, state: None, ok: np.ndarray) -> None:
        if row.last_newline and row.lines_done < len(self.heads):
            ok &= self.masks[self.heads[row.lines_done]]


@dataclass
class NgramState:
    table: dict[tuple, set[int]] = field(default_factory=dict)  # (n-1)-gram -> next ids

    def copy(self) -> NgramState:
        return NgramState({k: set(v) for k, v in self.table.items()})


class NoRepeatNgram(Constraint):
    """No n-gram of ids occurs twice in context + sample."""

    hard = False
    sees_context = True

    def __init__(self, n: int):
        self.n = n

    def start(self) -> NgramState:
        return NgramState()

    def _key(self, row: SampleState) -> tuple:
        return tuple(row.recent[len(row.recent) - self.n + 1 :]) if self.n > 1 else ()

    def restrict(self, row: SampleState, state: NgramState, ok: np.ndarray) -> None:
        banned = state.table.get(self._key(row))
        if banned:
            ok[list(banned)] = False

    def observe(self, row: SampleState, state: NgramState, token: int) -> None:
        if len(row.recent) >= self.n - 1:
            state.table.setdefault(self._key(row), set()).add(token)


@dataclass
class RhymeState:
    # the group the rhyming lines must end in (auto: set by the first such line), the groups
    # of all readings of the current line's last Han character, and its usual reading's group
    target: frozenset[str] | None = None
    line_groups: frozenset[str] = frozenset()
    line_primary: str | None = None

    def copy(self) -> RhymeState:
        return replace(self)


class Rhyme(Constraint):
    """Rhyming lines end in a character of the target 十三辙 group.

    `spec` is a group name (see `rhyme.parse_group`) or "auto": the first rhyming line
    chooses, and the group of its last Han character's usual reading becomes the target. A
    candidate character with several readings rhymes if any of them is in the target group.
    `every` is "all" (every line rhymes) or "even" (lines 2, 4, 6, ... rhyme; line 2 chooses
    under auto). On a line of fixed length (`shape.target`) the token that fills the line
    must rhyme; on free lines a line break is allowed only after a rhyming character.
    """

    def __init__(self, table: TokenTable, spec: str, every: str, shape: LineShape,
                 groups: dict[str, list] | None = None):  # fmt: skip
        from lyricgen.craft import rhyme

        if not any(table.last_han):
            raise GenerationError(
                "--rhyme needs a Chinese model: this vocabulary has no Han characters to rhyme"
            )
        self.table, self.every, self.shape = table, every, shape
        self.book_table = table.rhymes(groups)  # per-token groups and masks, once per vocabulary
        self._mask_cache: dict[frozenset[str], np.ndarray] = {}
        auto = spec.strip().lower() == "auto"
        self.fixed = None if auto else frozenset([rhyme.parse_group(spec)])
        if self.fixed is not None:
            (g,) = self.fixed
            fits = self.book_table.masks[g]
            longest = max(shape.lengths) if shape.lengths else None
            if longest is not None:
                fits = fits & (table.length <= longest)
            if not fits.any():
                raise GenerationError(
                    f"--rhyme {spec}: no vocabulary entry"
                    f"{f' of at most {longest} characters' if longest else ''} ends "
                    f"in the rhyme group {g}; choose another group or --rhyme auto"
                )

    def start(self) -> RhymeState:
        return RhymeState()

    def _target(self, row: SampleState, state: RhymeState) -> frozenset[str] | None:
        if self.every == "even" and row.text_lines % 2 == 0:
            return None
        return self.fixed or state.target

    def _mask(self, target: frozenset[str]) -> np.ndarray:
        m = self._mask_cache.get(target)
        if m is None:
            m = np.zeros(self.table.size, dtype=bool)
            for g in target:
                m |= self.book_table.masks[g]
            self._mask_cache[target] = m
        return m

    def restrict(self, row: SampleState, state: RhymeState, ok: np.ndarray) -> None:
        if self.every == "even" and row.text_lines % 2 == 0:
            return
        target = self._target(row, state)
        table = self.table
        if target is None:  # auto: this line chooses; it must end on a rhymable character
            rhyming = self._mask(frozenset(self.book_table.masks))
            ends_in_rhyme = state.line_primary is not None
        else:
            rhyming = self._mask(target)
            ends_in_rhyme = bool(state.line_groups & target)
        n = self.shape.target(row)
        if n is not None:
            remaining = n - row.line_chars
            if remaining > 0:  # the token that fills the line must rhyme
                ok &= rhyming | ~(table.in_line & (table.length == remaining))
            return
        if row.last_newline:
            return
        if row.line_chars >= HARD_CAP and ends_in_rhyme:
            ok &= self.table.newline_mask  # long enough: end the line at its rhyme
            return
        if row.line_chars >= SOFT_CAP or len(row.line_ids) >= MAX_LINE_TOKENS - 4:
            # a long line: only rhyming characters now (not spaces or punctuation, which a
            # model refused its line break would otherwise repeat), then the line break
            ok &= rhyming | (self.table.newline_mask if ends_in_rhyme else False)
            return
        if not ends_in_rhyme:
            # the line may not end yet: no line break, no sentence-closing mark (。！？), and
            # after a space or mark a word comes next (a model refused its line break would
            # otherwise pour spaces or ～～～ into the line)
            ok[table.newline] = False
            ok &= ~table.final_punct
            if row.recent and not table.content[row.recent[-1]]:
                ok &= table.content

    def observe(self, row: SampleState, state: RhymeState, token: int) -> None:
        if token == self.table.newline:
            if (
                row.line_ids
                and self.fixed is None
                and state.target is None
                and (self.every == "all" or row.text_lines % 2 == 1)
                and state.line_primary is not None
            ):
                state.target = frozenset([state.line_primary])
            state.line_groups, state.line_primary = frozenset(), None
        elif self.book_table.end_groups[token]:
            state.line_groups = self.book_table.end_groups[token]
            state.line_primary = self.book_table.end_primary[token]
        elif self.table.content[token]:
            # a non-Han word (or a character without a reading) ends the line unrhymed
            state.line_groups, state.line_primary = frozenset(), None


@dataclass
class FormState:
    clause: int = 0  # index of the clause being written
    pos: int = 0  # characters of it written so far
    phase: str = "chars"  # chars, mark (its mark comes next), newline, or end
    # (variant, rhyme set) -> the groups its rhymes keep to, once a rhyme has been written
    targets: dict[tuple[int, str], frozenset[str]] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)  # tokens that already closed a rhyme
    live: tuple[int, ...] = (0,)  # the variants the text so far still fits

    def copy(self) -> FormState:
        return replace(self, targets=dict(self.targets), used=set(self.used))


class FormShape(Constraint):
    """A 近体诗 or 词牌 template (forms.py): clause lengths in Han characters, the tone class
    of every fixed position (`tones`), the mark after each clause, line breaks, and rhyme
    sets that each keep to one group of the rhyme book.

    `forms` are the variants the request allows (one form, or the 平起/仄起 and 首句入韵
    variants of a bare 近体 name, all with the same clause lengths and marks): a position
    takes what any variant still in play takes, and each token drops the variants it does
    not fit, so the sample's own first lines choose its variant (`variant`). `fixed` maps
    (clause, position) to the token id a template fixes there; a fixed character at a rhyme
    position sets the group its rhyme set keeps to from the start.

    `rhyme` is "auto" (the first rhyme position of each set chooses; a character with several
    readings keeps every group of the set's tone class it is in, and later rhyme positions
    narrow them) or a group of the book, which the sets of its tone class take. A mark the
    vocabulary lacks is written as a line break instead."""

    def __init__(self, table: TokenTable, forms: list[Form], book: str, tones: bool,
                 rhyme: str | None, fixed: dict[tuple[int, int], int] | None = None):  # fmt: skip
        from lyricgen.craft.books import PING, ZE
        from lyricgen.craft.books import book as get_book

        self.table, self.forms, self.form = table, forms, forms[0]
        form = self.form
        self.book = get_book(book)
        self.book_table = table.book(book)
        self._class_masks: dict[str | None, np.ndarray] = {}
        self._group_masks: dict[frozenset[str], np.ndarray] = {}
        self.fixed_ids = dict(fixed or {})
        tone_mask = {PING: self.book_table.ping, ZE: self.book_table.ze}
        self.masks: list[list[list[np.ndarray]]] = []  # variant -> clause -> position
        for v, f in enumerate(forms):
            per_form = []
            for k, c in enumerate(f.clauses):
                row = []
                for p, tone in enumerate(c.tones):
                    if (k, p) in self.fixed_ids:
                        m = np.zeros(table.size, dtype=bool)
                        m[self.fixed_ids[(k, p)]] = True
                        row.append(m)
                        continue
                    m = table.single_han.copy()
                    rhymed = c.rhyme is not None and p == c.length - 1
                    if tones and tone in tone_mask:
                        m &= tone_mask[tone]
                    if rhymed:  # a rhyme position takes a character the book can rhyme
                        m &= self._class_mask(f.rhymes.get(c.rhyme))
                    if not m.any() and v == 0:
                        raise GenerationError(
                            f"--form {f.name}: no vocabulary entry can stand at clause {k + 1}, "
                            f"position {p + 1} ({tone}{', a rhyme' if rhymed else ''}) under "
                            f"{self.book.title}; try --rhyme-book xinyun or --tones off"
                        )
                    row.append(m)
                per_form.append(row)
            self.masks.append(per_form)
        self.marks = [table.vocab.stoi.get(c.mark) for c in form.clauses]
        # a clause whose mark the vocabulary lacks ends its line; so the text's lines are
        ends = [c.line_end or m is None for c, m in zip(form.clauses, self.marks, strict=True)]
        self.lines = sum(ends)
        self.stanza_lines = {  # line counts after which a stanza ends
            sum(ends[: k + 1]) for k, c in enumerate(form.clauses) if c.stanza_end
        }
        self.fixed: dict[str, frozenset[str]] = {}
        if rhyme and rhyme.strip().lower() != "auto":
            self._fix_rhyme(rhyme)
        self.seeds = [self._seed(v) for v in range(len(forms))]

    def _fix_rhyme(self, rhyme: str) -> None:
        """--rhyme GROUP: the rhyme sets of its tone class keep to it."""
        form = self.form
        group = self.book.parse_group(rhyme)
        cls = self.book.class_of(group)
        sets = [s for s, tone in form.rhymes.items() if cls is None or tone == cls]
        if not sets:
            raise GenerationError(
                f"--rhyme {rhyme}: {group} is a {cls} group, but {form.name} rhymes on "
                f"{'/'.join(sorted(set(form.rhymes.values())))}; choose a matching group "
                "or auto"
            )
        for s in sets:
            self.fixed[s] = frozenset([group])
        for k, c in enumerate(form.clauses):
            if c.rhyme in self.fixed:
                last = self.masks[0][k][-1] & self.book_table.masks.get(group, False)
                if not np.any(last):
                    raise GenerationError(
                        f"--rhyme {rhyme}: no vocabulary entry of {group} can end clause "
                        f"{k + 1} of {form.name} ({c.tones[-1]}); choose another group or auto"
                    )

    def _seed(self, v: int) -> dict[str, frozenset[str]]:
        """The groups each rhyme set of variant v keeps to because of fixed characters at
        its rhyme positions (those of the first fixed one that the others share)."""
        seeds: dict[str, frozenset[str]] = {}
        f = self.forms[v]
        for k, c in enumerate(f.clauses):
            tok = self.fixed_ids.get((k, c.length - 1))
            if c.rhyme is None or tok is None:
                continue
            tone = f.rhymes.get(c.rhyme)
            groups = frozenset(
                g for g in self.book_table.groups[tok] if self.book.class_of(g) in (None, tone)
            )
            if not groups:
                continue
            known = self.fixed.get(c.rhyme) or seeds.get(c.rhyme)
            seeds[c.rhyme] = groups if known is None else (known & groups) or known
        return seeds

    def _class_mask(self, tone: str | None) -> np.ndarray:
        """Tokens with at least one rhyme group of the given class (None: any group)."""
        m = self._class_masks.get(tone)
        if m is None:
            m = np.zeros(self.table.size, dtype=bool)
            for g, gm in self.book_table.masks.items():
                if tone is None or self.book.class_of(g) in (None, tone):
                    m |= gm
            self._class_masks[tone] = m
        return m

    def _group_mask(self, groups: frozenset[str]) -> np.ndarray:
        """Tokens in any of `groups`; built once per set of groups, not once per token."""
        m = self._group_masks.get(groups)
        if m is None:
            m = np.zeros(self.table.size, dtype=bool)
            for g in groups:
                m |= self.book_table.masks.get(g, False)
            self._group_masks[groups] = m
        return m

    def start(self) -> FormState:
        return FormState(live=tuple(range(len(self.forms))))

    def variant(self, state: FormState) -> Form:
        """The variant the text written so far keeps (the first, where several still fit)."""
        return self.forms[state.live[0]]

    def _target(self, state: FormState, v: int, label: str) -> frozenset[str] | None:
        return self.fixed.get(label) or state.targets.get((v, label)) or self.seeds[v].get(label)

    def _variant_mask(self, state: FormState, v: int, k: int, p: int) -> np.ndarray:
        m = self.masks[v][k][p]
        c = self.forms[v].clauses[k]
        if c.rhyme is not None and p == c.length - 1 and (k, p) not in self.fixed_ids:
            target = self._target(state, v, c.rhyme)
            if target is not None:
                m = m & self._group_mask(target)
        return m

    def position_mask(self, state: FormState, k: int, p: int) -> np.ndarray:
        """What clause k, position p may take, under the variants still in play."""
        if len(state.live) == 1:
            return self._variant_mask(state, state.live[0], k, p)
        m = np.zeros(self.table.size, dtype=bool)
        for v in state.live:
            m |= self._variant_mask(state, v, k, p)
        return m

    def rhymes_at(self, state: FormState, k: int, p: int) -> bool:
        """Whether clause k, position p is a rhyme position (in any variant in play) that no
        template fixes."""
        if (k, p) in self.fixed_ids or p != self.form.clauses[k].length - 1:
            return False
        return any(self.forms[v].clauses[k].rhyme is not None for v in state.live)

    def _mark_or_break(self, state: FormState) -> str:
        if self.marks[state.clause] is not None:
            return "mark"
        return "newline"  # the vocabulary has no such mark: end the line instead

    def restrict(self, row: SampleState, state: FormState, ok: np.ndarray) -> None:
        if state.phase == "chars":
            k, p = state.clause, state.pos
            ok &= self.position_mask(state, k, p)
            rhymed = any(self.forms[v].clauses[k].rhyme is not None for v in state.live)
            if rhymed and p == self.form.clauses[k].length - 1 and state.used:
                fresh = ok.copy()  # no rhyme character twice (重韵), where another one fits
                fresh[list(state.used)] = False
                if fresh.any():
                    ok[:] = fresh
        elif state.phase == "mark":
            keep = ok[self.marks[state.clause]]
            ok[:] = False
            ok[self.marks[state.clause]] = keep
        else:  # newline, or the end of the form
            ok &= self.table.newline_mask

    def observe(self, row: SampleState, state: FormState, token: int) -> None:
        if state.phase == "chars":
            k, p = state.clause, state.pos
            if len(state.live) > 1:
                live = tuple(v for v in state.live if self._variant_mask(state, v, k, p)[token])
                state.live = live or state.live
            for v in state.live:
                c = self.forms[v].clauses[k]
                if c.rhyme is not None and p == c.length - 1:
                    self._rhymed(state, v, c.rhyme, token)
                    state.used.add(token)
            state.pos += 1
            if state.pos == self.form.clauses[k].length:
                state.phase = self._mark_or_break(state)
        elif state.phase == "mark":
            c = self.form.clauses[state.clause]
            if c.line_end:
                state.phase = "newline"
            else:
                self._next_clause(state)
        elif state.phase == "newline":
            self._next_clause(state)

    def _rhymed(self, state: FormState, v: int, label: str, token: int) -> None:
        groups = self.book_table.groups[token]
        tone = self.forms[v].rhymes.get(label)
        groups = frozenset(g for g in groups if self.book.class_of(g) in (None, tone))
        known = self._target(state, v, label)
        state.targets[(v, label)] = groups if known is None else (known & groups) or known

    def _next_clause(self, state: FormState) -> None:
        state.clause += 1
        state.pos = 0
        state.phase = "chars" if state.clause < len(self.form.clauses) else "end"

    def check_start(self, row: SampleState, state: FormState, token: int) -> str | None:
        """Why the start text's token may not stand where it stands, or None."""
        ok = np.ones(self.table.size, dtype=bool)
        self.restrict(row, state, ok)
        if ok[token]:
            return None
        tok = self.table.vocab.itos[token]
        if state.phase != "chars":
            return f"{tok!r} comes after clause {state.clause + 1} is full"
        c = self.variant(state).clauses[state.clause]
        tone = c.tones[state.pos]
        return (
            f"{tok!r} cannot stand at clause {state.clause + 1}, position {state.pos + 1} "
            f"({tone}) under {self.book.title}"
        )


class CopyGuard(Constraint):
    """No `n + 1` consecutive tokens of a line occur in the indexed training text: a token
    that would complete such a run is masked (a line break is never masked)."""

    hard = False

    def __init__(self, table: TokenTable, index: CopyIndex, n: int):
        self.table, self.index, self.n = table, index, n

    def restrict(self, row: SampleState, state: None, ok: np.ndarray) -> None:
        if len(row.line_ids) < self.n:
            return
        followers = self.index.followers(row.line_ids[-self.n :])
        followers = followers[followers < self.table.size]
        if len(followers):
            keep = bool(ok[self.table.newline]) if self.table.newline is not None else False
            ok[followers] = False
            if self.table.newline is not None:
                ok[self.table.newline] = keep


@dataclass
class KeywordState:
    line: int = 0  # text lines finished
    pending: list[str] = field(default_factory=list)  # keywords this line still needs
    done: int = 0  # characters of pending[0] written (0: not begun)
    later: set[str] = field(default_factory=set)  # keywords of later lines not yet written
    line_text: str = ""

    def copy(self) -> KeywordState:
        return replace(self, pending=list(self.pending), later=set(self.later))


# A free line (no length) that must still take a keyword begins it after this many counted
# characters (or tokens) at the latest, so the keyword is in the line rather than after a
# long run-on.
KEYWORD_BY = 8
# logits added to the tokens of a line's related words (and of --keyword-mode prefer's
# keywords): a nudge the sampler may ignore, never a mask
RELATED_BONUS = 1.0
PREFER_BONUS = 2.0
# added to the first token of the keyword a line owes, wherever it could begin: the keyword
# then tends to begin where the model itself finds it likelier, and the line candidates
# place it differently, so the ranking chooses the placement
BEGIN_BONUS = 2.0


class Keywords(Constraint):
    """--keywords: text line i holds the keywords `plan.lines[i]` gives it, in order, each
    wherever the sampling puts it in the line: the constraint only steps in at the last
    position from which every keyword the line still needs would fit (under a form: where
    each character's tone and the rhyme fit the form's positions), and there makes the
    keyword begin; once begun, it is written out. Until its keywords are in, a line cannot
    end. A keyword written earlier than planned counts where it stands.

    `prefer` mode masks nothing: the keywords' tokens (and every line's related words) only
    get a bonus on their logits (`bonus`)."""

    def __init__(self, table: TokenTable, plan: Any, *, prefer: bool = False,
                 form: FormShape | None = None, shape: LineShape | None = None,
                 rhyme: bool = False, max_tokens: int = 0):  # fmt: skip
        self.table, self.plan, self.prefer = table, plan, prefer
        self.hard = not prefer
        self.form, self.shape, self.rhyme, self.max_tokens = form, shape, rhyme, max_tokens
        self.form_slot = -1  # index of the FormShape's state in SampleState.states
        self._prefix: dict[str, np.ndarray] = {}
        self._bonus_ids: dict[str, np.ndarray] = {}
        self.char_level = table.vocab.level == "char"

    def start(self) -> KeywordState:
        first = [] if self.prefer else list(self.plan.for_line(0))
        return KeywordState(pending=first, later=set(self.plan.keywords) - set(first))

    def prefix_mask(self, text: str) -> np.ndarray:
        """Tokens that `text` begins with (the next piece of a keyword)."""
        m = self._prefix.get(text)
        if m is None:
            m = np.array([bool(t) and text.startswith(t) for t in self.table.vocab.itos])
            m &= self.table.content
            self._prefix[text] = m
        return m

    # -- where the line's keywords still fit ------------------------------------------
    def _form_fits(self, row: SampleState, words: list[str], skip: int, here: bool = False) -> bool:
        """Whether `words` fit, in order, in the rest of the form's current line when the
        next `skip` positions are left to other characters (`here`: the first one starting
        exactly there), within one of the form's variants still in play (a keyword whose
        characters fit two variants by halves fits neither)."""
        fs = row.states[self.form_slot]
        if fs.phase != "chars":
            return False
        stoi = self.table.vocab.stoi
        ids = [[stoi.get(ch) for ch in w] for w in words]
        if any(None in i for i in ids):
            return False
        return any(self._fits_in(fs, v, ids, fs.pos + skip, here) for v in fs.live)

    def _fits_in(self, fs: FormState, v: int, words: list[list[int]], p: int, here: bool) -> bool:
        form, shape = self.form.forms[v], self.form
        k = fs.clause
        for w in words:
            while True:  # the first word from (k, p) on; the rest after it
                n = form.clauses[k].length
                if p + len(w) <= n and all(
                    shape._variant_mask(fs, v, k, p + j)[i]
                    and not (form.clauses[k].rhyme is not None and p + j == n - 1
                             and (k, p + j) not in shape.fixed_ids)
                    for j, i in enumerate(w)
                ):  # fmt: skip
                    p += len(w)
                    break
                if here:
                    return False
                p += 1
                if p + len(w) > n:
                    if form.clauses[k].line_end or k + 1 >= len(form.clauses):
                        return False
                    k, p = k + 1, 0
            here = False
        return True

    def _tokens_left(self, row: SampleState) -> int:
        return self.max_tokens - len(row.tokens)

    def _needed(self, st: KeywordState) -> int:
        """Tokens (at most) that the keywords not yet written still take, line breaks included."""
        rest = [w for w in st.later if w not in st.pending]
        return sum(len(w) + 1 for w in st.pending) + sum(len(w) + 1 for w in rest)

    def restrict(self, row: SampleState, st: KeywordState, ok: np.ndarray) -> None:
        if self.prefer:
            return
        if not st.pending:
            if st.later and row.last_newline and self.table.newline is not None:
                ok[self.table.newline] = False  # no blank line while keywords are due
            if st.later and self.form is None and self._tokens_left(row) <= self._needed(st):
                if row.line_ids and self.table.newline is not None:  # room only for them now
                    ok &= self.table.newline_mask
            return
        kw = st.pending[0]
        if st.done:
            ok &= self.prefix_mask(kw[st.done :])
            return
        begin = self.prefix_mask(kw)
        if self.form is not None:
            if row.states[self.form_slot].phase != "chars":
                return  # a clause's mark: the keywords may still fit in the line's next clause
            if not self._form_fits(row, st.pending, skip=1):
                ok &= begin  # the last place they all fit: begin here
            return
        need = sum(len(w) for w in st.pending)
        n = self.shape.target(row) if self.shape is not None else None
        if n is not None:
            room = n - row.line_chars - need - (1 if self.rhyme else 0)  # the rhyme ends it
            if room <= 0:
                ok &= begin
            else:
                ok &= begin | (self.table.length <= room) | ~self.table.in_line
            return
        if self.table.newline is not None:
            ok[self.table.newline] = False
        ok &= ~self.table.final_punct
        late = max(row.line_chars, len(row.line_ids)) >= KEYWORD_BY  # marks count too
        if late or self._tokens_left(row) <= self._needed(st) + 1:
            ok &= begin

    def observe(self, row: SampleState, st: KeywordState, token: int) -> None:
        if token == self.table.newline:
            if st.line_text:
                st.line += 1
                st.line_text = ""
            if not self.prefer:
                st.pending = [w for w in self.plan.for_line(st.line) if w in st.later]
                st.later -= set(st.pending)
            st.done = 0
            return
        tok = self.table.vocab.itos[token]
        if st.pending:
            kw = st.pending[0]
            if st.done:
                st.done += len(tok)
            elif tok and kw.startswith(tok) and self._begins_here(row, st):
                st.done = len(tok)
            if st.done >= len(kw):
                st.pending.pop(0)
                st.done = 0
        st.line_text += tok
        if not st.done:  # another of the line's keywords, written before its turn, counts
            st.pending[1:] = [w for w in st.pending[1:] if not st.line_text.endswith(w)]
        for w in [w for w in st.later if st.line_text.endswith(w)]:
            st.later.discard(w)  # written before its line: it counts where it stands

    def _begins_here(self, row: SampleState, st: KeywordState) -> bool:
        """Whether the keyword (and the line's others after it) fit from this position."""
        if self.form is not None:
            return self._form_fits(row, st.pending, skip=0, here=True)
        n = self.shape.target(row) if self.shape is not None else None
        if n is None:
            return True
        return n - row.line_chars >= sum(len(w) for w in st.pending)

    def bonus(self, row: SampleState, st: KeywordState) -> tuple[np.ndarray, float] | None:
        """Token ids to favour for this row and by how much (the first token of the keyword
        the line owes where it could begin here, related words of the line, or prefer-mode
        keywords not yet written), or None."""
        if st.pending and not self.prefer:
            if st.done or not BEGIN_BONUS or not self._begins_here(row, st):
                return None
            return np.flatnonzero(self.prefix_mask(st.pending[0])), BEGIN_BONUS
        if self.prefer:
            words = [w for w in st.later if w not in st.line_text]
            amount = PREFER_BONUS
        else:
            words = [w for w in self.plan.related_for(st.line) if w not in st.line_text]
            amount = RELATED_BONUS
        if not words:
            return None
        key = "\n".join(sorted(words))
        ids = self._bonus_ids.get(key)
        if ids is None:
            stoi = self.table.vocab.stoi
            pieces = {c for w in words for c in (w if self.char_level else [w])}
            ids = np.array(sorted(stoi[c] for c in pieces if c in stoi), dtype=np.int64)
            self._bonus_ids[key] = ids
        return ids, amount


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
        *,
        forms: list[Form] | None = None,
        fixed: dict[tuple[int, int], int] | None = None,
        plan: Any = None,
        banned: list[int] | None = None,
        tune: Any = None,
        echo: Any = None,
    ):
        """`forms`: the form variants in play (default: the one --form names); `fixed`:
        (clause, position) -> token id a template fixes; `plan`: the keywords' plan
        (`plan.Plan`), see `generate.prepare`; `banned`: ids never written; `tune` and
        `echo`: a melody's `tonefit.TuneFit` and `tonefit.Echo` (either may be None)."""
        self.banned = list(banned or [])
        self.table = table = TokenTable.of(vocab)
        self.opts = opts
        self.context = context  # ids fed before generation (no-repeat n-grams span them)
        if forms is None and opts.form is not None:
            forms = [opts.form_template]
        self.form = forms[0] if forms else None
        self.n_lines = opts.n_lines
        self.max_tokens = opts.max_tokens
        self.lengths = opts.line_length_list
        self.items: list[Constraint] = []
        self.shape: LineShape | None = None
        self.form_shape: FormShape | None = None
        self.keywords: Keywords | None = None
        if forms:
            tonal = opts.tones != "off" and self.form.tonal
            self.form_shape = FormShape(table, forms, opts.book, tonal, opts.rhyme, fixed)
            self.items.append(self.form_shape)
            self.n_lines = self.form_shape.lines
        else:
            self.shape = LineShape(table, self.lengths, bool(self.n_lines))
            self.items.append(self.shape)
        if opts.heads:
            self.items.append(Acrostic(table, opts.heads))
        if opts.rhyme and self.shape is not None:
            self.items.append(Rhyme(table, opts.rhyme, opts.rhyme_lines, self.shape, rhyme_table))
        if plan is not None and plan.keywords:
            self.keywords = Keywords(
                table, plan, prefer=opts.keyword_mode == "prefer", form=self.form_shape,
                shape=self.shape, rhyme=bool(opts.rhyme), max_tokens=self.max_tokens,
            )  # fmt: skip
            # first, so that it sees each token before the form's state moves past it
            self.items.insert(0, self.keywords)
            if self.form_shape is not None:
                self.keywords.form_slot = self.items.index(self.form_shape)
        # a melody's constraints (tonefit.melody_constraints): the tones on the notes, and
        # the repeated phrases
        self.tune = tune
        self.items += [c for c in (tune, echo) if c is not None]
        if opts.no_repeat_ngram:
            self.items.append(NoRepeatNgram(opts.no_repeat_ngram))
        limit = opts.copy_limit(vocab.level, copy_index is not None)
        if limit is not None and getattr(copy_index, "compact", False):
            if limit < copy_index.gram - 1:
                raise GenerationError(
                    f"--max-copy {limit} is below what this model's compact copy guard keeps "
                    f"({copy_index.gram - 1} characters within a clause); give --corpus FILE, "
                    "the text it was trained on, to build a full copy index"
                )
            self.items.append(copy_index.constraint(table))  # a shipped model's guard
        elif limit is not None:  # `SamplingOptions.check_for_model` made sure of the index
            self.items.append(CopyGuard(table, copy_index, limit))
        self.hard = [i for i, c in enumerate(self.items) if c.hard]
        self.soft = [i for i, c in enumerate(self.items) if not c.hard]
        self.context_watchers = [i for i, c in enumerate(self.items) if c.sees_context]
        self.line_watchers = [i for i, c in enumerate(self.items) if not c.sees_context]
        self.keyword_slot = self.items.index(self.keywords) if self.keywords else -1
        self.tune_slot = self.items.index(self.tune) if self.tune else -1
        self.prompt: list[int] = []  # set by start_state

    def variant(self, row: SampleState) -> Form | None:
        """The form variant a finished row keeps, or None without a form."""
        if self.form_shape is None:
            return None
        return self.form_shape.variant(row.states[self.items.index(self.form_shape)])

    def allowed(self, row: SampleState) -> np.ndarray:
        ok = np.ones(self.table.size, dtype=bool)
        ok[self.table.vocab.unk_id] = False
        ok[self.banned] = False
        for i in self.hard:
            self.items[i].restrict(row, row.states[i], ok)
        if not ok.any() and self.tune is not None and self.tune.hard:
            # a strict tone fit yields to the other hard constraints (a keyword, a rhyme)
            # rather than cut the line short: the 倒字 it lets through is counted and shown
            ok = self._without(row, self.tune)
        if not ok.any():
            if row.last_newline and (self.lengths or self.form):
                # not even a line's first token fits: the request itself is impossible
                raise GenerationError(self._impossible(row))
            # nothing fits (e.g. a word model whose only tokens are too long): end the line
            row.broken = (
                row.broken or self.form is not None or self.keywords is not None
                or self.tune is not None
            )  # fmt: skip
            ok[
                self.table.newline if self.table.newline is not None else self.table.vocab.unk_id
            ] = True
            return ok
        if self.soft:
            trial = ok.copy()
            for i in self.soft:
                self.items[i].restrict(row, row.states[i], trial)
            if trial.any():  # the soft constraints give way rather than break a hard one
                return trial
        return ok

    def _without(self, row: SampleState, skip: Constraint) -> np.ndarray:
        """The hard constraints' mask for `row`, leaving out `skip`."""
        ok = np.ones(self.table.size, dtype=bool)
        ok[self.table.vocab.unk_id] = False
        ok[self.banned] = False
        for i in self.hard:
            if self.items[i] is not skip:
                self.items[i].restrict(row, row.states[i], ok)
        return ok

    def _impossible(self, row: SampleState) -> str:
        o = self.opts
        if self.form is not None and self.form.kind == "template":
            what = ["--template"]
        elif self.form is not None:
            what = [f"--form {self.form.name}"]
        elif self.tune is not None and self.tune.hard:
            what = ["the melody's phrases", "--tone-fit strict"]
        elif o.line_lengths:
            what = [f"--line-lengths {o.line_lengths}"]
        else:
            what = [f"--line-length {o.line_length}"]
        if o.heads and row.lines_done < len(o.heads):
            what.insert(0, f"--acrostic's {o.heads[row.lines_done]!r}")
        if self.keywords is not None and not self.keywords.prefer:
            what.append("--keywords")
        if o.rhyme and self.form is None:
            i = next(i for i, c in enumerate(self.items) if isinstance(c, Rhyme))
            target = "/".join(sorted(row.states[i].target or [])) or o.rhyme
            what.append(f"--rhyme {target}")
        joined = what[0] if len(what) == 1 else ", ".join(what[:-1]) + " and " + what[-1]
        return (
            f"line {row.lines_done + 1}: no vocabulary entry satisfies {joined} together; "
            "loosen one of them (e.g. a longer line)"
        )

    def penalize(self, logits: np.ndarray, rows: list[SampleState]) -> np.ndarray:
        """CTRL's repetition penalty: logits of ids already used are divided by it
        (multiplied when negative); line breaks and spaces are exempt. Then the bonus of
        each row's related words (and of prefer-mode keywords), see `Keywords.bonus`, and the
        tune's cost of each token's tone on its note (`TuneFit.bias`)."""
        p = self.opts.repetition_penalty
        if p == 1.0 and self.keywords is None and self.tune is None:
            return logits
        logits = logits.copy()
        for b, row in enumerate(rows):
            if p != 1.0:
                seen = np.fromiter(row.seen, dtype=np.int64, count=len(row.seen))
                seen = seen[~self.table.exempt[seen]]
                v = logits[b, seen]
                logits[b, seen] = np.where(v > 0, v / p, v * p)
            if self.keywords is not None:
                favour = self.keywords.bonus(row, row.states[self.keyword_slot])
                if favour is not None:
                    logits[b, favour[0]] += favour[1]
            if self.tune is not None:
                cost = self.tune.bias(row, row.states[self.tune_slot])
                if cost is not None:
                    logits[b] -= cost
        return logits

    # ----------------------------------------------------------------- row state
    def _observe(self, row: SampleState, token: int) -> None:
        """Seen ids, n-grams and recent ids (context and sample alike)."""
        for i in self.context_watchers:
            self.items[i].observe(row, row.states[i], token)
        row.seen.add(token)
        row.recent.append(token)
        del row.recent[: max(0, len(row.recent) - max(self.opts.no_repeat_ngram, 2))]

    def _follow_line(self, row: SampleState, token: int) -> None:
        """The line state (of the printed text: the start and the sample)."""
        for i in self.line_watchers:
            self.items[i].observe(row, row.states[i], token)
        table = self.table
        if token == table.newline:
            if row.line_ids:
                row.text_lines += 1
            row.lines_done += 1
            row.line_chars = 0
            row.line_ids = []
            row.last_newline = True
            row.after_punct = False
        else:
            row.line_chars += int(table.length[token])
            row.line_ids.append(token)
            row.last_newline = False
            row.after_punct = bool(table.punct[token])

    def start_state(self, prompt: list[int]) -> SampleState:
        """The state after the context has been fed and the start text printed."""
        self.prompt = list(prompt)  # the printed start text (the tune's first notes)
        row = SampleState(states=[c.start() for c in self.items])
        for tok in self.context:
            self._observe(row, tok)
        for tok in prompt:
            if self.form_shape is not None:
                state = row.states[self.items.index(self.form_shape)]
                why = self.form_shape.check_start(row, state, tok)
                if why is not None:
                    raise GenerationError(
                        f"--start: {why}; choose a start that fits {self.form.name} "
                        "(see `lyricgen forms`), or --tones off"
                    )
            self._follow_line(row, tok)
        return row

    def advance(self, row: SampleState, token: int, logprob: float) -> None:
        was_blank = row.last_newline
        self._observe(row, token)
        self._follow_line(row, token)
        row.tokens.append(token)
        row.logprobs.append(logprob)
        if token == self.table.newline:
            if was_blank and self.opts.stop_at_blank and row.tokens[:-1]:
                row.done = True  # a blank line ends the song
            if self.n_lines and row.lines_done >= self.n_lines:
                row.done = True
        if len(row.tokens) >= self.max_tokens:
            row.done = True
