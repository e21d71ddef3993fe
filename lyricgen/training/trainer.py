"""The training loop.

`fit` builds a `Trainer` and runs it. `Trainer.__init__` sets a run up in a few named steps
(the run directory, the corpus, the model, its batches, the optimizer and schedule, a resume);
`Trainer.run` trains epochs of steps, each step's phases written out in `_train_epoch`
(batch, forward and loss, backward, clip, optimizer step, schedule, report); `_end_epoch`
validates (`evaluation.evaluate`) and writes the weights, a resumable state and the metrics
into the run directory (`lyricgen.run.directory.RunDir`). Callbacks (`callbacks.py`) observe
the run through a frozen `RunInfo`: the rhyme table and copy index generation reads, and, from
the CLI, the progress bar and curves.png. Nothing here prints; the library logs. Under
torchrun every process trains its share of each batch (DistributedDataParallel) and rank 0
alone writes the run directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import random
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lyricgen.config import Config
from lyricgen.corpus.tokcache import build_vocab, corpus_splits
from lyricgen.corpus.vocab import Vocab
from lyricgen.errors import ConfigError, RunDirError, TrainingError, TrainingInterrupted
from lyricgen.run import files
from lyricgen.run.directory import RunDir
from lyricgen.training import distributed, finetune
from lyricgen.training.callbacks import Callback, RunInfo, default_callbacks
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
    LOSS_KERNELS,
    RECURRENCES,
    LyricsModel,
    count_parameters,
    default_cutoffs,
    detach,
    loss_kernel,
    map_hidden,
    recurrence_kernel,
    resolve_device,
)
from lyricgen.training.optim import make_optimizer
from lyricgen.training.precision import Precision
from lyricgen.training.schedule import Schedule
from lyricgen.training.state import StopRequest, TrainState

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


def _resolve_output(cfg: Config, vocab: Vocab) -> Config:
    """The config with its output layer settled by the training vocabulary: model.output auto
    becomes adaptive (untied) at model.adaptive_from entries or more, else full; an adaptive
    softmax gets cutoffs chosen from the training counts unless they are set."""
    m = cfg.model
    if m.output == "auto":
        adaptive = len(vocab) >= m.adaptive_from
        log.info(
            "model.output auto: %s (the vocabulary has %d entries; adaptive from %d)",
            "the adaptive softmax, untied" if adaptive else "the full softmax",
            len(vocab),
            m.adaptive_from,
        )
        if adaptive:
            m = dataclasses.replace(m, output="adaptive", tie_weights=False)
        else:
            m = dataclasses.replace(m, output="full", cutoffs=None)
    if m.output == "adaptive" and m.cutoffs is None:
        cutoffs = default_cutoffs(vocab.counts)
        log.info(
            "adaptive softmax: cutoffs %s (the head's %d tokens cover %.0f%% of the text)",
            cutoffs,
            cutoffs[0],
            100 * sum(vocab.counts[: cutoffs[0]]) / max(1, sum(vocab.counts)),
        )
        m = dataclasses.replace(m, cutoffs=cutoffs)
    return cfg if m is cfg.model else dataclasses.replace(cfg, model=m)


def choose_device(cfg: Config, dist: Dist) -> torch.device:
    """train.device for this process (its own GPU under torchrun); sets train.num_threads."""
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)  # once, before any autograd work
    device = resolve_device(cfg.train.device)
    if device.type == "cuda" and dist.active:
        device = torch.device("cuda", dist.local_rank)
    return device


def build_model(
    cfg: Config, vocab: Vocab, device: torch.device, base
) -> tuple[LyricsModel, Precision]:
    """The model on its device with a fine-tuning base's weights transplanted in, and its
    precision; the model's kernels (loss, recurrence) are chosen once here and logged."""
    loss = loss_kernel(cfg.model.output, device, cfg.train.precision)
    model = LyricsModel(len(vocab), cfg.model, loss=loss)
    if base is not None:
        added = finetune.transplant(model, base, cfg.train.seed)
        log.info(
            "fine-tuning from %s: its %d vocabulary entries kept, %d added from this corpus",
            base.path,
            len(base.vocab),
            added,
        )
    model.to(device)
    precision = Precision(cfg.train.precision, device, model)  # may keep the RNN in fp32
    fp32 = precision.dtype is None or model.rnn_fp32
    model.recurrence = recurrence_kernel(cfg.model, device, fp32)
    log.info("loss: %s; recurrence: %s", LOSS_KERNELS[loss], RECURRENCES[model.recurrence])
    return model, precision


