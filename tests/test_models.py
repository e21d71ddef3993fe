"""Shipped models: export, names, the default model, damage, the compact copy guard, and
fine-tuning from a shipped model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import lyricgen
from lyricgen.craft.clauseguard import ClauseGuard, build_guard, clauses_of
from lyricgen.run import models

from .conftest import REPO, tiny_config, write_corpus
from .helpers import cli, gen, one_line_error


@pytest.fixture(scope="module")
def shipped(verse_run, tmp_path_factory):
    """The tiny verse run exported as a shipped model `tiny` into a folder of its own."""
    out = tmp_path_factory.mktemp("shipped")
    r = cli("models", "export", verse_run, "--name", "tiny", "--guard",
            verse_run.parent / "corpus.txt", "--about", "a tiny test model", "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def as_shipped(shipped, monkeypatch):
    """The package's shipped models are the tiny one."""
    monkeypatch.setattr(models, "SHIPPED_DIR", shipped)
    monkeypatch.setattr(models, "DEFAULT_MODEL", "tiny")
    return shipped / "tiny"


def test_export_writes_half_precision_weights_a_guard_and_a_manifest(shipped, verse_run):
    from safetensors.numpy import load_file

    folder = shipped / "tiny"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["name"] == "tiny" and manifest["weights"] == "float16"
    assert {"model.safetensors", "vocab.json", "config.yaml", "copy_guard.npy"} <= set(
        manifest["files"]
    )
    for name, entry in manifest["files"].items():
        assert (folder / name).stat().st_size == entry["size"]
    tensors = load_file(folder / "model.safetensors")
    assert all(t.dtype == np.float16 for t in tensors.values())
    assert manifest["copy_guard"]["keys"]["clause"] > 0
    assert not list(shipped.glob(".*"))  # nothing left aside


def test_a_shipped_model_writes_by_name_and_says_so(as_shipped):
    r = gen("tiny", "--form", "五绝", "--seed", "3")
    assert r.exit_code == 0, r.output
    assert "model: tiny (shipped with lyricgen; a tiny test model)" in r.output
    lyr = lyricgen.load("tiny")
    assert lyr.copy_index is not None and lyr.copy_index.compact
    s = lyr.generate("", form="五绝", seed=4)[0]
    assert len(s.text.strip().splitlines()) == 2


