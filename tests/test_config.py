from pathlib import Path

import pytest
import yaml

from lyricgen.config import load_config, parse_override
from lyricgen.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("model: [1, 2", "invalid YAML at line"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("model:\n  hiden_size: 3\n", r"unknown key 'model.hiden_size'"),
        ("modle:\n  cell: gru\n", "unknown key 'modle'"),
        ("model:\n  hidden_size: big\n", "'model.hidden_size' must be an int"),
        ("model:\n  hidden_size: 0\n", "'model.hidden_size' is 0; it must be >= 1"),
        ("data:\n  seq_len: -4\n", "'data.seq_len' is -4"),
        ("model:\n  dropout: 1.0\n", "'model.dropout' is 1.0; it must be < 1"),
        ("model:\n  weight_drop: -0.1\n", "'model.weight_drop' is -0.1; it must be >= 0"),
        ("model:\n  cell: transformer\n", "choose one of rnn, lstm, gru"),
        ("model:\n  bidirectional: true\n", "cannot read the future"),
        ("model:\n  tie_weights: true\n  embedding_dim: 8\n  hidden_size: 16\n", "tie_weights"),
        ("data:\n  seq_len: 8\n  stride: 9\n", "stride"),
        ("train:\n  lr: 0\n", "'train.lr' is 0.0; it must be > 0"),
        ("data:\n  encoding: klingon\n", "data.encoding"),
        ("model: 3\n", "section 'model' must be a mapping"),
    ],
)
def test_bad_configs_name_key_and_file(tmp_path, text, pattern):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern) as err:
        load_config(path)
    assert str(path) in str(err.value) or "YAML" in str(err.value)
    assert "\n" not in str(err.value)


def test_overrides_win_and_are_typed(tmp_path):
    path = write(tmp_path, "model:\n  cell: lstm\ntrain:\n  lr: 0.1\n")
    cfg = load_config(
        path, dict([parse_override("model.cell=gru"), parse_override("train.lr=1e-3")])
    )
    assert cfg.model.cell == "gru" and cfg.train.lr == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="unknown key 'train.lrr'"):
        load_config(path, {"train.lrr": 1})


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_shipped_configs_are_valid(name):
    cfg = load_config(REPO / "configs" / name)
    assert cfg.data.level in ("char", "word", "space") and cfg.data.corpus
    assert cfg.model.cell in ("rnn", "lstm", "gru") and cfg.train.epochs >= 1
    assert not cfg.model.tie_weights or cfg.model.embedding_dim == cfg.model.hidden_size
    raw = yaml.safe_load((REPO / "configs" / name).read_text(encoding="utf-8"))
    for section, values in raw.items():  # every key the file sets arrived in the config
        if isinstance(values, dict):
            for key, value in values.items():
                assert getattr(getattr(cfg, section), key) == value, f"{section}.{key}"
