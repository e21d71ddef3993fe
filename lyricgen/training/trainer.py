"""The training loop.

`fit` builds a `Trainer` (corpus, model, optimizer, schedule, precision, processes) and runs
it: epochs of steps, then validation (`evaluation.evaluate`), the weights and a resumable
state in the run directory (`rundir.RunDir`), then the callbacks (`callbacks.py`: the rhyme
table and copy index generation reads, curves.png). Progress goes to an optional `Progress`
object (the CLI passes one that draws a tqdm bar) and to `logging`; nothing here prints. Under torchrun every process trains its share of each batch
(DistributedDataParallel) and rank 0 alone writes the run directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lyricgen import checkpoint as ckpt
from lyricgen.config import Config
from lyricgen.corpus.tokcache import build_vocab, corpus_splits
from lyricgen.corpus.vocab import Vocab
from lyricgen.errors import (
    ConfigError,
    RunDirError,
    TrainingError,
    TrainingInterrupted,
)
from lyricgen.rundir import RunDir
from lyricgen.training import distributed, finetune
from lyricgen.training.callbacks import Callback, default_callbacks
from lyricgen.training.data import (
    ShuffledBatches,
    StatefulBatches,
    Stream,
    WindowDataset,
    make_stream_from_types,
    make_streams_from_types,
    song_starts,
)
from lyricgen.training.distributed import Dist
from lyricgen.training.evaluation import evaluate
from lyricgen.training.model import (
    LyricsModel,
    count_parameters,
    default_cutoffs,
    detach,
    map_hidden,
    resolve_device,
)
from lyricgen.training.optim import OPTIMIZERS
from lyricgen.training.precision import Precision
from lyricgen.training.schedule import Schedule

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Corpus:
    """A corpus split and encoded for training."""

    vocab: Vocab
    train: Stream
    val: Stream


def prepare_corpus(cfg: Config, vocab: Vocab | None = None, base: Vocab | None = None) -> Corpus:
    """Tokenize through the token cache, split (whole songs or lines, the last ones held
    out) and map to vocabulary ids; the vocabulary comes from the training split only unless
    an existing one (from a run being resumed) is given, or extends a fine-tuning base's."""
    d = cfg.data
    splits = corpus_splits(d)
    if vocab is None:
        vocab = build_vocab(splits, d)
        if base is not None:
            vocab = finetune.extend_vocab(base, vocab)
    if splits.train_types is splits.val_types:  # one corpus, split: its tables are shared
        train, val = make_streams_from_types([splits.train, splits.val], splits.train_types, vocab)
    else:
        train = make_stream_from_types(splits.train, splits.train_types, vocab)
        val = make_stream_from_types(splits.val, splits.val_types, vocab)
    return Corpus(vocab, train, val)


class Progress:
    """Receives training progress; the CLI passes an object with these methods that draws a
    tqdm bar. The base class ignores everything."""

    def start_epoch(self, epoch: int, total: int, done: int) -> None: ...

    def update(self, batch: int, loss: float, tokens_per_s: float) -> None:
        """Called every train.log_every steps: batches done in the epoch, the mean loss and
        the tokens/s (all processes) since the last call."""

    def end_epoch(self, metrics: dict) -> None: ...

    def close(self) -> None: ...


