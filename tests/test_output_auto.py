"""model.output auto: the training vocabulary's size settles the output layer, and the run
directory records what it chose, so loading, resuming and fine-tuning see a plain config."""

import pytest
import yaml

from lyricgen.config import ModelConfig, load_config
from lyricgen.training.loading import load_run
from lyricgen.training.model import LyricsModel
from lyricgen.training.trainer import fit

from .conftest import tiny_config


def _train(tmp_path, corpus, adaptive_from):
    model = {"output": "auto", "adaptive_from": adaptive_from, "tie_weights": True,
             "embedding_dim": 32, "hidden_size": 32}  # fmt: skip
    cfg = load_config(tiny_config(tmp_path, corpus, model=model, train={"epochs": 1}))
    fit(cfg)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text(encoding="utf-8"))
    return saved["model"], load_run(tmp_path / "run")


def test_a_large_vocabulary_gets_the_adaptive_softmax_untied(tmp_path, corpus):
    model, (cfg, vocab, net) = _train(tmp_path, corpus, adaptive_from=10)
    assert len(vocab) >= 10
    assert model["output"] == "adaptive" and model["tie_weights"] is False
    assert model["cutoffs"] and model["cutoffs"][-1] < len(vocab)
    assert cfg.model.output == "adaptive" and net.loss == "adaptive"


def test_a_small_vocabulary_keeps_the_full_softmax_tied(tmp_path, corpus):
    model, (cfg, vocab, net) = _train(tmp_path, corpus, adaptive_from=100_000)
    assert model["output"] == "full" and model["tie_weights"] is True
    assert model["cutoffs"] is None
    assert net.decoder.weight is net.embedding.weight


def test_an_unsettled_config_cannot_build_a_model():
    with pytest.raises(ValueError, match="auto is settled by training"):
        LyricsModel(20, ModelConfig(output="auto"))
