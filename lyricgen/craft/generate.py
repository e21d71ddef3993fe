"""Start text -> tokens -> step the model one token at a time with its carried hidden state.

Sampling and beam search share one set of constraints (line form, acrostic, rhyme,
no-repeat n-grams, the copy guard), applied as masks over the vocabulary at every step;
they live in `constraints.py` behind one small interface. The model is reached through a
`Stepper` (`stepper.py`; torch or NumPy in `lyricgen.backends`), so the same loop drives
either backend. Options are checked by `SamplingOptions.validate` and, against the start text
and this model, `SamplingOptions.check_for_model` (see `options.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lyricgen.corpus.text import NEWLINE, detokenize, tokenize
from lyricgen.corpus.vocab import Vocab
from lyricgen.craft.constraints import Constraints, SampleState, TokenTable
from lyricgen.craft.forms import Form
from lyricgen.craft.options import (  # noqa: F401 - re-exported: the options live with generation
    DEFAULT_MAX_COPY,
    MAX_COPY,
    MAX_LENGTH,
    OptionSpec,
    SamplingOptions,
    option_specs,
    options_from_mapping,
    parse_option_text,
)
from lyricgen.craft.plan import Plan, split_known
from lyricgen.craft.sampling import choose, log_softmax
from lyricgen.craft.stepper import Stepper
from lyricgen.errors import GenerationError, UnknownTokenError

if TYPE_CHECKING:
    from lyricgen.craft.copyindex import CopyIndex
    from lyricgen.craft.melody import Melody


N_ALTERNATIVES = 5  # --explain: the likeliest other tokens shown for each token


@dataclass
class TokenExplanation:
    """--explain for one generated token, from the model's own distribution (before the
    temperature, the constraints and the repetition penalty): the chosen token's
    probability, the distribution's entropy in bits, and the likeliest other tokens with
    their probabilities and whether the constraints allowed them."""

    p: float
    entropy: float
    alternatives: list[tuple[str, float, bool]]

    def to_dict(self) -> dict:
        return {
            "p": round(self.p, 6),
            "entropy_bits": round(self.entropy, 4),
            "alternatives": [
                {"token": t, "p": round(q, 6), "allowed": ok} for t, q, ok in self.alternatives
            ],
        }


def explain_step(
    raw_logp: np.ndarray, chosen: np.ndarray, allowed: np.ndarray, rows: list[int]
) -> list[tuple[float, float, np.ndarray, np.ndarray, np.ndarray]]:
    """For each row index in `rows`: (p of the chosen token, entropy in bits, the ids, the
    probabilities and the allowed flags of the N_ALTERNATIVES likeliest other tokens), all
    from `raw_logp` (B, V), the model's log-probabilities. Vectorized over the rows."""
    if not rows:
        return []
    idx = np.asarray(rows)
    lp = raw_logp[idx]  # (R, V)
    probs = np.exp(lp)
    finite = np.where(np.isfinite(lp), lp, 0.0)  # p log p is 0 where p is 0
    entropy = -(probs * finite).sum(axis=-1) / math.log(2)
    k = min(N_ALTERNATIVES + 1, lp.shape[1])
    top = np.argpartition(-lp, k - 1, axis=-1)[:, :k]  # the k likeliest, unordered
    order = np.argsort(-np.take_along_axis(lp, top, axis=-1), axis=-1, kind="stable")
    top = np.take_along_axis(top, order, axis=-1)
    out = []
    for r, i in enumerate(idx.tolist()):
        alt = top[r][top[r] != chosen[i]][:N_ALTERNATIVES]
        out.append(
            (float(probs[r, chosen[i]]), float(entropy[r]), alt, probs[r, alt], allowed[i, alt])
        )
    return out


