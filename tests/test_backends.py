"""The NumPy generation path prints what the torch path prints, without importing torch."""

import json

import pytest

from lyricgen.backends.numpy_run import load_numpy_run
from lyricgen.backends.steppers import TorchStepper
from lyricgen.config import load_config
from lyricgen.craft.generate import SamplingOptions, generate
from lyricgen.training.loading import load_run
from lyricgen.training.trainer import fit

from .conftest import fresh_python, tiny_config, write_corpus
from .helpers import cli_without, lyricgen_process

CELLS = {
    "rnn-tanh": {"cell": "rnn", "nonlinearity": "tanh"},
    "rnn-relu": {"cell": "rnn", "nonlinearity": "relu"},
    "gru": {"cell": "gru"},
    "lstm-2layer": {"cell": "lstm", "num_layers": 2},
    "gru-tied": {"cell": "gru", "embedding_dim": 32, "tie_weights": True},
}
OPTIONS = [
    SamplingOptions(seed=1, length=60, num_samples=3),
    SamplingOptions(greedy=True, length=40),
    SamplingOptions(seed=2, top_k=5, temperature=1.3, length=40, no_repeat_ngram=3),
    SamplingOptions(beam=3, lines=3, line_length=5),
    SamplingOptions(seed=3, acrostic="星月风", line_length=7),
]


@pytest.fixture(scope="module", params=list(CELLS))
def run(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    corpus = write_corpus(tmp / "corpus.txt")
    cfg = load_config(tiny_config(tmp, corpus, model=CELLS[request.param], train={"epochs": 2}))
    fit(cfg)
    return cfg.out_dir


def test_numpy_and_torch_print_the_same(run):
    _, vocab, model = load_run(run)
    _, vocab_np, stepper = load_numpy_run(run)
    for opts in OPTIONS:
        a = generate(TorchStepper(model), vocab, "" if opts.acrostic else "星星", opts)
        b = generate(stepper, vocab_np, "" if opts.acrostic else "星星", opts)
        assert [s.text for s in a] == [s.text for s in b], opts
        for x, y in zip(a, b, strict=True):
            assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)


def test_cli_generate_does_not_import_torch(trained_run):
    args = ["generate", "--checkpoint", str(trained_run), "--start", "星星", "--seed", "1"]
    r = cli_without(args, ("torch", "jieba"))
    assert r.stdout.startswith("星星")
    torch_out = lyricgen_process(*args, "--backend", "torch")
    assert torch_out.stdout == r.stdout


def test_word_start_in_vocabulary_skips_jieba(word_run):
    code = (
        "import sys\n"
        "from lyricgen.backends.numpy_run import load_numpy_run\n"
        "from lyricgen.craft.generate import generate, SamplingOptions\n"
        f"_, v, s = load_numpy_run({str(word_run)!r})\n"
        "assert '星星' in v\n"
        "generate(s, v, '星星', SamplingOptions(seed=1, length=5))\n"
        "assert 'jieba' not in sys.modules\n"
        "generate(s, v, '我们的星星', SamplingOptions(seed=1, length=5))\n"
        "assert 'jieba' in sys.modules\n"
    )
    fresh_python(code)


def test_rhyme_and_copy_guard_print_the_same_on_both_backends(trained_run):
    args = ["--start", "星星", "--lines", "4", "--line-length", "5", "--rhyme", "auto"]
    args += ["--max-copy", "3", "--seed", "2", "--json"]
    out = {}
    for b in ("numpy", "torch"):
        r = lyricgen_process("generate", "--checkpoint", trained_run, *args, "--backend", b)
        assert r.returncode == 0, r.stderr
        out[b] = [json.loads(line) for line in r.stdout.splitlines()]
    for a, b in zip(out["numpy"], out["torch"], strict=True):
        assert a["text"] == b["text"] and a["longest_copy"] == b["longest_copy"]
        assert a["perplexity"] == pytest.approx(b["perplexity"], rel=1e-5)


def test_rhyme_with_a_saved_table_does_not_import_pypinyin(trained_run):
    assert (trained_run / "rhyme.json").is_file()  # written by training
    args = ["generate", "--checkpoint", str(trained_run), "--start", "星星", "--lines", "3"]
    args += ["--rhyme", "auto", "--max-copy", "4", "--seed", "1"]
    r = cli_without(args, ("pypinyin", "torch"))
    assert len(r.stdout.strip().splitlines()) == 3


def test_old_run_gets_its_rhyme_table_on_first_use(tmp_path, trained_run):
    import shutil

    from lyricgen.craft.rhyme import load_rhyme_table
    from lyricgen.run.files import load_vocab

    run = tmp_path / "old"
    shutil.copytree(trained_run, run)
    saved = load_rhyme_table(run)
    (run / "rhyme.json").unlink()
    assert load_rhyme_table(run) is None
    assert load_rhyme_table(run, load_vocab(run)) == saved
    assert (run / "rhyme.json").is_file()
