"""The CLI end to end through typer's CliRunner, plus real subprocess runs."""

import json
import signal
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from lyricgen.cli import app
from lyricgen.train import Progress

from .conftest import REPO, tiny_config

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_train_generate_eval_vocab(tmp_path, config):
    out = tmp_path / "run"
    r = invoke("train", "--config", config, "--epochs", 2)
    assert r.exit_code == 0, r.output
    for name in [
        "config.yaml",
        "vocab.json",
        "model.safetensors",
        "train_state.pt",
        "metrics.jsonl",
    ]:
        assert (out / name).is_file(), name
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    m = json.loads(lines[-1])
    assert {"val_loss", "val_ppl", "val_bpc", "tokens_per_s"} <= set(m)

    r = invoke("generate", "--checkpoint", out, "--start", "星星", "--length", 30, "--seed", 3)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("星星")
    again = invoke("generate", "--checkpoint", out, "--start", "星星", "--length", 30, "--seed", 3)
    assert again.stdout == r.stdout

    r = invoke("eval", "--checkpoint", out, "--corpus", config.parent / "corpus.txt", "--json")
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout)
    assert {"ppl", "bpc", "tokens", "chars"} <= set(stats) and stats["ppl"] > 1

    r = invoke("vocab", "--checkpoint", out, "--json", "--lookup", "星", "--lookup", "鑫")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["lookups"][0]["id"] is not None and info["lookups"][1]["id"] is None

    r = invoke("vocab", "--config", config, "--top", 5)
    assert r.exit_code == 0, r.output
    assert "size:" in r.stdout and "coverage" in r.stdout


def test_generate_length_counts_generated_tokens(trained_run):
    from lyricgen.checkpoint import load_run
    from lyricgen.generate import SamplingOptions, generate

    _, vocab, model = load_run(trained_run)
    for greedy in (False, True):
        samples = generate(
            model, vocab, "星星", SamplingOptions(length=99, greedy=greedy, num_samples=3, seed=1)
        )
        assert len(samples) == 3
        for s in samples:
            assert len(s.tokens) == 99 and s.text.startswith("星星")
            assert "<unk>" not in s.tokens


def test_word_model_accepts_multi_word_start(tmp_path, corpus):
    config = tiny_config(tmp_path, corpus, data={"level": "word", "seq_len": 8, "stride": 4})
    assert invoke("train", "--config", config).exit_code == 0
    r = invoke(
        "generate", "--checkpoint", tmp_path / "run", "--start", "我们的星星", "--length", 10
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("我们的星星")


def test_resume_continues_to_more_epochs(tmp_path, config):
    assert invoke("train", "--config", config, "--epochs", 1).exit_code == 0
    r = invoke("train", "--out", tmp_path / "run", "--resume", "--epochs", 3)
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


class InterruptAfter(Progress):
    """Sends this process SIGINT after `n` batches, like a user pressing Ctrl-C."""

    def __init__(self, n):
        self.n = n

    def update(self, batch, loss, tokens_per_s):
        self.n -= 1
        if self.n == 0:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("mode", ["shuffle", "stateful"])
def test_ctrl_c_mid_epoch_then_resume_equals_uninterrupted(tmp_path, corpus, mode):
    """Ctrl-C in the middle of epoch 2 saves a resumable state; resuming gives bit-for-bit
    the weights of a straight run (dropout on, so the RNG state must be restored too)."""
    from lyricgen.config import load_config
    from lyricgen.errors import TrainingInterrupted
    from lyricgen.train import fit

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
        fit(load_config(interrupted), progress=InterruptAfter(12))
    assert info.value.exit_code == 130 and "--resume" in str(info.value)
    state = torch.load(tmp_path / "b" / "run" / "train_state.pt", weights_only=True)
    assert state["epoch"] >= 1 and state["batch"] > 0  # stopped mid-epoch, after epoch 1
    r = invoke("train", "--out", tmp_path / "b" / "run", "--resume")
    assert r.exit_code == 0, r.output
    assert invoke("train", "--config", straight).exit_code == 0
    wb = torch.load(tmp_path / "b" / "run" / "train_state.pt", weights_only=True)["model"]
    wc = torch.load(tmp_path / "c" / "run" / "train_state.pt", weights_only=True)["model"]
    assert wb.keys() == wc.keys()
    assert all(torch.equal(wb[k], wc[k]) for k in wb)


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from lyricgen.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "generate" in r.stdout and "train" in r.stdout


def test_python_m_lyricgen_runs_help():
    r = subprocess.run([sys.executable, "-m", "lyricgen", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "vocab" in r.stdout


def test_default_corpus_has_star_lines():
    text = (REPO / "data" / "lyrics.txt").read_text(encoding="utf-8")
    assert sum("星星" in line for line in text.splitlines()) >= 10
    assert len([line for line in text.splitlines() if line.strip()]) >= 300


@pytest.mark.skipif(
    not (REPO.parent / "shared" / "corpora").is_dir(), reason="../shared/corpora absent"
)
def test_vocab_on_shared_jaychou_corpus():
    corpus = REPO.parent / "shared" / "corpora" / "jaychou_lyrics.txt"
    r = invoke(
        "vocab",
        "--config",
        REPO / "configs" / "jaychou_char.yaml",
        "--corpus",
        corpus,
        "--json",
        "--top",
        3,
    )
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["size"] > 2000 and 0.98 < info["coverage"] < 1.0  # min_freq 2 folds rare chars


def test_generate_streams_to_a_terminal(trained_run):
    """On a terminal (a pty here) the sample is written token by token and ends the same
    as the library's sample."""
    import os
    import pty
    import subprocess
    import sys
    import time

    from lyricgen.checkpoint import load_run
    from lyricgen.generate import SamplingOptions, generate

    _, vocab, model = load_run(trained_run)
    expected = generate(model, vocab, "星星", SamplingOptions(seed=8, length=25))[0].text
    master, slave = pty.openpty()
    cmd = [sys.executable, "-m", "lyricgen", "generate", "--checkpoint", str(trained_run)]
    cmd += ["--start", "星星", "--seed", "8", "--length", "25", "--max-copy", "0"]
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    chunks = []
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, proc.stderr.read()
    out = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    assert out.rstrip("\n") == expected.rstrip("\n")
