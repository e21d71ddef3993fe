"""Fine-tuning: start a run from another run's weights (`lyricgen train --init-from RUN`).

A small corpus (one artist's lyrics, tens of thousands of characters) overfits in minutes;
starting from a model trained on a larger corpus gives it characters, words and line
shapes it could not learn alone.

- The cell and sizes (and the tokenization level) come from the base run. A setting given
  explicitly (`--cell`, `--set model.hidden_size=...`) that differs is an error; what a
  config file says about them is replaced by the base's, with a log line.
- The vocabulary is the base's, extended with the new corpus's tokens (by its own
  `min_freq`/`max_size`). Shared tokens keep their rows; the base's ids are kept, so the
  base's rows are copied as they are.
- New rows of the embedding and output layer start at the mean of the base's rows plus
  small noise (distinct but unremarkable tokens); their output bias starts at the base's
  10th-percentile bias, since tokens the base never learned are rare for it.
- The optimizer, schedule and epochs start fresh; `train.init_from` is recorded in the run's
  config.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from lyricgen.config import Config
from lyricgen.corpus.vocab import Vocab
from lyricgen.errors import ConfigError, LyricgenError, RunDirError
from lyricgen.run import files as ckpt

log = logging.getLogger(__name__)

# what a fine-tuned run takes from its base (model.dropout stays a training choice)
MODEL_KEYS = (
    "cell",
    "nonlinearity",
    "embedding_dim",
    "hidden_size",
    "num_layers",
    "tie_weights",
    "bidirectional",
    "output",
    "cutoffs",
    "div_value",
)
_FLAGS = {"model.cell": "--cell", "data.level": "--set data.level"}


@dataclass
class Base:
    path: Path
    cfg: Config
    vocab: Vocab
    tensors: dict[str, torch.Tensor]


def load_base(path: str | Path, weights: bool = True) -> Base:
    """The base run's config, vocabulary and (unless `weights` is False: enough to adopt its
    shape) weights; any problem is one line naming it."""
    from lyricgen.run.models import resolve
    from lyricgen.run.names import DEFAULT_RUN

    spec = str(path)
    path = Path(path)
    try:
        if not path.exists() and len(path.parts) == 1:
            path = resolve(spec, DEFAULT_RUN).path  # a shipped model's name
        if not path.exists():
            raise RunDirError("no such run directory")
        if not path.is_dir():
            raise RunDirError("not a run directory (give the folder `lyricgen train` wrote)")
        for name in (ckpt.CONFIG, ckpt.VOCAB, ckpt.WEIGHTS):
            if not (path / name).is_file():
                raise RunDirError(f"it has no {name}; give a finished lyricgen run")
        cfg = ckpt.load_run_config(path)
        vocab = ckpt.load_vocab(path)
        tensors = ckpt.read_safetensors(path / ckpt.WEIGHTS) if weights else {}
        tensors = {k: v.float() if v.dtype == torch.float16 else v for k, v in tensors.items()}
    except LyricgenError as exc:
        msg = str(exc)
        msg = msg.split(f"{path}", 1)[-1].lstrip(" :;") if msg.startswith(str(path)) else msg
        raise RunDirError(f"--init-from {path}: {msg}") from None
    return Base(path, cfg, vocab, tensors)


def adopt_base(
    cfg: Config, base: Base, explicit: set[str] | frozenset[str] = frozenset()
) -> Config:
    """`cfg` with the model shape and level of `base`; a key in `explicit` (set on the command
    line) that differs from the base is an error."""
    keys = [f"model.{k}" for k in MODEL_KEYS] + ["data.level"]
    raw = cfg.to_dict()
    base_raw = base.cfg.to_dict()
    if cfg.data.level != base.cfg.data.level and "data.level" not in explicit:
        raise ConfigError(
            f"--init-from {base.path.name}: the base is a {base.cfg.data.level}-level model and "
            f"this config is {cfg.data.level} level; fine-tune with a {base.cfg.data.level}-level "
            f"config (e.g. --config jaychou_char) or add --set data.level={base.cfg.data.level}"
        )
    changed = []
    for key in keys:
        section, name = key.split(".")
        mine, theirs = raw[section][name], base_raw[section][name]
        if mine == theirs:
            continue
        if key in explicit:
            flag = _FLAGS.get(key, f"--set {key}")
            raise ConfigError(
                f"{flag} {mine} differs from the base run {base.path} ({key} = {theirs}); a "
                f"fine-tuned run keeps its base's cell, sizes and level: drop {flag.split()[0]}"
                f"{'' if flag.startswith('--cell') else ' ' + key}"
            )
        changed.append(f"{key} {mine} -> {theirs}")
        raw[section][name] = theirs
    if changed:
        log.info("fine-tuning: taken from the base run: %s", ", ".join(changed))
    new = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, level=base.cfg.data.level),
        model=dataclasses.replace(cfg.model, **{k: raw["model"][k] for k in MODEL_KEYS}),
    )
    return new


def extend_vocab(base: Vocab, new: Vocab) -> Vocab:
    """The base's entries in their order, then the new corpus's entries it lacks; counts are
    the new corpus's (0 for base-only tokens)."""
    counts = dict(zip(new.itos, new.counts, strict=True))
    extra = [t for t in new.itos if t not in base.stoi]
    tokens = [*base.itos, *extra]
    return Vocab(tokens, [counts.get(t, 0) for t in tokens], level=base.level, rare=base.rare)


def transplant(model: torch.nn.Module, base: Base, seed: int) -> int:
    """Copy the base's weights into `model` (whose vocabulary extends the base's); returns
    how many rows were new."""
    n_base = len(base.vocab)
    state = model.state_dict()
    gen = torch.Generator().manual_seed(seed)
    new_rows = 0
    last_tail = _last_tail(state)
    with torch.no_grad():
        for name, target in state.items():
            src = base.tensors.get(name)
            if src is None:
                continue  # a tied decoder weight is the embedding
            src = src.to(target.dtype)
            if name == last_tail and target.shape[0] > src.shape[0]:
                # an adaptive softmax's new tokens join its last (rarest) cluster
                k = src.shape[0]
                target[:k] = src
                noise = torch.randn(target.shape[0] - k, src.shape[1], generator=gen)
                target[k:] = src.mean(0) + 0.1 * src.std(0) * noise
            elif name in ("embedding.weight", "decoder.weight", "decoder.bias"):
                new_rows = target.shape[0] - n_base
                target[:n_base] = src
                if new_rows:
                    if src.dim() == 2:
                        noise = torch.randn(new_rows, src.shape[1], generator=gen)
                        target[n_base:] = src.mean(0) + 0.1 * src.std(0) * noise
                    else:
                        target[n_base:] = torch.quantile(src.float(), 0.1).to(src.dtype)
            elif target.shape != src.shape:
                raise RunDirError(
                    f"--init-from {base.path}: {name} has shape {tuple(src.shape)}, the model "
                    f"needs {tuple(target.shape)}; the base run's files do not match its config"
                )
            else:
                target.copy_(src)
    model.load_state_dict(state)
    return new_rows


def _last_tail(state: dict) -> str | None:
    """The name of an adaptive softmax's last cluster's output projection, if any."""
    tails = [k for k in state if k.startswith("asm.tail.") and k.endswith(".1.weight")]
    return max(tails, key=lambda k: int(k.split(".")[2])) if tails else None
