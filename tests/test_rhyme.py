"""The 十三辙 rhyme groups: the table, group names, character lookups and rhyme rates."""

from __future__ import annotations

import pytest

from lyricgen.craft.rhyme import (
    GROUPS,
    char_groups,
    group_mask,
    is_han,
    last_han,
    parse_group,
    rhyme_rate,
    rhymes,
)
from lyricgen.errors import GenerationError, LyricgenError

from .conftest import fresh_python

ORDER = "发花 梭波 乜斜 一七 姑苏 怀来 灰堆 遥条 油求 言前 人辰 江阳 中东".split()


def test_groups_table_order_and_finals_unique():
    assert list(GROUPS) == ORDER
    assert GROUPS["江阳"].pinyin == "jiangyang"
    assert GROUPS["乜斜"].finals >= {"ie", "ve", "ê"}
    assert GROUPS["一七"].finals >= {"i", "v", "er"}
    seen: dict[str, str] = {}
    for name, group in GROUPS.items():
        assert group.final in group.finals
        for final in group.finals:
            assert final not in seen, f"{final} in both {seen[final]} and {name}"
            assert "ü" not in final
            seen[final] = name


def test_table_covers_every_final_pypinyin_produces():
    from pypinyin.constants import PINYIN_DICT
    from pypinyin.contrib.tone_convert import to_finals

    readings = {r for value in PINYIN_DICT.values() for r in value.split(",")}
    finals = {to_finals(r, strict=True) for r in readings}
    finals.discard("")  # syllabic m, n, ng, hm, hng: no final, no group
    covered = {f for g in GROUPS.values() for f in g.finals}
    assert finals <= covered, finals - covered


@pytest.mark.parametrize(
    "ch,group",
    [
        ("花", "发花"),
        ("我", "梭波"),
        ("月", "乜斜"),
        ("你", "一七"),
        ("日", "一七"),
        ("字", "一七"),
        ("鱼", "一七"),
        ("儿", "一七"),
        ("路", "姑苏"),
        ("来", "怀来"),
        ("飞", "灰堆"),
        ("对", "灰堆"),
        ("笑", "遥条"),
        ("球", "油求"),
        ("六", "油求"),
        ("天", "言前"),
        ("远", "言前"),
        ("人", "人辰"),
        ("云", "人辰"),
        ("心", "人辰"),
        ("问", "人辰"),
        ("光", "江阳"),
        ("风", "中东"),
        ("中", "中东"),
        ("星", "中东"),
        ("欸", "乜斜"),  # ê
    ],
)
def test_known_characters(ch, group):
    assert group in char_groups(ch)


@pytest.mark.parametrize("ch,group", [("花", "发花"), ("你", "一七"), ("星", "中东")])
def test_single_reading_has_one_group(ch, group):
    assert char_groups(ch) == frozenset({group})


def test_heteronym_belongs_to_every_reading_group():
    assert char_groups("行") >= {"中东", "江阳"}  # xíng, háng
    assert char_groups("得") >= {"梭波", "灰堆"}  # dé/de, děi
    assert char_groups("长") == frozenset({"江阳"})  # cháng, zhǎng


def test_agrees_with_pypinyin_pinyin():
    from pypinyin import Style, pinyin

    finals_to_group = {f: name for name, g in GROUPS.items() for f in g.finals}
    for ch in "星星在夜空里眨眼我们风唱歌月亮照着回家的路梦有你笑雨落城市街数灯走远说明天会晴":
        readings = pinyin(ch, style=Style.FINALS, strict=True, heteronym=True)[0]
        expected = frozenset(finals_to_group[f] for f in readings if f)
        assert char_groups(ch) == expected, ch


@pytest.mark.parametrize("ch", ["a", "Z", "7", "，", "。", "!", " ", "\n", "é", "ア", "한", "😀"])
def test_non_han_has_no_group(ch):
    assert char_groups(ch) == frozenset()
    assert not is_han(ch)


@pytest.mark.parametrize("text", ["", "ab"])
def test_char_groups_wants_one_character(text):
    with pytest.raises(ValueError):
        char_groups(text)


