"""Adaptive softmax (model.output: adaptive): exact log-probabilities, NumPy parity,
training, evaluation, generation, fine-tuning and the one-line errors."""

import json

import numpy as np
import pytest
import torch
import yaml

import lyricgen
from lyricgen.backends.numpy_rnn import AdaptiveSoftmax
from lyricgen.config import ModelConfig, load_config
from lyricgen.craft.options import SamplingOptions
from lyricgen.errors import ConfigError
from lyricgen.training.model import LyricsModel, check_cutoffs, default_cutoffs
from tests.conftest import tiny_config, write_corpus

from .helpers import cli

ADAPTIVE = {"output": "adaptive", "cutoffs": [6, 20], "tie_weights": False}


def test_default_cutoffs_cover_the_text_with_the_head():
    counts = [1000, 500, 300, 100, 50, 20, 10, 5, 5, 5, 2, 2, 1, 1, 1, 1] + [1] * 84
    cut = default_cutoffs(counts)
    assert sum(counts[: cut[0]]) >= 0.9 * sum(counts) > sum(counts[: cut[0] - 1])
    assert cut == sorted(cut) and cut[-1] < len(counts) - 1 and cut[1] == 4 * cut[0]


@pytest.mark.parametrize(
    "cutoffs, pattern",
    [([20, 6], "increasing"), ([0, 5], "positive"), ([6, 60], "exceed the vocabulary")],
)
def test_bad_cutoffs_are_one_line(cutoffs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        check_cutoffs(cutoffs, 50)


def test_log_probs_are_exact_and_numpy_matches_torch():
    torch.manual_seed(0)
    model = LyricsModel(50, ModelConfig(cell="gru", embedding_dim=8, hidden_size=16,
                                         num_layers=1, dropout=0.0, **ADAPTIVE)).eval()  # fmt: skip
    ids = torch.randint(0, 50, (3, 7))
    with torch.no_grad():
        logp, _ = model(ids)  # (B, T, V)
        assert torch.allclose(logp.exp().sum(-1), torch.ones(3, 7), atol=1e-5)
        nll, _ = model(ids[:, :-1], targets=ids[:, 1:], reduction="sum")
        direct = -logp[:, :-1].gather(-1, ids[:, 1:, None]).sum()
        assert torch.allclose(nll, direct, atol=1e-4)
    tensors = {k: v.numpy() for k, v in model.state_dict().items()}
    h = np.random.default_rng(1).normal(size=(4, 16)).astype(np.float32)
    with torch.no_grad():
        want = model.asm.log_prob(torch.from_numpy(h)).numpy()
    got = AdaptiveSoftmax(tensors, ADAPTIVE["cutoffs"])(h)
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.fixture(scope="module")
def adaptive_run(tmp_path_factory):
    from lyricgen.training.trainer import fit

    tmp = tmp_path_factory.mktemp("adaptive")
    corpus = write_corpus(tmp / "corpus.txt")
    cfg = load_config(tiny_config(tmp, corpus, model={"output": "adaptive"}))
    fit(cfg)
    return tmp / "run"


def test_training_chooses_cutoffs_and_saves_them(adaptive_run):
    saved = yaml.safe_load((adaptive_run / "config.yaml").read_text(encoding="utf-8"))
    cut = saved["model"]["cutoffs"]
    vocab = json.loads((adaptive_run / "vocab.json").read_text(encoding="utf-8"))
    assert cut == default_cutoffs(vocab["counts"])
    metrics = [json.loads(x) for x in (adaptive_run / "metrics.jsonl").read_text().splitlines()]
    assert (
        np.isfinite(metrics[-1]["val_bpc"]) and metrics[-1]["val_loss"] < metrics[0]["train_loss"]
    )


def test_both_backends_generate_the_same_text_with_constraints(adaptive_run):
    opts = SamplingOptions(lines=3, line_length=5, rhyme="auto", seed=3, num_samples=2)
    a = lyricgen.load(adaptive_run, backend="numpy").generate("星星", opts)
    b = lyricgen.load(adaptive_run, backend="torch").generate("星星", opts)
    assert [s.text for s in a] == [s.text for s in b]
    np.testing.assert_allclose(a[0].logprobs, b[0].logprobs, atol=1e-4)


def test_eval_scores_a_text_with_exact_probabilities(adaptive_run, tmp_path):
    text = write_corpus(tmp_path / "t.txt", repeat=1)
    r = cli("eval", "--checkpoint", adaptive_run, "--corpus", text, "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["ppl"] > 1 and np.isfinite(got["bpc"])


def test_fine_tuning_an_adaptive_base_puts_new_tokens_in_the_last_cluster(adaptive_run, tmp_path):
    from lyricgen.training.trainer import fit

    corpus = tmp_path / "new.txt"
    corpus.write_text("新的歌词在这里\n唱给远方的你\n" * 20, encoding="utf-8")
    cfg = load_config(tiny_config(tmp_path, corpus, model={"output": "adaptive"},
                                  train={"init_from": str(adaptive_run), "epochs": 1}))  # fmt: skip
    fit(cfg)
    (s,) = lyricgen.load(tmp_path / "run").generate("新", SamplingOptions(length=10, seed=1))
    assert s.text.startswith("新")


def test_full_base_into_an_explicit_adaptive_config_is_refused(trained_run, tmp_path, corpus):
    cfg = tiny_config(tmp_path, corpus)
    r = cli("train", "--config", cfg, "--init-from", trained_run, "--set", "model.output=adaptive")
    assert r.exit_code != 0 and "differs from the base run" in r.output


def test_adaptive_with_tied_weights_is_refused(tmp_path, corpus):
    cfg = tiny_config(tmp_path, corpus, model={"output": "adaptive", "tie_weights": True,
                                               "embedding_dim": 32})  # fmt: skip
    r = cli("train", "--config", cfg)
    assert r.exit_code != 0
    assert "tie_weights' cannot be used with model.output adaptive" in r.output
    cfg = tiny_config(tmp_path, corpus, model={"output": "adaptive", "cutoffs": [5, 3]})
    r = cli("train", "--config", cfg)
    assert r.exit_code != 0 and "increasing" in r.output
    cfg = tiny_config(tmp_path, corpus, model={"output": "adaptive", "cutoffs": [5, 5000]})
    r = cli("train", "--config", cfg)
    assert r.exit_code != 0 and "exceed the vocabulary" in r.output
