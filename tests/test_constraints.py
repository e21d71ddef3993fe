"""Constraints of generation against adversarial models: steppers whose logits push hard
toward what a constraint must forbid (Latin letters, punctuation, the corpus itself)."""

import numpy as np
import pytest

from lyricgen.corpus.vocab import Vocab
from lyricgen.craft.copyindex import CopyIndex, build_index
from lyricgen.craft.generate import SamplingOptions, generate
from lyricgen.craft.originality import longest_copy
from lyricgen.craft.rhyme import char_groups, is_han, last_han, primary_group, rhymes
from lyricgen.errors import GenerationError

from .helpers import lines_of

HAN = "春夏秋冬我你他的是在有天地人花月风雨光阳江长中东星心云来飞笑路远家山水"
TEXT = (
    "春天的花开在山上\n夏天的雨落在江中\n秋天的月照着我家\n冬天的风吹过山路\n"
    "我在天上看星光\nhello 2024 ok\n你笑着说来吧，走吧。\n"
)


def make_vocab(text: str = TEXT, extra: str = "") -> Vocab:
    return Vocab.build(list(text + HAN + extra), level="char")


class RowStepper:
    """What the fake steppers share: a per-row state (one number a row, unused) that
    `select` and `replace_rows` move as a real stepper moves its hidden state."""

    def select(self, state, index):
        return state[np.asarray(index)]

    def replace_rows(self, dst, src, rows):
        dst[np.asarray(rows)] = src[np.asarray(rows)]
        return dst


