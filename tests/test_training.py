"""The pieces the training loop is made of: the learning-rate schedule, the run directory and
the callbacks."""

import contextlib
import math

import pytest
import torch

from lyricgen.config import TrainConfig, load_config
from lyricgen.errors import RunDirError
from lyricgen.run import files as ckpt
from lyricgen.run.directory import RunDir
from lyricgen.training.callbacks import Callback
from lyricgen.training.schedule import Schedule, lr_factor
from tests.conftest import tiny_config, write_corpus


def _opt():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1.0)


def test_cosine_warms_up_then_decays_to_the_floor_by_steps_or_by_time():
    t = TrainConfig(lr=0.1, warmup_steps=10, scheduler="cosine", min_lr_ratio=0.1)
    assert lr_factor(t, 0, 100) == pytest.approx(0.1)  # (step + 1) / warmup
    assert lr_factor(t, 9, 100) == pytest.approx(1.0)
    assert lr_factor(t, 55, 100) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway
    assert lr_factor(t, 100, 100) == pytest.approx(0.1)
    # the time budget half used at step 20 of 100: the decay follows the time
    assert lr_factor(t, 20, 100, time_fraction=0.5) == pytest.approx(0.55)
    s = Schedule(_opt(), t, 100)
    s.before_step(55, 0.0)
    assert s.lr == pytest.approx(0.1 * 0.55)


def test_wsd_holds_the_rate_then_decays_over_the_last_share_by_steps_or_by_time():
    t = TrainConfig(lr=0.1, warmup_steps=10, scheduler="wsd", min_lr_ratio=0.0, decay_fraction=0.2)
    assert lr_factor(t, 0, 110) == pytest.approx(0.1)  # the same warmup
    assert lr_factor(t, 10, 110) == 1.0
    assert lr_factor(t, 90, 110) == 1.0  # 80% of the steps after warmup: still held
    # a quarter into the decay: 1 - sqrt(1/4)
    assert lr_factor(t, 95, 110) == pytest.approx(0.5)
    assert lr_factor(t, 110, 110) == pytest.approx(0.0)
    # by time: 90% of the budget used at step 20 is halfway through the decay
    assert lr_factor(t, 20, 110, time_fraction=0.9) == pytest.approx(1 - 0.5**0.5)
    floor = TrainConfig(lr=0.1, scheduler="wsd", min_lr_ratio=0.1, decay_fraction=0.5)
    assert lr_factor(floor, 100, 100) == pytest.approx(0.1)
    s = Schedule(_opt(), t, 110)
    s.before_step(95, 0.0)
    assert s.lr == pytest.approx(0.05)


# the schedule is driven here without optimizer steps, which torch warns about
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`:UserWarning")
def test_step_and_plateau_act_once_an_epoch_and_resume_from_their_state():
    t = TrainConfig(lr=1.0, warmup_steps=0, scheduler="step", step_size=2, gamma=0.5)
    opt = _opt()
    s = Schedule(opt, t, 100)
    s.before_step(5, 0.9)  # per-epoch schedules leave the rate alone between epochs
    assert s.lr == 1.0
    for _ in range(2):
        s.end_epoch(1.0)
    assert s.lr == 0.5
    again = Schedule(_opt(), t, 100)
    again.load_state_dict(s.state_dict())
    assert again.per_epoch.last_epoch == 2
    p = Schedule(_opt(), TrainConfig(lr=1.0, scheduler="plateau", gamma=0.1), 100)
    for loss in (1.0, 1.0, 1.0, 1.0):
        p.end_epoch(loss)
    assert p.lr == pytest.approx(0.1)
    assert Schedule(_opt(), TrainConfig(scheduler="none"), 10).state_dict() is None


def test_run_dir_refuses_to_overwrite_and_a_fresh_run_clears_what_was_there(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ckpt.WEIGHTS).write_bytes(b"old")
    (out / ckpt.METRICS).write_text("{}\n")
    with contextlib.ExitStack() as stack:
        with pytest.raises(RunDirError, match="--resume.*--overwrite"):
            RunDir(out, True, stack).open(resume=False, overwrite=False)
        with pytest.raises(RunDirError, match="does not exist"):
            RunDir(tmp_path / "none", True, stack).open(resume=True, overwrite=False)
        corpus = write_corpus(tmp_path / "c.txt")
        cfg = load_config(tiny_config(tmp_path, corpus))
        from lyricgen.corpus.vocab import Vocab

        rd = RunDir(out, True, stack)
        assert rd.open(resume=False, overwrite=True) == (None, None)
        rd.claim(resume=False)
        assert (out / ".lock").exists()
        rd.start_fresh(cfg, Vocab(["<unk>", "a"]))
        assert not (out / ckpt.WEIGHTS).exists() and not (out / ckpt.METRICS).exists()
        assert (out / ckpt.CONFIG).exists() and (out / ckpt.VOCAB).exists()
        # a process that is not the writer leaves the folder alone
        other = tmp_path / "other"
        other.mkdir()
        RunDir(other, False, stack).start_fresh(cfg, Vocab(["<unk>", "a"]))
        assert not any(other.iterdir())


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_run_start(self, run):
        self.events.append(("start", run.writes, len(run.vocab)))

    def on_epoch_end(self, run, metrics):
        assert (run.out / ckpt.WEIGHTS).exists()  # the epoch's files come first
        self.events.append(("epoch", metrics["epoch"], math.isfinite(metrics["val_loss"])))


def test_the_default_callbacks_leave_what_generation_reads(trained_run):
    # fit ran default_callbacks(): the rhyme table and the copy index are in the run
    assert (trained_run / ckpt.RHYME).is_file()
    assert (trained_run / ckpt.INDEX_DIR / "meta.json").is_file()


def test_callbacks_see_the_run_start_and_every_epoch(tmp_path):
    from lyricgen.training.distributed import Dist
    from lyricgen.training.trainer import Trainer

    corpus = write_corpus(tmp_path / "c.txt")
    cfg = load_config(tiny_config(tmp_path, corpus))
    rec = Recorder()
    with contextlib.ExitStack() as stack:
        trainer = Trainer(cfg, out=tmp_path / "run", stack=stack, dist=Dist(), callbacks=[rec])
        trainer.run()
    start = ("start", True, len(trainer.vocab))
    assert rec.events == [start, ("epoch", 1, True), ("epoch", 2, True)]
    for m in trainer.state.history:  # the steady rate: the median window after the first
        assert m["tokens_per_s_steady"] > 0 and m["tokens_per_s"] > 0
    # without the default callbacks there is no rhyme table or copy index in the run
    assert not (tmp_path / "run" / ckpt.RHYME).exists()
