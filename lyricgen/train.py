"""Fit and evaluate: the training loop, its checkpoints, and corpus scoring.

Progress goes to an optional `Progress` object (the CLI passes a tqdm bar) and to
`logging`; nothing here prints.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lyricgen import checkpoint as ckpt
from lyricgen.config import Config
from lyricgen.data import (
    Stream,
    WindowDataset,
    eval_chunks,
    make_stream,
    shuffled_batches,
    stateful_batches,
)
from lyricgen.errors import RunDirError, TrainingError, TrainingInterrupted
from lyricgen.model import LyricsModel, count_parameters, detach
from lyricgen.text import read_corpus, tokenize, train_val_split
from lyricgen.vocab import Vocab

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an unavailable explicit choice is an error."""
    from lyricgen.errors import ConfigError

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu or auto")
    if name == "mps" and not mps:
        raise ConfigError(
            "--device mps: Apple's MPS is not available here; use --device cpu or auto"
        )
    return torch.device(name)


@dataclass
class Corpus:
    """A corpus split and encoded for training."""

    vocab: Vocab
    train: Stream
    val: Stream
    train_chars: int


def prepare_corpus(cfg: Config, vocab: Vocab | None = None) -> Corpus:
    """Read, split (songs or lines, contiguous) and encode; the vocabulary comes from the
    training split only unless an existing one (from a run being resumed) is given."""
    d = cfg.data
    text = read_corpus(d.corpus, d.encoding)
    if d.val_corpus:
        train_text, val_text = text, read_corpus(d.val_corpus, d.encoding, what="validation corpus")
    else:
        train_text, val_text = train_val_split(text, d.val_fraction)
    train_tokens = tokenize(train_text, d.level)
    val_tokens = tokenize(val_text, d.level)
    if vocab is None:
        vocab = Vocab.build(train_tokens, d.min_freq, d.max_size, level=d.level)
    return Corpus(
        vocab,
        make_stream(train_tokens, vocab, d.level),
        make_stream(val_tokens, vocab, d.level),
        len(train_text),
    )


@torch.inference_mode()
def evaluate(
    model: LyricsModel,
    stream: Stream,
    batch_size: int,
    seq_len: int,
    device: torch.device,
    unk_id: int | None = None,
) -> dict:
    """Score every target of `stream` once, carrying the hidden state along each column.

    Returns mean loss (nats/token) and perplexity over the vocabulary (closed-vocabulary:
    `<unk>` is one class, which flatters a model when many targets are unknown, so the
    `<unk>` rate is reported too), bits per character (total NLL plus the cost of spelling
    out each unknown token, / chars / ln 2: comparable between char and word models), and
    the tokens and chars scored."""
    was_training = model.training
    model.eval()
    total, spelled, tokens, chars, unks = 0.0, 0.0, 0, 0, 0
    hidden = None
    for x, y, c, sp in eval_chunks(stream, batch_size, seq_len):
        logits, hidden = model(x.to(device), hidden)
        nll = F.cross_entropy(logits.flatten(0, 1).float(), y.to(device).flatten(), reduction="sum")
        total += nll.item()
        tokens += y.numel()
        chars += int(c.sum())
        spelled += float(sp.sum())
        if unk_id is not None:
            unks += int((y == unk_id).sum())
    model.train(was_training)
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
        "tokens": tokens,
        "chars": chars,
        "unk_rate": unks / tokens,
    }


class Progress:
    """Receives training progress; the CLI subclasses it with a tqdm bar."""

    def start_epoch(self, epoch: int, total: int, done: int) -> None: ...

    def update(self, loss: float, tokens_per_s: float) -> None: ...

    def end_epoch(self, metrics: dict) -> None: ...

    def close(self) -> None: ...


def _make_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    t = cfg.train
    # No weight decay on biases and embeddings' norms: decay is for the weight matrices.
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": t.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if t.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum)
    if t.optimizer == "adam":
        # Adam's weight decay is L2 in the gradient; AdamW decouples it (Loshchilov & Hutter).
        return torch.optim.Adam(groups, lr=t.lr)
    return torch.optim.AdamW(groups, lr=t.lr)


def lr_factor(cfg: Config, step: int, total_steps: int, time_fraction: float = 0.0) -> float:
    """Warmup then cosine decay to `min_lr_ratio`. With `train.max_minutes` set, progress is
    the larger of the step fraction and the time fraction, so the schedule finishes its decay
    when the time budget runs out rather than at an epoch count the budget never reaches."""
    t = cfg.train
    if step < t.warmup_steps:
        return (step + 1) / t.warmup_steps
    if t.scheduler != "cosine":
        return 1.0
    progress = (step - t.warmup_steps) / max(1, total_steps - t.warmup_steps)
    progress = min(1.0, max(progress, time_fraction))
    return t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _make_epoch_scheduler(opt: torch.optim.Optimizer, cfg: Config):
    """torch schedulers that act once per epoch ('step', 'plateau'); None otherwise."""
    t = cfg.train
    if t.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(opt, t.step_size, t.gamma)
    if t.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=t.gamma, patience=1)
    return None


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between batches, so training stops at a
    clean point (after an optimizer step) and the saved state resumes exactly."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict = {}

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def fit(
    cfg: Config,
    resume: bool = False,
    progress: Progress | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
) -> list[dict]:
    """Train `cfg` into its run directory and return the per-epoch metrics history."""
    with contextlib.ExitStack() as stack:
        return _fit(cfg, resume, progress, out_dir, overwrite, stack)