def wrap_processes(model: LyricsModel, dist: Dist, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel under torchrun (it averages gradients during backward)."""
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def epoch_metrics(state: TrainState, val: dict, loss_sum: float, tokens: float, **run) -> dict:
    """The epoch's entry in metrics.jsonl. `run`: lr, seconds (of the epoch), window_rates
    (tokens/s of each report window), world, precision, partial."""
    rate = tokens / max(1e-9, run["seconds"])  # all processes
    rates = run["window_rates"]
    return {
        "epoch": state.epoch + 1,
        "step": state.step,
        "train_loss": loss_sum / max(1, tokens),
        "val_loss": val["loss"],
        "val_ppl": val["ppl"],
        "val_bpc": val["bpc"],
        "val_unk_rate": val["unk_rate"],
        "lr": run["lr"],
        "tokens_per_s": rate,
        # the median report window after the first (warm-up) one: the steady rate
        "tokens_per_s_steady": statistics.median(rates[1:]) if len(rates) > 1 else rate,
        "train_tokens": int(tokens),
        "world_size": run["world"],
        "precision": run["precision"],
        "elapsed_s": state.elapsed,
        "partial_epoch": run["partial"],
    }


def interrupted(signum: int | None, out: Path) -> TrainingInterrupted:
    """The error that ends a run stopped by a signal (exit code 130 for SIGINT, 143 for
    SIGTERM), saying how to resume it."""
    code = 130 if signum in (None, signal.SIGINT) else 143
    name = "SIGINT" if code == 130 else "SIGTERM"
    return TrainingInterrupted(
        f"{name}: saved a resumable checkpoint in {out}; continue with "
        f"`lyricgen train --out {out} --resume`",
        exit_code=code,
    )


class EpochBatches:
    """This process's batches, epoch by epoch: stateful streams (`data.mode: stateful`, the
    songs laid out in a new order each epoch) or shuffled windows."""

    def __init__(self, train: Stream, cfg: Config, dist: Dist):
        d, self.cfg, self.dist = cfg.data, cfg, dist
        self.streams: StatefulBatches | None = None
        self.dataset: WindowDataset | None = None
        if d.mode == "stateful":
            songs = song_starts(train) if d.shuffle_songs else None
            if songs is not None and len(songs) > 1:
                log.info("stateful: %d songs, laid out in a new order each epoch", len(songs))
            self.streams = StatefulBatches(
                train, d.batch_size, d.seq_len, dist.rank, dist.world, songs, cfg.train.seed
            )
            self.steps = len(self.streams)
        else:
            self.dataset = WindowDataset(train, d.seq_len, cfg.stride)
            self.steps = ShuffledBatches.count(len(self.dataset), d.batch_size, dist.world)

    def __len__(self) -> int:
        """Steps in an epoch."""
        return self.steps

    def of_epoch(self, epoch: int):
        """The epoch's batches, indexable by step: (T, b) inputs and targets."""
        if self.streams is not None:
            self.streams.set_epoch(epoch)
            return self.streams
        d = self.cfg.data
        return ShuffledBatches(
            self.dataset, d.batch_size, self.cfg.train.seed, epoch, self.dist.rank, self.dist.world
        )


