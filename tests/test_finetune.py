"""Fine-tuning from a base run: vocabulary extension, weight transplant, clashes."""

import json

import pytest
import torch

from lyricgen.corpus.vocab import Vocab
from lyricgen.training.finetune import extend_vocab
from lyricgen.training.loading import load_run

from .conftest import tiny_config, write_corpus
from .helpers import cli, gen, one_line_error

NEW_SONGS = [["春天来了花开了", "我们去看海吧"], ["今天天气很好", "你好世界再见"]]


def train(*args):
    r = cli("train", *args)
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("base")
    cfg = tiny_config(tmp, write_corpus(tmp / "corpus.txt"), train={"epochs": 3})
    train("--config", cfg, "--out", tmp / "base")
    return tmp / "base"


def test_extend_vocab_keeps_the_base_ids():
    base = Vocab.build(list("abcab"), level="char")
    new = Vocab.build(list("cdde"), level="char")
    ext = extend_vocab(base, new)
    assert ext.itos[: len(base)] == base.itos
    assert set(ext.itos[len(base) :]) == {"d", "e"}
    assert ext.counts[ext.stoi["d"]] == 2 and ext.counts[ext.stoi["a"]] == 0


def test_fine_tune_starts_from_the_base_weights(tmp_path, base):
    corpus = write_corpus(tmp_path / "new.txt", NEW_SONGS, repeat=4)
    # the config file asks for an LSTM; the base's GRU and sizes win
    cfg = tiny_config(
        tmp_path, corpus, model={"cell": "lstm", "hidden_size": 64}, train={"epochs": 1, "lr": 1e-9}
    )
    train("--config", cfg, "--out", tmp_path / "ft", "--init-from", base)
    _, bvocab, bmodel = load_run(base)
    fcfg, fvocab, fmodel = load_run(tmp_path / "ft")
    assert fcfg.model.cell == "gru" and fcfg.model.hidden_size == 32
    assert fcfg.train.init_from == str(base)
    assert fvocab.itos[: len(bvocab)] == bvocab.itos and "春" in fvocab and "春" not in bvocab
    b, f = bmodel.state_dict(), fmodel.state_dict()
    n = len(bvocab)
    # lr 1e-9: the weights are still the base's (shared rows) and the fresh rows are finite
    assert torch.allclose(f["embedding.weight"][:n], b["embedding.weight"], atol=1e-6)
    assert torch.allclose(f["rnn.weight_hh_l0"], b["rnn.weight_hh_l0"], atol=1e-6)
    assert torch.isfinite(f["embedding.weight"][n:]).all()
    assert f["embedding.weight"][n:].std(0).mean() > 0  # new rows differ from each other
    r = gen(tmp_path / "ft", "--start", "春天", "--length", 5, "--seed", 1)
    assert r.exit_code == 0 and r.stdout.startswith("春天"), r.output


def test_fine_tuning_beats_scratch_after_one_epoch(tmp_path, base):
    corpus = write_corpus(tmp_path / "same.txt")  # the base's own corpus: it already knows it
    cfg = tiny_config(tmp_path, corpus, train={"epochs": 1})
    train("--config", cfg, "--out", tmp_path / "scratch")
    train("--config", cfg, "--out", tmp_path / "ft", "--init-from", base)

    def val(run):
        return json.loads((tmp_path / run / "metrics.jsonl").read_text().splitlines()[0])[
            "val_loss"
        ]

    assert val("ft") < val("scratch") - 0.1


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda t, b: (t / "missing", []), "no such run directory"),
        (lambda t, b: (write_corpus(t / "file.txt"), []), "not a run directory"),
        (lambda t, b: (b, ["--cell", "lstm"]), "--cell lstm differs from the base run"),
        (lambda t, b: (b, ["--set", "model.hidden_size=64"]), "model.hidden_size"),
    ],
)
def test_init_from_errors(tmp_path, base, make, message):
    src, extra = make(tmp_path, base)
    cfg = tiny_config(tmp_path, write_corpus(tmp_path / "c.txt"))
    out = tmp_path / "out"
    r = cli("train", "--config", cfg, "--out", out, "--init-from", src, *extra)
    one_line_error(r, message, code=1)
    assert not out.exists()


def test_broken_base_is_refused(tmp_path, base):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(base, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    cfg = tiny_config(tmp_path, write_corpus(tmp_path / "c.txt"))
    r = cli("train", "--config", cfg, "--out", tmp_path / "o", "--init-from", broken)
    one_line_error(r, "--init-from", code=1)
