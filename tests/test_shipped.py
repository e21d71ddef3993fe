"""Shipped configs and corpus, from any folder (`pip install .` then use it anywhere)."""

import json

from lyricgen.frontend import shipped

from .conftest import REPO, write_corpus
from .helpers import cli, one_line_error

TINY = [
    "--set",
    "model.hidden_size=16",
    "--set",
    "model.embedding_dim=8",
    "--set",
    "model.num_layers=1",
    "--set",
    "train.curves=false",
    "--set",
    "train.num_threads=1",
    "--epochs",
    "1",
]


def test_train_and_generate_outside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ or data/ here
    r = cli("train", *TINY)
    assert r.exit_code == 0, r.output
    run = tmp_path / "checkpoints" / "default"  # run directories stay relative to here
    cfg = (run / "config.yaml").read_text(encoding="utf-8")
    assert str(REPO / "data" / "lyrics.txt") in cfg  # the shipped corpus
    r = cli("generate", "--start", "星星", "--length", "5", "--seed", "1")
    assert r.exit_code == 0 and r.stdout.startswith("星星"), r.output


def test_own_corpus_and_a_shipped_config_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = write_corpus(tmp_path / "my_lyrics.txt")
    r = cli("train", "--corpus", corpus, "--out", "mine", *TINY)
    assert r.exit_code == 0, r.output
    r = cli("vocab", "--config", "jaychou_char", "--corpus", corpus, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["level"] == "char"


def test_a_file_here_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "songci_char").write_text("data:\n  level: word\n", encoding="utf-8")
    assert shipped.find_config("songci_char").resolve() == tmp_path / "songci_char"
    assert shipped.find_config("jaychou_char").parent == shipped.configs_dir()


def test_unknown_config_name_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = cli("train", "--config", "nosuch")
    one_line_error(r, "no shipped config named 'nosuch'", code=1)
    assert "songci_char" in r.output  # the names it could have been


def test_configs_lists_the_shipped_configs():
    r = cli("configs")
    assert r.exit_code == 0
    names = [line.split()[0] for line in r.stdout.splitlines()[:-1]]
    assert names == sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))


def test_installed_layout_is_found(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "lyricgen"
    (pkg / "shipped_configs").mkdir(parents=True)
    (pkg / "shipped_data").mkdir()
    (pkg / "shipped_configs" / "default.yaml").write_text("# mine\n", encoding="utf-8")
    (pkg / "shipped_data" / "lyrics.txt").write_text("星星\n", encoding="utf-8")
    monkeypatch.setattr(shipped, "_PKG", pkg)
    monkeypatch.chdir(tmp_path)
    assert shipped.find_config(None) == pkg / "shipped_configs" / "default.yaml"
    assert shipped.resolve_data_path("data/lyrics.txt") == str(pkg / "shipped_data" / "lyrics.txt")
    assert shipped.resolve_data_path("data/other.txt") == "data/other.txt"
    assert shipped.list_configs() == [("default", pkg / "shipped_configs" / "default.yaml", "mine")]
