"""Every bad input exits non-zero with one line that says what to fix, no traceback,
and leaves no half-written files."""

import os
from pathlib import Path

import pytest

from .conftest import tiny_config, write_corpus
from .helpers import cli, lyricgen_process


def check_fails(args, pattern, code=None):
    r = cli(*args)
    assert r.exit_code != 0, r.output
    if code is not None:
        assert r.exit_code == code
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1, r.output
    assert pattern in err[0], err[0]
    assert "Traceback" not in r.output
    assert not isinstance(r.exception, Exception) or isinstance(r.exception, SystemExit)
    return r


def files_in(path: Path) -> set:
    return {p.name for p in path.iterdir()} if path.exists() else set()


@pytest.mark.parametrize(
    "content,pattern",
    [
        (None, "does not exist"),
        ("DIR", "is a directory"),
        (b"", "is empty"),
        (b"  \n\t\n \n", "is empty"),
        (b"\x00\x01\x02binary\x00", "looks binary"),
        ("星星在夜空里眨眼\n我们在风里唱歌\n".encode("gbk"), "data.encoding: gbk"),
        ("星星在夜空裡眨眼\n我們在風裡唱歌\n".encode("big5"), "data.encoding"),
        ("星星\n月亮\n".encode(), "fewer than one window"),
    ],
    ids=["missing", "directory", "empty", "whitespace", "binary", "gbk", "big5", "too-short"],
)
def test_bad_corpus(tmp_path, content, pattern):
    corpus = tmp_path / "corpus.txt"
    if content == "DIR":
        corpus.mkdir()
    elif content is not None:
        corpus.write_bytes(content)
    config = tiny_config(tmp_path, corpus)
    check_fails(["train", "--config", config], pattern)
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_gbk_corpus_reads_the_same_tokens_with_the_encoding_setting(tmp_path):
    from lyricgen.corpus.tokcache import tokenize_file

    utf8 = write_corpus(tmp_path / "utf8.txt")
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes(utf8.read_text(encoding="utf-8").encode("gbk"))
    a = tokenize_file(utf8, "char", "utf-8", 0.2, None)
    b = tokenize_file(gbk, "char", "gbk", 0.2, None)
    assert [a.types[i] for i in a.raw] == [b.types[i] for i in b.raw] and a.n_train == b.n_train
    # without the setting, the one-line error names it
    config = tiny_config(tmp_path, gbk, train={"epochs": 1})
    check_fails(["train", "--config", config], "data.encoding")


def test_bom_crlf_corpus_trains_exactly_like_plain(tmp_path):
    from safetensors.torch import load_file

    plain = write_corpus(tmp_path / "plain.txt")
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\n", b"\r\n"))
    runs = []
    for name, corpus in [("p", plain), ("c", crlf)]:
        (tmp_path / name).mkdir()
        cfg = tiny_config(tmp_path / name, corpus, train={"epochs": 1})
        assert cli("train", "--config", cfg).exit_code == 0
        runs.append(load_file(tmp_path / name / "run" / "model.safetensors"))
    assert all((runs[0][k] == runs[1][k]).all() for k in runs[0])


