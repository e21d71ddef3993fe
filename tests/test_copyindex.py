"""The copy index against brute force on small random texts with many repeats."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lyricgen.craft import copyindex
from lyricgen.craft.copyindex import CopyIndex, build_index, suffix_array
from lyricgen.errors import LyricgenError

from .conftest import fresh_python

SEP = 9  # the "vocabulary size" of the random texts below (ids 0..3)


# -- brute force -------------------------------------------------------------------------


def bf_starts(text: list[int], q: list[int], sep: int | None) -> list[int]:
    if not q or (sep is not None and sep in q):
        return []
    m = len(q)
    return [i for i in range(len(text) - m + 1) if text[i : i + m] == q]


def bf_followers(text: list[int], ctx: list[int], sep: int | None) -> list[int]:
    if not ctx:
        return sorted(set(text) - {sep})
    m = len(ctx)
    out = {
        text[i + m] for i in bf_starts(text, ctx, sep) if i + m < len(text) and text[i + m] != sep
    }
    return sorted(out)


def bf_longest(text: list[int], seq: list[int], sep: int | None, k: int) -> tuple[int, int]:
    best = (0, 0)
    for i in range(len(seq)):
        for length in range(min(k, len(seq) - i), best[1], -1):
            if bf_starts(text, seq[i : i + length], sep):
                best = (i, length)
                break
    return best


def random_text(rng: random.Random, n: int, alphabet: int = 4, seps: int = 2) -> list[int]:
    text = [rng.randrange(alphabet) for _ in range(n)]
    for _ in range(seps):
        text[rng.randrange(1, n - 1)] = SEP
    return text


def queries(rng: random.Random, text: list[int], k: int, count: int = 60) -> list[list[int]]:
    """n-grams of the text (some crossing a separator, some at its very end) and random ones."""
    out = [text[-m:] for m in range(1, k + 3)]  # the text's very end
    for _ in range(count):
        m = rng.randint(1, min(k + 2, len(text)))
        i = rng.randrange(len(text) - m + 1)
        out.append(text[i : i + m])
        out.append([rng.randrange(4) for _ in range(rng.randint(1, k + 2))])
    return out


def check_against_brute_force(
    index: CopyIndex, text: list[int], k: int, sep: int | None, seed: int
) -> None:
    rng = random.Random(seed)
    for q in queries(rng, text, k):
        starts = bf_starts(text, q, sep)
        assert index.count(q) == len(starts), q
        assert index.contains(q) == bool(starts), q
        assert index.followers(q).tolist() == bf_followers(text, q, sep), q
    assert index.followers([]).tolist() == bf_followers(text, [], sep)
    for _ in range(25):
        i = rng.randrange(len(text))
        seq = text[i : i + rng.randint(0, 2 * k)]
        seq = seq + [rng.randrange(4) for _ in range(rng.randint(0, 4))]
        if seq and rng.random() < 0.3:
            seq[rng.randrange(len(seq))] = rng.randrange(4)
        assert index.longest_match(seq) == bf_longest(text, seq, sep, k), seq
    assert index.longest_match([]) == (0, 0)
    assert index.longest_match([SEP]) == (0, 0)


# -- suffix array ------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 4, 64])
def test_suffix_array_sorted_by_first_k_tokens(k):
    rng = random.Random(k)
    text = random_text(rng, 300, alphabet=3)
    sa = suffix_array(np.array(text), k=k, sep=SEP)
    assert sa.dtype == np.int32
    assert sorted(sa.tolist()) == list(range(len(text)))

    def key(i: int) -> list[int]:
        head = text[i : i + k]
        return head[: head.index(SEP) + 1] if SEP in head else head

    keys = [key(i) for i in sa.tolist()]
    assert keys == sorted(keys)


def test_suffix_array_without_separator_and_edge_sizes():
    text = [2, 1, 2, 1, 2, 1, 0]
    expect = sorted(range(len(text)), key=lambda i: text[i:])
    assert suffix_array(np.array(text, dtype=np.uint32)).tolist() == expect
    assert suffix_array(np.zeros(0, dtype=np.uint16)).tolist() == []
    assert suffix_array(np.array([5])).tolist() == [0]


# -- queries -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_queries_match_brute_force(tmp_path, seed):
    rng = random.Random(seed)
    text = random_text(rng, rng.randint(60, 200))
    k = 6
    build_index(np.array(text), tmp_path / "ix", sep=SEP, k=k)
    check_against_brute_force(CopyIndex.load(tmp_path / "ix"), text, k, SEP, seed)


@pytest.mark.parametrize("seed", range(3))
def test_chunked_build_answers_like_unchunked(tmp_path, seed):
    rng = random.Random(100 + seed)
    text = random_text(rng, 150, alphabet=3, seps=4)
    k = 4
    build_index(np.array(text), tmp_path / "one", sep=SEP, k=k)
    build_index(np.array(text), tmp_path / "many", sep=SEP, k=k, chunk_tokens=7)
    one, many = CopyIndex.load(tmp_path / "one"), CopyIndex.load(tmp_path / "many")
    assert len(one.chunks) == 1 and len(many.chunks) == 22
    assert many.chunks[0] == (0, 7) and many.chunks[-1] == (147, 150)
    check_against_brute_force(many, text, k, SEP, seed)
    for q in queries(random.Random(seed), text, k):
        assert many.count(q) == one.count(q)
        assert many.followers(q).tolist() == one.followers(q).tolist()


def test_no_separator_and_a_text_shorter_than_k(tmp_path):
    text = [0, 1, 0, 1, 1]
    build_index(np.array(text), tmp_path / "ix", k=64)
    index = CopyIndex.load(tmp_path / "ix")
    check_against_brute_force(index, text, 64, None, 0)
    assert index.followers([0, 1]).tolist() == [0, 1]
    assert index.followers([1, 1]).tolist() == []  # the end of the text follows
    assert index.longest_match([7, 0, 1, 0, 1, 1, 0]) == (1, 5)


def test_longest_match_is_capped_at_k_and_prefers_the_earliest_start(tmp_path):
    text = list(range(8)) * 2
    build_index(np.array(text), tmp_path / "ix", k=4)
    index = CopyIndex.load(tmp_path / "ix")
    assert index.longest_match([9, 0, 1, 2, 3, 4, 5, 6, 7]) == (1, 4)
    assert index.longest_match([5, 6, 9, 1, 2]) == (0, 2)
    assert index.count([0, 1, 2, 3, 4, 5]) == 2  # longer than k: checked past the first k
    assert index.count([6, 7, 0, 1, 2, 3]) == 1
    assert index.followers([4, 5, 6, 7, 0]).tolist() == [1]


def test_empty_text(tmp_path):
    build_index(np.zeros(0, dtype=np.int64), tmp_path / "ix")
    index = CopyIndex.load(tmp_path / "ix")
    assert len(index) == 0 and index.chunks == []
    assert index.count([1]) == 0 and not index.contains([1])
    assert index.followers([1]).tolist() == [] and index.followers([]).tolist() == []
    assert index.longest_match([1, 2]) == (0, 0)


# -- storage -----------------------------------------------------------------------------


def test_meta_and_layout(tmp_path):
    build_index(np.array([0, 1, SEP, 1, 0]), tmp_path / "ix", sep=SEP, meta={"run": "a"}, k=4)
    index = CopyIndex.load(tmp_path / "ix")
    assert index.meta == {"run": "a"}
    assert (index.k, index.sep, len(index)) == (4, SEP, 5)
    assert sorted(p.name for p in (tmp_path / "ix").iterdir()) == [
        "ids.npy",
        "meta.json",
        "sa_0.npy",
    ]
    info = json.loads((tmp_path / "ix" / "meta.json").read_text())
    assert info["chunks"] == [[0, 5]] and info["n"] == 5 and info["format"] == copyindex.FORMAT
    assert np.load(tmp_path / "ix" / "sa_0.npy").dtype == np.int32


@pytest.mark.parametrize(
    ("top", "sep", "dtype"),
    [(65534, None, np.uint16), (65535, None, np.uint32), (10, 70000, np.uint16)],
)
def test_ids_dtype(tmp_path, top, sep, dtype):
    ids = np.array([0, top, 3, top])
    build_index(ids, tmp_path / "ix", sep=sep)
    stored = np.load(tmp_path / "ix" / "ids.npy")
    assert stored.dtype == dtype and stored.tolist() == ids.tolist()
    assert CopyIndex.load(tmp_path / "ix").followers([top]).tolist() == [3]


def test_separator_in_the_text_picks_the_dtype(tmp_path):
    build_index(np.array([0, 70000, 1]), tmp_path / "ix", sep=70000)
    assert np.load(tmp_path / "ix" / "ids.npy").dtype == np.uint32
    index = CopyIndex.load(tmp_path / "ix")
    assert index.followers([0]).tolist() == [] and index.count([70000]) == 0


def test_build_replaces_a_folder_whole_and_leaves_no_temporary(tmp_path):
    folder = tmp_path / "ix"
    build_index(np.array([0, 1, 2, 3] * 5), folder, k=4, chunk_tokens=6)
    (folder / "stray.txt").write_text("old")
    build_index(np.array([3, 2, 1]), folder, k=4, meta={"v": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]
    assert sorted(p.name for p in folder.iterdir()) == ["ids.npy", "meta.json", "sa_0.npy"]
    index = CopyIndex.load(folder)
    assert len(index) == 3 and index.meta == {"v": 2} and index.followers([2]).tolist() == [1]


def test_a_failed_build_keeps_the_old_index(tmp_path, monkeypatch):
    folder = tmp_path / "ix"
    build_index(np.array([0, 1, 2]), folder, meta={"v": 1})

    def boom(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(copyindex, "_sort_window", boom)
    with pytest.raises(MemoryError):
        build_index(np.array([2, 1, 0]), folder, meta={"v": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]
    assert CopyIndex.load(folder).meta == {"v": 1}


def test_a_killed_build_never_shows_a_half_written_folder(tmp_path):
    """A build killed mid-way leaves at most its tmp folder; `folder` is absent or whole."""
    folder = tmp_path / "ix"
    code = (
        "import os, numpy as np\n"
        "from lyricgen.craft import copyindex\n"
        "real = copyindex._sort_window\n"
        "def dying(*a, **kw):\n"
        "    real(*a, **kw)\n"
        "    os._exit(9)\n"
        "copyindex._sort_window = dying\n"
        f"copyindex.build_index(np.arange(50) % 7, {str(folder)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == 9
    assert not folder.exists()
    with pytest.raises(LyricgenError, match="does not exist"):
        CopyIndex.load(folder)


def _damage_cases(folder: Path) -> dict:
    def truncate(name: str) -> None:
        path = folder / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    def edit_meta(old: str, new: str) -> None:
        path = folder / "meta.json"
        path.write_text(path.read_text().replace(old, new))

    return {  # case: (damage, the file the message must name)
        "sa missing": (lambda: (folder / "sa_1.npy").unlink(), "sa_1.npy"),
        "ids missing": (lambda: (folder / "ids.npy").unlink(), "ids.npy"),
        "ids truncated": (lambda: truncate("ids.npy"), "ids.npy"),
        "ids empty": (lambda: (folder / "ids.npy").write_bytes(b""), "ids.npy"),
        "sa truncated": (lambda: truncate("sa_0.npy"), "sa_0.npy"),
        "meta garbage": (lambda: (folder / "meta.json").write_text("{not json"), "meta.json"),
        "meta wrong n": (lambda: edit_meta('"n": 6000', '"n": 6001'), "ids.npy"),
        "meta no k": (lambda: edit_meta('"k": 64', '"kk": 64'), "meta.json"),
        "meta missing": (lambda: (folder / "meta.json").unlink(), "meta.json"),
    }


@pytest.mark.parametrize("case", list(_damage_cases(Path("."))))
def test_load_of_a_damaged_folder_is_a_one_line_error(tmp_path, case):
    folder = tmp_path / "ix"
    ids = np.random.default_rng(0).integers(0, 50, 6000)
    build_index(ids, folder, chunk_tokens=4000)
    damage, culprit = _damage_cases(folder)[case]
    damage()
    with pytest.raises(LyricgenError) as info:
        CopyIndex.load(folder)
    message = str(info.value)
    assert "\n" not in message and str(folder) in message and "damaged" in message
    assert culprit in message


def test_load_of_a_missing_folder(tmp_path):
    with pytest.raises(LyricgenError, match="does not exist"):
        CopyIndex.load(tmp_path / "nope")


def test_arrays_are_memory_mapped(tmp_path):
    text = np.arange(10000) % 97
    build_index(text, tmp_path / "ix")
    index = CopyIndex.load(tmp_path / "ix")
    assert isinstance(index._ids.base, np.memmap) or isinstance(index._ids, np.memmap)
    assert index.count([5, 6, 7]) == len(bf_starts(text.tolist(), [5, 6, 7], None))


def test_module_does_not_import_torch():
    out = fresh_python("import sys, lyricgen.craft.copyindex; print('torch' in sys.modules)")
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("top", [3, 70000])  # uint16 (counted) and uint32 (sorted) ids
def test_followers_of_a_very_common_context(tmp_path, top):
    rng = np.random.default_rng(5)
    text = rng.integers(0, 4, 20000)
    text[rng.integers(0, 20000, 50)] = SEP
    text[rng.integers(0, 20000, 5)] = top
    build_index(text, tmp_path / "ix", sep=SEP)
    index = CopyIndex.load(tmp_path / "ix")
    listed = text.tolist()
    for ctx in ([1], [2], [top], [0, 1]):
        assert index.followers(ctx).tolist() == bf_followers(listed, ctx, SEP)


def test_a_second_run_on_the_same_text_copies_the_cached_index(tmp_path, caplog):
    import logging

    from lyricgen.corpus.vocab import Vocab
    from lyricgen.craft.copyindex import CopyIndex
    from lyricgen.craft.originality import INDEX_DIR, build_run_index
    from tests.conftest import write_corpus

    corpus = write_corpus(tmp_path / "c.txt")
    vocab = Vocab.build(corpus.read_text(encoding="utf-8"))
    cache = str(tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="lyricgen.craft.originality"):
        assert build_run_index(tmp_path / "a", vocab, corpus, cache_dir=cache)
        assert build_run_index(tmp_path / "b", vocab, corpus, cache_dir=cache)
    built = [m for m in caplog.messages if m.startswith("copy index:")]
    assert "from the cache" not in built[0] and "from the cache" in built[1]
    a, b = CopyIndex.load(tmp_path / "a" / INDEX_DIR), CopyIndex.load(tmp_path / "b" / INDEX_DIR)
    probe = vocab.encode(list("星星在夜空"))
    assert a.longest_match(probe) == b.longest_match(probe) and a.contains(probe[:3])
    assert b.meta["corpus"] == str(corpus)
    # the cached files are shared with the run (hard links) but its meta is its own: a
    # third run from a copy of the corpus elsewhere leaves the cache's and b's meta alone
    cached_meta = [m.read_text(encoding="utf-8") for m in Path(cache).rglob("meta.json")]
    moved = tmp_path / "moved" / "c.txt"
    moved.parent.mkdir()
    moved.write_bytes(corpus.read_bytes())
    assert build_run_index(tmp_path / "d", vocab, moved, cache_dir=cache)
    assert CopyIndex.load(tmp_path / "d" / INDEX_DIR).meta["corpus"] == str(moved)
    assert CopyIndex.load(tmp_path / "b" / INDEX_DIR).meta["corpus"] == str(corpus)
    assert [m.read_text(encoding="utf-8") for m in Path(cache).rglob("meta.json")] == cached_meta
    # another vocabulary is another index
    other = Vocab.build(corpus.read_text(encoding="utf-8") + "鑫")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lyricgen.craft.originality"):
        assert build_run_index(tmp_path / "c", other, corpus, cache_dir=cache)
    assert not any("from the cache" in m for m in caplog.messages)
