import torch

from lyricgen.data import (
    Stream,
    WindowDataset,
    eval_chunks,
    shuffled_batches,
    stateful_batches,
    window_starts,
)


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


def test_window_dataset_items_are_shifted_by_one():
    ids = torch.arange(50)
    ds = WindowDataset(ids, seq_len=8, stride=4)
    x, y = ds[3]
    assert torch.equal(y, x + 1)
    xb, yb = ds.batch(torch.tensor([0, 1]))
    assert xb.shape == (2, 8) and torch.equal(yb, xb + 1)


def test_shuffled_batches_depend_only_on_seed_and_epoch():
    ds = WindowDataset(torch.arange(200), 8, 4)
    a = shuffled_batches(ds, 5, seed=1, epoch=0)
    assert [b.tolist() for b in a] == [b.tolist() for b in shuffled_batches(ds, 5, 1, 0)]
    assert [b.tolist() for b in a] != [b.tolist() for b in shuffled_batches(ds, 5, 1, 1)]
    assert sorted(torch.cat(a).tolist()) == list(range(len(ds)))


def test_stateful_batches_continue_row_by_row():
    ids = torch.arange(103)
    batches = stateful_batches(ids, batch_size=4, seq_len=5)
    rows = torch.cat([x for x, _ in batches], dim=1)
    for r in rows:  # each row is one contiguous stretch of the stream
        assert torch.equal(r[1:] - r[:-1], torch.ones(len(r) - 1, dtype=torch.long))
    for x, y in batches:
        assert torch.equal(y, x + 1)


def test_eval_chunks_score_each_target_once():
    ids = torch.arange(1, 200)
    stream = Stream(ids, torch.ones_like(ids))
    targets = torch.cat([y.flatten() for _, y, _, _ in eval_chunks(stream, 4, 10)])
    assert len(set(targets.tolist())) == len(targets)
    assert len(targets) >= len(ids) - 4


def test_unknown_tokens_carry_a_spelling_cost():
    from lyricgen.data import make_stream
    from lyricgen.vocab import Vocab

    vocab = Vocab.build(["星星", "星星", "月亮", "\n"], level="word")
    s = make_stream(["星星", "太阳", "\n", "月亮"], vocab, "word")
    assert s.ids[1] == vocab.unk_id
    assert s.spell[1] > 0 and s.spell[0] == s.spell[2] == s.spell[3] == 0
    # a known character is cheaper to spell than an unseen one
    assert (
        make_stream(["星月"], vocab, "word").spell[0]
        < make_stream(["日月"], vocab, "word").spell[0]
    )
