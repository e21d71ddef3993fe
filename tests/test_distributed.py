"""Two processes with torchrun (gloo, CPU) train like one process with the same global batch,
stop together on a signal and resume exactly; a stop under torchrun never hangs."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from .conftest import REPO, tiny_config, write_corpus
from .helpers import same_weights

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not torch.distributed.is_available() or sys.platform == "win32",
        reason="needs torch.distributed with gloo",
    ),
]


def torchrun(args, nproc=2, timeout=60):
    # PYTHONFAULTHANDLER and TORCH_SHOW_CPP_STACKTRACES: a worker that dies of a signal
    # (rank 1's SIGABRT, seen once in a fresh clone's run) leaves its stacks in stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "PYTHONFAULTHANDLER": "1", "TORCH_SHOW_CPP_STACKTRACES": "1"}  # fmt: skip
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


MARKS = ("Fatal Python error", "terminate called", "what():", "Current thread", "Thread 0x",
         "Exception raised from", "Error", "Aborted")  # fmt: skip


def why(r) -> str:
    """What a failed torchrun said, for the assertion: every worker line that tells why a
    worker died (faulthandler's stacks, a C++ exception), then the end of the output; the
    end alone is torchrun's summary, which names the signal but not its cause."""
    lines = r.stderr.splitlines()
    keep = []
    for i, line in enumerate(lines):
        if any(m in line for m in MARKS):
            keep.extend(lines[i : i + 40])
            if len(keep) > 200:
                break
    return "\n".join(keep[:200]) + "\n...\n" + r.stderr[-1500:]


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
    assert r.returncode == 0, why(r)
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert same_weights(w0, w1)  # DDP keeps the ranks identical
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


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (torchrun's workers), from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _state(pid: int) -> str | None:
    """A live process's state letter (R, S, D, ...); None when it is gone or a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    return None if state in "ZX" else state


def _hang_report(proc: subprocess.Popen, workers: list[int]) -> str:
    """What outlived SIGTERM, and where it was: each live process gets SIGABRT, which
    PYTHONFAULTHANDLER turns into its Python stacks on stderr, then SIGKILL, so neither
    torchrun nor a worker left holding the stderr pipe can make the test hang."""
    alive = {pid: _state(pid) for pid in [proc.pid, *workers]}
    alive = {pid: st for pid, st in alive.items() if st is not None}
    for sig, pause in ((signal.SIGABRT, 1.0), (signal.SIGKILL, 0.0)):
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            time.sleep(pause)  # one dump at a time
    try:
        err = proc.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        err = "(stderr still open 10 s after SIGKILL)"
    names = {proc.pid: "torchrun", **{w: f"worker {w}" for w in workers}}
    who = ", ".join(f"{names[pid]} ({st})" for pid, st in alive.items()) or "nothing"
    return f"still alive: {who}; stderr with their stacks:\n{err[-8000:]}"


def test_sigterm_to_torchrun_then_resume_continues_exactly(tmp_path):
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

    # PYTHONFAULTHANDLER: SIGABRT makes a stuck process write its stacks (_hang_report)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
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
    workers = _children(proc.pid)  # torchrun's workers, each the leader of its own process group
    if not state.exists():
        pytest.fail("no checkpoint 60 s after the start; " + _hang_report(proc, workers))
    proc.send_signal(signal.SIGTERM)
    try:
        err = proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        pytest.fail("60 s after SIGTERM; " + _hang_report(proc, workers))
    assert proc.returncode != 0
    assert "SIGTERM: saved a resumable checkpoint" in err
    saved = torch.load(state, weights_only=True)
    assert saved["world_size"] == 2 and saved["epoch"] < 4
    import shutil

    shutil.copytree(tmp_path / "a" / "run", tmp_path / "one")
    r = torchrun(["-m", "lyricgen", "train", "--out", tmp_path / "a" / "run", "--resume"])
    assert r.returncode == 0, why(r)
    # another number of processes resumes too: same batches, other dropout masks
    r = subprocess.run(
        [sys.executable, "-m", "lyricgen", "train", "--out", str(tmp_path / "one"), "--resume"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, why(r)
    assert "resuming with 1 processes (saved with 2)" in r.stderr
    metrics = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4] and metrics[-1]["world_size"] == 1
    r = torchrun(["-m", "lyricgen", "train", "--config", config("b")])
    assert r.returncode == 0, why(r)
    wa = torch.load(state, weights_only=True)["model"]
    wb = torch.load(tmp_path / "b" / "run" / "train_state.pt", weights_only=True)["model"]
    assert same_weights(wa, wb)


def _python(code: str, env: dict, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_second_signal_under_torchrun_exits_at_once_without_an_exception():
    """In a process of a multi-process run the second signal must not raise
    KeyboardInterrupt at some arbitrary point (the other processes would wait for this one
    in their next collective): it exits at once with 128 + the signal's number."""
    r = _python(
        """
        import signal
        from lyricgen.training.state import StopRequest
        with StopRequest() as stop:
            signal.raise_signal(signal.SIGINT)
            assert stop.requested
            signal.raise_signal(signal.SIGTERM)
            print("still here")
        """,
        {"WORLD_SIZE": "2"},
    )
    assert r.returncode == 143, r.stderr
    assert (
        r.stdout == ""
        and r.stderr == "error: SIGTERM again: stopping at once, without a final checkpoint\n"
    )


def test_one_process_still_gets_keyboard_interrupt_on_a_second_signal():
    from lyricgen.training.state import StopRequest

    with pytest.raises(KeyboardInterrupt), StopRequest(processes=1) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested
        signal.raise_signal(signal.SIGINT)


def test_a_stop_that_hangs_is_ended_with_its_stacks_after_the_grace():
    """A signalled process of a multi-process run that is stuck (here in a sleep, as it
    could be in a collective whose peer is gone) exits after LYRICGEN_STOP_GRACE seconds,
    writing where every thread was."""
    t0 = time.monotonic()
    r = _python(
        """
        import signal, time
        from lyricgen.training.state import StopRequest
        def stuck_in_a_collective():
            time.sleep(60)
        with StopRequest():
            signal.raise_signal(signal.SIGTERM)
            stuck_in_a_collective()
        """,
        {"WORLD_SIZE": "2", "LYRICGEN_STOP_GRACE": "0.5"},
    )
    assert r.returncode == 1 and time.monotonic() - t0 < 20
    assert "Timeout" in r.stderr and "stuck_in_a_collective" in r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_gets_sigterm_when_torchrun_dies(tmp_path):
    """A torchrun killed (or ended by a third Ctrl-C) while its workers still run must not
    leave them running on their own: each worker asked for SIGTERM when its parent dies."""
    got = tmp_path / "got-sigterm"
    worker = f"""
        import os, signal, sys, time
        from lyricgen.training.distributed import die_with_launcher
        signal.signal(signal.SIGTERM, lambda *a: (open({str(got)!r}, "w").close(), os._exit(0)))
        assert die_with_launcher()
        print("ready", flush=True)
        time.sleep(30)
        """
    launcher = f"""
        import subprocess, sys, os
        p = subprocess.Popen([sys.executable, "-c", {textwrap.dedent(worker)!r}],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline() == "ready\\n"
        os._exit(0)  # like a torchrun that is SIGKILLed
        """
    r = _python(launcher, {"TORCHELASTIC_RUN_ID": "test"})
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 20
    while not got.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got.exists()