@pytest.mark.parametrize("ch", ["中", "㐀", "鿿", "豈", "𠀀", "〇"])
def test_is_han(ch):
    assert is_han(ch)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("我爱你！", "你"),
        ("我爱你 baby~ ", "你"),
        ("星星。。。\n", "星"),
        ("hello", None),
        ("，。！", None),
        ("", None),
    ],
)
def test_last_han(text, expected):
    assert last_han(text) == expected


@pytest.mark.parametrize(
    "name,expected",
    [
        ("江阳", "江阳"),
        (" 江阳 ", "江阳"),
        ("jiangyang", "江阳"),
        ("JiangYang", "江阳"),
        ("ang", "江阳"),
        ("IANG", "江阳"),
        (" uang\n", "江阳"),
        ("ü", "一七"),
        ("v", "一七"),
        ("er", "一七"),
        ("üe", "乜斜"),
        ("ve", "乜斜"),
        ("ue", "乜斜"),
        ("ê", "乜斜"),
        ("ÜAN", "言前"),
        ("van", "言前"),
        ("ün", "人辰"),
        ("vn", "人辰"),
        ("un", "人辰"),
        ("uen", "人辰"),
        ("ui", "灰堆"),
        ("uei", "灰堆"),
        ("iu", "油求"),
        ("iou", "油求"),
        ("ueng", "中东"),
        ("fahua", "发花"),
        ("zhongdong", "中东"),
    ],
)
def test_parse_group(name, expected):
    assert parse_group(name) == expected


@pytest.mark.parametrize("bad", ["xyz", "", "江", "auto", "a\nb", "angg"])
def test_parse_group_rejects_junk_in_one_line(bad):
    with pytest.raises(GenerationError) as info:
        parse_group(bad)
    msg = str(info.value)
    assert isinstance(info.value, LyricgenError)
    assert "\n" not in msg
    assert repr(bad) in msg
    assert "发花(a)" in msg and "江阳(ang)" in msg and "中东(ong)" in msg
    assert all(f"{name}(" in msg for name in ORDER)


def test_rhymes():
    assert rhymes("行", "光") and rhymes("行", "星") and rhymes("云", "人")
    assert not rhymes("光", "星")
    assert not rhymes("a", "a")


def test_rhyme_rate_exact_fraction():
    lines = [
        "天边的云，",  # 云 人辰
        "心里的人",  # 人 人辰: rhymes
        "窗外的风",  # 风 中东: no
        "夜空的星!",  # 星 中东: rhymes
        "",
        "回家的路",  # song break: no pair with the line before
        "la la la",  # no Han character: no pair either side
        "我的梦",  # 梦 中东
        "梦里的光",  # 光 江阳: no
        "远方的江",  # 江 江阳: rhymes
    ]
    assert rhyme_rate(lines) == 3 / 5
    assert rhyme_rate(iter(lines)) == 3 / 5


def test_rhyme_rate_blank_lines_break_pairs():
    assert rhyme_rate(["我的心", "你的人"]) == 1.0
    assert rhyme_rate(["我的心", "", "你的人"]) is None
    assert rhyme_rate(["我的心", "   ", "你的人"]) is None
    assert rhyme_rate(["我的心", "你的人", "", "我的心", "窗外的风"]) == 1 / 2


def test_rhyme_rate_without_pairs_is_none():
    assert rhyme_rate([]) is None
    assert rhyme_rate(["只有一行"]) is None
    assert rhyme_rate(["hello", "world"]) is None


def test_group_mask():
    tokens = ["天空", "光", "\n", "hello", "星星", "方向", "江。"]
    assert group_mask(tokens, "ang") == [False, True, False, False, False, True, True]
    with pytest.raises(GenerationError):
        group_mask(tokens, "nope")


def test_import_does_not_load_pypinyin():
    code = (
        "import sys, lyricgen.craft.rhyme; print(sorted(m for m in sys.modules if 'pypinyin' in m))"
    )
    assert fresh_python(code).stdout.strip() == "[]"
