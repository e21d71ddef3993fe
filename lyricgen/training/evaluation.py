"""Held-out scoring: loss, perplexity and bits per character of a model on a token stream,
and of a trained run on any text file."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from lyricgen.corpus.tokcache import iter_lines, tokenize_file
from lyricgen.craft import rhyme
from lyricgen.errors import CorpusError
from lyricgen.training.data import Stream, eval_chunks, make_stream_from_types
from lyricgen.training.distributed import Dist
from lyricgen.training.loading import load_run
from lyricgen.training.model import LyricsModel, resolve_device


@torch.inference_mode()
def evaluate(
    model: LyricsModel,
    stream: Stream,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    unk_id: int | None = None,
    dist: Dist | None = None,
) -> dict:
    """Score every target of `stream` once, carrying the hidden state along each column.

    Returns mean loss (nats/token) and perplexity over the vocabulary (closed-vocabulary:
    `<unk>` is one class, which flatters a model when many targets are unknown, so the
    `<unk>` rate is reported too), bits per character (total NLL plus the cost of spelling
    out each unknown token, / chars / ln 2: comparable between char and word models), and
    the tokens and chars scored. With several processes each scores its share of the
    columns and the sums are added up."""
    dist = dist or Dist()
    was_training = model.training
    model.eval()
    nll = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: no syncs
    spelled, tokens, chars, unks = 0.0, 0, 0, 0
    hidden = None
    for x, y, c, sp in eval_chunks(stream, batch_size, seq_len, dist.rank, dist.world):
        loss, hidden = model(
            x.to(device), hidden, time_major=True, targets=y.to(device), reduction="sum"
        )
        nll += loss.double()
        tokens += y.numel()
        chars += int(c.sum())
        spelled += float(sp.sum())
        if unk_id is not None:
            unks += int((y == unk_id).sum())
    model.train(was_training)
    total, spelled, tokens, chars, unks = dist.sum(
        [nll.item(), spelled, tokens, chars, unks], device
    )
    if tokens == 0:
        return {
            "loss": float("nan"),
            "ppl": float("nan"),
            "bpc": float("nan"),
            "tokens": 0,
            "chars": 0,
        }
    loss = total / tokens
    return {
        "loss": loss,
        "ppl": math.exp(min(loss, 700)),
        "bpc": (total + spelled) / chars / math.log(2),
        "tokens": int(tokens),
        "chars": int(chars),
        "unk_rate": unks / tokens,
    }


def score_text(run_dir: str | Path, path: str | Path, device: str = "auto") -> dict:
    """Perplexity and bits per character of a trained run on any text file (streamed through
    the token cache, so a large file needs little memory)."""
    dev = resolve_device(device)
    cfg, vocab, model = load_run(run_dir, dev)
    tok = tokenize_file(path, vocab.level, cfg.data.encoding, None, cfg.data.cache_dir, "text")
    stream = make_stream_from_types(tok.raw, tok.types, vocab)
    if len(stream) < 2:
        raise CorpusError(f"text {path} has fewer than 2 tokens; give a longer file to score")
    result = evaluate(model, stream, cfg.train.eval_batch_size, cfg.data.seq_len, dev, vocab.unk_id)
    if any(rhyme.is_han(c) for token in vocab.itos for c in token):
        result["corpus_rhyme_rate"] = rhyme.rhyme_rate(iter_lines(Path(path), cfg.data.encoding))
    return result
