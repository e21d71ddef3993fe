"""`lyricgen inspect`: the units that track the line, the song and the rhyme."""

import json
import shutil

import numpy as np
import pytest

from lyricgen.inspection import units as unitmod

from .helpers import cli, one_line_error


def test_text_features_count_the_line_and_the_song():
    toks = list("春风吹\n夜来香\n\n月明\n")
    groups = {"吹": "灰堆", "香": "江阳", "明": "中东"}
    f = unitmod.text_features(toks, groups)
    assert f["line_position"].tolist() == [1, 2, 3, 0, 1, 2, 3, 0, 0, 1, 2, 0]
    assert f["line_left"].tolist() == [2, 1, 0, 0, 2, 1, 0, 0, 0, 1, 0, 0]
    assert f["first_line"].tolist() == [
        1,
        1,
        1,
        1,
        0,
        0,
        0,
        0,
        0,
        1,
        1,
        1,
    ]  # a blank line: a new song
    g = f["rhyme_group"].tolist()
    assert g[:3] == [0, 0, 0] and g[4:7] == [1, 1, 1] and g[9:11] == [2, 2] and g[3] == -1


def test_running_sums_give_pearson_r_and_eta():
    rng = np.random.default_rng(1)
    n, units = 600, 4
    pos = rng.integers(0, 8, n).astype(float)
    grp = rng.integers(0, 3, n)
    x = rng.normal(size=(n, units))
    x[:, 1] += pos  # unit 1 tracks the position
    x[:, 2] += 3 * grp  # unit 2 tracks the group
    feats = {"line_position": pos, "line_left": -pos, "first_line": (pos < 2) * 1.0,
             "rhyme_group": grp}  # fmt: skip
    s = unitmod._Stats(units, 3)
    for i in range(0, n, 50):  # in batches, as the columns are read
        s.add(x[i : i + 50], {k: v[i : i + 50] for k, v in feats.items()})
    got = s.scores()
    want = [np.corrcoef(x[:, u], pos)[0, 1] for u in range(units)]
    assert got["line_position"] == pytest.approx(want, abs=1e-9)
    assert got["line_left"] == pytest.approx([-w for w in want], abs=1e-9)
    means = np.array([x[grp == g].mean(0) for g in range(3)])
    counts = np.bincount(grp)
    eta = np.sqrt(
        (counts[:, None] * (means - x.mean(0)) ** 2).sum(0) / ((x - x.mean(0)) ** 2).sum(0)
    )
    assert got["rhyme_group"] == pytest.approx(eta, abs=1e-9)
    assert np.argmax(np.abs(got["line_position"])) == 1 and np.argmax(got["rhyme_group"]) == 2


def test_inspect_writes_a_standalone_page_and_reports_each_property(trained_run, tmp_path):
    out = tmp_path / "units.html"
    r = cli("inspect", trained_run, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout.splitlines()[-1])
    assert set(info["units"]) == set(unitmod.FEATURES)
    for units in info["units"].values():
        assert len(units) == 3 and units[0]["unit"].startswith("h0[")
        assert abs(units[0]["score"]) >= abs(units[-1]["score"])
    page = out.read_text(encoding="utf-8")
    assert "<span style='background:" in page and "position in the line" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    pytest.importorskip("matplotlib")
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_an_lstm_is_read_in_both_its_states(lstm_adaptive_run):
    report = unitmod.inspect_run(lstm_adaptive_run, top=64)
    names = {u.name[0] for units in report.best.values() for u in units}
    assert names == {"h", "c"}


def test_bad_input_is_one_line(trained_run, tmp_path):
    r = cli("inspect", trained_run, "--out", tmp_path / "no" / "c.html")
    one_line_error(r, "does not exist")
    assert not (tmp_path / "no").exists()
    run = tmp_path / "moved"
    shutil.copytree(trained_run, run)
    cfg = (run / "config.yaml").read_text(encoding="utf-8")
    import yaml

    data = yaml.safe_load(cfg)
    data["data"]["corpus"] = str(tmp_path / "gone.txt")
    (run / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    r = cli("inspect", run, "--out", tmp_path / "c.html")
    one_line_error(r, "--corpus FILE")
    assert not (tmp_path / "c.html").exists()


def test_the_page_probe_draws_the_same_unit_values_as_inspect(trained_run):
    from lyricgen.run.files import load_vocab

    report = unitmod.inspect_run(trained_run, top=1)
    probe = unitmod.UnitProbe(trained_run)
    unit = report.best["line_position"][0]
    assert probe.line_unit.name == unit.name
    ids = load_vocab(trained_run).encode(report.text[:40])
    got = probe.trace(ids, unit.name)  # both read the first column from a zero state
    np.testing.assert_allclose(got, report.traces[unit.name][:40], atol=1e-5)
