"""`lyricgen vocab --similar` and `--map`: embedding neighbours and a PCA map, read from a run's
weights with NumPy."""

import json

import numpy as np
import pytest

from lyricgen.corpus.vocab import Vocab
from lyricgen.errors import UnknownTokenError
from lyricgen.inspection import neighbours

from .helpers import cli, one_line_error


def test_nearest_ranks_by_cosine_and_leaves_out_the_token_and_specials():
    vocab = Vocab(["<unk>", "a", "b", "c", "d"])
    vectors = np.array([[1, 1], [1, 0], [2, 0.1], [0, 1], [-1, 0]], dtype=float)
    got = neighbours.nearest(vectors, vocab, "a", 3)
    assert [t for t, _ in got] == ["b", "c", "d"]
    assert got[0][1] == pytest.approx(2 / np.hypot(2, 0.1))
    assert got[2][1] == pytest.approx(-1.0)


def test_pca_finds_the_direction_of_most_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * np.array([10, 3, 0.1, 0.1, 0.1])
    xy, var = neighbours.pca_2d(x)
    assert xy.shape == (200, 2) and var[0] > var[1] > 0.05
    assert abs(np.corrcoef(xy[:, 0], x[:, 0])[0, 1]) > 0.99


def test_similar_reads_both_layers_of_an_untied_run(trained_run):
    r = cli("vocab", "--checkpoint", trained_run, "--similar", "星", "--top", "4", "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["token"] == "星" and len(info["input"]) == len(info["output"]) == 4
    cos = [x["cosine"] for x in info["input"]]
    assert cos == sorted(cos, reverse=True) and all(-1 <= c <= 1 for c in cos)
    assert "星" not in [x["token"] for x in info["input"]]


def test_adaptive_output_vectors_cover_the_whole_vocabulary(lstm_adaptive_run):
    vocab, emb, out = neighbours.load_vectors(lstm_adaptive_run)
    assert emb.shape[0] == out.shape[0] == len(vocab) and out.shape[1] == 32


def test_a_token_outside_the_vocabulary_gets_suggestions(trained_run):
    with pytest.raises(UnknownTokenError, match="try one of"):
        neighbours.similar(trained_run, "鑫")
    r = cli("vocab", "--checkpoint", trained_run, "--similar", "鑫")
    one_line_error(r, "not in the model's")
    one_line_error(cli("vocab", "--similar", "星"), "--checkpoint")


def test_map_draws_a_png_and_refuses_a_missing_folder(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "map.png"
    r = cli("vocab", "--checkpoint", trained_run, "--map", out, "--top", "30")
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    r = cli("vocab", "--checkpoint", trained_run, "--map", tmp_path / "no" / "map.png")
    assert r.exit_code != 0 and "does not exist" in r.output
    assert not (tmp_path / "no").exists()


def test_tone_classes_and_their_correlation_with_a_component():
    classes = neighbours.tone_classes(["天", "月", "看", "月亮", "\n"])
    assert classes[:2] == ["平", "仄"] and classes[3:] == [None, None]  # 看 has both readings
    assert classes[2] is None
    rng = np.random.default_rng(3)
    cls = ["平" if i % 2 else "仄" for i in range(40)]
    xy = np.stack([rng.normal(size=40), [1.0 if c == "平" else -1.0 for c in cls]], axis=1)
    xy[:, 1] += rng.normal(scale=0.1, size=40)
    pc, r = neighbours.tone_correlation(xy, cls)
    assert pc == 2 and r > 0.9
    assert neighbours.tone_correlation(xy[:5], cls[:5]) is None  # too few to say