@dataclass
class Sample:
    text: str
    tokens: list[str]
    logprobs: list[float] = field(default_factory=list)
    # the longest run of tokens of one line found in the training text: (tokens, text)
    longest_copy: tuple[int, str] | None = None
    why: list[TokenExplanation] | None = None  # --explain: one per token of `tokens`
    variant: str | None = None  # the form variant the sample keeps (a bare 七绝 has four)
    plan: Plan | None = None  # --keywords/--theme: what each line is about
    fit: Any = None  # with a melody: each character against its note (tonefit.Fit)

    @property
    def perplexity(self) -> float:
        """exp of the mean negative log-probability of the generated tokens under the model."""
        if not self.logprobs:
            return float("nan")
        return math.exp(-sum(self.logprobs) / len(self.logprobs))

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "tokens": self.tokens,
            "logprobs": [round(x, 5) for x in self.logprobs],
            "perplexity": self.perplexity,
            **(
                {"longest_copy": {"tokens": self.longest_copy[0], "text": self.longest_copy[1]}}
                if self.longest_copy is not None
                else {}
            ),
            **({"explain": [w.to_dict() for w in self.why]} if self.why is not None else {}),
            **({"form": self.variant} if self.variant is not None else {}),
            **({"plan": self.plan.to_dict()} if self.plan is not None else {}),
            **({"melody_fit": self.fit.to_dict()} if self.fit is not None else {}),
        }


# ---------------------------------------------------------------------------------------
# prompt


def _tokenize_prompt(text: str, vocab: Vocab) -> list[str]:
    """Like `tokenize`, but a word-level line that is itself a vocabulary entry skips jieba
    (whose dictionary costs about a second to load)."""
    if vocab.level != "word":
        return tokenize(text, vocab.level)
    out: list[str] = []
    for i, line in enumerate(text.split(NEWLINE)):
        if i:
            out.append(NEWLINE)
        if line in vocab:
            out.append(line)
        elif line:
            out.extend(tokenize(line, "word"))
    return out


def encode_prompt(text: str, vocab: Vocab, what: str = "start text") -> list[str]:
    """Tokenize text the way the corpus was; unknown pieces are an error naming them."""
    tokens = []
    for tok in _tokenize_prompt(text, vocab):
        if tok in vocab:
            tokens.append(tok)
            continue
        pieces = split_known(tok, vocab) if vocab.level == "word" else None
        if pieces is None:
            bad = next((c for c in tok if c not in vocab), tok) if vocab.level != "space" else tok
            hint = "、".join(vocab.suggest(bad))
            raise UnknownTokenError(
                f"{what}: {bad!r} is not in the model's vocabulary; try one of: {hint}"
            )
        tokens.extend(pieces)
    return tokens


# ---------------------------------------------------------------------------------------
# the loop


def _context(
    vocab: Vocab, start: str, opts: SamplingOptions, control: str | None = None
) -> tuple[list[int], list[str]]:
    """Ids fed before generation and the printed start tokens; `control`: a control line
    (corpus/control.py) fed before the prefix, for a keyword-conditioned run."""
    prefix = encode_prompt(opts.prefix, vocab, "--prefix") if opts.prefix else []
    if control and all(c in vocab for c in control):
        prefix = list(control) + [NEWLINE] + prefix
    prompt = encode_prompt(start, vocab) if start.strip() else []
    nl = [NEWLINE] if NEWLINE in vocab else []
    # Start on a fresh line, as lines begin in training; a prefix is its own line(s).
    ctx = nl + prefix + (nl if prefix and prefix[-1] != NEWLINE else []) + prompt
    return vocab.encode(ctx), prompt


@dataclass
class Request:
    """What a request comes to before sampling: the form variants in play (None: no form or
    template), the token ids a template fixes, and the keywords' plan (None: no subject)."""

    forms: list[Form] | None = None
    fixed: dict[tuple[int, int], int] = field(default_factory=dict)
    plan: Plan | None = None


