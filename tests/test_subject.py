"""Writing about something and with the writer: keywords, themes, templates, the variant of
a bare form name, revising and filling lines, choosing lines as you go."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lyricgen
from lyricgen.craft.formcheck import score
from lyricgen.craft.forms import find_form, parse_template
from lyricgen.craft.options import SamplingOptions
from lyricgen.craft.rhyme import is_han
from lyricgen.errors import GenerationError
from tests.helpers import cli, gen, one_line_error

PERFECT = {"format_accuracy": 1.0, "tone_accuracy": 1.0, "rhyme_accuracy": 1.0}


def lines_of(text: str) -> list[str]:
    """The text lines of a sample (a form's stanza break left out)."""
    return [ln for ln in text.split("\n") if ln.strip()]


def han(text: str) -> str:
    return "".join(c for c in text if is_han(c))


# ------------------------------------------------------------------ keywords


@pytest.mark.parametrize("form", ["五绝", "七绝", "五律", "如梦令"])
def test_every_keyword_appears_and_the_form_is_kept(verse_run, form):
    lyr = lyricgen.load(verse_run)
    for seed in range(4):
        (s,) = lyr.generate("", SamplingOptions(form=form, keywords="秋,月,故园", seed=seed))
        for w in ("秋", "月", "故园"):
            assert w in s.text, (w, s.text)
        assert score(s.text, find_form(s.variant)).rates() == PERFECT, s.text
        # each keyword stands in the line the plan gives it
        body = lines_of(s.text)
        for i, line in enumerate(s.plan.lines):
            for w in line:
                assert w in body[i], (w, i, s.text)


def test_keywords_are_placed_by_the_model_not_pinned_to_line_starts(verse_run):
    lyr = lyricgen.load(verse_run)
    starts = set()
    for seed in range(8):
        (s,) = lyr.generate("", SamplingOptions(form="七律", keywords="月", seed=seed))
        line = next(ln for ln in lines_of(s.text) if "月" in ln)
        starts.add(han(line).index("月"))
    assert len(starts) > 1  # the keyword lands where sampling puts it


def test_keywords_in_free_lines_with_lengths_rhyme_and_both_backends(verse_run):
    opts = SamplingOptions(lines=4, line_length=5, keywords="秋,月,风", rhyme="auto", seed=3)
    texts = []
    for backend in ("numpy", "torch"):
        (s,) = lyricgen.load(verse_run, backend=backend).generate("", opts)
        assert all(w in s.text for w in "秋月风"), s.text
        assert [len(han(ln)) for ln in lines_of(s.text)] == [5, 5, 5, 5]
        texts.append(s.text)
    assert texts[0] == texts[1]


def test_keywords_with_beam_search_and_acrostic(verse_run):
    lyr = lyricgen.load(verse_run)
    (s,) = lyr.generate("", SamplingOptions(form="五绝", keywords="明月", beam=3))
    assert "明月" in s.text and score(s.text, find_form(s.variant)).rates() == PERFECT
    (s,) = lyr.generate("", SamplingOptions(form="五绝", keywords="秋", acrostic="春夜", seed=1))
    assert [ln[0] for ln in lines_of(s.text)] == ["春", "夜"] and "秋" in s.text
    # a keyword that only fits a whole clause beside the heads takes a rhyming one, and the
    # other rhymes follow it
    opts = SamplingOptions(form="五绝", keywords="明月照孤峰", acrostic="春夜", seed=1)
    (s,) = lyr.generate("", opts)
    assert "明月照孤峰" in s.text and score(s.text, find_form(s.variant)).rates() == PERFECT


def test_prefer_mode_only_favours_and_plan_expands_with_related_words(verse_run, monkeypatch):
    lyr = lyricgen.load(verse_run)
    (s,) = lyr.generate("", SamplingOptions(form="五律", keywords="秋", seed=2))
    assert not any(ln["related"] for ln in s.plan.to_dict()["lines"])  # off by default
    (s,) = lyr.generate("", SamplingOptions(form="五律", keywords="秋", seed=2, expand="related"))
    plan = s.plan.to_dict()
    assert plan["keywords"] == ["秋"] and len(plan["lines"]) == 4
    related = [w for ln in plan["lines"] for w in ln["related"]]
    assert related and "秋" not in related  # words found near 秋 in the training text
    # the model's own embedding: the characters nearest 秋, as `vocab --similar` lists them
    # (every character a candidate, however rare)
    import lyricgen.craft.plan as P
    from lyricgen.inspection.neighbours import load_vectors, nearest

    monkeypatch.setattr(P, "EMBEDDING_FREQUENT", 1.0)
    (s,) = lyr.generate("", SamplingOptions(form="五律", keywords="秋", seed=2, expand="embedding"))
    near = [w for ln in s.plan.to_dict()["lines"] for w in ln["related"]]
    _, emb, _ = load_vectors(verse_run)
    listed = [t for t, _ in nearest(emb, lyr.vocab, "秋", 50) if is_han(t)]
    assert near and near == listed[: len(near)]
    hits = 0
    for seed in range(6):
        (s,) = lyr.generate(
            "", SamplingOptions(lines=2, keywords="秋", keyword_mode="prefer", seed=seed)
        )
        hits += "秋" in s.text
    assert 0 < hits  # favoured, not forced


def test_theme_chooses_keywords_and_prints_them(verse_run):
    r = gen(verse_run, "--form", "五律", "--theme", "秋夜里思念故园", "--seed", "1", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    words = row["plan"]["keywords"]
    assert words and all(w in row["text"] for w in words)
    assert row["plan"]["theme_method"] == "tfidf"
    for method in ("textrank", "corpus"):
        row = json.loads(
            gen(verse_run, "--form", "五律", "--theme", "秋夜里思念故园", "--theme-method", method,
                "--seed", "1", "--json").stdout
        )  # fmt: skip
        assert row["plan"]["theme_method"] == method and row["plan"]["keywords"]
        assert all(w in row["text"] for w in row["plan"]["keywords"])
    one_line_error(gen(verse_run, "--theme", "hello world"), "gave no keyword this model can write")
    r = gen(verse_run, "--form", "五律", "--theme", "秋夜里思念故园", "--seed", "1", "--plan")
    assert r.exit_code == 0 and "keywords (--theme, tfidf):" in r.stderr
    assert "line 1:" in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--keywords", "秋,猫"], "'猫' (in '猫') is not in the model's vocabulary; try one of"),
        (["--form", "五绝", "--keywords", "明月照孤峰高"], "cannot stand anywhere in"),
        (["--form", "五绝", "--keywords", "春风,细雨,白云,明月,秋声,故国,流水,孤灯,青山,高楼,长天"],
         "do not fit together"),
        (["--keywords", "秋", "--theme", "秋夜"], "give one"),
        (["--keywords", " , "], "--keywords is empty"),
        (["--lines", "2", "--line-length", "3", "--keywords", "春风,细雨,白云"],
         "give fewer keywords or longer lines"),
        (["--form", "五绝", "--acrostic", "春夜", "--keywords", "明月照孤峰,白云飞远水,春风吹柳绿"],
         "nothing fits --form any variant of 五绝"),
    ],
)  # fmt: skip
def test_bad_keywords_are_one_line_errors(verse_run, args, message):
    r = gen(verse_run, *args, "--seed", "1")
    one_line_error(r, message)


