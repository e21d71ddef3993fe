"""Shared fixtures: a tiny corpus and a tiny config, so every test trains in seconds."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml


def fresh_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `code` (dedented) in a fresh interpreter from the repository root and fail with its
    stderr unless it exits 0: the one helper for checks of what a module imports."""
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return r


def pytest_configure(config):
    """Token caches go to a throw-away folder, never the user's ~/.cache."""
    import os
    import tempfile

    os.environ.setdefault("LYRICGEN_CACHE_DIR", tempfile.mkdtemp(prefix="lyricgen-test-cache-"))


REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"

SONGS = [
    ["星星在夜空里眨眼", "我们在风里唱歌", "月亮照着回家的路", "梦里有你的笑"],
    ["雨落在城市的街", "我数着路灯走远", "你说明天会晴", "星星还在天边"],
    ["海风吹过夏天", "我们的故事很长", "一起看月亮升起", "星星落进海里"],
    ["火车开过山那边", "窗外的风很轻", "我想起你的名字", "夜空一片安静"],
]


def write_corpus(path: Path, songs=SONGS, repeat: int = 3) -> Path:
    text = "\n\n".join("\n".join(lines) for lines in songs * repeat) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def tiny_config(tmp_path: Path, corpus: Path, **sections) -> Path:
    """A config small enough to train in about a second on one core."""
    cfg = {
        "data": {
            "corpus": str(corpus),
            "level": "char",
            "seq_len": 16,
            "stride": 8,
            "batch_size": 16,
            "val_fraction": 0.2,
        },
        "model": {
            "cell": "gru",
            "embedding_dim": 16,
            "hidden_size": 32,
            "num_layers": 1,
            "dropout": 0.0,
        },
        "train": {
            "epochs": 2,
            "lr": 0.01,
            "seed": 7,
            "device": "cpu",
            "patience": None,
            "warmup_steps": 0,
            "num_threads": 1,
            "curves": False,  # drawing costs ~0.25 s an epoch; tests/test_plot.py turns it on
        },
        "out_dir": str(tmp_path / "run"),
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus.txt")


@pytest.fixture
def config(tmp_path: Path, corpus: Path) -> Path:
    return tiny_config(tmp_path, corpus)


def _shared_run(factory, name: str, songs=SONGS, repeat: int = 3, **sections) -> Path:
    """Train one tiny run for the read-only tests that share it; `sections` override the
    tiny config's (3 epochs by default)."""
    from lyricgen.config import load_config
    from lyricgen.training.trainer import fit

    tmp = factory.mktemp(name)
    corpus = write_corpus(tmp / "corpus.txt", songs, repeat)
    sections.setdefault("train", {"epochs": 3})
    cfg = load_config(tiny_config(tmp, corpus, **sections))
    fit(cfg)
    return Path(cfg.out_dir)


# The shared runs below are package-scoped: tests/ is one package, so each trains once per
# test run.


@pytest.fixture(scope="package")
def trained_run(tmp_path_factory) -> Path:
    """One tiny char-level run shared by read-only tests (generate, eval, vocab)."""
    return _shared_run(tmp_path_factory, "shared_run")


@pytest.fixture(scope="package")
def word_run(tmp_path_factory) -> Path:
    """A tiny word-level (jieba) run shared by read-only tests."""
    return _shared_run(
        tmp_path_factory, "word_run", data={"level": "word", "seq_len": 8, "stride": 4}
    )


@pytest.fixture(scope="package")
def lstm_adaptive_run(tmp_path_factory) -> Path:
    """A tiny LSTM with the adaptive softmax, one epoch: for what depends on the cell's two
    states or on an output layer of several matrices."""
    model = {"cell": "lstm", "output": "adaptive"}
    return _shared_run(
        tmp_path_factory, "lstm_adaptive_run", repeat=6, model=model, train={"epochs": 1}
    )


# Classical-style lines written for these tests (original text): enough 平 and 仄
# characters, rhymes and marks for a tiny model to write 近体诗 and 词牌 forms.
VERSE = [
    ["春风吹柳绿，细雨落花红。", "独坐南山下，闲听万壑松。", "白云飞远水，明月照孤峰。"],
    ["江上秋来早，寒林叶自黄。", "归舟何处去，一夜满天霜。", "故国千山外，清歌送夕阳。"],
    ["小院闲窗静，轻烟过竹林。", "东风吹不尽，流水到如今。", "莫问平生事，孤灯伴苦吟。"],
    ["十里长亭路，行人几度回。", "梅花开又落，残雪向谁来。", "醉里听长笛，青山入酒杯。"],
    ["夜深人不寐，楼上望长天。", "星汉西流去，相思又一年。", "花前常独立，心事付朝烟。"],
    ["落日孤城远，秋声满故园。", "高楼千古意，流水不能言。", "雁过长空静，云深白鹭翻。"],
]


@pytest.fixture(scope="package")
def verse_run(tmp_path_factory) -> Path:
    """A tiny char-level run on punctuated classical-style lines, for --form tests."""
    return _shared_run(tmp_path_factory, "verse_run", VERSE, 4, data={"min_freq": 1})
