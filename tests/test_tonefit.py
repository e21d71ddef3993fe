"""Tones that follow the tune: ReLyMe's table, readings, scoring a lyric, and generation
under --tone-fit (soft and strict) with a tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lyricgen.craft import tonefit
from lyricgen.craft.jianpu import parse_jianpu
from lyricgen.craft.melody_io import load_melody
from lyricgen.craft.tonefit import (
    ACCEPTABLE,
    GOOD,
    POOR,
    UNACCEPTABLE,
    char_tone,
    classify,
    fit_lyrics,
    line_tones,
)
from lyricgen.errors import GenerationError, MelodyError


def test_table_is_relymes():
    # 阴平 after 阴平: level is good, a small rise acceptable, a fourth poor, more unacceptable
    assert classify(0, 0, 0) == GOOD
    assert classify(0, 0, 2) == ACCEPTABLE
    assert classify(0, 0, 4) == POOR
    assert classify(0, 0, 5) == UNACCEPTABLE
    # 去声 (falling) sung on a rising fifth after 阳平: unacceptable; on a fall: good
    assert classify(1, 3, 7) == UNACCEPTABLE
    assert classify(1, 3, 1) == GOOD
    # 阳平 (rising) after 去声 on a falling fifth: unacceptable
    assert classify(3, 1, -9) == POOR
    assert classify(3, 1, -10) == UNACCEPTABLE
    # no tone pair takes a rise of 11 semitones or more (ReLyMe's widest is +10)
    assert all(classify(a, b, 11) == UNACCEPTABLE for a in range(5) for b in range(5))
    assert classify(2, 0, 10) == POOR
    # steps past two octaves count as two octaves
    assert classify(0, 0, 40) == classify(0, 0, 24) == UNACCEPTABLE


def test_readings():
    assert char_tone("妈") == 0 and char_tone("麻") == 1 and char_tone("马") == 2
    assert char_tone("骂") == 3 and char_tone("的") == tonefit.NEUTRAL
    assert char_tone("a") is None or char_tone("a") == tonefit.NEUTRAL
    # in context pypinyin's phrase dictionary knows 长城 (cháng) from 长大 (zhǎng)
    assert line_tones("长城长大") == [1, 1, 2, 3]
    assert line_tones("好，的！") == [2, 4]  # marks are not read


TUNE = "1=C 4/4 | 1 1 5 5 | 6 6 5 - | 4 4 3 3 | 2 2 1 - |"


def test_fit_scores_each_character():
    melody = parse_jianpu(TUNE)
    assert melody.lengths() == [7, 7]
    fit = fit_lyrics("一闪一闪亮晶晶\n满天都是小星星\n", melody)
    assert [c.char for c in fit.lines[0]] == list("一闪一闪亮晶晶")
    first = fit.lines[0][0]
    assert first.step is None and first.klass is None  # the tune's first note is not scored
    second = fit.lines[0][1]
    assert second.step == 0 and second.tone == 2  # 闪 shǎn on the same C
    # 一 yī (阴平) after 闪 (上声) on C -> G (+7): the table's ranges for 上声 -> 阴平 are
    # good (4, 5), acceptable (3, 9): acceptable
    assert fit.lines[0][2].step == 7 and fit.lines[0][2].klass == ACCEPTABLE
    assert fit.scored == 13
    s = fit.summary()
    assert s["good"] + s["acceptable"] + s["poor"] + s["unacceptable"] == 13
    assert s["daozi"] == s["unacceptable"]
    d = fit.to_dict()
    # 上声 after 阴平 wants a fall of 6-7 semitones (ReLyMe): on the same note it is 倒字
    assert d["lines"][0][1] == {"char": "闪", "note": "1", "pitch": 60, "tone": "上声",
                                "step": 0, "fit": "unacceptable"}  # fmt: skip
    json.dumps(d, ensure_ascii=False)


def test_fit_errors_name_the_line():
    melody = parse_jianpu(TUNE)
    with pytest.raises(MelodyError, match="line 2 has 6 characters but phrase 2 has 7 notes"):
        fit_lyrics("一闪一闪亮晶晶\n满天都是星星\n", melody)
    with pytest.raises(MelodyError, match="3 lines but the melody has 2 phrases"):
        fit_lyrics("一闪一闪亮晶晶\n满天都是小星星\n一闪\n", melody)


def test_contour():
    # phrase 1 rises (1 -> 5), phrase 2 falls (4 -> 1)
    melody = parse_jianpu("1=C | 1 2 3 5 - / 4 3 2 1 - |")
    assert [p.direction for p in melody.phrases] == [1, -1]
    fit = fit_lyrics("我们走吧。\n你在哪呢？\n", melody)
    assert fit.contour_misses == [0, 1]  # a statement rising, a question falling
    fit = fit_lyrics("我们走吗？\n你在这里。\n", melody)
    assert fit.contour_misses == []


def test_strict_names_a_leap_no_tone_can_take(trained_run):
    import lyricgen

    lyricist = lyricgen.load(trained_run)
    with pytest.raises(MelodyError, match=r"phrase 1, note 3 \(1'\): a step of \+12"):
        lyricist.generate("", jianpu="1 1 1' 1 1 1", tone_fit="strict", seed=1)


def test_generate_to_a_tune(trained_run):
    import lyricgen

    lyricist = lyricgen.load(trained_run)
    tune = "1=D 4/4 | 3 5 6 1' | 6 5 3 - | 2 3 5 3 | 2 1 2 - |"
    counts = {}
    for mode in ("off", "soft", "strict"):
        samples = lyricist.generate("", jianpu=tune, tone_fit=mode, seed=2, num_samples=4)
        for s in samples:
            lines = [ln for ln in s.text.splitlines() if ln.strip()]
            han = [sum("\u4e00" <= c <= "\u9fff" for c in ln) for ln in lines]
            assert han == [7, 7], s.text  # one character per note, one line per phrase
            assert s.fit is not None and s.to_dict()["melody_fit"]["summary"]["scored"] == 13
        counts[mode] = sum(s.fit.daozi for s in samples)
    assert counts["strict"] == 0
    assert counts["soft"] <= counts["off"]


def test_melody_replaces_line_options(trained_run):
    import lyricgen

    lyricist = lyricgen.load(trained_run)
    with pytest.raises(GenerationError, match="leave --line-lengths out"):
        lyricist.generate("", jianpu="1 2 3 4", line_lengths="4")
    with pytest.raises(GenerationError, match="--tone-fit needs a melody"):
        lyricist.generate("星", tone_fit="strict")
    samples = lyricist.generate("", jianpu="1 2 3 4 5 6 5 4", phrases="3,5", seed=1)
    lines = [ln for ln in samples[0].text.splitlines() if ln.strip()]
    assert [sum("\u4e00" <= c <= "\u9fff" for c in ln) for ln in lines] == [3, 5]


def test_masks_cover_every_token_of_a_line():
    """TuneFit under strict leaves the rest of the tune singable: after any allowed token
    some tone can still take the next step."""
    from lyricgen.corpus.vocab import Vocab
    from lyricgen.craft.constraints import SampleState, TokenTable
    from lyricgen.craft.tonefit import TuneFit

    vocab = Vocab.build(list("妈麻马骂的我你他好来去是不在\n"), min_freq=1)
    table = TokenTable.of(vocab)
    melody = load_melody(jianpu="1 3 5 1' 5 3 1")
    fit = TuneFit(table, melody, "strict")
    row = SampleState(states=[fit.start()])
    ok = np.ones(table.size, dtype=bool)
    fit.restrict(row, row.states[0], ok)
    assert ok[table.in_line].any()


REFRAIN = "1=C | 1 2 3 5 5 - 0 | 6 5 3 2 2 - 0 | 1 2 3 5 5 - 0 | 6 5 3 2 1 - 0 |"


def test_repeated_phrases_rhyme_or_repeat(trained_run):
    import lyricgen
    from lyricgen.craft.rhyme import char_groups, last_han

    melody = load_melody(jianpu=REFRAIN)
    assert [p.repeat_of for p in melody.phrases] == [None, None, 0, None]
    lyricist = lyricgen.load(trained_run)
    for seed in range(3):
        (s,) = lyricist.generate("", jianpu=REFRAIN, refrain="repeat", seed=seed)
        lines = [ln for ln in s.text.splitlines() if ln.strip()]
        assert lines[2].rstrip("，。") == lines[0].rstrip("，。")
        (s,) = lyricist.generate("", jianpu=REFRAIN, seed=seed)  # rhyme, the default
        lines = [ln for ln in s.text.splitlines() if ln.strip()]
        assert char_groups(last_han(lines[2])) & char_groups(last_han(lines[0])), s.text


def test_word_level_run_fills_the_notes(word_run):
    """A word model's tokens cover several notes each: every character is scored on its
    own note, and strict keeps every one of them off an unacceptable step."""
    import lyricgen

    lyricist = lyricgen.load(word_run)
    tune = "1=C | 3 5 6 5 3 2 1 - 0 | 2 3 5 3 2 - 0 |"
    for seed in range(3):
        (s,) = lyricist.generate("", jianpu=tune, tone_fit="strict", seed=seed)
        lines = [ln for ln in s.text.splitlines() if ln.strip()]
        assert [sum("\u4e00" <= c <= "\u9fff" for c in ln) for ln in lines] == [7, 5], s.text
        assert s.fit is not None and s.fit.daozi == 0


def test_strict_yields_to_a_keyword_rather_than_cut_a_line(trained_run):
    import lyricgen

    lyricist = lyricgen.load(trained_run)
    tune = "1=C | 3 5 6 5 3 2 1 - 0 | 2 3 5 3 2 - 0 | 3 5 6 1' 6 5 3 - 0 | 2 3 2 1 1 - 0 |"
    for seed in range(4):
        (s,) = lyricist.generate("", jianpu=tune, tone_fit="strict", keywords="星星,月亮",
                                 rhyme="auto", seed=seed)  # fmt: skip
        lines = [ln for ln in s.text.splitlines() if ln.strip()]
        assert [sum("\u4e00" <= c <= "\u9fff" for c in ln) for ln in lines] == [7, 5, 7, 5]
        assert "星星" in s.text and "月亮" in s.text
        assert s.fit is not None


def test_revise_refuses_a_melody(trained_run):
    import lyricgen

    lyricist = lyricgen.load(trained_run)
    with pytest.raises(GenerationError, match="revise does not follow a melody"):
        lyricist.revise("星星在夜空里眨眼\n我们在风里唱歌\n", [2], jianpu="1 2 3 4 5 6 7")
