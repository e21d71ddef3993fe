"""Word vocabularies that stay small: the default cap, and rare words spelled out in their
characters (data.rare: chars) instead of one <unk>."""

import json

import numpy as np
import pytest

import lyricgen
from lyricgen.config import WORD_VOCAB_CAP, DataConfig, load_config, rare_words, vocab_cap
from lyricgen.corpus.vocab import Vocab, stream_ids
from lyricgen.craft.options import SamplingOptions
from lyricgen.errors import ConfigError
from lyricgen.training.data import make_stream_from_types
from tests.conftest import tiny_config, write_corpus

COUNTS = [("月亮", 5), ("星星", 3), ("我", 10), ("\n", 4), ("银河", 1), ("月", 1)]


def test_the_cap_and_the_rare_policy_depend_on_the_level():
    assert vocab_cap(DataConfig(level="char")) is None
    assert vocab_cap(DataConfig(level="word")) == WORD_VOCAB_CAP
    assert vocab_cap(DataConfig(level="space")) == WORD_VOCAB_CAP
    assert vocab_cap(DataConfig(level="word", max_size=0)) is None  # 0: asked for no cap
    assert vocab_cap(DataConfig(level="char", max_size=300)) == 300
    assert rare_words(DataConfig(level="word")) == "chars"
    assert rare_words(DataConfig(level="space")) == "unk"


@pytest.mark.parametrize(
    "data, pattern",
    [
        ({"level": "space", "rare": "chars"}, "only level word"),
        ({"level": "char", "rare": "chars"}, "only level word"),
        ({"max_size": 1}, "0 for no cap or at least 2"),
        ({"rare": "spell"}, "choose one of chars, unk"),
    ],
)
def test_bad_word_vocabulary_settings_are_one_line(tmp_path, data, pattern):
    corpus = write_corpus(tmp_path / "c.txt")
    with pytest.raises(ConfigError, match=pattern):
        load_config(tiny_config(tmp_path, corpus, data=data))


def test_spelling_vocab_keeps_every_character_and_fills_the_rest_with_words():
    v = Vocab.from_counts(COUNTS, max_size=10, level="word", rare="chars")
    # every character (月 亮 星 我 \n 银 河) first, then the most frequent longer words
    assert set("月亮星我\n银河") <= set(v.itos)
    assert "月亮" in v and "星星" in v and "银河" not in v  # room for two words
    # counts are those of the text with 银河 spelled out: 银 and 河 once each
    assert v.counts[v.stoi["银"]] == 1 and v.counts[v.stoi["月亮"]] == 5
    assert v.counts[1:] == sorted(v.counts[1:], reverse=True)
    assert v.encode(["银河", "我"]) == [v.stoi["银"], v.stoi["河"], v.stoi["我"]]
    assert Vocab.from_dict(json.loads(v.to_json())).rare == "chars"


def test_a_spelled_stream_keeps_every_character_and_scores_only_unseen_ones():
    v = Vocab.from_counts(COUNTS, level="word", rare="chars", max_size=8)  # words: none
    types = ["月亮", "银河", "\n", "天"]  # 天 was never seen
    raw = np.array([0, 1, 2, 3, 0], dtype=np.uint32)
    ids = stream_ids(raw, types, v)
    assert v.decode(ids.tolist()) == ["月", "亮", "银", "河", "\n", "<unk>", "月", "亮"]
    s = make_stream_from_types(raw, types, v)
    got = s.ids()
    assert got.tolist() == ids.tolist()
    assert s.chars_of[got].sum() == 2 + 2 + 1 + 1 + 2  # the text's characters
    assert (s.spell_of[got] > 0).tolist() == [g == v.unk_id for g in got.tolist()]
    # a vocabulary without spelling maps one raw id to one id, through the table
    plain = Vocab.from_counts(COUNTS, level="word")
    assert stream_ids(raw, types, plain) is None


def test_a_word_model_spells_rare_words_and_writes_from_an_unknown_start(tmp_path):
    from lyricgen.training.trainer import fit

    corpus = write_corpus(tmp_path / "c.txt")
    cfg = load_config(tiny_config(tmp_path, corpus, data={"level": "word", "min_freq": 2}))
    history = fit(cfg)
    vocab = json.loads((tmp_path / "run" / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["rare"] == "chars"
    assert history[-1]["val_unk_rate"] < 0.05 and np.isfinite(history[-1]["val_bpc"])
    lg = lyricgen.load(tmp_path / "run", backend="numpy")
    rare_start = "星路"  # not a vocabulary entry, but both characters are
    assert rare_start not in lg.vocab
    out = lg.generate(rare_start, SamplingOptions(length=10, seed=1))
    assert out[0].text.startswith(rare_start)