def _fit(cfg, resume, progress, out_dir, overwrite, stack: contextlib.ExitStack) -> list[dict]:
    progress = progress or Progress()
    t = cfg.train
    out = Path(out_dir or cfg.out_dir)
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    device = resolve_device(t.device)
    state: dict | None = None
    vocab = None
    if resume:
        if not out.is_dir():
            raise RunDirError(f"run directory {out} does not exist, so there is nothing to resume")
        stack.enter_context(ckpt.RunLock(out))
        ckpt.remove_temp_files(out)  # left by a kill in the middle of a write
        state = ckpt.load_train_state(out / ckpt.STATE)
        vocab = ckpt.load_vocab(out)
    elif not overwrite and any((out / f).exists() for f in (ckpt.STATE, ckpt.BEST)):
        raise RunDirError(
            f"{out} already holds a trained run; continue it with --resume, replace it with "
            "--overwrite, or choose another --out"
        )
    seed_everything(t.seed)
    corpus = prepare_corpus(cfg, vocab)
    vocab = corpus.vocab
    model = LyricsModel(len(vocab), cfg.model).to(device)
    log.info(
        "vocab %d, train %d tokens, val %d tokens, %d parameters, device %s",
        len(vocab),
        len(corpus.train),
        len(corpus.val),
        count_parameters(model),
        device,
    )

    d = cfg.data
    if d.mode == "stateful":
        stateful = stateful_batches(corpus.train.ids, d.batch_size, d.seq_len)
        steps_per_epoch = len(stateful)
    else:
        dataset = WindowDataset(corpus.train.ids, d.seq_len, cfg.stride)
        steps_per_epoch = math.ceil(len(dataset) / d.batch_size)
    if len(corpus.val) < 2:
        raise TrainingError("the validation split is empty; raise data.val_fraction or add text")
    # Only now, with the input known to be good, touch the run directory (and prove it is
    # writable before any training time is spent).
    ckpt.ensure_writable(out)
    if not resume:
        stack.enter_context(ckpt.RunLock(out))

    opt = _make_optimizer(model, cfg)
    sched = _make_epoch_scheduler(opt, cfg)
    per_step_lr = t.scheduler in ("cosine", "none")
    total_steps = t.epochs * steps_per_epoch
    st = {
        "epoch": 0,
        "batch": 0,
        "step": 0,
        "best_val": math.inf,
        "bad_epochs": 0,
        "elapsed": 0.0,
        "history": [],
    }
    hidden = None
    if state is not None:
        if "model" not in state:
            raise RunDirError(f"{out / ckpt.STATE} has no model weights; it is not a lyricgen run")
        ckpt.apply_weights(model, state["model"], out / ckpt.STATE)
        if state.get("optimizer_name", t.optimizer) != t.optimizer:
            raise RunDirError(
                f"train.optimizer is {t.optimizer} but the run in {out} was trained with "
                f"{state['optimizer_name']}; resume with the same optimizer or start a new run"
            )
        try:
            opt.load_state_dict(state["optimizer"])
            if sched is not None:
                sched.load_state_dict(state["scheduler"])
            st.update({k: state[k] for k in st})
            torch.set_rng_state(state["rng_torch"])
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise RunDirError(
                f"{out / ckpt.STATE} does not match this run ({exc}); retrain"
            ) from None
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"])
        if state.get("hidden") is not None:
            h = state["hidden"]
            hidden = (
                tuple(x.to(device) for x in h) if isinstance(h, (list, tuple)) else h.to(device)
            )
        ckpt.save_run_files(out, cfg, vocab)  # records overrides such as a longer --epochs
        ckpt.write_metrics(out, st["history"])  # a kill may have come before the last write
        log.info("resuming at epoch %d, batch %d", st["epoch"] + 1, st["batch"])
    else:
        ckpt.save_run_files(out, cfg, vocab)
        for stale in (ckpt.BEST, ckpt.STATE, ckpt.METRICS):
            (out / stale).unlink(missing_ok=True)

    def save_resumable() -> None:
        # One file holds everything a resume needs (weights included), so a kill can never
        # leave weights and optimizer/RNG state from different steps.
        h = detach(hidden)
        ckpt.save_train_state(
            {
                "model": ckpt.weights_dict(model),
                **{k: st[k] for k in st},
                "optimizer": opt.state_dict(),
                "optimizer_name": t.optimizer,
                "scheduler": sched.state_dict() if sched is not None else None,
                "rng_torch": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                "hidden": (list(x.cpu() for x in h) if isinstance(h, tuple) else h.cpu())
                if h is not None
                else None,
            },
            out / ckpt.STATE,
        )

    deadline_s = t.max_minutes * 60 if t.max_minutes else math.inf
    model.train()
    stop_reason = None
    with _StopRequest() as stop:
        while st["epoch"] < t.epochs and stop_reason is None:
            epoch = st["epoch"]
            if d.mode == "stateful":
                batches = stateful
            else:
                batches = shuffled_batches(dataset, d.batch_size, t.seed, epoch)
            if st["batch"] == 0:
                hidden = None
            progress.start_epoch(epoch + 1, len(batches), st["batch"])
            sum_loss, n_tok, t0 = 0.0, 0, time.perf_counter()
            while st["batch"] < len(batches):
                item = batches[st["batch"]]
                x, y = item if d.mode == "stateful" else dataset.batch(item)
                x, y = x.to(device), y.to(device)
                hidden = detach(hidden) if d.mode == "stateful" else None
                logits, hidden = model(x, hidden)  # (B, T, V)
                loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"the loss became {loss.item()} at step {st['step'] + 1}; lower train.lr "
                        "or set train.clip_grad_norm (the last good checkpoint is kept)"
                    )
                if per_step_lr:
                    frac = (st["elapsed"] + time.perf_counter() - t0) / deadline_s
                    for g in opt.param_groups:
                        g["lr"] = t.lr * lr_factor(cfg, st["step"], total_steps, frac)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if t.clip_grad_norm:
                    # RNN gradients can explode through long products of recurrent weights.
                    torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_grad_norm)
                opt.step()
                st["step"] += 1
                st["batch"] += 1
                sum_loss += loss.item() * y.numel()
                n_tok += y.numel()
                elapsed = time.perf_counter() - t0
                progress.update(loss.item(), n_tok / max(elapsed, 1e-9))
                if t.checkpoint_every and st["step"] % t.checkpoint_every == 0:
                    save_resumable()
                if stop.signum is not None:
                    break
                if st["elapsed"] + elapsed >= deadline_s:
                    stop_reason = "time"
                    break
            st["elapsed"] += time.perf_counter() - t0
            if stop.signum is not None:
                save_resumable()
                progress.close()
                code = 130 if stop.signum == signal.SIGINT else 143
                name = "SIGINT" if code == 130 else "SIGTERM"
                raise TrainingInterrupted(
                    f"{name}: saved a resumable checkpoint in {out}; continue with "
                    f"`lyricgen train --out {out} --resume`",
                    exit_code=code,
                )
            val = evaluate(model, corpus.val, t.eval_batch_size, d.seq_len, device, vocab.unk_id)
            if t.scheduler == "step":
                sched.step()
            elif t.scheduler == "plateau":
                sched.step(val["loss"])
            metrics = {
                "epoch": epoch + 1,
                "step": st["step"],
                "train_loss": sum_loss / max(1, n_tok),
                "val_loss": val["loss"],
                "val_ppl": val["ppl"],
                "val_bpc": val["bpc"],
                "val_unk_rate": val["unk_rate"],
                "lr": opt.param_groups[0]["lr"],
                "tokens_per_s": n_tok / max(1e-9, time.perf_counter() - t0),
                "elapsed_s": st["elapsed"],
                "partial_epoch": stop_reason == "time",
            }
            st["history"].append(metrics)
            improved = val["loss"] < st["best_val"]
            if improved:
                st["best_val"] = val["loss"]
                st["bad_epochs"] = 0
            if improved or t.keep == "last":
                ckpt.save_weights(model, out / ckpt.BEST)
            else:
                st["bad_epochs"] += 1
            st["epoch"] += 1
            st["batch"] = 0
            hidden = None
            save_resumable()
            ckpt.write_metrics(out, st["history"])
            progress.end_epoch({**metrics, "best": improved})
            if t.patience and st["bad_epochs"] >= t.patience:
                stop_reason = "early"
                log.info("early stopping: no improvement for %d epochs", t.patience)
    progress.close()
    return st["history"]


def score_text(run_dir: str | Path, path: str | Path, device: str = "auto") -> dict:
    """Perplexity and bits per character of a trained run on any text file."""
    cfg = ckpt.load_run_config(run_dir)
    text = read_corpus(path, cfg.data.encoding, what="text")
    dev = resolve_device(device)
    cfg, vocab, model = ckpt.load_run(run_dir, dev)
    tokens = tokenize(text, vocab.level)
    stream = make_stream(tokens, vocab, vocab.level)
    if len(stream) < 2:
        from lyricgen.errors import CorpusError

        raise CorpusError(f"text {path} has fewer than 2 tokens; give a longer file to score")
    return evaluate(model, stream, cfg.train.eval_batch_size, cfg.data.seq_len, dev, vocab.unk_id)
