import numpy as np
import pytest
import torch

from lyricgen.corpus.vocab import Vocab
from lyricgen.training.data import (
    ShuffledBatches,
    StatefulBatches,
    Stream,
    WindowDataset,
    eval_chunks,
    make_stream,
    window_starts,
)


def identity_stream(n: int, start: int = 0) -> Stream:
    """Raw id i is vocabulary id i: batches show stream positions directly."""
    raw = np.arange(start, start + n, dtype=np.uint32)
    types = start + n
    return Stream(raw, np.arange(types), np.ones(types, np.int64), np.zeros(types))


def test_every_target_is_covered_every_epoch():
    for n, seq_len, stride in [
        (100, 10, 10),
        (101, 10, 3),
        (57, 8, 8),
        (12, 11, 5),
        (1000, 32, 16),
    ]:
        starts = window_starts(n, seq_len, stride)
        covered = set()
        for s in starts:
            covered.update(range(s + 1, s + seq_len + 1))
        assert covered == set(range(1, n)), (n, seq_len, stride)


def test_tutorial_style_coverage_is_tiny_compared_to_ours():
    # The tutorial's dataset draws starts 0..n/seq_len with stride 1: ~seq_len/n of the text.
    n, seq_len = 63_282, 32
    tutorial = set()
    for s in range(n // seq_len):
        tutorial.update(range(s + 1, s + seq_len + 1))
    assert len(tutorial) / n < 0.04
    assert len(window_starts(n, seq_len, seq_len)) * seq_len >= n - 1


def test_window_batches_are_time_major_and_shifted_by_one():
    ds = WindowDataset(identity_stream(50), seq_len=8, stride=4)
    x, y = ds[3]
    assert torch.equal(y, x + 1) and x[0] == 12
    xb, yb = ds.batch(np.array([0, 1]))
    assert xb.shape == (8, 2) and xb.dtype == torch.int64 and torch.equal(yb, xb + 1)
    assert xb[:, 1].tolist() == list(range(4, 12))


def test_shuffled_batches_depend_only_on_seed_and_epoch():
    ds = WindowDataset(identity_stream(200), 8, 4)

    def starts(b):
        return [b[i][0][0].tolist() for i in range(len(b))]

    a = ShuffledBatches(ds, 5, seed=1, epoch=0)
    assert starts(a) == starts(ShuffledBatches(ds, 5, 1, 0))
    assert starts(a) != starts(ShuffledBatches(ds, 5, 1, 1))
    seen = sorted(s for i in range(len(a)) for s in a[i][0][0].tolist())
    assert seen == sorted(ds.starts.tolist())  # every window once per epoch


def test_processes_split_each_global_batch_into_disjoint_parts():
    ds = WindowDataset(identity_stream(400), 8, 8)
    whole = ShuffledBatches(ds, 6, seed=3, epoch=2)
    parts = [ShuffledBatches(ds, 6, seed=3, epoch=2, rank=r, world=3) for r in range(3)]
    assert len(parts[0]) == len(ds) // 6  # the partial last batch is dropped
    for i in range(len(parts[0])):
        joined = torch.cat([p[i][0] for p in parts], dim=1)
        assert torch.equal(joined, whole[i][0])  # same global batch, same order


def test_stateful_batches_continue_column_by_column():
    batches = StatefulBatches(identity_stream(103), batch_size=4, seq_len=5)
    cols = torch.cat([batches[i][0] for i in range(len(batches))], dim=0)  # (L, B)
    for c in cols.t():  # each column is one contiguous stretch of the stream
        assert torch.equal(c[1:] - c[:-1], torch.ones(len(c) - 1, dtype=torch.long))
    for i in range(len(batches)):
        x, y = batches[i]
        assert torch.equal(y, x + 1)


def test_stateful_processes_own_disjoint_streams():
    whole = StatefulBatches(identity_stream(200), batch_size=4, seq_len=7)
    halves = [StatefulBatches(identity_stream(200), 4, 7, rank=r, world=2) for r in range(2)]
    for i in range(len(whole)):
        assert torch.equal(torch.cat([h[i][0] for h in halves], dim=1), whole[i][0])


def test_eval_chunks_score_each_target_once():
    stream = identity_stream(199, start=1)
    targets = torch.cat([y.flatten() for _, y, _, _ in eval_chunks(stream, 4, 10)])
    assert len(set(targets.tolist())) == len(targets)
    assert len(targets) >= len(stream) - 4
    shared = [
        t
        for r in range(3)
        for _, y, _, _ in eval_chunks(stream, 4, 10, rank=r, world=3)
        for t in y.flatten().tolist()
    ]
    assert sorted(shared) == sorted(targets.tolist())  # processes share the work exactly


def test_unknown_tokens_carry_a_spelling_cost():
    from lyricgen.corpus.vocab import Vocab

    vocab = Vocab.build(["星星", "星星", "月亮", "\n"], level="word")
    s = make_stream(["星星", "太阳", "\n", "月亮"], vocab)
    spell = s.spell_of[s.raw]
    assert s.ids()[1] == vocab.unk_id
    assert spell[1] > 0 and spell[0] == spell[2] == spell[3] == 0
    # a known character is cheaper to spell than an unseen one
    a, b = make_stream(["星月"], vocab), make_stream(["日月"], vocab)
    assert a.spell_of[a.raw[0]] < b.spell_of[b.raw[0]]


def songs_stream() -> tuple[Stream, list[list[int]]]:
    """Five songs (vocabulary id 0 is the line break), each closed by a blank line."""
    songs = [[1, 2, 0, 3, 0, 0], [4, 5, 6, 0, 0], [7, 0, 0, 0], [8, 9, 0, 10, 11, 0, 0], [12, 0]]
    raw = np.array([t for s in songs for t in s], dtype=np.uint32)
    kinds = np.array([2] + [0] * 12, np.int8)  # text.token_kind: 0 content, 2 line break
    return Stream(raw, np.arange(13), np.ones(13, np.int64), np.zeros(13), kinds), songs


def test_song_starts_follow_blank_lines():
    from lyricgen.training.data import song_starts

    stream, songs = songs_stream()
    starts = np.cumsum([0] + [len(s) for s in songs[:-1]])
    assert song_starts(stream).tolist() == starts.tolist()
    # read in small chunks (a memory map is read that way): the same starts
    for chunk in (1, 2, 3, 7):
        assert song_starts(stream, chunk=chunk).tolist() == starts.tolist()
    # without token kinds or blank lines: one song, the whole stream
    assert song_starts(identity_stream(50)).tolist() == [0]


@pytest.mark.parametrize("level", ["char", "word", "space"])
def test_song_starts_share_the_splits_blank_line(level):
    """A line of spaces (ASCII or ideographic) is blank to the song order exactly as it is to
    the train/validation split (text.is_blank): each song starts at its first line with
    content, at every level and for any chunk size; leading blank lines stay in song one."""
    from lyricgen.corpus.text import split_blocks, tokenize
    from lyricgen.training.data import make_stream, song_starts

    text = "\n \nfirst line\nsecond line\n \u3000\nthird song\n\n\t\n  indented song\nend\n"
    tokens = tokenize(text, level)
    vocab = Vocab.build(tokens, level=level)
    stream = make_stream(tokens, vocab, level)
    lines = text.split("\n")[:-1]
    # the expected starts: token offsets of the lines "third song" and "  indented song"
    offsets, pos = [], 0
    for line in lines:
        offsets.append(pos)
        pos += len(tokenize(line + "\n", level))
    want = [0, offsets[lines.index("third song")], offsets[lines.index("  indented song")]]
    assert pos == len(tokens)
    for chunk in (1, 3, 1 << 24):
        assert song_starts(stream, chunk=chunk).tolist() == want
    assert len(split_blocks(text)) == 3  # the split sees the same three songs


def test_stateful_songs_are_laid_out_anew_each_epoch():
    """With songs, each epoch reads every token exactly as often as in the stream's own
    order, every song whole and in one piece within its column (unless a column boundary
    cuts it), in an order that depends on the seed and the epoch only; processes cut the
    same layout."""
    from lyricgen.training.data import song_starts

    stream, songs = songs_stream()
    starts = song_starts(stream)
    plain = StatefulBatches(stream, batch_size=2, seq_len=3)

    def layout(batches, epoch):
        batches.set_epoch(epoch)
        xs = [batches[i] for i in range(len(batches))]
        for x, y in xs:  # targets are the next token of the same column
            assert x.shape == y.shape
        cols = torch.cat([x for x, _ in xs], dim=0)
        last = xs[-1][1][-1:]
        return torch.cat([cols, last], dim=0).t()  # (b, length) tokens read per column

    laid = {e: layout(StatefulBatches(stream, 2, 3, songs=starts, seed=5), e) for e in range(6)}
    flat = layout(plain, 0)
    for cols in laid.values():
        assert sorted(cols.flatten().tolist()) == sorted(flat.flatten().tolist())
        # each song's tokens appear consecutively (a column may end inside one song)
        text = cols.flatten().tolist()
        for song in songs[:-1]:
            body = song[: song.index(0)]
            assert any(text[i : i + len(body)] == body for i in range(len(text)))
    assert len({tuple(c.flatten().tolist()) for c in laid.values()}) > 1  # orders differ
    again = layout(StatefulBatches(stream, 2, 3, songs=starts, seed=5), 3)
    assert torch.equal(again, laid[3])  # a function of seed and epoch: resumes replay it
    other = [layout(StatefulBatches(stream, 2, 3, songs=starts, seed=6), e) for e in range(6)]
    assert any(not torch.equal(o, laid[e]) for e, o in enumerate(other))
    # two processes cut the same layout into disjoint columns
    halves = [StatefulBatches(stream, 2, 3, rank=r, world=2, songs=starts, seed=5) for r in (0, 1)]
    whole = StatefulBatches(stream, 2, 3, songs=starts, seed=5)
    for b in (*halves, whole):
        b.set_epoch(4)
    for i in range(len(whole)):
        assert torch.equal(torch.cat([h[i][0] for h in halves], dim=1), whole[i][0])
    # without songs (or with one) set_epoch changes nothing
    single = StatefulBatches(stream, 2, 3, songs=np.zeros(1, np.int64), seed=5)
    assert torch.equal(layout(single, 3), flat)
