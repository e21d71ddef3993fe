"""The token-id cache: the same splits as the in-memory path, reuse, rebuild when damaged,
nothing half-written after a failed write, and one-line errors for files that are not files."""

import errno
import os

import numpy as np
import pytest

from lyricgen.corpus import tokcache
from lyricgen.corpus.text import tokenize, train_val_split
from lyricgen.errors import CorpusError

from .conftest import write_corpus


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LYRICGEN_CACHE_DIR", str(folder))
    return folder


def tokens_of(tok, lo=0, hi=None):
    return [tok.types[i] for i in tok.raw[lo:hi].tolist()]


@pytest.mark.parametrize("songs", [True, False, "spaces"])
@pytest.mark.parametrize("level", ["char", "word"])
def test_split_and_tokens_equal_the_in_memory_path(tmp_path, cache, songs, level):
    """The cache's one-pass split holds out the same songs (or lines) as the in-memory
    split, also when the blank lines between songs hold spaces (text.is_blank)."""
    corpus = write_corpus(tmp_path / "c.txt")
    if not songs:  # one line per block: no blank lines
        corpus.write_text(corpus.read_text(encoding="utf-8").replace("\n\n", "\n"), "utf-8")
    if songs == "spaces":  # no empty line: the songs are separated by lines of spaces
        text = corpus.read_text(encoding="utf-8").replace("\n\n", "\n \u3000\n")
        corpus.write_text(text, "utf-8")
    text = corpus.read_text(encoding="utf-8")
    train_text, val_text = train_val_split(text, 0.2)
    tok = tokcache.tokenize_file(corpus, level, val_fraction=0.2)
    assert tokens_of(tok, 0, tok.n_train) == tokenize(train_text, level)
    assert tokens_of(tok, tok.n_train) == tokenize(val_text.rstrip("\n"), level) + ["\n"]
    assert tok.train_chars == len(train_text)
    if songs:  # the held-out part starts a song, after a blank line
        assert val_text.split("\n", 1)[0].strip()
        assert not train_text[:-1].rsplit("\n", 1)[-1].strip()


def test_second_run_reads_the_cache_and_a_changed_corpus_does_not(tmp_path, cache):
    corpus = write_corpus(tmp_path / "c.txt")
    first = tokcache.tokenize_file(corpus, "char", val_fraction=0.1)
    assert first.seconds > 0 and first.raw.dtype == np.uint16 and isinstance(first.raw, np.memmap)
    again = tokcache.tokenize_file(corpus, "char", val_fraction=0.1)
    assert again.seconds == 0 and again.folder == first.folder
    corpus.write_text(corpus.read_text(encoding="utf-8") + "新的一行\n", encoding="utf-8")
    changed = tokcache.tokenize_file(corpus, "char", val_fraction=0.1)
    assert changed.folder != first.folder and "新" in changed.types
    assert tokcache.tokenize_file(corpus, "word", val_fraction=0.1).folder != changed.folder


@pytest.mark.parametrize("damage", ["truncate", "flip", "types"])
def test_a_damaged_cache_is_detected_and_rebuilt(tmp_path, cache, damage):
    corpus = write_corpus(tmp_path / "c.txt")
    good = tokcache.tokenize_file(corpus, "char", val_fraction=0.1)
    expected = good.raw.tolist()
    ids = good.folder / "ids.bin"
    del good
    if damage == "truncate":
        os.truncate(ids, ids.stat().st_size - 6)
    elif damage == "flip":
        data = bytearray(ids.read_bytes())
        data[10] ^= 0xFF
        ids.write_bytes(bytes(data))
    else:
        (ids.parent / "types.json").write_text('["x"]', encoding="utf-8")
    rebuilt = tokcache.tokenize_file(corpus, "char", val_fraction=0.1)
    assert rebuilt.seconds > 0  # tokenized again, not read
    assert rebuilt.raw.tolist() == expected


def test_a_failed_cache_write_leaves_nothing_behind(tmp_path, cache, monkeypatch):
    corpus = write_corpus(tmp_path / "c.txt")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tokcache.json, "dumps", full_disk)  # fails after ids.bin is written
    with pytest.raises(CorpusError, match="cannot write the token cache .* free space"):
        tokcache.tokenize_file(corpus, "char", val_fraction=0.1)
    assert list(cache.iterdir()) == []  # no published folder, no temporary one
    monkeypatch.undo()
    monkeypatch.setenv("LYRICGEN_CACHE_DIR", str(cache))
    assert tokcache.tokenize_file(corpus, "char", val_fraction=0.1).seconds > 0


def test_parallel_segmentation_equals_one_process(tmp_path, cache, monkeypatch):
    corpus = write_corpus(tmp_path / "c.txt", repeat=20)
    serial = tokcache.tokenize_file(corpus, "word", val_fraction=0.1, cache_dir=str(tmp_path / "a"))
    monkeypatch.setattr(tokcache, "_PARALLEL_MIN_CHARS", 0)
    monkeypatch.setattr(tokcache, "_CHUNK_LINES", 7)
    monkeypatch.setattr(tokcache, "_workers", lambda: 2)
    pooled = tokcache.tokenize_file(corpus, "word", val_fraction=0.1, cache_dir=str(tmp_path / "b"))
    assert tokens_of(pooled) == tokens_of(serial) and pooled.n_train == serial.n_train


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs mkfifo")
def test_a_fifo_or_device_is_refused_at_once(tmp_path, cache):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(CorpusError, match="is a FIFO .*give a regular text file"):
        tokcache.tokenize_file(fifo, "char")
    if os.path.exists("/dev/zero"):
        with pytest.raises(CorpusError, match="is a device"):
            tokcache.tokenize_file("/dev/zero", "char")
