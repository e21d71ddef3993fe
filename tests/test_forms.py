"""Forms (近体诗, 词牌), tones, rhyme books, --line-lengths and line candidates."""

import json

import numpy as np
import pytest

import lyricgen
from lyricgen.craft.books import PING, ZE, book
from lyricgen.craft.formcheck import clauses, score
from lyricgen.craft.forms import LEGEND, all_forms, find_form, jinti, parse_line_lengths
from lyricgen.craft.options import SamplingOptions
from lyricgen.errors import GenerationError

from .helpers import cli, gen, lines_of

# ------------------------------------------------------------------ books


def test_pingshui_counts_old_entering_tone_as_ze_and_xinyun_does_not():
    ps, xy = book("pingshui"), book("xinyun")
    for ch in "白国十一竹":  # 入声 in the old books, tone 1 or 2 in Mandarin
        assert ps.tones(ch) == {ZE}, ch
        assert PING in xy.tones(ch), ch
    assert ps.tones("东") == {PING} and "上平一东" in ps.groups("东")
    assert ps.tones("看") == {PING, ZE}  # 看 has readings in both classes: either will do
    assert ps.class_of("入声一屋") == ZE and xy.class_of("十唐") is None


def test_book_groups_by_any_name_and_one_line_suggestions():
    ps = book("pingshui")
    assert ps.parse_group("一东") == "上平一东" == ps.parse_group("上平一东")
    assert ps.parse_group("屋") == "入声一屋"
    with pytest.raises(GenerationError, match="not .*平水韵.*choose auto"):
        ps.parse_group("江阳")
    assert book("shisanzhe").parse_group("ang") == "江阳"


# ------------------------------------------------------------------ the forms


def test_jinti_patterns_follow_nian_and_dui():
    f = find_form("七律")
    assert f.name == "七律·平起首句入韵" and f.lines == 4 and len(f.clauses) == 8
    seconds = [c.tones[1] for c in f.clauses]
    for i in range(1, 8):  # 对 inside a couplet, 粘 across couplets
        assert (seconds[i] != seconds[i - 1]) == (i % 2 == 1), seconds
    assert [c.rhyme for c in f.clauses] == ["A", "A", None, "A", None, "A", None, "A"]
    assert all(c.tones[-1] == (PING if c.rhyme else ZE) for c in f.clauses)
    # 孤平 is avoided: a 平收 line with one fixed 平 before the rhyme keeps its opener fixed
    assert find_form("五绝·平起入韵").clauses[0].tones == "平平仄仄平"
    assert jinti("五绝", "仄起", False).clauses[0].tones == "中仄平平仄"
    assert find_form("五绝") is find_form("五绝·仄起首句不入韵")


def test_cipai_forms_hold_lengths_marks_rhymes_and_aliases():
    assert len([f for f in all_forms() if f.kind == "词牌"]) == 40
    f = find_form("如梦令")
    assert f.lengths == "6-6-5-6-2-2-6" and f.rhymes == {"A": ZE}
    assert [c.rhyme for c in f.clauses] == ["A", "A", None, "A", "A", "A", "A"]
    p = find_form("菩萨蛮")  # 换韵: four rhyme sets, 仄 and 平 in turn
    assert p.rhymes == {"A": ZE, "B": PING, "C": ZE, "D": PING}
    assert find_form("望江南") is find_form("忆江南") is find_form("望江南・忆江南")
    assert find_form("鹧鸪天").pattern().count("\n\n") == 1  # two stanzas
    assert "◎" in find_form("鹧鸪天").pattern() and "rhyme ◎" in LEGEND


def test_unknown_form_suggests_close_names():
    with pytest.raises(GenerationError, match="did you mean: .*鹧鸪天"):
        find_form("鹧鸪")
    with pytest.raises(GenerationError, match="lyricgen forms"):
        find_form("不存在的调")


@pytest.mark.parametrize("text", ["6,0,5", "6,-1", "6,a", "", "6,,5"])
def test_bad_line_lengths(text):
    with pytest.raises(GenerationError, match="--line-lengths"):
        parse_line_lengths(text)


