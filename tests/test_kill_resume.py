"""SIGKILL a real `lyricgen train` process at many moments, resume each time, and get
bit for bit the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lyricgen.training.callbacks import Callback

from .conftest import REPO, tiny_config
from .helpers import cli, same_weights

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL"),
    pytest.mark.slow,
]


HOOKS = str(Path(__file__).parent / "hooks")


def start(args, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    if "LYRICGEN_TEST_WRITE_DELAY" in env:  # tests/hooks/sitecustomize.py slows the writes
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [HOOKS, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "lyricgen", "train", *map(str, args)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def saved_step(run):
    try:
        return torch.load(run / "train_state.pt", weights_only=True)["step"]
    except (FileNotFoundError, KeyError):
        return -1


def wait_for(proc, condition, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("timed out waiting for the training process")


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def assert_files_whole(run):
    """After a kill every file present is complete: loadable, never truncated."""
    from safetensors.torch import load_file

    torch.load(run / "train_state.pt", weights_only=True)
    if (run / "model.safetensors").exists():
        load_file(run / "model.safetensors")
    for line in (
        (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    ):
        json.loads(line)


def test_sigkill_anywhere_then_resume_is_bit_exact(tmp_path, corpus):
    cfg = tiny_config(
        tmp_path,
        corpus,
        train={"epochs": 3, "checkpoint_every": 1, "keep": "last"},
        data={"batch_size": 4},
        model={"dropout": 0.2, "num_layers": 2},
    )
    slow = {"LYRICGEN_TEST_WRITE_DELAY": "0.02"}  # slows each step a little so kills land mid-run
    straight, run = tmp_path / "straight", tmp_path / "killed"
    p = start(["--config", cfg, "--out", straight], slow)
    assert p.wait() == 0, p.stderr.read().decode()
    total = torch.load(straight / "train_state.pt", weights_only=True)["step"]

    proc = start(["--config", cfg, "--out", run], slow)
    kills = 0
    for frac in (0.1, 0.3, 0.5, 0.7, 0.9):
        target = max(1, int(frac * total))
        assert wait_for(proc, lambda t=target: saved_step(run) >= t), proc.stderr.read().decode()
        kill(proc)
        kills += 1
        assert_files_whole(run)
        if frac == 0.5:  # next, kill while train_state.pt is being written
            proc = start(["--out", run, "--resume"], {"LYRICGEN_TEST_WRITE_DELAY": "0.5"})
            assert wait_for(proc, lambda: any(run.glob(".train_state.pt.*.tmp")))
            kill(proc)
            kills += 1
            assert any(run.glob(".train_state.pt.*.tmp"))  # the half-written temporary file
            assert_files_whole(run)  # ...but the real file is intact
        proc = start(["--out", run, "--resume"], slow)
    assert proc.wait() == 0, proc.stderr.read().decode()
    assert kills >= 6
    assert not list(run.glob(".*.tmp"))

    a = torch.load(straight / "train_state.pt", weights_only=True)
    b = torch.load(run / "train_state.pt", weights_only=True)
    assert a["step"] == b["step"] == total
    assert same_weights(a["model"], b["model"])
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    from safetensors.torch import load_file

    wa, wb = load_file(straight / "model.safetensors"), load_file(run / "model.safetensors")
    assert same_weights(wa, wb)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_and_exits_with_conventional_code(tmp_path, corpus, sig, code):
    cfg = tiny_config(tmp_path, corpus, train={"epochs": 50}, data={"batch_size": 4})
    proc = start(["--config", cfg], {"LYRICGEN_TEST_WRITE_DELAY": "0.01"})
    assert wait_for(proc, lambda: (tmp_path / "run" / "train_state.pt").exists())
    proc.send_signal(sig)
    err = proc.communicate(timeout=30)[1].decode()
    assert proc.returncode == code, err
    assert "--resume" in err and "Traceback" not in err
    assert torch.load(tmp_path / "run" / "train_state.pt", weights_only=True)["step"] > 0


class InterruptAfter(Callback):
    """Sends this process SIGINT after `n` batches, like a user pressing Ctrl-C."""

    def __init__(self, n):
        self.n = n

    def on_log(self, run, batch, loss, tokens_per_s):
        self.n -= 1
        if self.n == 0:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("mode", ["shuffle", "stateful"])
def test_ctrl_c_mid_epoch_then_resume_equals_uninterrupted(tmp_path, corpus, mode):
    """Ctrl-C in the middle of epoch 2 saves a resumable state; resuming gives bit-for-bit
    the weights of a straight run (dropout on: its masks come from the seed and the step, so
    the resume needs no saved random state)."""
    from lyricgen.config import load_config
    from lyricgen.errors import TrainingInterrupted
    from lyricgen.training.trainer import fit

    def make(name):
        (tmp_path / name).mkdir()
        return tiny_config(
            tmp_path / name,
            corpus,
            train={"epochs": 3, "log_every": 1},  # a progress update after every batch
            data={"mode": mode, "batch_size": 4},
            model={"dropout": 0.2, "num_layers": 2},
        )

    interrupted, straight = make("b"), make("c")
    with pytest.raises(TrainingInterrupted) as info:
        fit(load_config(interrupted), callbacks=[InterruptAfter(12)])
    assert info.value.exit_code == 130 and "--resume" in str(info.value)
    state = torch.load(tmp_path / "b" / "run" / "train_state.pt", weights_only=True)
    assert state["epoch"] >= 1 and state["batch"] > 0  # stopped mid-epoch, after epoch 1
    r = cli("train", "--out", tmp_path / "b" / "run", "--resume")
    assert r.exit_code == 0, r.output
    assert cli("train", "--config", straight).exit_code == 0
    wb = torch.load(tmp_path / "b" / "run" / "train_state.pt", weights_only=True)["model"]
    wc = torch.load(tmp_path / "c" / "run" / "train_state.pt", weights_only=True)["model"]
    assert same_weights(wb, wc)


def test_a_checkpoint_mid_epoch_counts_the_epoch_so_far(tmp_path, corpus, monkeypatch):
    """train_state.pt written by checkpoint_every in the middle of an epoch holds the time
    spent so far, that epoch's included: a run killed there resumes with its time budget and
    schedule where they stood, not at the start of the epoch."""
    from lyricgen.config import load_config
    from lyricgen.run.directory import RunDir
    from lyricgen.training.trainer import fit

    saved = []
    real = RunDir.save_state

    def spy(self, state):
        saved.append((state["epoch"], state["batch"], state["elapsed"]))
        time.sleep(0.01)  # each step takes a measurable time
        real(self, state)

    monkeypatch.setattr(RunDir, "save_state", spy)
    cfg = tiny_config(
        tmp_path, corpus, train={"epochs": 1, "checkpoint_every": 1}, data={"batch_size": 4}
    )
    fit(load_config(cfg))
    mid = [e for epoch, batch, e in saved if epoch == 0 and batch > 0]
    assert len(mid) >= 3
    assert mid[0] > 0 and all(b > a for a, b in zip(mid, mid[1:], strict=False))
