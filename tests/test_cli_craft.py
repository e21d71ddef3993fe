"""CLI of the lyric-craft options: --rhyme, --max-copy, --corpus, train --init-from, eval --samples."""

import json
import shutil

import pytest

from lyricgen.craft.copyindex import CopyIndex
from lyricgen.craft.rhyme import char_groups, last_han, primary_group

from .helpers import cli, gen, lines_of, one_line_error


def test_generate_rhyme_json_reports_longest_copy(trained_run):
    args = ["--lines", 4, "--rhyme", "auto", "--json", "--seed", 1, "--max-copy", 4]
    r = gen(trained_run, "--start", "星星", *args)
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(x) for x in r.stdout.splitlines()]
    lines = lines_of(row["text"])
    g = primary_group(last_han(lines[0]))
    assert all(g in char_groups(last_han(x)) for x in lines[1:]), row["text"]
    assert 0 < row["longest_copy"]["tokens"] <= 4 and row["longest_copy"]["text"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rhyme", "xyz"], "not a rhyme group"),
        (["--max-copy", "-1"], "--max-copy is -1"),
        (["--max-copy", "3", "--corpus", "/nonexistent.txt"], None),
    ],
)
def test_bad_craft_options_are_one_line_errors(trained_run, args, message):
    r = gen(trained_run, "--start", "星星", *args)
    one_line_error(r, message or "")


def test_old_run_builds_its_copy_index_from_corpus(tmp_path, trained_run):
    run = tmp_path / "old"
    shutil.copytree(trained_run, run)
    shutil.rmtree(run / "copy_index")
    r = gen(run, "--start", "星星", "--max-copy", "3")
    one_line_error(r, "--corpus", code=1)
    corpus = trained_run.parent / "corpus.txt"
    r = gen(run, "--start", "星星", "--max-copy", "3", "--corpus", str(corpus), "--seed", "1")
    assert r.exit_code == 0, r.output
    assert (run / "copy_index" / "meta.json").is_file()
    r = gen(run, "--start", "星星", "--max-copy", "3", "--seed", "1")  # now without --corpus
    assert r.exit_code == 0, r.output


def test_train_writes_copy_index_unless_turned_off(tmp_path, config):
    r = cli("train", "--config", config, "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    meta = CopyIndex.load(tmp_path / "a" / "copy_index").meta
    assert meta["level"] == "char" and meta["sha256"] and meta["corpus"]
    r = cli("train", "--config", config, "--out", tmp_path / "b", "--set", "data.copy_index=false")
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "b" / "copy_index").exists()


def test_eval_samples_report(trained_run):
    args = ["--samples", 4, "--line-length", 5, "--rhyme", "auto", "--json"]
    r = cli("eval", "--checkpoint", trained_run, *args)
    assert r.exit_code == 0, r.output
    q = json.loads(r.stdout)["quality"]
    assert q["samples"] == 4 and q["lines"] == 32
    assert q["line_form_accuracy"] == 1.0 and q["rhyme_rate"] == 1.0
    assert 0 < q["distinct_1"] <= 1 and 0 < q["distinct_2"] <= 1
    assert 0 <= q["repeat3_rate"] <= 1 and q["sample_ppl"] > 1
    assert 0 <= q["copy_rate_5gram"] <= 1
    r = cli("eval", "--checkpoint", trained_run, "--samples", "3")
    assert r.exit_code == 0 and "distinct-1" in r.output and "copied:" in r.output


def test_eval_with_corpus_reports_its_rhyme_rate(trained_run):
    corpus = trained_run.parent / "corpus.txt"
    r = cli("eval", "--checkpoint", trained_run, "--corpus", corpus, "--json")
    assert r.exit_code == 0, r.output
    assert 0 <= json.loads(r.stdout)["corpus_rhyme_rate"] <= 1


def test_eval_needs_something_to_do(trained_run):
    r = cli("eval", "--checkpoint", trained_run)
    assert r.exit_code == 1 and "--samples" in r.output


def test_negative_seed_is_a_one_line_error(trained_run):
    r = gen(trained_run, "--start", "星星", "--seed", "-1")
    one_line_error(r, "--seed is -1", code=1)


def test_serve_without_a_run_is_a_one_line_error(tmp_path):
    r = cli("serve", "--checkpoint", tmp_path / "nope", "--port", "0")
    assert r.exit_code == 1 and "does not exist" in r.output, r.output
    # (in this test process numpy is already loaded, so serve may also warn about BLAS)
    assert [x for x in r.output.splitlines() if x.startswith("error:")] == [
        x for x in r.output.splitlines() if "does not exist" in x
    ]
    assert "Traceback" not in r.output