def prepare(vocab: Vocab, start: str, opts: SamplingOptions,
            copy_index: CopyIndex | None = None,
            embedding: np.ndarray | None = None) -> Request:  # fmt: skip
    """Resolve the subject and the shape of a request: the keywords (given, or chosen from
    --theme), the template, and the variants of the form that the start text, the acrostic
    heads, the template and the keywords all fit; then the plan of which line takes which
    keyword, and (--expand) the related words of the other lines, from `copy_index` or the
    model's input `embedding` (V, E). One-line errors name what does not fit where."""
    from lyricgen.craft import plan as planning
    from lyricgen.craft.forms import check_template, form_variants, parse_template

    words: list[str] = []
    method = None
    if opts.keywords:
        words = planning.parse_keywords(opts.keywords)
        planning.check_keywords_in_vocab(words, vocab)
    elif opts.theme:
        n = min(planning.THEME_KEYWORDS, opts.n_lines or planning.THEME_KEYWORDS)
        words = planning.theme_keywords(opts.theme, vocab, n, opts.theme_method)
        method = opts.theme_method
    template = parse_template(opts.template) if opts.template else None
    req = Request()
    forms = form_variants(opts.form) if opts.form else None
    if template is not None:
        if forms is not None:
            check_template(template, forms[0])
        else:
            forms = [template.form()]
        for ch in template.fixed().values():
            if ch not in vocab:
                hint = "、".join(vocab.suggest(ch))
                raise GenerationError(
                    f"--template: {ch!r} is not in the model's vocabulary; try one of: {hint}"
                )
        req.fixed = {kp: vocab.stoi[ch] for kp, ch in template.fixed().items()}
    lines: list[list[str]] = []
    if forms is not None:
        tonal = opts.tones != "off" and forms[0].tonal
        fits: list[tuple[Form, tuple]] = []
        first_problem = None
        for f in forms:
            fixed = planning.fixed_positions(
                f, start=start, heads=opts.heads,
                template_fixed=template.fixed() if template else None,
            )  # fmt: skip
            problem = planning.where_it_breaks(f, opts.book, tonal, fixed)
            placed = planning.plan_form(f, words, opts.book, tonal, fixed) if words else []
            if problem is None and placed is None:
                problem = _keywords_misfit(f, words, opts.book, tonal, fixed)
            if problem is None:
                fits.append((f, placed or ([], {})))
            elif first_problem is None:
                first_problem = problem
        if not fits:
            names = "any variant of " + opts.form if len(forms) > 1 else forms[0].name
            what = "--template" if template is not None and not opts.form else f"--form {names}"
            raise GenerationError(
                f"{first_problem}; nothing fits {what} (see `lyricgen forms`), or use --tones off"
            )
        lines, pinned = fits[0][1]
        # the variants the plan made for the first one also fits (a keyword pinned to a
        # rhyme position fixes its characters there, like a template's)
        req.forms = [
            f for f, _ in fits
            if all(planning.Slots(f, opts.book, tonal, {}).place(ln, i) is not None
                   for i, ln in enumerate(lines) if ln)
            and planning.where_it_breaks(f, opts.book, tonal, pinned) is None
        ]  # fmt: skip
        for kp, ch in pinned.items():
            if ch not in vocab:
                planning.check_keywords_in_vocab([ch], vocab)
            req.fixed[kp] = vocab.stoi[ch]
    elif words:
        lines = planning.plan_free(words, opts.n_lines, opts.line_length_list)
    if words:
        related: list[list[str]] = []
        if opts.expand != "off" and opts.keyword_mode == "must":
            free = sum(1 for ln in lines if not ln)
            near: list[str] = []
            if opts.expand == "related" and copy_index is not None and not compact(copy_index):
                near = planning.related_words(copy_index, vocab, words, free)
            elif opts.expand == "embedding" and embedding is not None:
                near = planning.embedding_neighbours(embedding, vocab, words, free)
            related = planning.spread_related(lines, near)
        req.plan = Plan(words, lines, related, method)
    return req


def input_embedding(stepper: Stepper) -> np.ndarray:
    """The model's input embedding (V, E) as NumPy, from either backend's stepper (the
    NumPy model's `embedding`, the torch model's `embedding.weight`)."""
    lm = getattr(stepper, "lm", None)
    if lm is not None and hasattr(lm, "embedding"):
        return np.asarray(lm.embedding)
    model = getattr(stepper, "model", None)
    if model is not None and hasattr(model, "embedding"):
        return model.embedding.weight.detach().float().cpu().numpy()
    raise GenerationError("--expand embedding: this model's stepper shows no input embedding")


def control_for(plan: Plan | None, keyword_control: bool) -> str | None:
    """The control line to feed a keyword-conditioned run, or None."""
    if not keyword_control or plan is None or not plan.keywords:
        return None
    from lyricgen.corpus.control import control_line

    return control_line(plan.keywords)