def test_formcheck_scores_a_text_against_a_form():
    form = find_form("五绝·平起首句不入韵")  # 中平平仄仄，中仄仄平平。中仄平平仄，平平仄仄平。
    good = "青山迎远客，落日照归舟。\n小院花前坐，春风燕子楼。"
    s = score(good, form)
    assert (s.clauses_ok, s.clauses) == (4, 4)
    assert s.rhymes == 2 and s.rhymes_ok == 2  # 舟 and 楼: 下平十一尤
    assert s.tones_ok == s.tones
    bad = score("青山迎远客，落日照归舟。\n小院花前坐，春风燕子来。", form)
    assert bad.rhymes_ok == 1  # 来 is 上平十灰, 舟 is 下平十一尤
    short = score("青山迎远客，落日照归舟。", form)
    assert short.clauses_ok == 2 and short.clauses == 4 and short.rhymes == 2
    assert clauses("春风，\n\n细雨。") == [("春风", "，"), ("细雨", "。")]


# ------------------------------------------------------------------ generation


@pytest.mark.parametrize("name", ["七绝", "五律·仄起首句入韵", "如梦令", "菩萨蛮", "浣溪沙"])
def test_forms_are_kept_exactly(verse_run, name):
    lyr = lyricgen.load(verse_run)
    form = find_form(name)
    for seed in range(3):
        (s,) = lyr.generate("", SamplingOptions(form=name, seed=seed))
        assert s.variant in find_form(name).names or s.variant.startswith(name)
        r = score(s.text, find_form(s.variant)).rates()
        assert r == {"format_accuracy": 1.0, "tone_accuracy": 1.0, "rhyme_accuracy": 1.0}, s.text
        body = [ln for ln in s.text.split("\n") if ln]
        assert len(body) == form.lines  # laid out one corpus line per line
        assert s.text.count("\n\n") == sum(c.stanza_end for c in form.clauses)


def test_form_with_named_group_start_and_xinyun(verse_run):
    lyr = lyricgen.load(verse_run)
    (s,) = lyr.generate("", SamplingOptions(form="七绝", rhyme="七阳", seed=1))
    ps = book("pingshui")
    rhymed = [w[-1] for (w, _), c in zip(clauses(s.text), find_form(s.variant).clauses, strict=True)
              if c.rhyme]  # fmt: skip
    assert all("下平七阳" in ps.groups(ch) for ch in rhymed), s.text
    (s,) = lyr.generate("春风", SamplingOptions(form="七绝", seed=2))
    assert (
        s.text.startswith("春风")
        and score(s.text, find_form(s.variant)).rates()["tone_accuracy"] == 1
    )
    (s,) = lyr.generate("", SamplingOptions(form="七绝", rhyme_book="xinyun", seed=3))
    assert score(s.text, find_form(s.variant), "xinyun").rates()["tone_accuracy"] == 1.0


def test_tones_off_keeps_lengths_marks_and_rhyme(verse_run):
    lyr = lyricgen.load(verse_run)
    (s,) = lyr.generate("", SamplingOptions(form="七绝", tones="off", seed=4))
    r = score(s.text, find_form(s.variant)).rates()
    assert r["format_accuracy"] == 1.0 and r["rhyme_accuracy"] == 1.0


def test_both_backends_write_the_same_form(verse_run):
    opts = SamplingOptions(form="菩萨蛮", seed=5, num_samples=2)
    a = [s.text for s in lyricgen.load(verse_run, backend="numpy").generate("", opts)]
    b = [s.text for s in lyricgen.load(verse_run, backend="torch").generate("", opts)]
    assert a == b


def test_form_with_beam_and_acrostic(verse_run):
    lyr = lyricgen.load(verse_run)
    (s,) = lyr.generate("", SamplingOptions(form="五绝", beam=3))
    assert score(s.text, find_form(s.variant)).rates()["format_accuracy"] == 1.0
    (s,) = lyr.generate("", SamplingOptions(form="五绝", acrostic="春秋", seed=1))
    lines = [ln for ln in s.text.split("\n") if ln]
    assert [ln[0] for ln in lines] == ["春", "秋"]
    assert score(s.text, find_form(s.variant)).rates()["tone_accuracy"] == 1.0


def test_line_lengths_repeat_and_work_with_rhyme(verse_run):
    lyr = lyricgen.load(verse_run)
    opts = SamplingOptions(line_lengths="5,7", lines=4, rhyme="auto", seed=2)
    (s,) = lyr.generate("", opts)
    lines = lines_of(s.text)
    han = [sum("\u4e00" <= ch <= "\u9fff" for ch in ln) for ln in lines]
    assert han == [5, 7, 5, 7], s.text
    (s,) = lyr.generate("", SamplingOptions(line_lengths="3,4,5", seed=1))
    assert len(lines_of(s.text)) == 3  # no --lines: one line per entry


