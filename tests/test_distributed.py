"""Two processes with torchrun (gloo, CPU) train like one process with the same global batch."""

import json
import os
import subprocess
import sys

import pytest
import torch

from .conftest import REPO, tiny_config, write_corpus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not torch.distributed.is_available() or sys.platform == "win32",
        reason="needs torch.distributed with gloo",
    ),
]


def torchrun(args, nproc=2, timeout=60):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",  # rendezvous on localhost at a free port
            "--nproc_per_node",
            str(nproc),
            *map(str, args),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("mode", ["shuffle", "stateful"])
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, mode):
    from lyricgen.config import load_config
    from lyricgen.training.data import WindowDataset
    from lyricgen.training.trainer import fit, prepare_corpus

    corpus = write_corpus(tmp_path / "corpus.txt", repeat=4)

    def config(batch: int, stride: int):
        return tiny_config(
            tmp_path,
            corpus,
            data={
                "mode": mode,
                "batch_size": batch,
                "seq_len": 10,
                "stride": stride,
                "val_fraction": 0.25,
            },
            model={"cell": "lstm", "num_layers": 2},  # dropout 0: the runs are comparable
            train={"epochs": 2, "optimizer": "adamw"},
        )

    # One process keeps a last partial batch, several drop it: stride 8 gives 44 windows,
    # which fill 11 global batches of 4, so both see the same data.
    cfg_path = config(4, 8)
    cfg = load_config(cfg_path)
    if mode == "shuffle":
        assert len(WindowDataset(prepare_corpus(cfg).train, 10, 8)) % 4 == 0
    r = torchrun([REPO / "tests" / "ddp_worker.py", cfg_path, tmp_path])
    assert r.returncode == 0, r.stderr[-2000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # DDP keeps the ranks identical
    metrics = json.loads((tmp_path / "rank0.json").read_text())
    assert [m["world_size"] for m in metrics] == [2, 2]

    cfg.out_dir = str(tmp_path / "one")
    single = fit(cfg)
    # Same global batch, same order: the averaged gradient equals one process's up to
    # float summation order, so losses agree to 1e-4 relative and weights to 1e-4.
    for a, b in zip(metrics, single, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
        assert a["train_tokens"] == b["train_tokens"]
    w = torch.load(tmp_path / "one" / "train_state.pt", weights_only=True)["model"]
    assert all(torch.allclose(w0[k], w[k], atol=1e-4) for k in w0)


def test_more_processes_than_stateful_streams_is_a_clear_error(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt")
    cfg_path = tiny_config(tmp_path, corpus, data={"mode": "stateful", "batch_size": 1})
    r = torchrun(["-m", "lyricgen", "train", "--config", cfg_path])
    assert r.returncode != 0
    assert "torchrun started 2 processes but stateful training has data.batch_size = 1" in r.stderr
    # one line from each worker; the only traceback is torchrun's own report of the exit
    assert (
        "lyricgen/training/trainer.py" not in r.stderr
        and "lyricgen/frontend/cli.py" not in r.stderr
    )


def test_sigterm_to_torchrun_then_resume_continues_exactly(tmp_path):
    import signal
    import time

    corpus = write_corpus(tmp_path / "corpus.txt", repeat=12)

    def config(name, **train):
        (tmp_path / name).mkdir()
        return tiny_config(
            tmp_path / name,
            corpus,
            data={"batch_size": 4, "mode": "stateful", "seq_len": 8},
            model={"dropout": 0.2, "num_layers": 2},  # dropout on: masks must replay too
            train={"epochs": 4, "log_every": 1, **train},
        )

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    interrupted = config("a")
    proc = subprocess.Popen(
        [*cmd, "-m", "lyricgen", "train", "--config", str(interrupted)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = tmp_path / "a" / "run" / "train_state.pt"
    deadline = time.monotonic() + 60
    while not state.exists() and time.monotonic() < deadline:  # after epoch 1
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        err = proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:  # say what the processes had written before it hung
        proc.kill()
        err = proc.communicate()[1]
        pytest.fail(f"torchrun did not exit within 60 s of SIGTERM; its stderr:\n{err[-3000:]}")
    assert proc.returncode != 0
    assert "SIGTERM: saved a resumable checkpoint" in err
    saved = torch.load(state, weights_only=True)
    assert saved["world_size"] == 2 and saved["epoch"] < 4
    import shutil

    shutil.copytree(tmp_path / "a" / "run", tmp_path / "one")
    r = torchrun(["-m", "lyricgen", "train", "--out", tmp_path / "a" / "run", "--resume"])
    assert r.returncode == 0, r.stderr[-2000:]
    # another number of processes resumes too: same batches, other dropout masks
    r = subprocess.run(
        [sys.executable, "-m", "lyricgen", "train", "--out", str(tmp_path / "one"), "--resume"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming with 1 processes (saved with 2)" in r.stderr
    metrics = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4] and metrics[-1]["world_size"] == 1
    r = torchrun(["-m", "lyricgen", "train", "--config", config("b")])
    assert r.returncode == 0, r.stderr[-2000:]
    wa = torch.load(state, weights_only=True)["model"]
    wb = torch.load(tmp_path / "b" / "run" / "train_state.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
