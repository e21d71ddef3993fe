"""Lyrics-shaped generation: every constraint is asserted on char and word models."""

import math
import unicodedata

import pytest

from lyricgen.backends.steppers import TorchStepper
from lyricgen.craft.generate import SamplingOptions, generate
from lyricgen.errors import GenerationError, UnknownTokenError
from lyricgen.training.loading import load_run

from .helpers import lines_of

MODES = {
    "sample": {},
    "greedy": {"greedy": True},
    "top-k": {"top_k": 5, "temperature": 1.2},
    "top-p": {"top_p": 0.5},
    "beam": {"beam": 3},
    "no-repeat": {"no_repeat_ngram": 2, "repetition_penalty": 1.0},
}


@pytest.fixture(params=["char", "word"])
def run(request, trained_run, word_run):
    return load_run(trained_run if request.param == "char" else word_run)


def write(run, start, opts, **kwargs):
    """`generate` on a loaded run (config, vocabulary, model) through the torch stepper."""
    _, vocab, model = run
    return generate(TorchStepper(model), vocab, start, opts, **kwargs)


def is_content(line):
    return all(unicodedata.category(c)[0] in "LN" for c in line)


@pytest.mark.parametrize("length", [5, None])
@pytest.mark.parametrize("mode", MODES)
def test_acrostic_starts_each_line(run, mode, length):
    """The one behavioural check of the acrostic (the front ends check their wiring)."""
    opts = SamplingOptions(acrostic="星我月", line_length=length, seed=4, **MODES[mode])
    for s in write(run, "", opts):
        lines = lines_of(s.text)
        assert len(lines) == 3, s.text
        assert [line[0] for line in lines] == ["星", "我", "月"], s.text
        if length is not None:
            assert all(len(line) == 5 and is_content(line) for line in lines), s.text


@pytest.mark.parametrize("mode", MODES)
def test_start_with_line_form(run, mode):
    opts = SamplingOptions(
        lines=4, line_length=7, seed=1, num_samples=1 if mode == "beam" else 3, **MODES[mode]
    )
    for s in write(run, "星星", opts):
        lines = lines_of(s.text)
        assert len(lines) == 4 and lines[0].startswith("星星"), s.text
        assert all(len(line) == 7 for line in lines), s.text


def test_lines_without_length_gives_exactly_m_lines(run):
    for s in write(run, "星星", SamplingOptions(lines=5, num_samples=8, seed=2, temperature=1.5)):
        lines = s.text.split("\n")
        assert len(lines) == 6 and lines[-1] == "", s.text  # 5 lines, each ended by a line break
        assert all(line.strip() for line in lines[:-1]), s.text  # blank lines do not count as lines


def test_length_stays_an_upper_bound(run):
    s = write(run, "星星", SamplingOptions(lines=50, length=10, seed=1))[0]
    assert len(s.tokens) == 10


def test_beam_search_is_deterministic(run):
    a = write(run, "星星", SamplingOptions(beam=4, length=20, seed=1, num_samples=2))
    b = write(run, "星星", SamplingOptions(beam=4, length=20, seed=99, num_samples=2))
    assert [s.text for s in a] == [s.text for s in b]
    assert len(a) == 2


def test_no_repeat_ngram(run):
    opts = SamplingOptions(greedy=True, no_repeat_ngram=3, length=60, repetition_penalty=1.0)
    for s in write(run, "星星", opts):
        toks = s.tokens
        grams = [tuple(toks[i : i + 3]) for i in range(len(toks) - 2)]
        assert len(grams) == len(set(grams))


def test_repetition_penalty_breaks_greedy_loops(trained_run):
    run = load_run(trained_run)
    plain, penalized = (
        write(run, "星星", SamplingOptions(greedy=True, length=80, repetition_penalty=p))[0]
        for p in (1.0, 2.0)
    )
    assert len(set(penalized.tokens)) > len(set(plain.tokens))


def test_stop_at_blank_line(trained_run):
    run = load_run(trained_run)
    opts = SamplingOptions(stop_at_blank=True, length=400, num_samples=8, seed=5, temperature=1.0)
    for s in write(run, "星星", opts):
        assert "\n\n" not in s.text.rstrip("\n")
        assert len(s.tokens) == 400 or s.tokens[-2:] == ["\n", "\n"]


def test_prefix_is_fed_but_not_printed(trained_run):
    run = load_run(trained_run)
    plain = write(run, "星星", SamplingOptions(seed=1, length=30))[0]
    moody = write(run, "星星", SamplingOptions(seed=1, length=30, prefix="月亮照着回家的路"))[0]
    assert moody.text.startswith("星星") and "月亮照着回家的路" not in moody.text[:10]
    assert moody.text != plain.text


def test_scores_are_model_log_probabilities(trained_run):
    run = load_run(trained_run)
    s = write(run, "星星", SamplingOptions(seed=1, length=12))[0]
    assert len(s.logprobs) == 12 and all(lp <= 0 for lp in s.logprobs)
    assert s.perplexity == pytest.approx(math.exp(-sum(s.logprobs) / 12))


def test_constraint_errors(trained_run):
    run = load_run(trained_run)
    with pytest.raises(UnknownTokenError, match="'鑫'"):
        write(run, "", SamplingOptions(acrostic="星鑫"))
    with pytest.raises(GenerationError, match="cannot be combined"):
        write(run, "星星", SamplingOptions(acrostic="星月"))
    with pytest.raises(GenerationError, match="--lines is 2 but --acrostic has 3"):
        write(run, "", SamplingOptions(acrostic="星月风", lines=2))
    with pytest.raises(GenerationError, match="--line-length is 2"):
        write(run, "星星月亮", SamplingOptions(line_length=2))


def test_on_token_streams_exactly_the_sample(trained_run):
    run = load_run(trained_run)
    seen = []
    opts = SamplingOptions(seed=8, length=25)
    s = write(run, "星星", opts, on_token=lambda i, tok: seen.append(tok))[0]
    assert seen == s.tokens


# --------------------------------------------------------------- rhyme and copy guard on real models


@pytest.mark.parametrize("mode", ["sample", "beam", "top-k"])
def test_rhyme_auto_on_trained_models(run, mode):
    from lyricgen.craft.rhyme import char_groups, last_han, primary_group

    opts = SamplingOptions(lines=4, line_length=5, rhyme="auto", seed=3, **MODES[mode])
    for s in write(run, "星星", opts):
        lines = lines_of(s.text)
        group = primary_group(last_han(lines[0]))
        assert len(lines) == 4 and all(len(line) == 5 for line in lines), s.text
        assert all(group in char_groups(last_han(line)) for line in lines[1:]), s.text


def test_max_copy_on_trained_models(run):
    from lyricgen.craft.originality import load_run_index

    cfg, vocab, _ = run
    index = load_run_index(cfg.out_dir, vocab, required=True)
    opts = SamplingOptions(lines=4, max_copy=3, num_samples=3, seed=2)
    for s in write(run, "星星", opts, copy_index=index):
        assert s.longest_copy[0] <= 3, (s.text, s.longest_copy)


def test_generate_length_counts_generated_tokens(trained_run):
    run = load_run(trained_run)
    for greedy in (False, True):
        opts = SamplingOptions(length=99, greedy=greedy, num_samples=3, seed=1)
        samples = write(run, "星星", opts)
        assert len(samples) == 3
        for s in samples:
            assert len(s.tokens) == 99 and s.text.startswith("星星")
            assert "<unk>" not in s.tokens
