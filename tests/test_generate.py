"""Lyrics-shaped generation: every constraint is asserted on char and word models."""

import json
import math
import unicodedata

import pytest
from typer.testing import CliRunner

from lyricgen.checkpoint import load_run
from lyricgen.cli import app
from lyricgen.errors import GenerationError, UnknownTokenError
from lyricgen.generate import SamplingOptions, generate

runner = CliRunner()

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


def lines_of(text):
    return text.rstrip("\n").split("\n")


def is_content(line):
    return all(unicodedata.category(c)[0] in "LN" for c in line)


@pytest.mark.parametrize("mode", MODES)
def test_acrostic_with_line_length(run, mode):
    _, vocab, model = run
    opts = SamplingOptions(acrostic="星我月", line_length=5, seed=4, **MODES[mode])
    for s in generate(model, vocab, "", opts):
        lines = lines_of(s.text)
        assert len(lines) == 3, s.text
        assert [line[0] for line in lines] == ["星", "我", "月"], s.text
        assert all(len(line) == 5 and is_content(line) for line in lines), s.text


@pytest.mark.parametrize("mode", MODES)
def test_start_with_line_form(run, mode):
    _, vocab, model = run
    opts = SamplingOptions(
        lines=4, line_length=7, seed=1, num_samples=1 if mode == "beam" else 3, **MODES[mode]
    )
    for s in generate(model, vocab, "星星", opts):
        lines = lines_of(s.text)
        assert len(lines) == 4 and lines[0].startswith("星星"), s.text
        assert all(len(line) == 7 for line in lines), s.text


def test_lines_without_length_gives_exactly_m_lines(run):
    _, vocab, model = run
    for s in generate(
        model, vocab, "星星", SamplingOptions(lines=5, num_samples=8, seed=2, temperature=1.5)
    ):
        lines = s.text.split("\n")
        assert len(lines) == 6 and lines[-1] == "", s.text  # 5 lines, each ended by a line break
        assert all(line.strip() for line in lines[:-1]), s.text  # blank lines do not count as lines


def test_acrostic_alone_starts_each_line(run):
    _, vocab, model = run
    s = generate(model, vocab, "", SamplingOptions(acrostic="我星月", seed=3))[0]
    lines = lines_of(s.text)
    assert len(lines) == 3 and [x[0] for x in lines] == list("我星月")


def test_length_stays_an_upper_bound(run):
    _, vocab, model = run
    s = generate(model, vocab, "星星", SamplingOptions(lines=50, length=10, seed=1))[0]
    assert len(s.tokens) == 10


def test_beam_search_is_deterministic(run):
    _, vocab, model = run
    a = generate(model, vocab, "星星", SamplingOptions(beam=4, length=20, seed=1, num_samples=2))
    b = generate(model, vocab, "星星", SamplingOptions(beam=4, length=20, seed=99, num_samples=2))
    assert [s.text for s in a] == [s.text for s in b]
    assert len(a) == 2


def test_no_repeat_ngram(run):
    _, vocab, model = run
    for s in generate(
        model,
        vocab,
        "星星",
        SamplingOptions(greedy=True, no_repeat_ngram=3, length=60, repetition_penalty=1.0),
    ):
        toks = s.tokens
        grams = [tuple(toks[i : i + 3]) for i in range(len(toks) - 2)]
        assert len(grams) == len(set(grams))


def test_repetition_penalty_breaks_greedy_loops(trained_run):
    _, vocab, model = load_run(trained_run)
    plain = generate(
        model, vocab, "星星", SamplingOptions(greedy=True, length=80, repetition_penalty=1.0)
    )[0]
    penalized = generate(
        model, vocab, "星星", SamplingOptions(greedy=True, length=80, repetition_penalty=2.0)
    )[0]
    assert len(set(penalized.tokens)) > len(set(plain.tokens))


def test_stop_at_blank_line(trained_run):
    _, vocab, model = load_run(trained_run)
    for s in generate(
        model,
        vocab,
        "星星",
        SamplingOptions(stop_at_blank=True, length=400, num_samples=8, seed=5, temperature=1.0),
    ):
        assert "\n\n" not in s.text.rstrip("\n")
        assert len(s.tokens) == 400 or s.tokens[-2:] == ["\n", "\n"]


