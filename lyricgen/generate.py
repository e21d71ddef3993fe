"""Start text -> tokens -> step the model one token at a time with its carried hidden state.

Sampling and beam search share one set of constraints, applied as masks over the
vocabulary at every step:

- line form: every line has exactly `line_length` characters (spaces and punctuation are
  not generated inside such a line, so the count is unambiguous), and the output has
  exactly `lines` lines;
- acrostic (藏头): line i starts with the i-th character of the acrostic;
- `no_repeat_ngram`: no n-gram occurs twice in a sample;
- `repetition_penalty` (CTRL, Keskar et al. 2019): logits of tokens already in the sample
  are divided by the penalty (multiplied when negative); line breaks are exempt.

The model is reached through a small "stepper" interface (`start`, `step`, `select`), so
the same loop can drive other backends.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from lyricgen.errors import GenerationError, UnknownTokenError
from lyricgen.sampling import choose, log_softmax
from lyricgen.text import NEWLINE, detokenize, tokenize
from lyricgen.vocab import Vocab

MAX_LENGTH = 100_000


@dataclass
class SamplingOptions:
    """Everything `generate` can be asked for; `validate` gives one-line errors."""

    length: int | None = None  # tokens after the start; None: 99, or up to MAX_LENGTH with `lines`
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 0.95
    greedy: bool = False
    num_samples: int = 1
    seed: int | None = None
    repetition_penalty: float = 1.1
    no_repeat_ngram: int = 0
    acrostic: str | None = None
    line_length: int | None = None
    lines: int | None = None
    stop_at_blank: bool = False
    beam: int = 0
    length_penalty: float = 1.0
    prefix: str | None = None

    def validate(self) -> None:
        if self.length is not None and not 1 <= self.length <= MAX_LENGTH:
            raise GenerationError(
                f"--length is {self.length}; give a number from 1 to {MAX_LENGTH}"
            )
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

    @property
    def heads(self) -> str:
        return "".join(self.acrostic.split()) if self.acrostic else ""

    @property
    def n_lines(self) -> int | None:
        return len(self.heads) if self.acrostic else self.lines

    @property
    def max_tokens(self) -> int:
        if self.length is not None:
            return self.length
        return MAX_LENGTH if self.n_lines else 99


@dataclass
class Sample:
    text: str
    tokens: list[str]
    logprobs: list[float] = field(default_factory=list)

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
        }


# ---------------------------------------------------------------------------------------
# prompt


def _split_known(token: str, vocab: Vocab) -> list[str] | None:
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
        pieces = _split_known(tok, vocab) if vocab.level == "word" else None
        if pieces is None:
            bad = next((c for c in tok if c not in vocab), tok) if vocab.level != "space" else tok
            hint = "、".join(vocab.suggest(bad))
            raise UnknownTokenError(
                f"{what}: {bad!r} is not in the model's vocabulary; try one of: {hint}"
            )
        tokens.extend(pieces)
    return tokens


# ---------------------------------------------------------------------------------------
# steppers: how the loop reaches a model


class TorchStepper:
    """Steps a `LyricsModel`; logits come back as NumPy arrays (B, V)."""

    def __init__(self, model):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.device = next(model.parameters()).device

    def start(self, ids: list[int], batch: int):
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor([ids] * batch, dtype=torch.long, device=self.device)  # (B, P)
            logits, hidden = self.model(x)
        return logits[:, -1].float().cpu().numpy(), hidden

    def step(self, tokens: np.ndarray, hidden):
        torch = self.torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64)).to(self.device)
            logits, hidden = self.model(x[:, None], hidden)  # one token per row: (B, 1)
        return logits[:, -1].float().cpu().numpy(), hidden

    def select(self, hidden, index: np.ndarray):
        """Reorder/duplicate batch rows of the hidden state (for beam search)."""
        idx = self.torch.from_numpy(np.asarray(index, dtype=np.int64)).to(self.device)
        if isinstance(hidden, tuple):
            return tuple(h.index_select(1, idx) for h in hidden)
        return hidden.index_select(1, idx)


# ---------------------------------------------------------------------------------------
# constraints


def _is_content(token: str) -> bool:
    """A token made only of letters/digits/CJK (no spaces, punctuation or line breaks)."""
    return bool(token) and all(unicodedata.category(c)[0] in "LN" for c in token)


class _TokenTable:
    """Per-vocabulary arrays the constraints need, computed once."""

    def __init__(self, vocab: Vocab):
        self.vocab = vocab
        itos = vocab.itos
        space = vocab.level == "space"
        # what counts toward a line's length: characters, or words at level 'space'
        self.length = np.array([1 if space else len(t) for t in itos], dtype=np.int64)
        self.content = np.array([_is_content(t) for t in itos], dtype=bool)
        self.content[vocab.unk_id] = False
        self.first = np.array([t[:1] for t in itos], dtype=object)
        self.newline = vocab.stoi.get(NEWLINE)
        self.exempt = np.array([not t.strip() for t in itos], dtype=bool)  # line breaks, spaces

    def starting_with(self, ch: str) -> np.ndarray:
        return (self.first == ch) & self.content


@dataclass
class _Row:
    """The constraint state of one sample (or beam)."""

    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    line_chars: int = 0  # characters so far in the current line
    lines_done: int = 0
    last_newline: bool = True  # the previous token was a line break (or nothing yet)
    done: bool = False
    # incremental views of context + tokens, so each step costs O(1) in the sample's length
    recent: list[int] = field(default_factory=list)  # the last few ids
    seen: set[int] = field(default_factory=set)  # ids used so far (repetition penalty)
    ngrams: dict[tuple, set[int]] = field(default_factory=dict)  # (n-1)-gram -> next ids

    def copy(self) -> _Row:
        return replace(
            self,
            tokens=list(self.tokens),
            logprobs=list(self.logprobs),
            recent=list(self.recent),
            seen=set(self.seen),
            ngrams={k: set(v) for k, v in self.ngrams.items()},
        )


class Constraints:
    """Builds the allowed-token mask for each row and advances its state."""

    def __init__(self, vocab: Vocab, opts: SamplingOptions, context: list[int]):
        self.t = _TokenTable(vocab)
        self.opts = opts
        self.context = context  # prompt ids (for no-repeat n-grams that span the start)
        self.heads = opts.heads
        self.n_lines = opts.n_lines
        self._head_masks = {}
        for ch in self.heads:
            mask = self.t.starting_with(ch)
            if not mask.any():
                hint = "、".join(vocab.suggest(ch))
                raise UnknownTokenError(
                    f"--acrostic: no vocabulary entry starts with {ch!r}, so no line can begin "
                    f"with it; try one of: {hint}"
                )
            self._head_masks[ch] = mask
        if (self.n_lines or opts.line_length) and self.t.newline is None:
            raise GenerationError(
                "this model's vocabulary has no line break, so it cannot shape lines"
            )

    def allowed(self, row: _Row) -> np.ndarray:
        t, o = self.t, self.opts
        ok = np.ones(len(t.length), dtype=bool)
        ok[t.vocab.unk_id] = False
        at_line_start = row.last_newline
        if o.line_length is not None:
            remaining = o.line_length - row.line_chars
            if remaining <= 0:
                ok[:] = False
                ok[t.newline] = True
                return ok
            ok &= t.content & (t.length <= remaining)
        elif (self.heads or self.n_lines) and at_line_start:
            ok[t.newline] = False  # no empty lines when lines are counted
        if self.heads and at_line_start and row.lines_done < len(self.heads):
            ok &= self._head_masks[self.heads[row.lines_done]]
        if t.newline is not None and row.recent[-2:] == [t.newline, t.newline]:
            ok[t.newline] = False  # at most one blank line in a row
        n = o.no_repeat_ngram
        if n:
            key = tuple(row.recent[len(row.recent) - n + 1 :]) if n > 1 else ()
            banned = row.ngrams.get(key)
            if banned:
                ok[list(banned)] = False
        if not ok.any():
            # nothing fits (e.g. a word model whose only tokens are too long): end the line
            ok[t.newline if t.newline is not None else t.vocab.unk_id] = True
        return ok

    def penalize(self, logits: np.ndarray, rows: list[_Row]) -> np.ndarray:
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

    def observe(self, row: _Row, token: int) -> None:
        """Update the incremental views (seen ids, n-grams, recent ids) with one token."""
        n = max(self.opts.no_repeat_ngram, 1)
        row.seen.add(token)
        if self.opts.no_repeat_ngram and len(row.recent) >= n - 1:
            key = tuple(row.recent[len(row.recent) - n + 1 :]) if n > 1 else ()
            row.ngrams.setdefault(key, set()).add(token)
        row.recent.append(token)
        del row.recent[: max(0, len(row.recent) - max(n, 2))]

    def start_row(self, row: _Row) -> _Row:
        for tok in self.context:
            self.observe(row, tok)
        return row

    def advance(self, row: _Row, token: int, logprob: float) -> None:
        t, o = self.t, self.opts
        self.observe(row, token)
        row.tokens.append(token)
        row.logprobs.append(logprob)
        if token == t.newline:
            if row.last_newline and o.stop_at_blank and row.tokens[:-1]:
                row.done = True  # a blank line ends the song
            row.lines_done += 1
            row.line_chars = 0
            row.last_newline = True
            if self.n_lines and row.lines_done >= self.n_lines:
                row.done = True
        else:
            row.line_chars += int(t.length[token])
            row.last_newline = False
        if len(row.tokens) >= o.max_tokens:
            row.done = True


# ---------------------------------------------------------------------------------------
# the loop


def _context(vocab: Vocab, start: str, opts: SamplingOptions) -> tuple[list[int], list[str], _Row]:
    """Ids fed before generation, the printed start tokens, and the starting row state."""
    prefix = encode_prompt(opts.prefix, vocab, "--prefix") if opts.prefix else []
    if opts.acrostic and start.strip():
        raise GenerationError(
            "--start and --acrostic cannot be combined: the acrostic decides how each line "
            "begins (use --prefix to set the mood)"
        )
    if not opts.acrostic and not start.strip():
        raise GenerationError("--start is empty; give at least one word, e.g. --start 星星")
    prompt = encode_prompt(start, vocab) if start.strip() else []
    nl = [NEWLINE] if NEWLINE in vocab else []
    # Start on a fresh line, as lines begin in training; a prefix is its own line(s).
    ctx = nl + prefix + (nl if prefix and prefix[-1] != NEWLINE else []) + prompt
    row = _Row()
    for tok in prompt:
        if tok == NEWLINE:
            row.lines_done += 1
            row.line_chars = 0
            row.last_newline = True
        else:
            row.line_chars += 1 if vocab.level == "space" else len(tok)
            row.last_newline = False
    if opts.line_length is not None and row.line_chars > opts.line_length:
        raise GenerationError(
            f"--start has {row.line_chars} characters on its line but --line-length is "
            f"{opts.line_length}; shorten the start or raise --line-length"
        )
    return vocab.encode(ctx), prompt, row


def generate(
    model,
    vocab: Vocab,
    start: str,
    opts: SamplingOptions,
    on_token: Callable[[int, str], None] | None = None,
) -> list[Sample]:
    """Write `opts.num_samples` continuations of `start` (sampled as one batch, or by beam
    search with `opts.beam`). `model` is a LyricsModel or a stepper. Each step feeds only the
    newest token and the carried hidden state, so the work per token is constant.
    `on_token(sample_index, token)` is called as tokens are chosen (for streaming)."""
    opts.validate()
    stepper = model if hasattr(model, "step") else TorchStepper(model)
    ids, prompt, row0 = _context(vocab, start, opts)
    cons = Constraints(vocab, opts, ids)
    row0 = cons.start_row(row0)
    if opts.beam:
        rows = _beam_search(stepper, ids, row0, cons, opts)
    else:
        rows = _sample(stepper, ids, row0, cons, opts, on_token)
    samples = []
    for row in rows:
        toks = vocab.decode(row.tokens)
        text = detokenize(prompt + toks, vocab.level)
        samples.append(Sample(text, toks, row.logprobs))
    return samples


def _sample(stepper, ids, row0, cons, opts, on_token) -> list[_Row]:
    rng = np.random.default_rng(opts.seed)
    b = opts.num_samples
    rows = [row0.copy() for _ in range(b)]
    logits, hidden = stepper.start(ids, b)
    filler = cons.t.newline if cons.t.newline is not None else 0
    while True:
        live = [i for i, r in enumerate(rows) if not r.done]
        if not live:
            return rows
        raw_logp = log_softmax(logits)  # the model's own distribution, for scores
        allowed = np.stack([cons.allowed(r) for r in rows])  # (B, V)
        shaped = cons.penalize(logits, rows)
        nxt = choose(
            shaped,
            rng,
            temperature=opts.temperature,
            top_k=opts.top_k,
            top_p=opts.top_p,
            greedy=opts.greedy,
            allowed=allowed,
        )
        for i in range(b):
            if rows[i].done:
                nxt[i] = filler  # finished rows keep stepping with a harmless token
                continue
            cons.advance(rows[i], int(nxt[i]), float(raw_logp[i, nxt[i]]))
            if on_token is not None:
                on_token(i, cons.t.vocab.itos[int(nxt[i])])
        if all(r.done for r in rows):
            return rows
        logits, hidden = stepper.step(nxt, hidden)


def _beam_search(stepper, ids, row0, cons, opts) -> list[_Row]:
    """Deterministic beam search; beams are ranked by total log-probability divided by
    length ** length_penalty (1.0: mean log-probability per token)."""
    width = opts.beam
    logits, hidden = stepper.start(ids, 1)
    beams, scores = [row0.copy()], np.zeros(1)
    finished: list[tuple[float, _Row]] = []

    def normalized(score: float, row: _Row) -> float:
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