def control_marks(vocab: Vocab) -> list[int]:
    """Ids of the control lines' marks 〔 〕: a conditioned run reads them, never writes them."""
    from lyricgen.corpus.control import CLOSE, OPEN

    return [i for i, t in enumerate(vocab.itos) if OPEN in t or CLOSE in t]


def _keywords_misfit(form: Form, words: list[str], book_name: str, tonal: bool,
                     fixed: dict[tuple[int, int], str]) -> str:  # fmt: skip
    """Why the keywords cannot be placed in `form`: one that fits no line on its own, or
    more than the free positions hold."""
    from lyricgen.craft.plan import Slots

    slots = Slots(form, book_name, tonal, fixed, avoid_rhyme=False)
    for w in words:
        if all(slots.place([w], i) is None for i in range(len(slots.line_clauses))):
            why = "its tones fit no position" if tonal else "it fits no free position"
            return f"--keywords: {w!r} cannot stand anywhere in {form.name} ({why})"
    free = form.length - len(fixed)
    return (
        f"--keywords: {sum(map(len, words))} keyword characters do not fit together in the "
        f"{free} free positions of {form.name}"
    )


def compact(copy_index) -> bool:
    """Whether the run's copy index is a shipped model's compact guard (`clauseguard`),
    which masks copies but cannot locate or count them."""
    return getattr(copy_index, "compact", False)


def generate(
    stepper: Stepper,
    vocab: Vocab,
    start: str,
    opts: SamplingOptions,
    on_token: Callable[[int, str], None] | None = None,
    copy_index: CopyIndex | None = None,
    rhyme_table: dict[str, list] | None = None,
    keyword_control: bool = False,
    melody: Melody | None = None,
) -> list[Sample]:
    """Write `opts.num_samples` continuations of `start` (sampled as one batch, or by beam
        search with `opts.beam`). `stepper` runs the model (`lyricgen.backends.steppers`: a
    `TorchStepper` around a LyricsModel, or a `NumpyStepper`). Each step feeds only
        the newest token and the carried hidden state, so the work per token is constant.
        `on_token(sample_index, token)` is called as tokens are chosen (for streaming).
        `copy_index` (the run's training text) serves `opts.max_copy` and fills each sample's
        `longest_copy`. `rhyme_table` (the run's saved `rhyme.json`) spares `opts.rhyme` the
        pypinyin look-ups. `keyword_control`: the run was trained with control lines
        (data.keyword_lines), so the keywords' control line is fed before the text and the
        control marks are never written. `melody` (or `opts.jianpu`): the tune the lyric is
        written to, one line per phrase and one character per syllable, the tones following
        the tune (`opts.tone_fit`, see `tonefit.py`)."""
    opts.validate()
    melody, opts = with_melody(melody, opts)
    if not hasattr(stepper, "step"):
        raise TypeError(
            "generate takes a Stepper; wrap a LyricsModel in "
            "lyricgen.backends.steppers.TorchStepper(model)"
        )
    table = TokenTable.of(vocab)
    opts.check_for_model(
        start,
        level=vocab.level,
        line_breaks=table.newline is not None,
        han=table.cjk,
        copy_index=copy_index is not None,
    )
    embedding = input_embedding(stepper) if opts.expand == "embedding" else None
    req = prepare(vocab, start, opts, copy_index, embedding)
    ids, prompt = _context(vocab, start, opts, control_for(req.plan, keyword_control))
    tune, echo = None, None
    if melody is not None:
        from lyricgen.craft.tonefit import melody_constraints

        tune, echo = melody_constraints(table, melody, opts.tone_fit, opts.refrain, rhyme_table)
    cons = Constraints(
        vocab, opts, ids, copy_index, rhyme_table, forms=req.forms, fixed=req.fixed,
        plan=req.plan, banned=control_marks(vocab) if keyword_control else None,
        tune=tune, echo=echo,
    )  # fmt: skip
    row0 = cons.start_state(vocab.encode(prompt))
    if opts.explain:
        row0.why = []
    first = cons.shape.target(row0) if cons.shape is not None else None
    if first is not None and row0.line_chars > first:
        limit = f"--line-length is {first}" if opts.line_length else f"that line takes {first}"
        raise GenerationError(
            f"--start has {row0.line_chars} characters on its line but {limit}; shorten the "
            "start or lengthen the line"
        )
    if opts.beam:
        rows = _beam_search(stepper, ids, row0, cons, opts)
    elif opts.n_candidates > 1:
        rows = _sample_lines(stepper, ids, row0, cons, opts, on_token)
    else:
        rows = _sample(stepper, ids, row0, cons, opts, on_token)
    if copy_index is not None:
        from lyricgen.craft.originality import longest_copy
    samples = []
    for row in rows:
        toks = vocab.decode(row.tokens)
        text = detokenize(prompt + toks, vocab.level)
        if cons.form_shape is not None:
            text = layout(text, cons.form_shape.stanza_lines)
        copy = None
        if copy_index is not None and not compact(copy_index):  # a guard cannot locate copies
            copy = longest_copy(copy_index, vocab, vocab.encode(prompt) + row.tokens)
        why = None
        if row.why is not None:
            itos = vocab.itos
            why = [
                TokenExplanation(
                    p, h, [(itos[a], float(q), bool(ok)) for a, q, ok in zip(*alts, strict=True)]
                )
                for p, h, *alts in row.why
            ]
        variant = cons.variant(row)
        samples.append(
            Sample(text, toks, row.logprobs, copy, why,
                   variant.name if variant is not None and opts.form else None, req.plan,
                   melody_fit(text, melody))
        )  # fmt: skip
    return samples