def test_candidates_raise_the_likelihood_of_each_line(verse_run, monkeypatch):
    # ranked by likelihood alone (no cost for repeated characters), more candidates give
    # likelier lines
    import lyricgen.craft.generate as G

    monkeypatch.setattr(G, "REPEAT_COST", 0.0)
    lyr = lyricgen.load(verse_run)
    one = [lyr.generate("", SamplingOptions(form="七律", candidates=1, seed=i))[0].perplexity
           for i in range(4)]  # fmt: skip
    many = [lyr.generate("", SamplingOptions(form="七律", candidates=16, seed=i))[0].perplexity
            for i in range(4)]  # fmt: skip
    assert np.median(many) < np.median(one)


def test_streaming_with_candidates_prints_the_kept_lines(verse_run):
    lyr = lyricgen.load(verse_run)
    got = []
    (s,) = lyr.generate(
        "", SamplingOptions(form="七绝", seed=3), on_token=lambda i, t: got.append(t)
    )
    assert "".join(got) == "".join(s.tokens)


# ------------------------------------------------------------------ the CLI


def test_cli_form_json_and_forms_listing(verse_run):
    r = gen(verse_run, "--form", "鹧鸪天", "--seed", "1", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert score(row["text"], find_form("鹧鸪天")).rates()["format_accuracy"] == 1.0
    r = cli("forms")
    assert r.exit_code == 0 and "如梦令" in r.stdout and "6-6-5-6-2-2-6" in r.stdout
    r = cli("forms", "如梦令")
    assert "◎" in r.stdout and "平 ○" in r.stdout
    r = cli("forms", "--json", "七绝")
    assert {f["kind"] for f in json.loads(r.stdout)} == {"近体诗"}


def test_eval_form_reports_the_accuracies(verse_run):
    r = cli("eval", "--checkpoint", verse_run, "--samples", "3", "--form", "七绝", "--json")
    assert r.exit_code == 0, r.output
    q = json.loads(r.stdout)["quality"]
    assert q["format_accuracy"] == q["tone_accuracy"] == q["rhyme_accuracy"] == 1.0
    assert q["form"].startswith("七绝") and q["seconds_per_sample"] > 0


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--form", "鹧鸪"], "did you mean: .*鹧鸪天"),
        (["--form", "七绝", "--line-length", "5"], "contradicts --line-length 5"),
        (["--form", "七绝", "--lines", "3"], "contradicts --lines 3"),
        (["--start", "春", "--tones", "form"], "--tones form needs --form"),
        (["--start", "春", "--line-lengths", "5,0"], "--line-lengths '5,0'"),
        (["--start", "春", "--line-lengths", "x"], "--line-lengths 'x'"),
        (["--start", "春", "--rhyme-book", "pingshui"], "applies to --form"),
        (["--form", "七绝", "--candidates", "4", "--beam", "2"], "choose one"),
        (["--form", "七绝", "--rhyme", "入声一屋"], "仄 group, but .* rhymes on 平"),
        (["--form", "七绝·仄起入韵", "--start", "东风"], "position 2 .*仄"),
        (["--form", "七绝", "--acrostic", "春"], "one head character per line"),
        (["--form", "七绝", "--length", "10"], "shorter than --form"),
    ],
)
def test_bad_form_options_are_one_line(verse_run, extra, pattern):
    import re

    r = gen(verse_run, *extra)
    assert r.exit_code != 0
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and re.search(pattern, lines[0]), r.output


def test_form_on_a_word_model_is_refused(word_run):
    r = gen(word_run, "--form", "七绝")
    assert r.exit_code != 0 and "character-level Chinese model" in r.output


def test_form_position_the_vocabulary_cannot_fill():
    from lyricgen.corpus.vocab import Vocab
    from lyricgen.craft.constraints import Constraints

    # only 平 characters: 七绝·仄起入韵's second position (仄) has nothing to take
    vocab = Vocab(["<unk>", "\n", "，", "。", *"东春山江天"])
    with pytest.raises(GenerationError, match="clause 1, position 2 .仄. under 平水韵"):
        Constraints(vocab, SamplingOptions(form="七绝·仄起入韵"), [1])


def test_a_mark_the_vocabulary_lacks_becomes_a_line_break(trained_run):
    # the shared tiny run's corpus has no punctuation at all
    (s,) = lyricgen.load(trained_run).generate("", SamplingOptions(form="五绝", seed=0))
    lines = [ln for ln in s.text.split("\n") if ln]
    assert [len(ln) for ln in lines] == [5, 5, 5, 5], s.text