# ------------------------------------------------------------------ templates


def test_template_keeps_every_fixed_character(verse_run):
    lyr = lyricgen.load(verse_run)
    tpl = "明月__，___松。/春风___，__落花红。"
    for seed in range(3):
        (s,) = lyr.generate("", SamplingOptions(template=tpl, seed=seed))
        got = [c for c in s.text if c not in "\n"]
        want = [c for c in tpl if c != "/"]
        assert len(got) == len(want), s.text
        assert all(w == "_" or w == g for w, g in zip(want, got, strict=True)), s.text
        assert len(lines_of(s.text)) == 2


def test_template_under_a_form_keeps_tones_and_fixed_characters(verse_run):
    lyr = lyricgen.load(verse_run)
    tpl = "春风_____，____落花红。/_______，_______。"
    for seed in range(3):
        (s,) = lyr.generate("", SamplingOptions(form="七绝", template=tpl, seed=seed))
        assert han(s.text)[:2] == "春风" and han(s.text)[11:14] == "落花红", s.text
        assert score(s.text, find_form(s.variant)).rates() == PERFECT, s.text
    # the template's fixed rhyme sets the group every rhyme keeps to
    (s,) = lyr.generate("", SamplingOptions(form="五绝", template="_____，_____。/_____，____峰。"))
    assert score(s.text, find_form(s.variant)).rates() == PERFECT


