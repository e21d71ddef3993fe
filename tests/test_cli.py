"""The CLI end to end through typer's CliRunner, plus real subprocess runs."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import REPO, tiny_config
from .helpers import cli, cli_without, gen, lyricgen_process


def test_train_generate_eval_vocab(tmp_path, config):
    out = tmp_path / "run"
    r = cli("train", "--config", config, "--epochs", 2)
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

    r = gen(out, "--start", "星星", "--length", 30, "--seed", 3)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("星星")
    again = gen(out, "--start", "星星", "--length", 30, "--seed", 3)
    assert again.stdout == r.stdout

    r = cli("eval", "--checkpoint", out, "--corpus", config.parent / "corpus.txt", "--json")
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout)
    assert {"ppl", "bpc", "tokens", "chars"} <= set(stats) and stats["ppl"] > 1

    r = cli("vocab", "--checkpoint", out, "--json", "--lookup", "星", "--lookup", "鑫")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["lookups"][0]["id"] is not None and info["lookups"][1]["id"] is None

    r = cli("vocab", "--config", config, "--top", 5)
    assert r.exit_code == 0, r.output
    assert "size:" in r.stdout and "coverage" in r.stdout


def test_word_model_accepts_multi_word_start(tmp_path, corpus):
    config = tiny_config(tmp_path, corpus, data={"level": "word", "seq_len": 8, "stride": 4})
    assert cli("train", "--config", config).exit_code == 0
    r = gen(tmp_path / "run", "--start", "我们的星星", "--length", 10)
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("我们的星星")


def test_resume_continues_to_more_epochs(tmp_path, config):
    assert cli("train", "--config", config, "--epochs", 1).exit_code == 0
    r = cli("train", "--out", tmp_path / "run", "--resume", "--epochs", 3)
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]


def test_help_does_not_import_torch():
    r = cli_without(["--help"], ("torch",))
    assert "generate" in r.stdout and "train" in r.stdout


def test_python_m_lyricgen_runs_help():
    r = lyricgen_process("--help")
    assert r.returncode == 0 and "vocab" in r.stdout
    assert "--version" in r.stdout and "--install-completion" not in r.stdout


@pytest.mark.skipif(
    not (REPO.parent / "shared" / "corpora").is_dir(), reason="../shared/corpora absent"
)
def test_vocab_on_shared_jaychou_corpus():
    corpus = REPO.parent / "shared" / "corpora" / "jaychou_lyrics.txt"
    config = REPO / "configs" / "jaychou_char.yaml"
    r = cli("vocab", "--config", config, "--corpus", corpus, "--json", "--top", 3)
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["size"] > 2000 and 0.98 < info["coverage"] < 1.0  # min_freq 2 folds rare chars


def test_generate_streams_to_a_terminal(trained_run):
    """On a terminal (a pty here) the sample is written token by token and ends the same
    as the library's sample."""
    import os
    import pty
    import time

    from lyricgen.backends.steppers import TorchStepper
    from lyricgen.craft.generate import SamplingOptions, generate
    from lyricgen.training.loading import load_run

    _, vocab, model = load_run(trained_run)
    expected = generate(TorchStepper(model), vocab, "星星", SamplingOptions(seed=8, length=25))[
        0
    ].text
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


def test_cli_json_output(trained_run):
    r = gen(
        trained_run, "--start", "星星", "--json", "--num-samples", 2, "--length", 9, "--seed", 1
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert len(row["tokens"]) == len(row["logprobs"]) == 9
        assert row["text"].startswith("星星") and row["perplexity"] > 1


def test_cli_acrostic_and_line_form_reach_the_library(word_run):
    """The acrostic itself is checked once, in test_generate; here: the flags arrive."""
    import lyricgen
    from lyricgen.craft.options import SamplingOptions

    args = ["--acrostic", "我星", "--line-length", "5", "--seed", "2", "--backend", "numpy"]
    r = gen(word_run, *args)
    assert r.exit_code == 0, r.output
    opts = SamplingOptions(acrostic="我星", line_length=5, seed=2)
    (want,) = lyricgen.load(word_run, backend="numpy").generate("", opts)
    assert r.stdout.strip() == want.text.strip()


def test_interactive_reads_until_eof(trained_run):
    script = "星星\n:temperature 0.5\n:bogus 3\n:acrostic 星月\n\n:acrostic\n月亮\n"
    r = gen(trained_run, "--interactive", "--length", 6, "--seed", 1, input=script)
    assert r.exit_code == 0, r.output
    out = r.stdout.strip().split("\n")
    assert out[0].startswith("星星")
    assert out[1].startswith("星") and out[2].startswith("月")  # the acrostic sample
    assert out[-1].startswith("月亮") or any(line.startswith("月亮") for line in out[3:])
    assert "unknown option :bogus" in r.stderr


def test_version_and_shell_completion():
    import lyricgen

    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"lyricgen {lyricgen.__version__}"
    env = {**os.environ, "SHELL": "/bin/bash"}
    shown = lyricgen_process("--show-completion", "bash", env=env)
    assert shown.returncode == 0 and "COMPLETE=complete_bash" in shown.stdout, shown.stderr
