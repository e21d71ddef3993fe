"""Start text -> tokens -> step the model one token at a time with its carried hidden state."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lyricgen.errors import GenerationError, UnknownTokenError
from lyricgen.sampling import choose
from lyricgen.text import NEWLINE, detokenize, tokenize
from lyricgen.vocab import Vocab

MAX_LENGTH = 100_000


@dataclass
class SamplingOptions:
    length: int = 99
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 0.95
    greedy: bool = False
    num_samples: int = 1
    seed: int | None = None

    def validate(self) -> None:
        if not 1 <= self.length <= MAX_LENGTH:
            raise GenerationError(
                f"--length is {self.length}; give a number from 1 to {MAX_LENGTH}"
            )
        if not self.greedy and not self.temperature > 0:
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


def encode_prompt(start: str, vocab: Vocab) -> list[str]:
    """Tokenize the start text the way the corpus was; unknown pieces are an error."""
    if not start.strip():
        raise GenerationError("--start is empty; give at least one word, e.g. --start 星星")
    tokens = []
    for tok in tokenize(start, vocab.level):
        if tok in vocab:
            tokens.append(tok)
            continue
        pieces = _split_known(tok, vocab) if vocab.level == "word" else None
        if pieces is None:
            bad = next((c for c in tok if c not in vocab), tok) if vocab.level != "space" else tok
            hint = "、".join(vocab.suggest(bad))
            raise UnknownTokenError(
                f"start text: {bad!r} is not in the model's vocabulary; try one of: {hint}"
            )
        tokens.extend(pieces)
    return tokens


@dataclass
class Sample:
    text: str
    tokens: list[str]


@torch.inference_mode()
def generate(
    model: torch.nn.Module, vocab: Vocab, start: str, opts: SamplingOptions
) -> list[Sample]:
    """Write `opts.num_samples` continuations of `start`, as one batch.

    The start is primed with a line break (when the vocabulary has one), so the model
    reads it as the beginning of a line, as in training. Each step feeds only the newest
    token and the carried hidden state, so the work per token is constant.
    """
    opts.validate()
    prompt = encode_prompt(start, vocab)
    ids = vocab.encode(([NEWLINE] if NEWLINE in vocab else []) + prompt)
    device = next(model.parameters()).device
    model.eval()
    rng = np.random.default_rng(opts.seed)
    x = torch.tensor([ids] * opts.num_samples, dtype=torch.long, device=device)  # (B, P)
    logits, hidden = model(x)
    last = logits[:, -1]  # (B, V)
    out = np.empty((opts.num_samples, opts.length), dtype=np.int64)
    for t in range(opts.length):
        nxt = choose(
            last.float().cpu().numpy(),
            rng,
            temperature=opts.temperature,
            top_k=opts.top_k,
            top_p=opts.top_p,
            greedy=opts.greedy,
            banned=[vocab.unk_id],
        )
        out[:, t] = nxt
        if t + 1 < opts.length:
            step = torch.from_numpy(nxt).to(device)[:, None]  # (B, 1)
            logits, hidden = model(step, hidden)
            last = logits[:, -1]
    samples = []
    for row in out:
        toks = vocab.decode(row.tolist())
        samples.append(Sample(detokenize(prompt + toks, vocab.level), toks))
    return samples