@pytest.mark.parametrize(
    "args, message",
    [
        (["--template", "春风细雨"], "--template has no _ to fill"),
        (["--template", "__，__", "--form", "五绝"], "clauses but 五绝"),
        (["--template", "___，_____。___，_____。", "--form", "五绝"], "clause 1 has 3 characters"),
        (["--template", "_____。_____，_____，_____。", "--form", "五绝"], "puts '，' there"),
        (["--template", "_____，_____。_____，____猫。", "--form", "五绝"], "not in the model's"),
        (["--template", "_红___，_____。_____，_____。", "--form", "五绝·仄起首句不入韵"],
         "'红' at clause 1, position 2"),
        (["--template", "__，__", "--lines", "3"], "leave --lines out"),
    ],
)  # fmt: skip
def test_bad_templates_are_one_line_errors(verse_run, args, message):
    one_line_error(gen(verse_run, *args, "--seed", "1"), message)


def test_parse_template_reads_lines_marks_and_stanzas():
    t = parse_template("明月__，____。\n\n__风_")
    assert t.slots[0] == ("明", "月", None, None) and t.marks == ("，", "。", "")
    assert t.line_ends == (False, True, True) and t.stanza_ends == (False, True, False)
    assert t.fixed() == {(0, 0): "明", (0, 1): "月", (2, 2): "风"}


# ------------------------------------------------------------------ a bare form name


def test_bare_form_name_takes_the_variant_that_fits(verse_run):
    # 七绝 means 平起首句入韵 when nothing else decides; 月 is 仄, which that variant's
    # second position refuses, so the 仄起 variants write it
    r = gen(verse_run, "--form", "七绝", "--start", "明月", "--seed", "1", "--json")
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)
    assert row["form"].startswith("七绝·仄起") and row["text"].startswith("明月")
    assert score(row["text"], find_form(row["form"])).rates() == PERFECT
    r = gen(verse_run, "--form", "七绝", "--start", "明月", "--seed", "1")
    assert "form: 七绝·仄起" in r.stderr
    # a named variant keeps its error, naming the character and the position
    one_line_error(
        gen(verse_run, "--form", "七绝·平起首句入韵", "--start", "明月"),
        "'月' at clause 1, position 2",
    )


def test_every_variant_of_a_bare_name_is_reachable(verse_run):
    lyr = lyricgen.load(verse_run)
    seen = {lyr.generate("", SamplingOptions(form="五绝", seed=s))[0].variant for s in range(12)}
    assert len(seen) >= 2 and all(v.startswith("五绝·") for v in seen)


# ------------------------------------------------------------------ repetition


def test_line_candidates_pay_for_repeated_characters(verse_run, monkeypatch):
    import lyricgen.craft.generate as G

    lyr = lyricgen.load(verse_run)

    def repeats(cost: float) -> float:
        monkeypatch.setattr(G, "REPEAT_COST", cost)
        shares = []
        for seed in range(6):
            (s,) = lyr.generate("", SamplingOptions(form="七律", seed=seed))
            chars = han(s.text)
            shares.append(1 - len(set(chars)) / len(chars))
        return float(np.mean(shares))

    assert repeats(G.REPEAT_COST) < repeats(0.0)