def with_melody(melody: Melody | None, opts: SamplingOptions
                ) -> tuple[Melody | None, SamplingOptions]:  # fmt: skip
    """The melody of a request (given, or read from `opts.jianpu`), cut by `opts.phrases`,
    and the options with its phrases as the line lengths; options a melody replaces are
    one-line errors."""
    if melody is None and opts.jianpu is not None:
        from lyricgen.craft.melody_io import load_melody

        melody = load_melody(jianpu=opts.jianpu)
    opts.check_melody(melody is not None)
    if melody is None:
        return None, opts
    if opts.phrases is not None:
        from lyricgen.craft.forms import parse_line_lengths

        melody = melody.regroup(parse_line_lengths(opts.phrases))
    lengths = ",".join(map(str, melody.lengths()))
    return melody, replace(opts, line_lengths=lengths, lines=None)


def melody_fit(text: str, melody: Melody | None):
    """The sample's characters against the tune (tonefit.Fit), or None without a melody or
    where the text does not fill the phrases (a line the constraints cut short)."""
    if melody is None:
        return None
    from lyricgen.craft.tonefit import fit_lyrics
    from lyricgen.errors import MelodyError

    try:
        return fit_lyrics(text, melody)
    except MelodyError:
        return None


def _choose(cons, logits, rows, allowed, rng, opts) -> np.ndarray:
    """One token per row (B,), sampled from the penalised logits among the allowed ones."""
    return choose(
        cons.penalize(logits, rows),
        rng,
        temperature=opts.temperature,
        top_k=opts.top_k,
        top_p=opts.top_p,
        greedy=opts.greedy,
        allowed=allowed,
    )


def _sample(stepper, ids, row0, cons, opts, on_token) -> list[SampleState]:
    rng = np.random.default_rng(opts.seed)
    b = opts.num_samples
    rows = [row0.copy() for _ in range(b)]
    logits, hidden = stepper.start(ids, b)
    filler = cons.table.newline if cons.table.newline is not None else 0
    while True:
        live = [i for i, r in enumerate(rows) if not r.done]
        if not live:
            return rows
        raw_logp = log_softmax(logits)  # the model's own distribution, for scores
        allowed = np.stack([cons.allowed(r) for r in rows])  # (B, V)
        nxt = _choose(cons, logits, rows, allowed, rng, opts)
        if row0.why is not None:
            for i, why in zip(live, explain_step(raw_logp, nxt, allowed, live), strict=True):
                rows[i].why.append(why)
        for i in range(b):
            if rows[i].done:
                nxt[i] = filler  # finished rows keep stepping with a harmless token
                continue
            cons.advance(rows[i], int(nxt[i]), float(raw_logp[i, nxt[i]]))
            if on_token is not None:
                on_token(i, cons.table.vocab.itos[int(nxt[i])])
        if all(r.done for r in rows):
            return rows
        logits, hidden = stepper.step(nxt, hidden)


