"""Torch-free generation: a run directory loaded into NumPy and stepped by `nprnn`.

`lyricgen generate` uses this on the CPU, so it pays neither torch's import (about 2 s)
nor, for a start that needs no segmenting, jieba's dictionary. The sampler is shared with
the torch path, so both print the same text for the same seed and options.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lyricgen.backends.numpy_rnn import GATES, NumpyLM
from lyricgen.backends.steppers import NumpyStepper
from lyricgen.config import Config
from lyricgen.corpus.vocab import Vocab
from lyricgen.run.files import WEIGHTS, check_fit, load_run_config, load_vocab, read_safetensors


def expected_shapes(cfg: Config, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes a LyricsModel with this config has (torch's layout)."""
    m = cfg.model
    gh = GATES[m.cell] * m.hidden_size
    shapes = {"embedding.weight": (vocab_size, m.embedding_dim)}
    for k in range(m.num_layers):
        shapes[f"rnn.weight_ih_l{k}"] = (gh, m.embedding_dim if k == 0 else m.hidden_size)
        shapes[f"rnn.weight_hh_l{k}"] = (gh, m.hidden_size)
        shapes[f"rnn.bias_ih_l{k}"] = (gh,)
        shapes[f"rnn.bias_hh_l{k}"] = (gh,)
    if m.output == "adaptive":
        shapes.update(adaptive_shapes(m.hidden_size, vocab_size, m.cutoffs or [], m.div_value))
        return shapes
    if not m.tie_weights:
        shapes["decoder.weight"] = (vocab_size, m.hidden_size)
    shapes["decoder.bias"] = (vocab_size,)
    return shapes


def adaptive_shapes(hidden: int, vocab: int, cutoffs: list[int], div: float) -> dict:
    """The tensors of torch's AdaptiveLogSoftmaxWithLoss(hidden, vocab, cutoffs, div)."""
    bounds = [*cutoffs, vocab]
    shapes = {"asm.head.weight": (cutoffs[0] + len(cutoffs), hidden),
              "asm.head.bias": (cutoffs[0] + len(cutoffs),)}  # fmt: skip
    for i in range(len(cutoffs)):
        size = int(hidden // (div ** (i + 1)))
        shapes[f"asm.tail.{i}.0.weight"] = (size, hidden)
        shapes[f"asm.tail.{i}.1.weight"] = (bounds[i + 1] - bounds[i], size)
    return shapes


def load_numpy_weights(path: Path, cfg: Config, vocab_size: int) -> dict[str, np.ndarray]:
    tensors = read_safetensors(path, "numpy")
    check_fit(tensors, expected_shapes(cfg, vocab_size), path)
    return tensors


def load_numpy_lm(
    run_dir: str | Path, weights: str = WEIGHTS, dtype: type | None = None
) -> tuple[Config, Vocab, NumpyLM]:
    """(config, vocab, NumPy model) of a run directory, without importing torch; `dtype`
    converts the weights (e.g. np.float32 for the faster reading of `lyricgen inspect`)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    vocab = load_vocab(run_dir)
    tensors = load_numpy_weights(run_dir / weights, cfg, len(vocab))
    if dtype is None and any(v.dtype == np.float16 for v in tensors.values()):
        dtype = np.float32  # half-precision weights (a shipped model) compute in fp32
    if dtype is not None:
        tensors = {k: v.astype(dtype) for k, v in tensors.items()}
    m = cfg.model
    lm = NumpyLM(tensors, m.cell, m.num_layers, m.nonlinearity, m.tie_weights, m.cutoffs)
    return cfg, vocab, lm


def load_numpy_run(
    run_dir: str | Path, weights: str = WEIGHTS
) -> tuple[Config, Vocab, NumpyStepper]:
    """Rebuild (config, vocab, stepper) from a run directory without importing torch."""
    cfg, vocab, lm = load_numpy_lm(run_dir, weights)
    return cfg, vocab, NumpyStepper(lm)