def test_a_long_text_may_repeat_within_its_allowance(verse_run):
    from lyricgen.craft.constraints import SampleState, TokenTable
    from lyricgen.craft.forms import find_form
    from lyricgen.craft.generate import REPEAT_COST, RepeatBudget, line_score, repeat_rate

    vocab = lyricgen.load(verse_run).vocab
    table = TokenTable.of(vocab)
    before = vocab.encode(list("春风吹柳绿细雨落花红独坐南山下闲听万壑松白云飞远水"))
    line = vocab.encode(list("春风明月照"))  # two characters already in the text
    row = SampleState(tokens=before + line, logprobs=[-1.0] * (len(before) + len(line)))
    seen = set(before)

    def score(rate: float, repeated: int = 0) -> float:
        budget = RepeatBudget(rate, written=len(before), repeated=repeated)
        return line_score(row, len(before), seen, table, budget)

    assert line_score(row, len(before), seen, table) == -1.0 - REPEAT_COST * 2 / 5  # no budget
    # 25 characters written and 5 in the line: 30 at 7% allow 2 repeats, at 4% one
    assert score(0.07) == -1.0
    assert score(0.04) == -1.0 - REPEAT_COST * 1 / 5
    # repeats already made use the allowance up
    assert score(0.07, repeated=2) == -1.0 - REPEAT_COST * 2 / 5
    assert RepeatBudget.of(before + vocab.encode(list("春风")), table, 0.1).repeated == 2
    # each form repeats as its poets do: a variant as its bare name, a long tune more
    assert repeat_rate(find_form("七绝·仄起首句入韵")) == repeat_rate(find_form("七绝"))
    assert repeat_rate(find_form("摸鱼儿")) > repeat_rate(find_form("浣溪沙"))


# ------------------------------------------------------------------ revise

DRAFT = "春风吹柳绿，细雨落花红。\n独坐南山下，闲听万壑松。\n白云飞远水，明月照孤峰。\n"


def test_revise_rewrites_only_the_named_lines(verse_run):
    lyr = lyricgen.load(verse_run)
    r = lyr.revise(DRAFT, [2], seed=1, show=3)
    old, new = DRAFT.rstrip("\n").split("\n"), r.text.split("\n")
    assert new[0] == old[0] and new[2] == old[2] and new[1] != old[1]
    assert r.form is None  # three couplets are no form: the line keeps its own shape
    assert len(han(new[1])) == 10 and new[1][5] == "，" and new[1].endswith("。")
    alts = r.alternatives[2]
    assert alts[0].text == new[1] and len(alts) >= 2
    assert [a.score for a in alts] == sorted((a.score for a in alts), reverse=True)
    assert all(a.score == pytest.approx(a.line_logprob + a.rest_logprob) for a in alts)
    assert all(a.rest_logprob < 0 for a in alts)  # line 3 follows and is scored


def test_revise_under_a_form_keeps_tones_and_the_kept_lines_rhyme(verse_run):
    lyr = lyricgen.load(verse_run)
    draft = "江上秋来早，寒林叶自黄。\n____\n故国千山外，清歌送夕阳。\n白云飞远水，明月照孤峰。"
    for seed in range(3):
        r = lyr.revise(draft, None, form="五律", seed=seed)
        lines = r.text.split("\n")
        assert lines[0] == "江上秋来早，寒林叶自黄。" and lines[2:] == draft.split("\n")[2:]
        assert score(lines[1], find_form(r.form)).clauses_ok >= 0
        whole = score(r.text, find_form(r.form)).rates()
        assert whole["format_accuracy"] == 1.0
        new = lines[1]
        assert len(han(new)) == 10 and new.endswith("。")
        # the new line's rhyme joins the kept lines' group (黄, 阳: 下平七阳)
        from lyricgen.craft.books import book

        assert "下平七阳" in book("pingshui").groups(han(new)[-1]), r.text


def test_suffix_aware_ranking_beats_the_line_alone_on_the_whole_text(verse_run):
    lyr = lyricgen.load(verse_run)
    draft = "春风吹柳绿，细雨落花红。\n____\n白云飞远水，明月照孤峰。\n夜深人不寐，楼上望长天。"
    wins = 0
    for seed in range(6):
        a = lyr.revise(draft, None, form="五律", seed=seed, rank="text")
        b = lyr.revise(draft, None, form="五律", seed=seed, rank="line")
        assert a.logprob >= b.logprob - 1e-9  # the same candidates: the best whole text wins
        wins += a.logprob > b.logprob
    assert wins >= 1