def test_prefix_is_fed_but_not_printed(trained_run):
    _, vocab, model = load_run(trained_run)
    plain = generate(model, vocab, "星星", SamplingOptions(seed=1, length=30))[0]
    moody = generate(
        model, vocab, "星星", SamplingOptions(seed=1, length=30, prefix="月亮照着回家的路")
    )[0]
    assert moody.text.startswith("星星") and "月亮照着回家的路" not in moody.text[:10]
    assert moody.text != plain.text


def test_scores_are_model_log_probabilities(trained_run):
    _, vocab, model = load_run(trained_run)
    s = generate(model, vocab, "星星", SamplingOptions(seed=1, length=12))[0]
    assert len(s.logprobs) == 12 and all(lp <= 0 for lp in s.logprobs)
    assert s.perplexity == pytest.approx(math.exp(-sum(s.logprobs) / 12))


def test_constraint_errors(trained_run):
    _, vocab, model = load_run(trained_run)
    with pytest.raises(UnknownTokenError, match="'鑫'"):
        generate(model, vocab, "", SamplingOptions(acrostic="星鑫"))
    with pytest.raises(GenerationError, match="cannot be combined"):
        generate(model, vocab, "星星", SamplingOptions(acrostic="星月"))
    with pytest.raises(GenerationError, match="--lines is 2 but --acrostic has 3"):
        generate(model, vocab, "", SamplingOptions(acrostic="星月风", lines=2))
    with pytest.raises(GenerationError, match="--line-length is 2"):
        generate(model, vocab, "星星月亮", SamplingOptions(line_length=2))


def test_cli_json_output(trained_run):
    r = runner.invoke(
        app,
        [
            "generate",
            "--checkpoint",
            str(trained_run),
            "--start",
            "星星",
            "--json",
            "--num-samples",
            "2",
            "--length",
            "9",
            "--seed",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert len(row["tokens"]) == len(row["logprobs"]) == 9
        assert row["text"].startswith("星星") and row["perplexity"] > 1


def test_cli_acrostic_and_line_form(word_run):
    r = runner.invoke(
        app,
        [
            "generate",
            "--checkpoint",
            str(word_run),
            "--acrostic",
            "我星",
            "--line-length",
            "5",
            "--seed",
            "2",
        ],
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().split("\n")
    assert [x[0] for x in lines] == ["我", "星"] and all(len(x) == 5 for x in lines)


def test_interactive_reads_until_eof(trained_run):
    script = "星星\n:temperature 0.5\n:bogus 3\n:acrostic 星月\n\n:acrostic\n月亮\n"
    r = runner.invoke(
        app,
        [
            "generate",
            "--checkpoint",
            str(trained_run),
            "--interactive",
            "--length",
            "6",
            "--seed",
            "1",
        ],
        input=script,
    )
    assert r.exit_code == 0, r.output
    out = r.stdout.strip().split("\n")
    assert out[0].startswith("星星")
    assert out[1].startswith("星") and out[2].startswith("月")  # the acrostic sample
    assert out[-1].startswith("月亮") or any(line.startswith("月亮") for line in out[3:])
    assert "unknown option :bogus" in r.stderr


def test_on_token_streams_exactly_the_sample(trained_run):
    _, vocab, model = load_run(trained_run)
    seen = []
    s = generate(
        model,
        vocab,
        "星星",
        SamplingOptions(seed=8, length=25),
        on_token=lambda i, tok: seen.append(tok),
    )[0]
    assert seen == s.tokens


# --------------------------------------------------------------- rhyme and copy guard on real models


@pytest.mark.parametrize("mode", ["sample", "beam", "top-k"])
def test_rhyme_auto_on_trained_models(run, mode):
    from lyricgen.rhyme import char_groups, last_han, primary_group

    _, vocab, model = run
    opts = SamplingOptions(lines=4, line_length=5, rhyme="auto", seed=3, **MODES[mode])
    for s in generate(model, vocab, "星星", opts):
        lines = lines_of(s.text)
        group = primary_group(last_han(lines[0]))
        assert len(lines) == 4 and all(len(line) == 5 for line in lines), s.text
        assert all(group in char_groups(last_han(line)) for line in lines[1:]), s.text


def test_max_copy_on_trained_models(run):
    from lyricgen.originality import load_run_index

    cfg, vocab, model = run
    index = load_run_index(cfg.out_dir, vocab, required=True)
    opts = SamplingOptions(lines=4, max_copy=3, num_samples=3, seed=2)
    for s in generate(model, vocab, "星星", opts, copy_index=index):
        assert s.longest_copy[0] <= 3, (s.text, s.longest_copy)