class _Window:
    """The loss and tokens of the steps since the last report (train.log_every). The loss
    stays on the device, so a step needs no host sync."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.tokens, self.start = 0, time.perf_counter()

    def add(self, loss: torch.Tensor, tokens: int) -> None:
        self.loss_sum += loss * tokens
        self.tokens += tokens

    def reset(self) -> None:
        self.loss_sum.zero_()
        self.tokens, self.start = 0, time.perf_counter()


class Trainer:
    """One training run: `Trainer(cfg, out=..., stack=...).run()` returns the per-epoch
    metrics. `stack` holds the run directory's lock for as long as the caller keeps it open."""

    def __init__(
        self,
        cfg: Config,
        *,
        out: str | Path,
        stack: contextlib.ExitStack,
        dist: Dist | None = None,
        resume: bool = False,
        overwrite: bool = False,
        callbacks: list[Callback] | None = None,
    ):
        self.out, self.dist = Path(out), dist or Dist()
        self.callbacks = default_callbacks() if callbacks is None else list(callbacks)
        self.rundir = RunDir(self.out, self.dist.main, stack)
        self.device = choose_device(cfg, self.dist)
        _check_processes(cfg, self.dist)
        saved, vocab = self.rundir.open(resume, overwrite)
        init_from = cfg.train.init_from
        base = finetune.load_base(init_from) if init_from and saved is None else None
        seed_everything(cfg.train.seed)
        self.corpus = self._read_corpus(cfg, vocab, base)
        self.vocab = self.corpus.vocab
        self.cfg = cfg = _resolve_output(cfg, self.vocab)
        self.model, self.precision = build_model(cfg, self.vocab, self.device, base)
        self.net = wrap_processes(self.model, self.dist, self.device)  # what a step calls
        self.stateful = cfg.data.mode == "stateful"
        self.batches = EpochBatches(self.corpus.train, cfg, self.dist)
        if len(self.corpus.val) < 2:
            raise TrainingError(
                "the validation split is empty; raise data.val_fraction or add text"
            )
        self.steps_per_epoch = len(self.batches)
        log.info(
            "vocab %d, train %d tokens, val %d tokens, %d parameters, device %s, %s%s",
            len(self.vocab),
            len(self.corpus.train),
            len(self.corpus.val),
            count_parameters(self.model),
            self.device,
            cfg.train.precision,
            f", {self.dist.world} processes" if self.dist.active else "",
        )
        self.rundir.claim(resume)  # only now, with the input known to be good
        self.opt = make_optimizer(self.model, cfg.train)
        self.schedule = Schedule(self.opt, cfg.train, cfg.train.epochs * self.steps_per_epoch)
        self.state, self.stop = TrainState(), StopRequest()
        self.hidden = None  # the recurrent state carried between batches (stateful mode)
        self.time_fraction = 0.0  # of train.max_minutes spent (the schedule's clock)
        self.stop_reason: str | None = None  # signal, time or early
        self.epoch_loss, self.epoch_tokens, self.epoch_seconds = 0.0, 0, 0.0
        self.window_rates: list[float] = []  # tokens/s of each report window
        if saved is not None:
            self._restore(saved)
            # the schedule's clock where the run left it, so the first step after a resume
            # takes the learning rate the time budget says, not the budget's start
            budget = cfg.train.max_minutes
            self.time_fraction = self.state.elapsed / (budget * 60) if budget else 0.0
        else:
            self.rundir.start_fresh(cfg, self.vocab)
        self.info = RunInfo(self.out, cfg, self.vocab, self.dist.main)
        self._emit("on_run_start")
        self.dist.barrier()

    # ------------------------------------------------------------ setting up

    def _read_corpus(self, cfg: Config, vocab: Vocab | None, base) -> Corpus:
        """One process per machine tokenizes (or checks the cache); the others then read it."""
        if self.dist.local_rank != 0:
            self.dist.barrier()
        corpus = prepare_corpus(cfg, vocab, base.vocab if base else None)
        if self.dist.local_rank == 0:
            self.dist.barrier()
        return corpus

    def _emit(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self.info, *args)

    # ------------------------------------------------------------ the loop

    def run(self) -> list[dict]:
        """Epochs until train.epochs, early stopping, the time budget or a signal."""
        try:
            with self.stop:
                while self.state.epoch < self.cfg.train.epochs and self.stop_reason is None:
                    self._train_epoch()
                    if self.stop_reason == "signal":
                        self._save_state()
                        raise interrupted(self.stop.signum, self.out)
                    self._end_epoch()
        finally:
            self._emit("on_run_end")
        return self.state.history

    def _train_epoch(self) -> None:
        state, train_cfg = self.state, self.cfg.train
        batches = self.batches.of_epoch(state.epoch)
        if state.batch == 0:
            self.hidden = None
        self._emit("on_epoch_start", state.epoch + 1, len(batches), state.batch)
        self.epoch_loss, self.epoch_tokens, self.window_rates = 0.0, 0, []
        window, t0 = _Window(self.device), time.perf_counter()
        while state.batch < len(batches):
            x, y = (self._to_device(t) for t in batches[state.batch])  # (T, b) inputs, targets
            self._seed_dropout(state.step)
            self.schedule.before_step(state.step, self.time_fraction)  # this step's lr
            # forward and loss (the mean over (T, b)); detach: truncated BPTT, the carried state's
            # values without its graph
            with self.precision.autocast():
                loss, hidden = self.net(x, detach(self.hidden), time_major=True, targets=y)
            self.hidden = hidden if self.stateful else None  # carried to the next batch
            self.opt.zero_grad(set_to_none=True)
            self.precision.backward(loss)
            self.precision.unscale(self.opt)  # fp16: clip the true gradients
            self._clip_gradients()
            self.precision.step(self.opt)
            state.step += 1
            state.batch += 1
            window.add(loss.detach(), y.numel())
            if state.step % train_cfg.log_every == 0 or state.batch == len(batches):
                self._report(window)
            if train_cfg.checkpoint_every and state.step % train_cfg.checkpoint_every == 0:
                self._save_state(running=time.perf_counter() - t0)
            if self._should_stop(state.elapsed + time.perf_counter() - t0):
                break
        if window.tokens:
            self._report(window)
        self.epoch_seconds = time.perf_counter() - t0
        state.elapsed += self.epoch_seconds

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # pinned host memory lets the copy overlap compute
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _seed_dropout(self, step: int) -> None:
        """Dropout masks are a pure function of (seed, step, rank): a resume, under any
        number of processes, needs no saved random state."""
        torch.manual_seed(self.cfg.train.seed * 1_000_003 + step * 1_009 + self.dist.rank)

    def _clip_gradients(self) -> None:
        if self.cfg.train.clip_grad_norm:
            # RNN gradients can explode through long products of recurrent weights.
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.clip_grad_norm)

    def _report(self, window: _Window) -> None:
        """Read the loss back (the one host sync every train.log_every steps) and tell the
        callbacks."""
        total, tokens = window.loss_sum.item(), window.tokens
        if not math.isfinite(total):
            raise TrainingError(
                f"the loss became {total / max(tokens, 1)} before step {self.state.step}; lower "
                "train.lr or set train.clip_grad_norm (the last good checkpoint is kept)"
            )
        self.epoch_loss += total
        self.epoch_tokens += tokens
        rate = tokens * self.dist.world / max(time.perf_counter() - window.start, 1e-9)
        self.window_rates.append(rate)
        self._emit("on_log", self.state.batch, total / tokens, rate)
        window.reset()

    def _should_stop(self, elapsed: float) -> bool:
        """A signal or the time budget; with several processes all agree on the same step."""
        budget = self.cfg.train.max_minutes
        deadline = budget * 60 if budget else math.inf
        flag, time_up = self.dist.any([self.stop.requested, elapsed >= deadline], self.device)
        self.time_fraction = elapsed / deadline if budget else 0.0
        if flag:
            self.stop_reason = "signal"
        elif time_up:
            self.stop_reason = "time"
        return self.stop_reason is not None

    def _end_epoch(self) -> None:
        state, train_cfg = self.state, self.cfg.train
        val = evaluate(
            self.model,
            self.corpus.val,
            train_cfg.eval_batch_size,
            self.cfg.data.seq_len,
            self.device,
            self.vocab.unk_id,
            self.dist,
        )
        self.schedule.end_epoch(val["loss"])
        loss_sum, tokens = self.dist.sum([self.epoch_loss, self.epoch_tokens], self.device)
        metrics = epoch_metrics(
            state,
            val,
            loss_sum,
            tokens,
            lr=self.schedule.lr,
            seconds=self.epoch_seconds,
            window_rates=self.window_rates,
            world=self.dist.world,
            precision=train_cfg.precision,
            partial=self.stop_reason == "time",
        )
        improved = state.record(metrics, val["loss"])
        if improved or train_cfg.keep == "last":
            self.rundir.save_weights(self.model)
        state.epoch += 1
        state.batch = 0
        self.hidden = None
        self._save_state()
        self.rundir.write_metrics(state.history)
        self._emit("on_epoch_end", metrics)
        if train_cfg.patience and state.bad_epochs >= train_cfg.patience and not self.stop_reason:
            self.stop_reason = "early"
            log.info("early stopping: no improvement for %d epochs", train_cfg.patience)

    # ------------------------------------------------------------ checkpoints

    def _save_state(self, running: float = 0.0) -> None:
        """One file holds everything a resume needs (weights included), so a kill can never
        leave weights and optimizer state from different steps. Every process takes part
        (the stateful hidden state is gathered from all of them); rank 0 writes.

        `running` is the time the epoch under way has taken so far: a checkpoint in the middle
        of an epoch counts it, so a run killed there resumes with its clock (the time budget
        and the schedule that decays over it) where the checkpoint left it."""
        h = map_hidden(detach(self.hidden), lambda p: self.dist.gather_columns(p.float()).cpu())
        if isinstance(h, tuple):
            h = list(h)  # train_state.pt holds plain containers
        if not self.dist.main:
            return
        self.rundir.save_state(
            {
                "model": files.weights_dict(self.model),
                **dataclasses.asdict(self.state),
                "elapsed": self.state.elapsed + running,
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
            raise RunDirError(f"{out / files.STATE} has no model weights; it is not a lyricgen run")
        files.apply_weights(self.model, saved["model"], out / files.STATE)
        if saved.get("optimizer_name", train_cfg.optimizer) != train_cfg.optimizer:
            raise RunDirError(
                f"train.optimizer is {train_cfg.optimizer} but the run in {out} was trained with "
                f"{saved['optimizer_name']}; resume with the same optimizer or start a new run"
            )
        try:
            self.opt.load_state_dict(saved["optimizer"])
            self.schedule.load_state_dict(saved["scheduler"])
            self.precision.load_state_dict(saved.get("scaler"))
            self.state = TrainState.from_saved(saved)
        except (KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise RunDirError(
                f"{out / files.STATE} does not match this run ({exc}); retrain"
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
        self.rundir.resumed(self.cfg, self.vocab, self.state.history)
        log.info("resuming at epoch %d, batch %d", self.state.epoch + 1, self.state.batch)


def fit(
    cfg: Config,
    resume: bool = False,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    explicit: set[str] | frozenset[str] = frozenset(),
    callbacks: list[Callback] | None = None,
) -> list[dict]:
    """Train `cfg` into its run directory and return the per-epoch metrics history. Under
    torchrun (WORLD_SIZE > 1) this process joins the group and trains its share. With
    `train.init_from`, the run starts from that run's weights; `explicit` names the config
    keys the user set by hand, which may not contradict the base (see finetune.py);
    `callbacks` replace `default_callbacks()` (a progress bar is a callback too)."""
    if cfg.train.init_from and not resume:
        # the shape only: the Trainer reads the weights once it knows the run is fresh
        base = finetune.load_base(cfg.train.init_from, weights=False)
        cfg = finetune.adopt_base(cfg, base, explicit)
    dist = distributed.from_env(cfg.train.device)
    if not dist.main:  # one voice: rank 0 logs and shows progress
        logging.getLogger("lyricgen").setLevel(logging.WARNING)
    orderly = False  # every process leaves the same way: a barrier before the group closes
    try:
        with contextlib.ExitStack() as stack:
            out = Path(out_dir or cfg.out_dir)
            trainer = Trainer(
                cfg,
                out=out,
                stack=stack,
                dist=dist,
                resume=resume,
                overwrite=overwrite,
                callbacks=callbacks,
            )
            history = trainer.run()
            orderly = True
            return history
    except TrainingInterrupted:
        orderly = True  # a stop all processes agreed on
        raise
    finally:
        distributed.shutdown(dist, orderly=orderly)