def test_revise_fills_blank_lines_and_keeps_the_rest_byte_for_byte(trained_run):
    lyr = lyricgen.load(trained_run)
    draft = "星星在夜空里眨眼  \n\n月亮照着回家的路\n"
    r = lyr.revise(draft, None, seed=2)
    lines = r.text.split("\n")
    assert lines[0] == "星星在夜空里眨眼  " and lines[2] == "月亮照着回家的路"
    assert lines[1].strip() and r.lines == [2]
    r = lyr.revise(draft, [3], keywords="风", seed=2, show=2)
    assert "风" in r.text.split("\n")[1] + r.text.split("\n")[2]
    with pytest.raises(GenerationError, match="revise keeps the draft's own lines"):
        lyr.revise(draft, [1], acrostic="星")


def test_cli_revise_show_json_and_stdin(verse_run, tmp_path):
    draft = tmp_path / "draft.txt"
    draft.write_text(DRAFT, encoding="utf-8")
    r = cli("revise", str(draft), "--checkpoint", str(verse_run), "--line", "1,3", "--seed", "1")
    assert r.exit_code == 0, r.output
    out = r.stdout.rstrip("\n").split("\n")
    assert out[1] == DRAFT.split("\n")[1] and out[0] != DRAFT.split("\n")[0]
    r = cli("revise", str(draft), "--checkpoint", str(verse_run), "--line", "2", "--show", "3")
    assert r.exit_code == 0 and r.stdout.startswith("line 2:") and "  3. " in r.stdout
    r = cli("revise", str(draft), "--checkpoint", str(verse_run), "--line", "2", "--json")
    row = json.loads(r.stdout)
    assert row["lines"] == [2] and "2" in row["alternatives"]
    r = cli("revise", "-", "--checkpoint", str(verse_run), "--line", "2", input=DRAFT)
    assert r.exit_code == 0 and r.stdout.split("\n")[0] == DRAFT.split("\n")[0]


@pytest.mark.parametrize(
    "content, args, message",
    [
        (DRAFT, ["--line", "9"], "--line 9 is out of range; the draft has lines 1 to 3"),
        ("\n \n", ["--line", "1"], "the draft is empty"),
        (DRAFT, [], "nothing to revise"),
        (DRAFT, ["--line", "x"], "is not a line number"),
        (b"\x89PNG\x00\x01", ["--line", "1"], "is not UTF-8 text"),
        (DRAFT, ["--line", "2", "--form", "七律"], "does not keep line 1 of 七律"),
    ],
)
def test_bad_revisions_are_one_line_errors(verse_run, tmp_path, content, args, message):
    draft = tmp_path / "draft.txt"
    if isinstance(content, bytes):
        draft.write_bytes(content)
    else:
        draft.write_text(content, encoding="utf-8")
    r = cli("revise", str(draft), "--checkpoint", str(verse_run), *args)
    one_line_error(r, message)
    r = cli("revise", str(tmp_path / "missing.txt"), "--checkpoint", str(verse_run))
    one_line_error(r, "does not exist")


# ------------------------------------------------------------------ --pick


def test_pick_without_a_terminal_is_a_one_line_error(verse_run):
    one_line_error(gen(verse_run, "--form", "五绝", "--pick"), "--pick needs a terminal")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_pick_in_a_terminal_offers_candidates_and_takes_the_writer_line(verse_run):
    import pty

    main, sub = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lyricgen", "generate", "--checkpoint", str(verse_run),
         "--form", "五绝", "--pick", "--seed", "1"],
        stdin=sub, stdout=sub, stderr=sub, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    os.close(sub)
    out = b""

    def read_until(marker: bytes) -> None:
        nonlocal out
        while marker not in out:
            chunk = os.read(main, 4096)
            assert chunk, out.decode("utf-8", "replace")
            out += chunk

    read_until(b"type your line: ")
    assert b"  1. " in out and b"line 1 of 2" in out
    os.write(main, "独坐南山下，闲听万壑松。\n".encode())  # the writer's own line
    read_until(b"line 2 of 2")
    read_until(b"type your line: ")
    os.write(main, b"1\n")
    proc.wait(60)
    try:
        while True:
            chunk = os.read(main, 4096)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    os.close(main)
    text = out.decode("utf-8", "replace").replace("\r", "")
    final = [ln for ln in text.split("\n") if ln.strip()][-2:]
    assert final[0] == "独坐南山下，闲听万壑松。", text
    assert len(han(final[1])) == 10 and proc.returncode == 0


# ------------------------------------------------------------------ the library