def draw_lines(stepper, cons, opts, rng, rows, logits, hidden, explain=False):
    """Write the current line of every row (one batch; every constraint applies to each):
    returns the logits and state right after each row's line ended (a row already done
    keeps its own). `rows` (B) are advanced in place; `logits` (B, V) and `hidden` are the
    model's after the rows' text so far."""
    n = len(rows)
    filler = cons.table.newline if cons.table.newline is not None else 0
    idle = np.zeros(cons.table.size, dtype=bool)  # what a row whose line is over may take
    idle[filler] = True
    over = np.array([r.done for r in rows])  # rows whose line is finished
    saved_hidden = stepper.select(hidden, np.arange(n))  # a copy, filled as lines end
    saved_logits = logits.copy()
    while not over.all():
        raw_logp = log_softmax(logits)
        allowed = np.stack(
            [cons.allowed(r) if not o else idle for r, o in zip(rows, over, strict=True)]
        )
        nxt = _choose(cons, logits, rows, allowed, rng, opts)
        if explain:
            live = np.flatnonzero(~over).tolist()
            for i, why in zip(live, explain_step(raw_logp, nxt, allowed, live), strict=True):
                rows[i].why.append(why)
        ended = []
        for i in range(n):
            if over[i]:
                nxt[i] = filler  # a finished line keeps stepping with a harmless token
                continue
            tok = int(nxt[i])
            cons.advance(rows[i], tok, float(raw_logp[i, tok]))
            if tok == cons.table.newline or rows[i].done:
                over[i] = True
                ended.append(i)
        logits, hidden = stepper.step(nxt, hidden)
        if ended:  # keep the state right after each line's last token
            saved_hidden = stepper.replace_rows(saved_hidden, hidden, np.array(ended))
            saved_logits[ended] = logits[ended]
    return saved_logits, saved_hidden