class Biased(RowStepper):
    """A stepper with random logits plus a large bonus for chosen tokens."""

    def __init__(self, vocab: Vocab, prefer: str = "", bonus: float = 8.0, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.size = len(vocab)
        self.bonus = np.zeros(self.size)
        for tok in prefer:
            if tok in vocab:
                self.bonus[vocab.stoi[tok]] = bonus

    def _logits(self, batch: int) -> np.ndarray:
        return self.rng.normal(size=(batch, self.size)) + self.bonus

    def start(self, ids, batch):
        return self._logits(batch), np.zeros(batch)

    def step(self, tokens, state):
        return self._logits(len(tokens)), state


class Parrot(RowStepper):
    """A stepper that has memorised the text: it strongly predicts the token that followed
    the previous one there (the worst case for copying)."""

    def __init__(self, vocab: Vocab, ids: list[int]):
        self.size = len(vocab)
        self.next = {}
        for a, b in zip(ids, ids[1:], strict=False):
            self.next.setdefault(a, b)

    def _logits(self, last: np.ndarray) -> np.ndarray:
        out = np.zeros((len(last), self.size))
        for i, t in enumerate(last):
            if int(t) in self.next:
                out[i, self.next[int(t)]] = 12.0
        return out

    def start(self, ids, batch):
        return self._logits(np.full(batch, ids[-1])), np.zeros(batch)

    def step(self, tokens, state):
        return self._logits(tokens), state


# --------------------------------------------------------------- script-true line form


@pytest.mark.parametrize("beam", [0, 3])
def test_han_lines_never_take_latin_letters_or_digits(beam):
    vocab = make_vocab()
    model = Biased(vocab, prefer="helo2024ok", seed=1)
    opts = SamplingOptions(acrostic="春夏秋冬", line_length=7, seed=5, beam=beam)
    (s,) = generate(model, vocab, "", opts)[:1]
    lines = lines_of(s.text)
    assert [line[0] for line in lines] == list("春夏秋冬"), s.text
    for line in lines:
        body = line.rstrip("，。")
        assert len(body) == 7 and all(is_han(c) for c in body), s.text


def test_one_trailing_punctuation_mark_at_most():
    vocab = make_vocab()
    model = Biased(vocab, prefer="，。", bonus=20.0, seed=2)
    (s,) = generate(model, vocab, "我", SamplingOptions(lines=4, line_length=5, seed=0))
    for line in lines_of(s.text):
        assert len(line) == 6 and line[-1] in "，。" and all(map(is_han, line[:5])), s.text


def test_latin_model_counts_letters():
    vocab = Vocab.build(list("the cat sat on a mat\nand the dog ran far\n"), level="char")
    model = Biased(vocab, seed=3)
    (s,) = generate(model, vocab, "t", SamplingOptions(lines=3, line_length=6, seed=1))
    assert all(len(line) == 6 and line.isalpha() for line in lines_of(s.text)), s.text


# --------------------------------------------------------------- rhyme


@pytest.mark.parametrize("beam", [0, 3])
@pytest.mark.parametrize("line_length", [None, 5])
def test_rhyme_auto_every_line_rhymes_with_the_first(beam, line_length):
    vocab = make_vocab()
    model = Biased(vocab, seed=4)
    opts = SamplingOptions(lines=6, line_length=line_length, rhyme="auto", seed=2, beam=beam)
    (s,) = generate(model, vocab, "我", opts)[:1]
    lines = lines_of(s.text)
    assert len(lines) == 6
    group = primary_group(last_han(lines[0]))
    assert all(group in char_groups(last_han(line)) for line in lines[1:]), s.text


@pytest.mark.parametrize("group", ["江阳", "ang", "jiangyang"])
def test_rhyme_named_group(group):
    vocab = make_vocab()
    model = Biased(vocab, seed=5)
    opts = SamplingOptions(acrostic="春夏秋冬", line_length=7, rhyme=group, num_samples=3, seed=1)
    for s in generate(model, vocab, "", opts):
        assert all("江阳" in char_groups(last_han(line)) for line in lines_of(s.text)), s.text


def test_rhyme_even_lines():
    vocab = make_vocab()
    model = Biased(vocab, seed=6)
    opts = SamplingOptions(lines=8, line_length=5, rhyme="auto", rhyme_lines="even", seed=3)
    (s,) = generate(model, vocab, "我", opts)
    ends = [last_han(line) for line in lines_of(s.text)]
    assert all(primary_group(ends[1]) in char_groups(e) for e in ends[3::2]), s.text


def test_rhyme_counts_in_the_start_text():
    vocab = make_vocab()
    model = Biased(vocab, seed=7)
    opts = SamplingOptions(lines=4, rhyme="auto", seed=1)
    (s,) = generate(model, vocab, "春天的花开在山上\n", opts)
    lines = lines_of(s.text)
    assert all("江阳" in char_groups(last_han(line)) for line in lines[1:]), s.text
    assert rhymes("上", "光") and not rhymes("上", "月")


def test_rhyme_errors():
    vocab = make_vocab()
    with pytest.raises(GenerationError, match="not a rhyme group") as e:
        SamplingOptions(rhyme="xyz").validate()
    assert "\n" not in str(e.value)
    # no vocabulary entry in 发花 (a / ia / ua): none of 花 家 ... are present
    small = Vocab.build(list("我你天\n在人"), level="char")
    with pytest.raises(GenerationError, match="发花"):
        generate(Biased(small), small, "我", SamplingOptions(rhyme="fahua", lines=2))
    latin = Vocab.build(list("abc\ndef\n"), level="char")
    with pytest.raises(GenerationError, match="Han"):
        generate(Biased(latin), latin, "a", SamplingOptions(rhyme="auto", lines=2))
    with pytest.raises(GenerationError, match="rhyme-lines"):
        SamplingOptions(rhyme="auto", rhyme_lines="odd").validate()
    del vocab


# --------------------------------------------------------------- copy guard


@pytest.fixture
def parrot(tmp_path):
    text = (TEXT * 3).replace("hello 2024 ok\n", "")
    vocab = make_vocab(text)
    ids = vocab.encode(list(text))
    build_index(np.array(ids), tmp_path / "idx", meta={})
    return vocab, Parrot(vocab, ids), CopyIndex.load(tmp_path / "idx")


def test_parrot_copies_without_the_guard(parrot):
    vocab, model, index = parrot
    (s,) = generate(
        model, vocab, "春", SamplingOptions(lines=3, greedy=True, repetition_penalty=1.0)
    )
    assert longest_copy(index, vocab, vocab.encode(list(s.text)))[0] >= 8


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("beam", [0, 3])
def test_max_copy_bounds_every_line(parrot, n, beam):
    vocab, model, index = parrot
    opts = SamplingOptions(
        lines=4, line_length=7, max_copy=n, greedy=not beam, beam=beam, repetition_penalty=1.0
    )
    (s,) = generate(model, vocab, "春", opts, copy_index=index)[:1]
    for line in lines_of(s.text):
        got, _ = longest_copy(index, vocab, vocab.encode(list(line)))
        assert got <= max(n, 1), (line, got)
    assert s.longest_copy[0] <= n
    assert s.to_dict()["longest_copy"]["tokens"] == s.longest_copy[0]


def test_max_copy_needs_an_index_and_a_sane_value():
    vocab = make_vocab()
    with pytest.raises(GenerationError, match="copy index"):
        generate(Biased(vocab), vocab, "我", SamplingOptions(max_copy=3))
    SamplingOptions(max_copy=0).validate()  # off
    for bad in (-1, 64):
        with pytest.raises(GenerationError, match="--max-copy"):
            SamplingOptions(max_copy=bad).validate()


def test_a_looping_model_still_writes_its_lines():
    vocab = make_vocab(extra="哈")
    model = Biased(vocab, prefer="哈", bonus=50.0)
    (s,) = generate(model, vocab, "我", SamplingOptions(lines=3, repetition_penalty=1.0))
    lines = lines_of(s.text)
    assert len(lines) == 3 and all(len(line) <= 64 for line in lines)


def test_an_impossible_line_is_a_one_line_error_not_an_empty_line():
    vocab = make_vocab()
    model = Biased(vocab, seed=1)
    opts = SamplingOptions(acrostic="我", line_length=1, rhyme="江阳")  # 我 is 梭波
    with pytest.raises(GenerationError, match="line 1: no vocabulary entry satisfies") as e:
        generate(model, vocab, "", opts)
    assert "--acrostic's '我'" in str(e.value) and "\n" not in str(e.value)
    # possible heads still work, line by line
    (s,) = generate(model, vocab, "", SamplingOptions(acrostic="光阳", line_length=1, rhyme="江阳"))
    assert [line.rstrip("，。") for line in lines_of(s.text)] == ["光", "阳"]
