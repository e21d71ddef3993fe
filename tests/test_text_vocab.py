from pathlib import Path

import pytest

from lyricgen.corpus.text import detokenize, read_corpus, split_blocks, tokenize, train_val_split
from lyricgen.corpus.vocab import UNK, Vocab
from lyricgen.errors import CorpusError

from .conftest import REPO


def test_char_tokens_keep_line_breaks():
    assert tokenize("星星\n月亮", "char") == ["星", "星", "\n", "月", "亮"]
    assert detokenize(tokenize("星星\n月亮\n", "char"), "char") == "星星\n月亮\n"


def test_word_level_uses_jieba_and_keeps_lines():
    toks = tokenize("我们的爱\n星星在天上", "word")
    assert "\n" in toks
    assert "我们" in toks and "星星" in toks
    assert detokenize(toks, "word") == "我们的爱\n星星在天上"


def test_space_level_round_trip():
    toks = tokenize(" the cat sat \n on the mat", "space")
    assert toks == ["the", "cat", "sat", "\n", "on", "the", "mat"]
    assert detokenize(toks, "space") == "the cat sat\non the mat"


def test_bom_and_crlf_read_like_plain_utf8(tmp_path: Path):
    plain = tmp_path / "plain.txt"
    plain.write_bytes("星星\n月亮\n".encode())
    windows = tmp_path / "win.txt"
    windows.write_bytes(b"\xef\xbb\xbf" + "星星\r\n月亮\r\n".encode())
    assert read_corpus(windows) == read_corpus(plain) == "星星\n月亮\n"


def test_gbk_file_is_reported_and_readable_with_encoding(tmp_path: Path):
    p = tmp_path / "gbk.txt"
    p.write_bytes("星星在夜空里眨眼\n".encode("gbk"))
    with pytest.raises(CorpusError, match="data.encoding"):
        read_corpus(p)
    assert read_corpus(p, "gbk") == "星星在夜空里眨眼\n"


def test_split_by_songs_is_contiguous_and_complete():
    text = "a\nb\n\nc\nd\n\ne\nf\n\ng\nh\n"
    blocks = split_blocks(text)
    assert blocks == ["a\nb\n\n", "c\nd\n\n", "e\nf\n\n", "g\nh\n"]
    train, val = train_val_split(text, 0.2)
    assert train + val == text
    assert val == "g\nh\n"


def test_split_by_lines_without_song_boundaries():
    text = "".join(f"line {i}\n" for i in range(10))
    train, val = train_val_split(text, 0.2)
    assert train + val == text
    assert val.count("\n") == 2 and val.startswith("line 8")


def test_vocab_order_is_deterministic_and_cut_by_frequency():
    toks = list("abracadabra")
    v = Vocab.build(toks)
    assert v.itos == [UNK, "a", "b", "r", "c", "d"]  # by count, ties by token
    assert Vocab.build(list(reversed(toks))).itos == v.itos
    v2 = Vocab.build(toks, min_freq=2)
    assert v2.itos == [UNK, "a", "b", "r"]
    assert v2.encode(["c"]) == [v2.unk_id]
    assert v2.counts[v2.unk_id] == 2  # c and d were folded into <unk>
    assert Vocab.build(toks, max_size=3).itos == [UNK, "a", "b"]


def test_vocab_json_round_trip():
    v = Vocab.build(tokenize("星星\n月亮", "char"), level="char")
    w = Vocab.from_dict(__import__("json").loads(v.to_json()))
    assert w.itos == v.itos and w.counts == v.counts and w.level == "char"
    assert w.decode(w.encode(["星", "\n"])) == ["星", "\n"]


def test_vocab_suggests_entries_sharing_characters():
    v = Vocab.build(["星星", "星空", "月亮", "我们"], level="word")
    assert "星星" in v.suggest("星光")


def test_default_corpus_has_star_lines():
    text = (REPO / "data" / "lyrics.txt").read_text(encoding="utf-8")
    assert sum("星星" in line for line in text.splitlines()) >= 10
    assert len([line for line in text.splitlines() if line.strip()]) >= 300
