"""`generate --explain`: each token's probability, the entropy of the model's distribution and
the likeliest alternatives, the same from both backends, in JSON and on a terminal."""

import json
import math

import numpy as np
import pytest

import lyricgen
from lyricgen.craft.generate import N_ALTERNATIVES, explain_step
from lyricgen.craft.options import SamplingOptions
from lyricgen.errors import GenerationError

from .conftest import fresh_python
from .helpers import gen, one_line_error


def test_explain_step_reads_the_model_distribution():
    p = np.array([[0.5, 0.3, 0.1, 0.05, 0.03, 0.02, 0.0]])
    with np.errstate(divide="ignore"):
        lp = np.log(p)
    allowed = np.array([[True, False, True, True, True, True, True]])
    ((q, h, ids, probs, ok),) = explain_step(lp, np.array([2]), allowed, [0])
    assert q == pytest.approx(0.1)
    assert h == pytest.approx(-sum(x * math.log2(x) for x in p[0] if x > 0))
    assert ids.tolist() == [0, 1, 3, 4, 5]  # likeliest first, the chosen token left out
    assert probs.tolist() == pytest.approx([0.5, 0.3, 0.05, 0.03, 0.02])
    assert ok.tolist() == [True, False, True, True, True]


@pytest.mark.parametrize(
    "opts",
    [
        SamplingOptions(seed=3, length=12, explain=True, num_samples=2),
        SamplingOptions(seed=3, lines=2, line_length=5, explain=True),  # line candidates
    ],
)
def test_both_backends_explain_alike_and_p_is_the_logprob(trained_run, opts):
    a = lyricgen.load(trained_run, backend="numpy").generate("星星", opts)
    b = lyricgen.load(trained_run, backend="torch").generate("星星", opts)
    for x, y in zip(a, b, strict=True):
        assert x.tokens == y.tokens and len(x.why) == len(x.tokens)
        for wx, wy, lp in zip(x.why, y.why, x.logprobs, strict=True):
            assert wx.p == pytest.approx(math.exp(lp), rel=1e-4)
            assert wx.p == pytest.approx(wy.p, abs=1e-4)
            assert wx.entropy == pytest.approx(wy.entropy, abs=1e-3)
            assert [t for t, _, _ in wx.alternatives] == [t for t, _, _ in wy.alternatives]
            qs = [q for _, q, _ in wx.alternatives]
            assert len(qs) == N_ALTERNATIVES and qs == sorted(qs, reverse=True)
            assert 0 <= wx.entropy <= math.log2(len(lyricgen.load(trained_run).vocab))


def test_alternatives_a_form_forbids_are_marked(verse_run):
    opts = SamplingOptions(form="五绝", seed=2, explain=True, candidates=2)
    lyricist = lyricgen.load(verse_run, backend="numpy")
    (s,) = lyricist.generate("", opts)
    # the clause lengths decide what may come next: in a full clause of five no character,
    # inside one no mark or line break; the flags say so for every alternative shown
    from lyricgen.craft.rhyme import is_han

    in_clause, checked = 0, 0
    for tok, why in zip(s.tokens, s.why, strict=True):
        for alt, _, ok in why.alternatives:
            if (in_clause == 5 and is_han(alt)) or (0 < in_clause < 5 and not is_han(alt)):
                assert not ok, (s.text, tok, alt)
                checked += 1
        in_clause = in_clause + 1 if is_han(tok) else 0
    assert checked >= 5, s.text
    assert any(ok for w in s.why for _, _, ok in w.alternatives)  # not everything is masked
    # and exactly: replayed over the sample's tokens, the request's constraints allow each
    # alternative that is flagged allowed and forbid each one flagged not allowed
    from lyricgen.craft.constraints import Constraints
    from lyricgen.craft.generate import _context, prepare

    vocab = lyricist.vocab
    ids, prompt = _context(vocab, "", opts)
    req = prepare(vocab, "", opts, lyricist.copy_index)
    cons = Constraints(vocab, opts, ids, lyricist.copy_index, forms=req.forms, fixed=req.fixed)
    row = cons.start_state(vocab.encode(prompt))
    for tok, why in zip(s.tokens, s.why, strict=True):
        mask = cons.allowed(row)
        assert [ok for _, _, ok in why.alternatives] == [
            bool(mask[vocab.stoi[alt]]) for alt, _, _ in why.alternatives
        ], (s.text, tok)
        assert mask[vocab.stoi[tok]]  # the chosen token itself was allowed
        cons.advance(row, vocab.stoi[tok], 0.0)


def test_json_carries_the_explanation_and_plain_output_has_no_fields(trained_run):
    base = ["--start", "星星", "--seed", 1, "--length", 6]
    r = gen(trained_run, *base, "--explain", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert len(d["explain"]) == len(d["tokens"]) == 6
    first = d["explain"][0]
    assert set(first) == {"p", "entropy_bits", "alternatives"}
    assert set(first["alternatives"][0]) == {"token", "p", "allowed"}
    plain = json.loads(gen(trained_run, *base, "--json").stdout)
    assert "explain" not in plain and plain["tokens"] == d["tokens"]  # the same sample


def test_terminal_output_has_the_text_a_legend_and_a_row_per_token(trained_run):
    base = ["--start", "星星", "--seed", 1, "--length", 6, "--explain"]
    r = gen(trained_run, *base)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("星星")
    assert any("probability under the model" in x for x in lines)
    assert any("entropy" in x and "alternatives" in x for x in lines)  # the table's header
    rows = [x for x in lines if x.strip()[:1].isdigit() and "bits" in x]
    assert len(rows) == 6
    # each row is its token's: the number, the probability and the entropy of the same sample
    d = json.loads(gen(trained_run, *base, "--json").stdout)
    for i, (row, why) in enumerate(zip(rows, d["explain"], strict=True), 1):
        assert row.split()[0] == str(i), row
        assert f"{why['p']:.3f}" in row and f"{why['entropy_bits']:.2f} bits" in row, row


def test_explain_with_beam_is_refused_in_one_line(trained_run):
    with pytest.raises(GenerationError, match="leave out --beam"):
        SamplingOptions(beam=3, explain=True).validate()
    r = gen(trained_run, "--start", "星星", "--beam", 3, "--explain")
    one_line_error(r, "--beam")


def test_the_numpy_path_explains_without_torch(trained_run):
    fresh_python(
        f"""
        import sys
        import lyricgen
        from lyricgen.craft.options import SamplingOptions
        s = lyricgen.load({str(trained_run)!r}, backend="numpy").generate(
            "星星", SamplingOptions(seed=1, length=5, explain=True))
        assert len(s[0].why) == 5
        assert "torch" not in sys.modules
        """
    )