def test_no_checkpoint_means_checkpoints_default_else_the_shipped_model(
    as_shipped, trained_run, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    r = cli("generate", "--start", "春风", "--lines", "2", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert "model: tiny (shipped" in r.output
    # once the user has trained checkpoints/default, that run is the default
    (tmp_path / "checkpoints").mkdir()
    os.symlink(trained_run, tmp_path / "checkpoints" / "default")
    r = cli("generate", "--start", "星星", "--lines", "2", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert "model: checkpoints/default" in r.output


def test_models_lists_the_shipped_models_and_the_runs(
    as_shipped, trained_run, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    os.symlink(trained_run, tmp_path / "checkpoints" / "mine")
    r = cli("models")
    assert r.exit_code == 0, r.output
    assert re.search(r"tiny\s+shipped \(default\), [\d.]+ MB, held-out [\d.]+ bpc", r.output)
    assert re.search(r"checkpoints/mine\s+your run, held-out [\d.]+ bpc", r.output)


def test_an_unknown_name_lists_the_shipped_models(as_shipped):
    one_line_error(gen("vers", "--start", "春风"), "shipped: tiny")


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_a_damaged_model_says_to_reinstall_and_loads_nothing(
    shipped, tmp_path, damage, monkeypatch
):
    import shutil

    copy = tmp_path / "models"
    shutil.copytree(shipped, copy)
    weights = copy / "tiny" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "truncate":
        weights.write_bytes(bytes(data[: len(data) // 2]))
    else:
        weights.unlink()
    monkeypatch.setattr(models, "SHIPPED_DIR", copy)
    one_line_error(gen("tiny", "--start", "春风"), "reinstall lyricgen")


def test_the_guard_keeps_every_clause_of_its_text_out(verse_run, tmp_path):
    """Guard the model against exactly what it writes unguarded: with the same seeds, no
    clause of 5 or more characters it writes then is one of those."""
    import dataclasses

    lyr = lyricgen.load(verse_run)
    plain = [lyr.generate("", form="五律", seed=seed, max_copy=0)[0].text for seed in range(8)]
    known = {c for t in plain for line in t.splitlines() for c in clauses_of(line) if len(c) >= 5}
    assert known
    build_guard(plain, tmp_path)
    guarded = dataclasses.replace(lyr, copy_index=ClauseGuard.load(tmp_path))
    for seed in range(8):
        text = guarded.generate("", form="五律", seed=seed)[0].text
        got = {c for line in text.splitlines() for c in clauses_of(line)}
        assert not got & known, text


def test_the_guard_filter_answers_clauses_runs_and_lines(tmp_path):
    meta = build_guard(
        ["床前明月光，疑是地上霜。\n春去也，花落也。\n一二三四五六七八九十\n"], tmp_path
    )
    assert meta["keys"] == {"gram": 4, "clause": 2, "line": 1}
    g = ClauseGuard.load(tmp_path)
    assert g.blocked("床前明月", "光亮").tolist() == [True, False]
    assert g.blocked("疑是地上", "霜").tolist() == [True]
    assert g.blocked("春去也，花落", "也").tolist() == [True]  # a line of short clauses
    assert g.blocked("甲一二三四五六", "七").tolist() == [True]  # 7 characters inside a clause
    assert g.blocked("明月", "光").tolist() == [False]  # too short to be a copy
    assert g.contains_line("床前明月光，疑是地上霜。") and not g.contains_line("举头望山月")
    assert meta["false_positive_rate"] < 0.001


def test_max_copy_below_the_guard_is_a_clear_error(as_shipped):
    one_line_error(gen("tiny", "--form", "五绝", "--max-copy", "3"), "compact copy guard")


def test_fine_tuning_from_a_shipped_model_by_name(as_shipped, tmp_path):
    corpus = write_corpus(tmp_path / "mine.txt", repeat=2)
    cfg = tiny_config(tmp_path, corpus, train={"epochs": 1})
    r = cli("train", "--config", cfg, "--init-from", "tiny")
    assert r.exit_code == 0, r.output
    saved = (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8")
    assert "init_from: tiny" in saved


def test_fine_tuning_a_word_level_config_from_a_char_model_says_what_fits(as_shipped, tmp_path):
    corpus = write_corpus(tmp_path / "mine.txt", repeat=2)
    cfg = tiny_config(tmp_path, corpus, data={"level": "word"})
    one_line_error(cli("train", "--config", cfg, "--init-from", "tiny"), "char-level config")


def test_the_shipped_verse_model_writes_a_correct_qijue_with_no_training(tmp_path):
    """The README's promise: on a fresh install, verse before any training."""
    if "verse" not in models.shipped_names():
        pytest.skip("this checkout has no shipped verse model")
    from lyricgen.craft.formcheck import score
    from lyricgen.craft.forms import find_form

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "lyricgen", "generate", "--form", "七绝",
                        "--start", "明月", "--seed", "1"], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "model: verse (shipped" in r.stderr
    text = r.stdout
    assert text.startswith("明月")
    variant = re.search(r"form: (\S+)", r.stderr).group(1)
    rates = score(text, find_form(variant)).rates()
    assert rates == {"format_accuracy": 1.0, "tone_accuracy": 1.0, "rhyme_accuracy": 1.0}, text


def test_serve_with_no_checkpoint_serves_the_shipped_model(as_shipped, tmp_path, monkeypatch):
    from lyricgen.frontend.serve import load_runs

    monkeypatch.chdir(tmp_path)
    (run,) = load_runs([])
    assert run.label.startswith("model: tiny (shipped")
    assert run.generate("", form="五绝", seed=1)[0].text


def test_songci_char_without_its_corpus_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(cli("train", "--config", "songci_char"), "lyricgen corpus get songci")