@pytest.mark.parametrize(
    "yaml_text,pattern",
    [
        ("model: [1, 2", "invalid YAML"),
        ("just a string\n", "must be a YAML mapping"),
        ("model:\n  hiden: 3\n", "unknown key 'model.hiden'"),
        ("model:\n  hidden_size: 1.5\n", "'model.hidden_size' must be an int"),
        ("model:\n  hidden_size: -1\n", "must be >= 1"),
        ("data:\n  batch_size: 0\n", "'data.batch_size' is 0"),
        ("model:\n  dropout: 1\n", "'model.dropout'"),
        ("model:\n  cell: lstmm\n", "choose one of rnn, lstm, gru"),
    ],
    ids=[
        "syntax",
        "not-mapping",
        "unknown-key",
        "wrong-type",
        "negative",
        "zero",
        "dropout-1",
        "cell",
    ],
)
def test_bad_yaml(tmp_path, yaml_text, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    check_fails(["train", "--config", path], pattern)


def test_missing_config_file(tmp_path):
    check_fails(["train", "--config", tmp_path / "nope.yaml"], "does not exist")


def test_bad_set_override(tmp_path, config):
    check_fails(["train", "--config", config, "--set", "model.cell"], "section.key=value")
    check_fails(["train", "--config", config, "--set", "model.size=3"], "unknown key 'model.size'")


@pytest.mark.parametrize(
    "extra,pattern",
    [
        (["--start", ""], "--start is empty"),
        (["--start", "   "], "--start is empty"),
        (["--start", "鑫鑫"], "'鑫' is not in the model's vocabulary"),
        (["--start", "星星", "--length", "0"], "--length is 0"),
        (["--start", "星星", "--length", "-5"], "--length is -5"),
        (["--start", "星星", "--length", "999999999"], "--length is 999999999"),
        (["--start", "星星", "--temperature", "0"], "--temperature is 0.0"),
        (["--start", "星星", "--temperature", "-1"], "--temperature is -1.0"),
        (["--start", "星星", "--top-p", "0"], "--top-p is 0.0"),
        (["--start", "星星", "--top-p", "1.5"], "--top-p is 1.5"),
        (["--start", "星星", "--top-k", "-1"], "--top-k is -1"),
        (["--start", "星星", "--num-samples", "0"], "--num-samples is 0"),
    ],
    ids=[
        "empty-start",
        "blank-start",
        "unknown-start",
        "length-0",
        "length-negative",
        "length-huge",
        "temperature-0",
        "temperature-negative",
        "top-p-0",
        "top-p-above-1",
        "top-k-negative",
        "num-samples-0",
    ],
)
def test_bad_generate_options(trained_run, extra, pattern):
    check_fails(["generate", "--checkpoint", trained_run, *extra], pattern)


def test_greedy_allows_zero_temperature_and_takes_the_likeliest_token(trained_run):
    import json

    base = ["generate", "--checkpoint", str(trained_run), "--start", "星星", "--greedy",
            "--length", "5", "--json", "--explain", "--repetition-penalty", "1"]  # fmt: skip
    r = cli(*base, "--temperature", "0")
    assert r.exit_code == 0, r.output
    sample = json.loads(r.stdout)
    # greedy: no alternative was likelier than the token taken
    for why in sample["explain"]:
        assert all(alt["p"] <= why["p"] + 1e-9 for alt in why["alternatives"] if alt["allowed"])
    again = json.loads(cli(*base, "--temperature", "1.5").stdout)
    assert again["tokens"] == sample["tokens"]  # the temperature does not matter to argmax


def _break_run(run, case):
    if case == "missing":
        import shutil

        shutil.rmtree(run)
    elif case.startswith("no-"):
        (
            run
            / {
                "no-vocab": "vocab.json",
                "no-weights": "model.safetensors",
                "no-config": "config.yaml",
            }[case]
        ).unlink()
    elif case == "mismatch":  # weights from a different architecture
        cfg = (run / "config.yaml").read_text(encoding="utf-8")
        (run / "config.yaml").write_text(
            cfg.replace("hidden_size: 32", "hidden_size: 48"), encoding="utf-8"
        )
    elif case == "truncated":
        data = (run / "model.safetensors").read_bytes()
        (run / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "corrupt-vocab":
        (run / "vocab.json").write_text("{not json", encoding="utf-8")


@pytest.mark.parametrize(
    "case,pattern",
    [
        ("missing", "does not exist"),
        ("no-vocab", "has no vocab.json"),
        ("no-weights", "has no model.safetensors"),
        ("no-config", "has no config.yaml"),
        ("mismatch", "does not fit config.yaml"),
        ("truncated", "corrupt or truncated"),
        ("corrupt-vocab", "vocab.json is corrupt"),
    ],
)
def test_run_directory_problems(tmp_path, trained_run, case, pattern):
    import shutil

    run = tmp_path / case
    shutil.copytree(trained_run, run)
    _break_run(run, case)
    check_fails(["generate", "--checkpoint", run, "--start", "星"], pattern)


def test_eval_on_empty_file(tmp_path, trained_run):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    check_fails(["eval", "--checkpoint", trained_run, "--corpus", empty], "is empty")


def test_existing_run_is_not_overwritten_silently(tmp_path, config, trained_run):
    import shutil

    shutil.copytree(trained_run, tmp_path / "run")
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    check_fails(["train", "--config", config], "already holds a trained run")
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before
    r = cli("train", "--config", config, "--overwrite", "--epochs", "1")
    assert r.exit_code == 0, r.output


def test_bad_corpus_leaves_no_run_directory(tmp_path):
    config = tiny_config(tmp_path, tmp_path / "missing.txt")
    check_fails(["train", "--config", config], "does not exist")
    assert not (tmp_path / "run").exists()


def copy_run(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of the shared trained run (3 epochs), to resume or damage without training."""
    import shutil

    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def test_resume_with_another_optimizer_is_refused(tmp_path, trained_run):
    copy_run(trained_run, tmp_path)
    check_fails(
        ["train", "--out", tmp_path / "run", "--resume", "--set", "train.optimizer=sgd"],
        "resume with the same optimizer",
    )


def test_resume_without_state(tmp_path, config):
    check_fails(["train", "--config", config, "--resume"], "does not exist")


class _Boom:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/nonexistent")


def test_pickle_checkpoint_is_refused(tmp_path, trained_run):
    """A train_state.pt whose unpickling would run code is refused, and the code never runs."""
    import shutil

    global MARKER
    MARKER = tmp_path / "pwned"
    run = tmp_path / "evil"
    shutil.copytree(trained_run, run)
    import torch

    buf = __import__("io").BytesIO()
    torch.save({"epoch": _Boom()}, buf)
    (run / "train_state.pt").write_bytes(buf.getvalue())
    check_fails(["train", "--out", run, "--resume"], "refusing to load")
    assert not MARKER.exists()


def test_unwritable_out_dir(tmp_path, config):
    if os.geteuid() == 0:
        target = "/proc/lyricgen-run"  # even root cannot create directories in /proc
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "run"
    check_fails(["train", "--config", config, "--out", target], "cannot write to run directory")


def test_usage_errors_are_one_line(tmp_path):
    r = lyricgen_process("generate", "--start", "星", "--length", "abc")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error:"), r.stderr


def test_second_writer_is_refused_and_stale_lock_is_ignored(tmp_path, trained_run):
    from lyricgen.run.files import RunLock

    run = copy_run(trained_run, tmp_path)
    with RunLock(run):  # as if another `lyricgen train` were writing this run
        r = check_fails(
            ["train", "--out", run, "--resume", "--epochs", "4"],
            "is in use by another lyricgen train",
        )
        assert f"pid {os.getpid()}" in r.stderr
    # the lock file is left behind, as after a SIGKILL, but no process holds it
    (run / ".lock").write_text("pid 999999 on gone-host", encoding="utf-8")
    r = cli("train", "--out", run, "--resume", "--epochs", "4")
    assert r.exit_code == 0, r.output
    assert "epoch   4" in r.output


def test_nan_loss_stops_with_advice_and_keeps_checkpoint(tmp_path, trained_run):
    copy_run(trained_run, tmp_path)
    best = (tmp_path / "run" / "model.safetensors").read_bytes()
    r = check_fails(
        [
            "train",
            "--out",
            tmp_path / "run",
            "--resume",
            "--epochs",
            "4",
            "--set",
            "train.lr=1e30",
            "--set",
            "train.clip_grad_norm=null",
        ],
        "train.lr",
    )
    assert "clip_grad_norm" in r.stderr
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == best


def test_one_huge_line_corpus(tmp_path):
    corpus = tmp_path / "one_line.txt"
    corpus.write_text("星星月亮" * 50_000, encoding="utf-8")  # 200k characters, no line break
    check_fails(["train", "--config", tiny_config(tmp_path, corpus)], "single line/song")
    assert not (tmp_path / "run").exists()


def test_full_disk_is_reported_and_keeps_last_good_files(tmp_path, config, monkeypatch):
    import errno

    import lyricgen.run.files as ckpt

    assert cli("train", "--config", config, "--epochs", "1").exit_code == 0
    run = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name[0] != "."}
    real = ckpt.atomic_write
    calls = {"n": 0}

    def failing(path, data):
        calls["n"] += 1
        if calls["n"] > 2:  # config and metrics are rewritten on resume; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(ckpt, "atomic_write", failing)
    check_fails(["train", "--out", run, "--resume", "--epochs", "2"], "No space left on device")
    for name, data in before.items():
        if name not in ("config.yaml", "metrics.jsonl"):
            assert (run / name).read_bytes() == data, name


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_fifo_corpus_fails_at_once_instead_of_hanging(tmp_path):
    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)  # reading it would block forever: nobody writes
    check_fails(["train", "--config", tiny_config(tmp_path, fifo)], "is a FIFO (named pipe)")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_corpus_fails_at_once(tmp_path):
    check_fails(["train", "--config", tiny_config(tmp_path, Path("/dev/zero"))], "is a device")


def test_fp16_on_a_cpu_is_refused_with_the_alternatives(tmp_path, config):
    check_fails(
        ["train", "--config", config, "--precision", "fp16"], "use --precision bf16 or fp32"
    )
    assert not (tmp_path / "run" / "train_state.pt").exists()


def test_unusable_cache_dir_is_one_line_with_the_setting_to_change(tmp_path, config):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x", encoding="utf-8")
    check_fails(
        ["train", "--config", config, "--set", f"data.cache_dir={blocker / 'cache'}"],
        "set data.cache_dir or LYRICGEN_CACHE_DIR",
    )
    assert not (tmp_path / "run").exists()
