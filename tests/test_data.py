import numpy as np
import torch

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