def _sample_lines(stepper, ids, row0, cons, opts, on_token) -> list[SampleState]:
    """Line-level search: each sample's next line is drawn as K candidates in one batch
    (every constraint applies to each), and the candidate with the best score (`line_score`:
    mean log-probability under the model, less a cost for repeated characters beyond the
    text's allowance) is kept. A hard constraint masks one token at a time and can push a
    single sample into a corner; among K complete lines, one usually reads well."""
    rng = np.random.default_rng(opts.seed)
    b, k = opts.num_samples, opts.n_candidates
    n = b * k
    committed = [row0.copy() for _ in range(b)]
    rate = repeat_rate(cons.form)
    logits, hidden = stepper.start(ids, n)  # (B*K, V)
    while not all(r.done for r in committed):
        rows = [committed[i // k].copy() for i in range(n)]
        begin = [len(r.tokens) for r in rows]
        saved_logits, saved_hidden = draw_lines(
            stepper, cons, opts, rng, rows, logits, hidden, explain=row0.why is not None
        )
        winners = np.arange(0, n, k)
        for s in range(b):
            if committed[s].done:
                continue
            cands = range(s * k, (s + 1) * k)
            budget = RepeatBudget.of(cons.context + committed[s].tokens, cons.table, rate)
            scores = np.array(
                [line_score(rows[i], begin[i], committed[s].seen, cons.table, budget)
                 for i in cands]
            )  # fmt: skip
            if cons.tune is not None:
                scores -= np.array([tune_cost(cons, rows[i], begin[i])
                                    for i in cands])  # fmt: skip
            # a blank line (one likely token) would win too easily: it is kept only when
            # every candidate is one, i.e. when the model insists on a break
            blank = np.array([rows[i].tokens[begin[i] :] == [cons.table.newline] for i in cands])
            if not blank.all():
                scores[blank] = -np.inf
            broken = np.array([rows[i].broken for i in cands])
            if not broken.all():  # a line the constraints cornered loses to any other
                scores[broken] = -np.inf
            win = s * k + int(np.argmax(scores))
            winners[s] = win
            committed[s] = rows[win]
            if on_token is not None:
                for tok in rows[win].tokens[begin[win] :]:
                    on_token(s, cons.table.vocab.itos[tok])
        index = np.repeat(winners, k)
        hidden = stepper.select(saved_hidden, index)
        logits = saved_logits[index]
    return committed


# A line candidate's score is its mean log-probability less this much times the share of its
# characters that repeat one already in the sample (or earlier in the line), beyond the text's
# allowance (`RepeatBudget`): a repeated character is cheap for the model (为颦黛染眉颦黛),
# and the ranking would otherwise prefer it. docs/BENCHMARKS.md, "Writing about something".
REPEAT_COST = 10.0

# The repeats a text may make for free: the share of the characters written so far that the
# poets' own texts of the form repeat (rounded down to whole repeats), so that a long tune may
# repeat as its poets do while a short form stays clean. Counted by benchmarks/forms.py
# ("poets' repeated": the tunes' exact-length songs of the Song ci, Tang shi of the 近体
# shapes). A whole-text cost without an allowance held every text near none and cost the long
# tunes their fluency (洞仙歌 1.52x the perplexity of free samples): docs/BENCHMARKS.md,
# "Writing about something". Forms not listed take their kind's rate, free lines the last.
REPEAT_RATE = {
    "五绝": 0.027, "七绝": 0.028, "五律": 0.018, "七律": 0.023, "浣溪沙": 0.032,
    "水调歌头": 0.067, "鹧鸪天": 0.045, "菩萨蛮": 0.097, "满江红": 0.062, "西江月": 0.047,
    "临江仙": 0.046, "念奴娇": 0.063, "减字木兰花": 0.057, "沁园春": 0.075, "蝶恋花": 0.053,
    "点绛唇": 0.033, "贺新郎": 0.073, "清平乐": 0.046, "满庭芳": 0.055, "虞美人": 0.063,
    "好事近": 0.036, "水龙吟": 0.066, "朝中措": 0.032, "渔家傲": 0.056, "卜算子": 0.072,
    "谒金门": 0.045, "玉楼春": 0.052, "南乡子": 0.055, "踏莎行": 0.048, "南歌子": 0.039,
    "柳梢青": 0.038, "蓦山溪": 0.066, "望江南": 0.046, "生查子": 0.048, "鹊桥仙": 0.060,
    "浪淘沙": 0.050, "如梦令": 0.102, "木兰花慢": 0.057, "洞仙歌": 0.068, "诉衷情": 0.035,
    "阮郎归": 0.053, "青玉案": 0.051, "醉落魄": 0.065, "摸鱼儿": 0.084,
    "近体诗": 0.018, "词牌": 0.032,
}  # fmt: skip
DEFAULT_REPEAT_RATE = 0.032  # the cleanest tunes' (浣溪沙, 朝中措): free lines, templates


@dataclass(frozen=True)
class RepeatBudget:
    """The text so far, for the repetition cost: its `written` content tokens, of which
    `repeated` repeat an earlier one, and the share `rate` of the text that may repeat."""

    rate: float = 0.0
    written: int = 0
    repeated: int = 0

    @classmethod
    def of(cls, ids: list[int], table: TokenTable, rate: float) -> RepeatBudget:
        content = [t for t in ids if table.in_line[t]]
        return cls(rate, len(content), len(content) - len(set(content)))

    def free(self, line_tokens: int) -> int:
        """Repeats a line of `line_tokens` content tokens may still make without cost."""
        allowed = math.floor(self.rate * (self.written + line_tokens) + 1e-9)
        return max(0, allowed - self.repeated)


def repeat_rate(form: Form | None) -> float:
    """The share of a text of this form that may repeat for free (REPEAT_RATE): the form's
    own (a variant takes its bare name's), else its kind's, else DEFAULT_REPEAT_RATE."""
    if form is None:
        return DEFAULT_REPEAT_RATE
    for key in (form.name.split("·")[0], *form.names, form.kind):
        if key in REPEAT_RATE:
            return REPEAT_RATE[key]
    return DEFAULT_REPEAT_RATE


def line_score(row: SampleState, begin: int, seen: set[int], table: TokenTable,
               budget: RepeatBudget | None = None) -> float:  # fmt: skip
    """Mean log-probability of the row's tokens from `begin` on, less REPEAT_COST times the
    share of its content tokens that repeat one of `seen` or one earlier in the line, the
    first `budget.free(...)` of them left out (no budget: every one counts)."""
    toks = row.tokens[begin:]
    mean = float(np.mean(row.logprobs[begin:]))
    content = [t for t in toks if table.in_line[t]]
    if not content or not REPEAT_COST:
        return mean
    used = set(seen)
    repeats = 0
    for t in content:
        repeats += t in used
        used.add(t)
    if budget is not None:
        repeats = max(0, repeats - budget.free(len(content)))
    return mean - REPEAT_COST * repeats / len(content)


def tune_cost(cons: Constraints, row: SampleState, begin: int) -> float:
    """A line candidate's cost against its phrase of the tune, read in context
    (`tonefit.line_cost`): infinite under --tone-fit strict where a character read with its
    neighbours falls on an unacceptable step. The line is the whole line the candidate ends
    (a start text's characters included)."""
    from lyricgen.craft.rhyme import is_han
    from lyricgen.craft.tonefit import line_cost

    itos, nl = cons.table.vocab.itos, cons.table.newline
    full = cons.prompt + row.tokens
    b = len(cons.prompt) + begin
    start = b
    while start > 0 and full[start - 1] != nl:
        start -= 1
    text = "".join(itos[t] for t in full[start:] if t != nl)
    prev = next((c for t in reversed(full[:start]) for c in reversed(itos[t]) if is_han(c)), None)
    line = row.lines_done - 1 if row.last_newline else row.lines_done
    tune = cons.tune
    return line_cost(text, prev, line, tune.steps, tune.directions, tune.hard)


def layout(text: str, breaks: set[int]) -> str:
    """A form's text with a blank line after each line count in `breaks` (between 上片 and
    下片); the model itself writes one corpus line per line, as the corpus does."""
    lines = text.split(NEWLINE)
    out = []
    for i, ln in enumerate(lines):
        out.append(ln)
        if i + 1 in breaks and i + 1 < len(lines) and lines[i + 1]:
            out.append("")
    return NEWLINE.join(out)


def _beam_search(stepper, ids, row0, cons, opts) -> list[SampleState]:
    """Deterministic beam search; beams are ranked by total log-probability divided by
    length ** length_penalty (1.0: mean log-probability per token)."""
    width = opts.beam
    logits, hidden = stepper.start(ids, 1)
    beams, scores = [row0.copy()], np.zeros(1)
    finished: list[tuple[float, SampleState]] = []

    def normalized(score: float, row: SampleState) -> float:
        return score / max(1, len(row.tokens)) ** opts.length_penalty

    while beams:
        logp = log_softmax(cons.penalize(logits, beams))  # (W, V)
        raw = log_softmax(logits)
        allowed = np.stack([cons.allowed(r) for r in beams])
        cand = np.where(allowed, scores[:, None] + logp, -np.inf)  # (W, V)
        flat = cand.ravel()
        k = min(width, int(np.isfinite(flat).sum()))
        if k == 0:
            break
        # stable sort: ties resolve by (beam, token) order, so the search is deterministic
        top = np.argsort(-flat, kind="stable")[:k]
        new_beams, new_scores, parents, tokens = [], [], [], []
        for idx in top:
            parent, tok = divmod(int(idx), cand.shape[1])
            row = beams[parent].copy()
            cons.advance(row, tok, float(raw[parent, tok]))
            if row.done:
                finished.append((normalized(float(flat[idx]), row), row))
            else:
                new_beams.append(row)
                new_scores.append(float(flat[idx]))
                parents.append(parent)
                tokens.append(tok)
        if len(finished) >= width or not new_beams:
            break
        best_open = max(normalized(s, r) for s, r in zip(new_scores, new_beams, strict=True))
        if opts.length_penalty == 0 and finished and max(f[0] for f in finished) >= best_open:
            break  # scores only fall with length, so no open beam can win any more
        hidden = stepper.select(hidden, np.array(parents))
        logits, hidden = stepper.step(np.array(tokens), hidden)
        beams, scores = new_beams, np.array(new_scores)
    if not finished:  # every beam was cut off
        finished = [(normalized(s, r), r) for s, r in zip(scores, beams, strict=True)]
    finished.sort(key=lambda fr: -fr[0])
    return [r for _, r in finished[: opts.num_samples]]