def _make_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    train_cfg = cfg.train
    # No weight decay on biases: decay is for the weight matrices.
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": train_cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # torch's optimizers without torch.compile's wrappers, which import torch._dynamo (2.3 s)
    cls = OPTIMIZERS[train_cfg.optimizer]
    # Adam's weight decay is L2 in the gradient; AdamW decouples it (Loshchilov & Hutter).
    kwargs: dict = {"lr": train_cfg.lr}
    if train_cfg.optimizer == "sgd":
        kwargs["momentum"] = train_cfg.momentum
    # One fused kernel for every parameter (CPU and CUDA since torch 2.4); older torch
    # versions get the multi-tensor (foreach) path.
    try:
        return cls(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return cls(groups, foreach=True, **kwargs)


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


@dataclass
class TrainState:
    """Where training stands; saved in train_state.pt so a resume continues exactly."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch finished
    step: int = 0  # optimizer steps taken
    best_val: float = math.inf
    bad_epochs: int = 0  # epochs since validation last improved (early stopping)
    elapsed: float = 0.0  # seconds of training (the max_minutes budget)
    history: list[dict] = field(default_factory=list)

    @classmethod
    def from_saved(cls, saved: dict) -> TrainState:
        return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls)})


def _check_processes(cfg: Config, dist: Dist) -> None:
    b, w = cfg.data.batch_size, dist.world
    if w > 1 and cfg.data.mode == "stateful" and w > b:
        raise ConfigError(
            f"torchrun started {w} processes but stateful training has data.batch_size = {b} "
            f"streams; each process needs at least one: use --nproc_per_node <= {b} or raise "
            "data.batch_size"
        )
    if b % w:
        raise ConfigError(
            f"data.batch_size ({b}) is the global batch and must divide evenly among the {w} "
            f"processes; use a multiple of {w}"
        )


class Trainer:
    """One training run: `Trainer(cfg, ...).run()` returns the per-epoch metrics."""

    def __init__(
        self,
        cfg: Config,
        out: Path,
        resume: bool,
        overwrite: bool,
        progress: Progress | None,
        dist: Dist,
        stack: contextlib.ExitStack,
        callbacks: list[Callback] | None = None,
    ):
        train_cfg = cfg.train
        self.cfg, self.out, self.dist = cfg, out, dist
        self.callbacks = default_callbacks() if callbacks is None else callbacks
        self.rundir = RunDir(out, dist.main, stack)
        self.progress = progress if progress is not None and dist.main else Progress()
        if train_cfg.num_threads:
            torch.set_num_threads(train_cfg.num_threads)  # once, before any autograd work
        self.device = resolve_device(train_cfg.device)
        if self.device.type == "cuda" and dist.active:
            self.device = torch.device("cuda", dist.local_rank)
        _check_processes(cfg, dist)
        saved, vocab = self.rundir.open(resume, overwrite)
        base = (
            finetune.load_base(train_cfg.init_from)
            if train_cfg.init_from and saved is None
            else None
        )
        seed_everything(train_cfg.seed)
        # one process per machine tokenizes (or checks the cache); the others then read it
        if dist.local_rank != 0:
            dist.barrier()
        self.corpus = prepare_corpus(cfg, vocab, base.vocab if base else None)
        if dist.local_rank == 0:
            dist.barrier()
        self.vocab = self.corpus.vocab
        if cfg.model.output == "adaptive" and cfg.model.cutoffs is None:
            cutoffs = default_cutoffs(self.vocab.counts)
            model_cfg = dataclasses.replace(cfg.model, cutoffs=cutoffs)
            cfg = self.cfg = dataclasses.replace(cfg, model=model_cfg)
            log.info(
                "adaptive softmax: cutoffs %s (the head's %d tokens cover %.0f%% of the text)",
                cutoffs,
                cutoffs[0],
                100 * sum(self.vocab.counts[: cutoffs[0]]) / max(1, sum(self.vocab.counts)),
            )
        self.model = LyricsModel(len(self.vocab), cfg.model)
        if base is not None:
            added = finetune.transplant(self.model, base, train_cfg.seed)
            log.info(
                "fine-tuning from %s: its %d vocabulary entries kept, %d added from this corpus",
                base.path,
                len(base.vocab),
                added,
            )
        self.model.to(self.device)
        self.precision = Precision(train_cfg.precision, self.device, self.model)
        self.ddp = self._wrap(self.model)
        # every attribute exists from here on: the batches of one data mode (the other stays
        # None), the stop request while run() trains, and the current epoch's counters
        self.stateful: StatefulBatches | None = None
        self.dataset: WindowDataset | None = None
        self.signals: _StopRequest | None = None
        self.epoch_tokens, self.epoch_loss, self.epoch_seconds = 0, 0.0, 0.0
        self.window_rates: list[float] = []  # tokens/s of each train.log_every window
        self.steps_per_epoch = self._make_data()
        log.info(
            "vocab %d, train %d tokens, val %d tokens, %d parameters, device %s, %s%s",
            len(self.vocab),
            len(self.corpus.train),
            len(self.corpus.val),
            count_parameters(self.model),
            self.device,
            train_cfg.precision,
            f", {dist.world} processes" if dist.active else "",
        )
        # Only now, with the input known to be good, touch the run directory.
        self.rundir.claim(resume)
        self.opt = _make_optimizer(self.model, cfg)
        self.schedule = Schedule(self.opt, train_cfg, train_cfg.epochs * self.steps_per_epoch)
        self.run_state = TrainState()
        self.hidden = None
        self.time_fraction = 0.0
        self.stop_reason: str | None = None
        if saved is not None:
            self._restore(saved)
        else:
            self.rundir.start_fresh(cfg, self.vocab)
        for cb in self.callbacks:
            cb.on_run_start(self)
        dist.barrier()

    def _wrap(self, model: LyricsModel) -> torch.nn.Module:
        """DistributedDataParallel under torchrun (it averages gradients during backward)."""
        if not self.dist.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def _make_data(self) -> int:
        """Set up this process's batches; returns the steps in an epoch."""
        cfg, d, dist = self.cfg, self.cfg.data, self.dist
        if d.mode == "stateful":
            train, songs = self.corpus.train, None
            if d.shuffle_songs:
                songs = song_starts(train)
                if len(songs) > 1:
                    log.info("stateful: %d songs, laid out in a new order each epoch", len(songs))
            self.stateful = StatefulBatches(
                train, d.batch_size, d.seq_len, dist.rank, dist.world, songs, cfg.train.seed
            )
            steps = len(self.stateful)
        else:
            self.dataset = WindowDataset(self.corpus.train, d.seq_len, cfg.stride)
            steps = ShuffledBatches.count(len(self.dataset), d.batch_size, dist.world)
        if len(self.corpus.val) < 2:
            raise TrainingError(
                "the validation split is empty; raise data.val_fraction or add text"
            )
        return steps

    # ------------------------------------------------------------ the loop

    def run(self) -> list[dict]:
        """Epochs until train.epochs, early stopping, the time budget or a signal."""
        with _StopRequest() as self.signals:
            while self.run_state.epoch < self.cfg.train.epochs and self.stop_reason is None:
                self._train_epoch()
                if self.stop_reason == "signal":
                    self._interrupted()
                self._end_epoch()
        self.progress.close()
        return self.run_state.history

    def _batches(self, epoch: int):
        d, dist = self.cfg.data, self.dist
        if d.mode == "stateful":
            self.stateful.set_epoch(epoch)
            return self.stateful
        return ShuffledBatches(
            self.dataset, d.batch_size, self.cfg.train.seed, epoch, dist.rank, dist.world
        )

    def _train_epoch(self) -> None:
        run, train_cfg = self.run_state, self.cfg.train
        batches = self._batches(run.epoch)
        if run.batch == 0:
            self.hidden = None
        self.progress.start_epoch(run.epoch + 1, len(batches), run.batch)
        loss_sum = torch.zeros((), device=self.device)  # on the device: no per-step sync
        self.epoch_tokens, self.epoch_loss = 0, 0.0
        self.window_rates = []
        window_tokens, window_start = 0, time.perf_counter()
        t0 = time.perf_counter()
        while run.batch < len(batches):
            x, y = batches[run.batch]
            loss_sum += self._step(x, y) * y.numel()
            run.step += 1
            run.batch += 1
            window_tokens += y.numel()
            if run.step % train_cfg.log_every == 0 or run.batch == len(batches):
                self._report(loss_sum, window_tokens, time.perf_counter() - window_start)
                loss_sum.zero_()
                window_tokens, window_start = 0, time.perf_counter()
            if train_cfg.checkpoint_every and run.step % train_cfg.checkpoint_every == 0:
                self._save_state()
            if self._should_stop(run.elapsed + time.perf_counter() - t0):
                break
        if window_tokens:
            self._report(loss_sum, window_tokens, time.perf_counter() - window_start)
        run.elapsed += time.perf_counter() - t0
        self.epoch_seconds = time.perf_counter() - t0

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step on time-major (T, b) inputs and targets; returns the loss."""
        train_cfg, run = self.cfg.train, self.run_state
        x, y = self._to_device(x), self._to_device(y)
        # dropout masks are a pure function of (seed, step, rank): a resume, under any
        # number of processes, needs no saved random state
        torch.manual_seed(train_cfg.seed * 1_000_003 + run.step * 1_009 + self.dist.rank)
        self.schedule.before_step(run.step, self.time_fraction)
        hidden = detach(self.hidden)  # truncated BPTT: keep the values, cut the graph
        with self.precision.autocast():
            loss, hidden = self.ddp(x, hidden, time_major=True, targets=y)  # mean over (T, b)
        self.hidden = hidden if self.cfg.data.mode == "stateful" else None
        self.opt.zero_grad(set_to_none=True)
        self.precision.backward(loss, self.opt)
        if train_cfg.clip_grad_norm:
            # RNN gradients can explode through long products of recurrent weights.
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), train_cfg.clip_grad_norm)
        self.precision.step(self.opt)
        return loss.detach()

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # pinned host memory lets the copy overlap compute
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _report(self, loss_sum: torch.Tensor, tokens: int, seconds: float) -> None:
        """Read the loss back (the one host sync every train.log_every steps)."""
        total = loss_sum.item()
        if not math.isfinite(total):
            raise TrainingError(
                f"the loss became {total / max(tokens, 1)} before step {self.run_state.step}; lower "
                "train.lr or set train.clip_grad_norm (the last good checkpoint is kept)"
            )
        self.epoch_loss += total
        self.epoch_tokens += tokens
        rate = tokens * self.dist.world / max(seconds, 1e-9)
        self.window_rates.append(rate)
        self.progress.update(self.run_state.batch, total / tokens, rate)

    def _should_stop(self, elapsed: float) -> bool:
        """A signal or the time budget; with several processes all agree on the same step."""
        budget = self.cfg.train.max_minutes
        deadline = budget * 60 if budget else math.inf
        flag, time_up = self.dist.any(
            [self.signals.signum is not None, elapsed >= deadline], self.device
        )
        self.time_fraction = elapsed / deadline if budget else 0.0
        if flag:
            self.stop_reason = "signal"
        elif time_up:
            self.stop_reason = "time"
        return self.stop_reason is not None

    def _end_epoch(self) -> None:
        run, train_cfg, d = self.run_state, self.cfg.train, self.cfg.data
        val = evaluate(
            self.model,
            self.corpus.val,
            train_cfg.eval_batch_size,
            d.seq_len,
            self.device,
            self.vocab.unk_id,
            self.dist,
        )
        self.schedule.end_epoch(val["loss"])
        loss_sum, tokens = self.dist.sum([self.epoch_loss, self.epoch_tokens], self.device)
        metrics = {
            "epoch": run.epoch + 1,
            "step": run.step,
            "train_loss": loss_sum / max(1, tokens),
            "val_loss": val["loss"],
            "val_ppl": val["ppl"],
            "val_bpc": val["bpc"],
            "val_unk_rate": val["unk_rate"],
            "lr": self.schedule.lr,
            "tokens_per_s": tokens / max(1e-9, self.epoch_seconds),  # all processes
            # the median train.log_every window after the first (warm-up) one: the steady rate
            "tokens_per_s_steady": (
                statistics.median(self.window_rates[1:])
                if len(self.window_rates) > 1
                else tokens / max(1e-9, self.epoch_seconds)
            ),
            "train_tokens": int(tokens),
            "world_size": self.dist.world,
            "precision": train_cfg.precision,
            "elapsed_s": run.elapsed,
            "partial_epoch": self.stop_reason == "time",
        }
        run.history.append(metrics)
        improved = val["loss"] < run.best_val
        if improved:
            run.best_val, run.bad_epochs = val["loss"], 0
        else:
            run.bad_epochs += 1
        metrics["best"] = improved
        if improved or train_cfg.keep == "last":
            self.rundir.save_weights(self.model)
        run.epoch += 1
        run.batch = 0
        self.hidden = None
        self._save_state()
        self.rundir.write_metrics(run.history)
        for cb in self.callbacks:
            cb.on_epoch_end(self, metrics)
        self.progress.end_epoch(metrics)
        if train_cfg.patience and run.bad_epochs >= train_cfg.patience and self.stop_reason is None:
            self.stop_reason = "early"
            log.info("early stopping: no improvement for %d epochs", train_cfg.patience)

    def _interrupted(self) -> None:
        self._save_state()
        self.progress.close()
        code = 130 if self.signals.signum in (None, signal.SIGINT) else 143
        name = "SIGINT" if code == 130 else "SIGTERM"
        raise TrainingInterrupted(
            f"{name}: saved a resumable checkpoint in {self.out}; continue with "
            f"`lyricgen train --out {self.out} --resume`",
            exit_code=code,
        )

    # ------------------------------------------------------------ checkpoints

    def _save_state(self) -> None:
        """One file holds everything a resume needs (weights included), so a kill can never
        leave weights and optimizer state from different steps. Every process takes part
        (the stateful hidden state is gathered from all of them); rank 0 writes."""
        h = map_hidden(detach(self.hidden), lambda p: self.dist.gather_columns(p.float()).cpu())
        if isinstance(h, tuple):
            h = list(h)  # train_state.pt holds plain containers
        if not self.dist.main:
            return
        self.rundir.save_state(
            {
                "model": ckpt.weights_dict(self.model),
                **dataclasses.asdict(self.run_state),
                "optimizer": self.opt.state_dict(),
                "optimizer_name": self.cfg.train.optimizer,
                "scheduler": self.schedule.state_dict(),
                "scaler": self.precision.state_dict(),
                "hidden": h,
                "world_size": self.dist.world,
            }
        )

    def _restore(self, saved: dict) -> None:
        out, train_cfg = self.out, self.cfg.train
        if "model" not in saved:
            raise RunDirError(f"{out / ckpt.STATE} has no model weights; it is not a lyricgen run")
        ckpt.apply_weights(self.model, saved["model"], out / ckpt.STATE)
        if saved.get("optimizer_name", train_cfg.optimizer) != train_cfg.optimizer:
            raise RunDirError(
                f"train.optimizer is {train_cfg.optimizer} but the run in {out} was trained with "
                f"{saved['optimizer_name']}; resume with the same optimizer or start a new run"
            )
        try:
            self.opt.load_state_dict(saved["optimizer"])
            self.schedule.load_state_dict(saved["scheduler"])
            self.precision.load_state_dict(saved.get("scaler"))
            self.run_state = TrainState.from_saved(saved)
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise RunDirError(
                f"{out / ckpt.STATE} does not match this run ({exc}); retrain"
            ) from None
        h = saved.get("hidden")
        if isinstance(h, list):
            h = tuple(h)
        self.hidden = map_hidden(h, lambda p: self.dist.my_columns(p).to(self.device))
        was = saved.get("world_size", 1)
        if was != self.dist.world:
            log.info(
                "resuming with %d processes (saved with %d): the same batches, other dropout masks",
                self.dist.world,
                was,
            )
        self.rundir.resumed(self.cfg, self.vocab, self.run_state.history)
        log.info("resuming at epoch %d, batch %d", self.run_state.epoch + 1, self.run_state.batch)


def fit(
    cfg: Config,
    resume: bool = False,
    progress: Progress | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    explicit: set[str] | frozenset[str] = frozenset(),
    callbacks: list[Callback] | None = None,
) -> list[dict]:
    """Train `cfg` into its run directory and return the per-epoch metrics history. Under
    torchrun (WORLD_SIZE > 1) this process joins the group and trains its share. With
    `train.init_from`, the run starts from that run's weights; `explicit` names the config
    keys the user set by hand, which may not contradict the base (see finetune.py);
    `callbacks` replace `default_callbacks()`."""
    if cfg.train.init_from and not resume:
        # the shape only: the Trainer reads the weights once it knows the run is fresh
        base = finetune.load_base(cfg.train.init_from, weights=False)
        cfg = finetune.adopt_base(cfg, base, explicit)
    dist = distributed.from_env(cfg.train.device)
    if not dist.main:  # one voice: rank 0 logs and shows progress
        logging.getLogger("lyricgen").setLevel(logging.WARNING)
    try:
        with contextlib.ExitStack() as stack:
            out = Path(out_dir or cfg.out_dir)
            return Trainer(cfg, out, resume, overwrite, progress, dist, stack, callbacks).run()
    finally:
        distributed.shutdown(dist)