def test_library_generate_and_revise_take_the_subject_by_name(verse_run):
    lyr = lyricgen.load(verse_run)
    (s,) = lyr.generate("", form="七绝", keywords="秋,月", seed=4)
    assert "秋" in s.text and "月" in s.text and s.plan.keywords == ["秋", "月"]
    (s,) = lyr.generate("", template="明月___，_____。", seed=4)
    assert han(s.text).startswith("明月")
    r = lyr.revise(s.text, [1], show=2, seed=4)
    assert r.text.split("\n")[0] != s.text.split("\n")[0] and len(r.alternatives[1]) >= 1
    with pytest.raises(GenerationError, match="unknown option"):
        lyr.generate("", keyword="秋")


# ------------------------------------------------------------------ keyword-conditioned runs


@pytest.fixture(scope="module")
def control_run(tmp_path_factory):
    from tests.conftest import VERSE, _shared_run

    return _shared_run(
        tmp_path_factory, "control_run", VERSE, 4, data={"min_freq": 1, "keyword_lines": 1.0}
    )


def test_control_lines_precede_training_songs_and_not_held_out_ones(tmp_path):
    from lyricgen.config import DataConfig
    from lyricgen.corpus.control import control_corpus, song_keywords

    corpus = tmp_path / "c.txt"
    songs = ["春风吹柳绿\n细雨落花红", "江上秋来早\n寒林叶自黄", "小院闲窗静\n轻烟过竹林",
             "夜深人不寐\n楼上望长天"]  # fmt: skip
    corpus.write_text("\n\n".join(songs) + "\n", encoding="utf-8")
    d = DataConfig(corpus=str(corpus), val_fraction=0.25, keyword_lines=1.0)
    got = control_corpus(d, tmp_path / "cache")
    train = open(got.corpus, encoding="utf-8").read()
    val = open(got.val_corpus, encoding="utf-8").read()
    blocks = train.strip().split("\n\n")
    assert (
        all(b.startswith("〔") for b in blocks)
        and len(blocks) + len(val.strip().split("\n\n")) == 4
    )
    assert "〔" not in val and val.strip().endswith(songs[-1])
    assert (
        got.keyword_lines == 0 and control_corpus(d, tmp_path / "cache").corpus == got.corpus
    )  # written once
    first = train.split("\n")[0]
    assert first.startswith("〔") and len(first) == 5 and set(first[1:4]) <= set(songs[0])
    assert song_keywords(["秋秋月", "春月"])[0][0] == "秋"  # frequent here, rare elsewhere


def test_a_conditioned_run_reads_the_control_line_and_never_writes_its_marks(control_run):
    import yaml

    cfg = yaml.safe_load((control_run / "config.yaml").read_text(encoding="utf-8"))
    assert cfg["data"]["keyword_lines"] == 1.0
    lyr = lyricgen.load(control_run)
    assert lyr.keyword_control and "〔" in lyr.vocab
    from lyricgen.craft.generate import _context, control_for, prepare

    opts = SamplingOptions(form="五绝", keywords="秋,月", seed=1)
    req = prepare(lyr.vocab, "", opts)
    ids, _ = _context(lyr.vocab, "", opts, control_for(req.plan, True))
    assert lyr.vocab.decode(ids)[:5] == ["\n", "〔", "秋", "月", "〕"]
    for seed in range(4):
        (s,) = lyr.generate("", SamplingOptions(lines=3, seed=seed, temperature=1.5))
        assert "〔" not in s.text and "〕" not in s.text  # without keywords too
        (s,) = lyr.generate("", SamplingOptions(form="五绝", keywords="秋,月", seed=seed))
        assert "秋" in s.text and "月" in s.text and "〔" not in s.text
    r = lyr.revise("春风吹柳绿，细雨落花红。\n独坐南山下，闲听万壑松。", [2], keywords="秋")
    assert "〔" not in r.text and "秋" in r.text.split("\n")[1]


def test_keyword_lines_need_char_level(tmp_path):
    from lyricgen.config import from_dict
    from lyricgen.errors import ConfigError

    with pytest.raises(ConfigError, match="'data.keyword_lines' needs data.level char"):
        from_dict({"data": {"level": "word", "keyword_lines": 0.5}})
