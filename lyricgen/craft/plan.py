"""Writing about something: keywords, themes, and a plan of what each line is about.

- `parse_keywords('秋,月,故乡')` reads `--keywords` (commas, 、, ， or spaces between them).
- `theme_keywords(sentence, ...)` chooses keywords from a sentence (`--theme`): jieba's TF-IDF
  (`tfidf`, its own IDF table), TextRank (`textrank`), or TF-IDF with an IDF counted from the
  run's own training text (`corpus`), keeping the words the model can write.
- `plan_lines(...)` gives each keyword a line, as Wang et al. (COLING 2016) give each line
  of a poem one keyword: spread evenly over the lines in the order given, each on a line
  where it fits (under a form: where its characters' tones fit the form's positions). The
  constraint `constraints.Keywords` then makes the line take the keyword wherever the model
  finds it likeliest in that line, not pinned to its start.
- `related_words(...)` and `embedding_neighbours(...)` expand a plan with fewer keywords than
  lines (`--expand related` / `embedding`): the words that occur near the keywords in the
  training text (co-occurrence counted from the run's copy index, weighted by inverse
  frequency), or the tokens nearest the keywords in the model's own input embedding; one per
  line that has no keyword. They are favoured while sampling that line, never forced.
- `fit_variants(...)` chooses, for a bare form name (七绝), the variants (平起/仄起,
  首句入韵 or not) that the start text, acrostic heads, template and keywords fit.

Vocabulary-free where it can be (the book's tones decide what fits a form), and free of torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lyricgen.craft.books import EITHER, book
from lyricgen.craft.rhyme import is_han
from lyricgen.errors import GenerationError

if TYPE_CHECKING:
    from lyricgen.corpus.vocab import Vocab
    from lyricgen.craft.copyindex import CopyIndex
    from lyricgen.craft.forms import Form

THEME_METHODS = ("tfidf", "textrank", "corpus")
MAX_KEYWORDS = 32
THEME_KEYWORDS = 3  # keywords a --theme gives (fewer for a shorter text)


@dataclass
class Plan:
    """What each text line is about: `lines[i]` the keywords line i must hold (in order),
    `related[i]` the words it is nudged towards; `keywords` the request's keywords, and
    `theme_method` how a --theme chose them (None when --keywords gave them)."""

    keywords: list[str]
    lines: list[list[str]]
    related: list[list[str]] = field(default_factory=list)
    theme_method: str | None = None

    def for_line(self, i: int) -> list[str]:
        return self.lines[i] if i < len(self.lines) else []

    def related_for(self, i: int) -> list[str]:
        return self.related[i] if i < len(self.related) else []

    def describe(self) -> str:
        out = []
        for i in range(max(len(self.lines), len(self.related))):
            hard, soft = self.for_line(i), self.related_for(i)
            words = "、".join(hard) + (" " if hard and soft else "")
            words += f"(related: {'、'.join(soft)})" if soft else ""
            out.append(f"line {i + 1}: {words or '-'}")
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {
            "keywords": self.keywords,
            "lines": [
                {"keywords": self.for_line(i), "related": self.related_for(i)}
                for i in range(max(len(self.lines), len(self.related)))
            ],
            **({"theme_method": self.theme_method} if self.theme_method else {}),
        }


def split_known(token: str, vocab: Vocab) -> list[str] | None:
    """Cover an out-of-vocabulary word with the longest vocabulary entries, left to right."""
    longest = max(len(t) for t in vocab.itos)
    out, i = [], 0
    while i < len(token):
        for j in range(min(len(token), i + longest), i, -1):
            if token[i:j] in vocab:
                out.append(token[i:j])
                i = j
                break
        else:
            return None
    return out


def parse_keywords(text: str) -> list[str]:
    """'秋,月 故乡' -> ['秋', '月', '故乡']; duplicates dropped, order kept."""
    words = [w for w in re.split(r"[,，、;；\s]+", text.strip()) if w]
    if not words:
        raise GenerationError(
            "--keywords is empty; give words separated by commas, e.g. 秋,月,故乡"
        )
    if len(words) > MAX_KEYWORDS:
        raise GenerationError(f"--keywords has {len(words)} words; give at most {MAX_KEYWORDS}")
    return list(dict.fromkeys(words))


def check_keywords_in_vocab(words: list[str], vocab: Vocab) -> None:
    """Every keyword can be written by the model: each character (char level) or a cover
    of vocabulary entries (word level); one-line error suggesting the nearest entries."""
    for w in words:
        if vocab.level == "char":
            bad = next((c for c in w if c not in vocab), None)
        elif w in vocab:
            bad = None
        else:
            bad = None if split_known(w, vocab) else w
        if bad is not None:
            hint = "、".join(vocab.suggest(bad))
            raise GenerationError(
                f"--keywords: {bad!r} (in {w!r}) is not in the model's vocabulary; try one "
                f"of: {hint}"
            )


def theme_keywords(theme: str, vocab: Vocab, n: int = THEME_KEYWORDS,
                   method: str = "tfidf") -> list[str]:  # fmt: skip
    """The `n` keywords of a sentence that the model can write (jieba's TF-IDF or TextRank;
    single characters only when nothing longer is left)."""
    import logging

    import jieba
    import jieba.analyse

    jieba.setLogLevel(logging.WARNING)
    if not theme.strip():
        raise GenerationError("--theme is empty; describe the subject, e.g. 一个人在秋夜想念家乡")
    if method == "corpus":
        words = _corpus_tfidf(theme, vocab)
    else:
        extract = jieba.analyse.textrank if method == "textrank" else jieba.analyse.extract_tags
        words = list(extract(theme, topK=4 * n + 4))
    if method == "textrank":  # TextRank keeps nouns and verbs; fill up from TF-IDF
        words += [w for w in jieba.analyse.extract_tags(theme, topK=4 * n + 4) if w not in words]
    ok = []
    for w in words:
        if not all(is_han(c) for c in w):
            continue
        try:
            check_keywords_in_vocab([w], vocab)
        except GenerationError:
            continue
        ok.append(w)
    multi = [w for w in ok if len(w) > 1]
    chosen = (multi + [w for w in ok if len(w) == 1])[:n]
    if not chosen:
        raise GenerationError(
            f"--theme {theme!r} gave no keyword this model can write; give --keywords instead"
        )
    return chosen


def _corpus_tfidf(theme: str, vocab: Vocab) -> list[str]:
    """The sentence's words (jieba) ranked by term frequency times an IDF counted from the
    run's own training text (the vocabulary's counts): a word's IDF is its characters' mean
    in a character model, its own in a word model."""
    import jieba

    counts = vocab.counts
    total = max(sum(counts), 1)

    def idf(tok: str) -> float:
        i = vocab.stoi.get(tok)
        return math.log(total / max(counts[i] if i is not None else 0, 1))

    tf: dict[str, int] = {}
    for w in jieba.cut(theme):
        if w.strip() and all(is_han(c) for c in w):
            tf[w] = tf.get(w, 0) + 1
    scored = []
    for w, k in tf.items():
        weight = sum(idf(c) for c in w) / len(w) if vocab.level == "char" else idf(w)
        scored.append((k * weight, w))
    return [w for _, w in sorted(scored, key=lambda x: (-x[0], x[1]))]


# ---------------------------------------------------------------------------------------
# forms: where a keyword fits


@dataclass
class Slots:
    """What each position of a form may hold, for placing keywords: per text line, the
    clauses it holds; per (clause, position), the tone mark, whether it rhymes, and the
    character fixed there (template, start text or acrostic head), if any."""

    form: Form
    book_name: str
    tones: bool
    fixed: dict[tuple[int, int], str]
    # keep keywords off the rhyme positions: a rhyme written there would have to agree
    # with rhymes chosen before it, which no plan made in advance can promise
    avoid_rhyme: bool = True

    def __post_init__(self) -> None:
        self.book = book(self.book_name)
        self.line_clauses = self.form.line_clauses()

    def fits(self, ch: str, k: int, p: int) -> bool:
        """Whether character `ch` may stand at clause k, position p."""
        fixed = self.fixed.get((k, p))
        if fixed is not None:
            return fixed == ch
        c = self.form.clauses[k]
        if self.avoid_rhyme and c.rhyme is not None and p == c.length - 1:
            return False
        tone = c.tones[p]
        if self.tones and tone != EITHER and tone not in self.book.tones(ch):
            return False
        if c.rhyme is not None and p == c.length - 1:
            want = self.form.rhymes.get(c.rhyme)
            return any(self.book.class_of(g) in (None, want) for g in self.book.groups(ch))
        return True

    def place(self, words: list[str], line: int) -> list[tuple[int, int]] | None:
        """The earliest positions (clause, position) where `words`, in order, fit in text
        line `line` without overlapping; None when they do not fit. Greedy earliest
        placement is optimal here: an earlier end never leaves less room for the rest."""
        spots = []
        clauses = self.line_clauses[line]
        ci, p = 0, 0
        for w in words:
            found = None
            while ci < len(clauses):
                k = clauses[ci]
                n = self.form.clauses[k].length
                if p + len(w) <= n and all(self.fits(ch, k, p + j) for j, ch in enumerate(w)):
                    found = (k, p)
                    break
                p += 1
                if p + len(w) > n:
                    ci, p = ci + 1, 0
            if found is None:
                return None
            spots.append(found)
            p = found[1] + len(w)
        return spots


def fixed_positions(form: Form, *, start: str = "", heads: str = "",
                    template_fixed: dict[tuple[int, int], str] | None = None
                    ) -> dict[tuple[int, int], str]:  # fmt: skip
    """(clause, position) -> character for what the start text, the acrostic heads and the
    template fix (the start text's Han characters fill the first positions in order)."""
    fixed = dict(template_fixed or {})
    chars = [c for c in start if is_han(c)]
    k = p = 0
    for ch in chars:
        while k < len(form.clauses) and p >= form.clauses[k].length:
            k, p = k + 1, 0
        if k >= len(form.clauses):
            break
        fixed[(k, p)] = ch
        p += 1
    line_starts = [0] + [k + 1 for k, c in enumerate(form.clauses[:-1]) if c.line_end]
    for ch, k in zip(heads, line_starts, strict=False):
        fixed[(k, 0)] = ch
    return fixed


def where_it_breaks(form: Form, book_name: str, tones: bool,
                    fixed: dict[tuple[int, int], str]) -> str | None:  # fmt: skip
    """The first fixed character that cannot stand where it stands in `form`, as words
    ('月' at clause 1, position 2 wants 平), or None."""
    slots = Slots(form, book_name, tones, {}, avoid_rhyme=False)
    for (k, p), ch in sorted(fixed.items()):
        if not slots.fits(ch, k, p):
            c = form.clauses[k]
            rhymed = c.rhyme is not None and p == c.length - 1
            want = c.tones[p] + ("、a rhyme" if rhymed else "")
            return f"{ch!r} at clause {k + 1}, position {p + 1} ({want}) of {form.name}"
    return None


def plan_form(form: Form, words: list[str], book_name: str, tones: bool,
              fixed: dict[tuple[int, int], str]
              ) -> tuple[list[list[str]], dict[tuple[int, int], str]] | None:  # fmt: skip
    """Keywords spread over the form's lines (keyword j of n on line j*L//n), each moved to
    the nearest line where it fits when its own does not, off the rhyme positions; then
    (lines, {}). Where some keyword only fits on a rhyme position, every keyword is placed
    now instead, and those on rhyme positions are pinned there: (lines without them,
    {(clause, position): character}), so that the other rhymes follow them. None when some
    keyword cannot fit at all."""
    lines = _spread(Slots(form, book_name, tones, fixed), words)
    if lines is not None:
        return lines, {}
    slots = Slots(form, book_name, tones, fixed, avoid_rhyme=False)
    lines = _spread(slots, words)
    if lines is None:
        return None
    pinned: dict[tuple[int, int], str] = {}
    kept: list[list[str]] = []
    for i, line in enumerate(lines):
        spots = slots.place(line, i) or []
        keep = []
        for w, (k, p) in zip(line, spots, strict=True):
            c = form.clauses[k]
            if c.rhyme is not None and p + len(w) == c.length:
                pinned.update({(k, p + j): ch for j, ch in enumerate(w)})
            else:
                keep.append(w)
        kept.append(keep)
    return kept, pinned


def _spread(slots: Slots, words: list[str]) -> list[list[str]] | None:
    n_lines = len(slots.line_clauses)
    lines: list[list[str]] = [[] for _ in range(n_lines)]
    for j, w in enumerate(words):
        want = j * n_lines // len(words)
        order = sorted(range(n_lines), key=lambda i: (abs(i - want), i))
        for i in order:
            if slots.place(lines[i] + [w], i) is not None:
                lines[i].append(w)
                break
        else:
            return None
    return lines


def plan_free(words: list[str], n_lines: int | None, lengths: list[int] | None) -> list[list[str]]:
    """Keywords over free lines: one per line from the first when the count is open, spread
    evenly over `n_lines` otherwise; with line lengths, each where its characters fit."""
    if not n_lines:
        return [[w] for w in words]
    lines: list[list[str]] = [[] for _ in range(n_lines)]
    for j, w in enumerate(words):
        want = j * n_lines // len(words)
        order = sorted(range(n_lines), key=lambda i: (abs(i - want), i))
        for i in order:
            room = lengths[i % len(lengths)] if lengths else None
            if room is None or sum(map(len, lines[i])) + len(w) <= room:
                lines[i].append(w)
                break
        else:
            total = sum(map(len, words))
            room = sum(lengths[i % len(lengths)] for i in range(n_lines)) if lengths else 0
            raise GenerationError(
                f"--keywords have {total} characters but the {n_lines} lines hold {room}; "
                "give fewer keywords or longer lines"
            )
    return lines


# ---------------------------------------------------------------------------------------
# related words (a plan for the lines without a keyword)


def related_words(index: CopyIndex, vocab: Vocab, words: list[str], n: int,
                  radius: int = 12) -> list[str]:  # fmt: skip
    """Up to `n` tokens that occur near the keywords in the training text (within `radius`
    tokens), most related first by local mutual information, count(near) * PMI, among Han
    tokens seen near a keyword at least three times; keywords and their characters are left
    out."""
    ids = index.ids
    total = len(ids)
    if total == 0 or n <= 0:
        return []
    near = np.zeros(len(vocab), dtype=np.int64)
    for w in words:
        toks = list(w) if vocab.level == "char" else [w]
        if any(t not in vocab for t in toks):
            continue
        pos = index.occurrences(vocab.encode(toks))
        if pos is None or not len(pos):
            continue
        pos = pos[:20_000]
        offsets = np.arange(-radius, radius + len(toks))
        window = (pos[:, None] + offsets[None, :]).ravel()
        window = window[(window >= 0) & (window < total)]
        vals = ids[window].astype(np.int64)
        vals = vals[vals < len(vocab)]
        near += np.bincount(vals, minlength=len(vocab))[: len(vocab)]
    counts = np.maximum(np.asarray(vocab.counts, dtype=np.float64), 1.0)
    # pointwise mutual information of "near a keyword" and the token, weighted by how often
    # they meet (local mutual information): frequent function characters (一 人 不) score
    # near zero, rare ones seen once next to a keyword do not win on chance
    pmi = np.log(np.maximum(near, 1e-9) * total / (counts * max(int(near.sum()), 1)))
    score = np.where((near >= 3) & (pmi > 0), near * pmi, 0.0)
    banned = set("".join(words))
    out = []
    for i in np.argsort(-score, kind="stable"):
        if score[i] <= 0 or len(out) >= n:
            break
        tok = vocab.itos[i]
        if not tok or not all(is_han(c) for c in tok) or set(tok) & banned:
            continue
        out.append(tok)
    return out


def nearest_tokens(vectors: np.ndarray, query: list[int], top: int,
                   keep: np.ndarray | None = None) -> list[tuple[int, float]]:  # fmt: skip
    """The `top` rows of `vectors` (V, D) closest by cosine similarity to the mean of the
    `query` rows' unit vectors, as (id, cosine), closest first; the query rows themselves and
    rows where `keep` (V,) is False left out."""
    vectors = np.asarray(vectors, dtype=np.float64)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centre = unit[query].mean(axis=0)
    sims = unit @ (centre / max(float(np.linalg.norm(centre)), 1e-12))  # (V,)
    sims[query] = -np.inf
    if keep is not None:
        sims[~keep] = -np.inf
    order = np.argsort(-sims, kind="stable")[:top]
    return [(int(j), float(sims[j])) for j in order if np.isfinite(sims[j])]


# Only the most frequent share of the Han tokens are neighbours: a rare token's embedding
# row stays close to its random start, and its cosine to anything is chance (on a 5-minute
# Song ci run the nearest to 秋 included 淝 and 萄, to 梅雪春 䕷 and 醅, all among the rarest
# two thirds of the vocabulary, seen fewer than 100 times).
EMBEDDING_FREQUENT = 1 / 3


def embedding_neighbours(vectors: np.ndarray, vocab: Vocab, words: list[str],
                         n: int) -> list[str]:  # fmt: skip
    """Up to `n` Han tokens nearest the keywords in the model's input embedding `vectors`
    (V, E): cosine similarity to the mean of the keywords' tokens (a character model's
    keyword: its characters), most similar first, among the EMBEDDING_FREQUENT most
    frequent Han tokens; keywords and their characters left out."""
    if n <= 0:
        return []
    tokens = [t for w in words for t in (list(w) if vocab.level == "char" else [w])]
    query = sorted({vocab.stoi[t] for t in tokens if t in vocab})
    if not query:
        return []
    banned = set("".join(words))
    han = np.array([bool(t) and all(is_han(c) for c in t) for t in vocab.itos])
    counts = np.asarray(vocab.counts)
    floor = np.quantile(counts[han], 1 - EMBEDDING_FREQUENT) if han.any() else 0
    keep = han & (counts >= floor) & np.array([not set(t) & banned for t in vocab.itos])
    return [vocab.itos[j] for j, _ in nearest_tokens(vectors, query, n, keep)]


def spread_related(lines: list[list[str]], related: list[str]) -> list[list[str]]:
    """One related word for each line without a keyword, in order of relatedness."""
    out: list[list[str]] = []
    it = iter(related)
    for hard in lines:
        out.append([] if hard else [w for w in [next(it, None)] if w])
    return out
