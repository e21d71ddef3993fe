import numpy as np

from lyricgen.craft.sampling import choose, filter_logits

LOGITS = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))


def test_greedy_is_argmax_and_respects_bans():
    rng = np.random.default_rng(0)
    assert choose(LOGITS, rng, greedy=True).tolist() == [0]
    assert choose(LOGITS, rng, greedy=True, banned=[0]).tolist() == [1]


def test_top_k_and_top_p_limit_the_choices():
    rng = np.random.default_rng(0)
    big = np.repeat(LOGITS, 2000, axis=0)
    assert set(choose(big, rng, top_k=2).tolist()) == {0, 1}
    assert set(choose(big, rng, top_p=0.7).tolist()) == {0, 1}  # 0.5 < 0.7 <= 0.8
    assert set(choose(big, rng, top_p=0.4).tolist()) == {0}
    assert set(choose(big, rng).tolist()) == {0, 1, 2, 3}


def test_banned_token_is_never_sampled():
    rng = np.random.default_rng(1)
    big = np.repeat(LOGITS, 3000, axis=0)
    assert 0 not in set(choose(big, rng, banned=[0], temperature=2.0).tolist())


def test_frequencies_follow_the_distribution():
    rng = np.random.default_rng(2)
    picks = choose(np.repeat(LOGITS, 20000, axis=0), rng)
    freq = np.bincount(picks, minlength=4) / len(picks)
    assert np.allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.02)


def test_same_seed_same_choices_and_low_temperature_sharpens():
    a = choose(np.repeat(LOGITS, 50, axis=0), np.random.default_rng(5))
    b = choose(np.repeat(LOGITS, 50, axis=0), np.random.default_rng(5))
    assert a.tolist() == b.tolist()
    cold = filter_logits(LOGITS, temperature=0.1)
    assert np.exp(cold[0, 0] - cold[0, 1]) > 100
