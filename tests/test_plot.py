"""Training-curve pictures (lyricgen.frontend.plot) from hand-written metrics.jsonl files."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lyricgen.errors import LyricgenError
from lyricgen.frontend import plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def mpl():
    """Skip drawing tests where matplotlib is not installed (it is in the test extra)."""
    return pytest.importorskip("matplotlib")


def make_run(folder: Path, epochs: int = 4, flags: bool = True, shift: float = 0.0) -> Path:
    """A run directory whose metrics.jsonl looks like training wrote it (best at epoch 3)."""
    folder.mkdir(parents=True, exist_ok=True)
    val = [3.0, 2.4, 2.1, 2.2, 2.3][:epochs]
    lines = []
    for e, v in enumerate(val, 1):
        v += shift
        m = {
            "epoch": e,
            "step": 10 * e,
            "train_loss": 3.2 - 0.4 * e + shift,
            "val_loss": v,
            "val_ppl": math.exp(v),
            "val_bpc": v / math.log(2),
            "lr": 0.01,
            "tokens_per_s": 5000.0,
            "elapsed_s": 1.5 * e,
        }
        if flags:
            m["best"] = v == min(val[:e]) + shift
        lines.append(json.dumps(m))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def assert_one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    for fragment in fragments:
        assert fragment in message, message
    return message


def assert_png(path: Path) -> None:
    """A real 1000x400 picture with drawn content, not a blank canvas."""
    import numpy as np
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert 5_000 < len(data) < 1_000_000
    pixels = imread(path)
    assert pixels.shape[:2] == (400, 1000)  # 10x4 inches at 100 dpi
    rgb8 = (pixels[..., :3] * 255).astype(np.uint32)
    packed = (rgb8[..., 0] << 16) | (rgb8[..., 1] << 8) | rgb8[..., 2]
    assert len(np.unique(packed)) > 20  # white background plus lines, text, antialiasing
    # the coloured curves are there: some pixels are clearly not grey
    rgb = pixels[..., :3]
    assert (rgb.max(axis=-1) - rgb.min(axis=-1) > 0.3).sum() > 200


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ reading


def test_read_history_returns_one_dict_per_epoch(tmp_path):
    run = make_run(tmp_path / "run", epochs=5)
    history = plot.read_history(run)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert history[2]["best"] is True and history[3]["best"] is False


def test_read_history_skips_blank_lines(tmp_path):
    run = make_run(tmp_path / "run", epochs=3)
    path = run / "metrics.jsonl"
    path.write_text(path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    assert len(plot.read_history(run)) == 3


def test_best_epoch_uses_flags_or_lowest_val_loss(tmp_path):
    flagged = plot.read_history(make_run(tmp_path / "a", epochs=5))
    old = plot.read_history(make_run(tmp_path / "b", epochs=5, flags=False))
    assert "best" not in old[0]
    assert plot.best_epoch(flagged) == 2  # index: epoch 3
    assert plot.best_epoch(old) == 2
    assert plot.best_epoch([{"val_loss": float("nan")}]) is None


def test_missing_run_directory(tmp_path):
    with pytest.raises(LyricgenError) as excinfo:
        plot.read_history(tmp_path / "nope")
    assert_one_line_error(excinfo, "nope", "does not exist", "lyricgen train --out")


def test_run_without_metrics(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(LyricgenError) as excinfo:
        plot.read_history(tmp_path / "run")
    assert_one_line_error(excinfo, "has no metrics.jsonl", "lyricgen train --out")


def test_empty_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(LyricgenError) as excinfo:
        plot.read_history(run)
    assert_one_line_error(excinfo, "metrics.jsonl is empty")


def test_damaged_line_is_named(tmp_path):
    run = make_run(tmp_path / "run", epochs=4)
    path = run / "metrics.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:20]  # a write cut short
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(LyricgenError) as excinfo:
        plot.read_history(run)
    assert_one_line_error(excinfo, "line 3 is not JSON", "damaged")


def test_line_without_losses_is_named(tmp_path):
    run = make_run(tmp_path / "run", epochs=2)
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"epoch": 3}\n')
    with pytest.raises(LyricgenError) as excinfo:
        plot.read_history(run)
    assert_one_line_error(excinfo, "line 3 has no train_loss")


# ------------------------------------------------------------------ drawing


def test_write_run_curves(tmp_path, mpl):
    run = make_run(tmp_path / "myrun", epochs=5)
    out = plot.write_run_curves(run)
    assert out == run / "curves.png"
    assert_png(out)
    assert sorted(p.name for p in run.iterdir()) == ["curves.png", "metrics.jsonl"]
    # called again after the next epoch: replaced in place, nothing left behind
    make_run(run, epochs=5, shift=-0.1)
    assert plot.write_run_curves(run) == out
    assert_png(out)
    assert no_temp_files(run)


def test_old_run_without_best_flags_and_single_epoch(tmp_path, mpl):
    assert_png(plot.write_run_curves(make_run(tmp_path / "old", epochs=5, flags=False)))
    assert_png(plot.write_run_curves(make_run(tmp_path / "one", epochs=1)))


def test_missing_values_become_gaps(tmp_path, mpl, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    rows = [
        {"epoch": 1, "train_loss": 3.0, "val_loss": 2.5, "val_bpc": 3.6},
        {"epoch": 2, "train_loss": 2.0, "val_loss": float("nan")},  # json writes NaN
        {"epoch": 3, "train_loss": 1.5, "val_loss": None, "val_bpc": "x"},
    ]
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    drawn = []
    figure_cls, canvas_cls, locator_cls = plot.matplotlib_classes()

    class Kept(figure_cls):  # keeps its lines for the test instead of clearing them
        def clear(self, keep_observers=False):
            if getattr(self, "ready", False):
                drawn.append(self)
                return
            super().clear(keep_observers)  # the constructor's own clear
            self.ready = True

    monkeypatch.setattr(plot, "matplotlib_classes", lambda: (Kept, canvas_cls, locator_cls))
    assert_png(plot.write_run_curves(run))
    loss_ax, bpc_ax = drawn[0].axes
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in loss_ax.get_lines()}
    assert lines["run train"] == [3.0, 2.0, 1.5]
    val = lines["run val"]
    assert val[0] == 2.5 and math.isnan(val[1]) and math.isnan(val[2])  # gaps, not zeros
    bpc = list(bpc_ax.get_lines()[0].get_ydata())
    assert bpc[0] == 3.6 and math.isnan(bpc[1]) and math.isnan(bpc[2])
    assert "run best 1" in lines  # the one finite epoch is the best


def test_plot_runs_overlays_two_runs(tmp_path, mpl):
    a = make_run(tmp_path / "runs" / "lstm", epochs=5)
    b = make_run(tmp_path / "runs" / "gru", epochs=3, shift=0.3)
    out = tmp_path / "both.png"
    assert plot.plot_runs([a, b], out) == out
    assert_png(out)
    assert no_temp_files(tmp_path)
    single = plot.plot_runs([a], tmp_path / "one.png")
    assert single.read_bytes() != out.read_bytes()


def test_plot_main_message(tmp_path, mpl):
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b")
    out = tmp_path / "cmp.PNG"
    assert plot.plot_main([a, b], out) == f"wrote {out} (2 runs)"
    assert plot.plot_main([a], out) == f"wrote {out} (1 run)"
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_labels_are_run_names_or_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert plot.run_labels([Path("runs/lstm"), Path("runs/gru")]) == ["lstm", "gru"]
    assert plot.run_labels([Path("x/run"), Path("y/run")]) == [
        os.path.join("x", "run"),
        os.path.join("y", "run"),
    ]
    assert plot.run_labels([Path(".")]) == [tmp_path.name]


def test_explicit_labels_must_match_runs(tmp_path, mpl):
    a = make_run(tmp_path / "a")
    with pytest.raises(LyricgenError) as excinfo:
        plot.plot_runs([a], tmp_path / "o.png", labels=["x", "y"])
    assert_one_line_error(excinfo, "2 labels for 1 runs")
    plot.plot_runs([a], tmp_path / "o.png", labels=["baseline"])


@pytest.mark.parametrize("name", ["curves.jpg", "curves", "curves.png.txt"])
def test_out_must_be_png(tmp_path, name):
    run = make_run(tmp_path / "run")
    with pytest.raises(LyricgenError) as excinfo:
        plot.plot_runs([run], tmp_path / name)
    assert_one_line_error(excinfo, ".png", name)
    assert not (tmp_path / name).exists()


def test_out_folder_must_exist(tmp_path):
    run = make_run(tmp_path / "run")
    missing = tmp_path / "no" / "such"
    with pytest.raises(LyricgenError) as excinfo:
        plot.plot_runs([run], missing / "c.png")
    assert_one_line_error(excinfo, str(missing), "does not exist")


def test_no_runs(tmp_path):
    with pytest.raises(LyricgenError) as excinfo:
        plot.plot_runs([], tmp_path / "c.png")
    assert_one_line_error(excinfo, "at least one run")


def test_failed_render_keeps_old_picture_and_leaves_no_temp_file(tmp_path, mpl, monkeypatch):
    from matplotlib.figure import Figure

    run = make_run(tmp_path / "run")
    before = plot.write_run_curves(run).read_bytes()

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError):
        plot.write_run_curves(run)
    assert (run / "curves.png").read_bytes() == before
    assert no_temp_files(run)


# ------------------------------------------------------------------ the optional extra


def test_missing_matplotlib_gives_install_hint(tmp_path, monkeypatch):
    run = make_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(LyricgenError) as excinfo:
        plot.write_run_curves(run)
    message = assert_one_line_error(excinfo)
    assert message == 'plotting needs matplotlib: pip install "lyricgen[plot]"'
    assert not (run / "curves.png").exists()
    assert no_temp_files(run)


def test_import_is_light_and_drawing_needs_no_pyplot(tmp_path, mpl):
    run = make_run(tmp_path / "run")
    code = textwrap.dedent(
        f"""
        import sys
        import lyricgen.frontend.plot
        heavy = [m for m in ("matplotlib", "torch") if m in sys.modules]
        assert not heavy, heavy
        lyricgen.frontend.plot.write_run_curves({str(run)!r})
        assert "matplotlib" in sys.modules
        assert "matplotlib.pyplot" not in sys.modules  # no global figure registry to leak
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert (run / "curves.png").read_bytes().startswith(PNG_SIGNATURE)


def test_training_draws_curves_after_every_epoch_and_plot_overlays_runs(tmp_path):
    import json as _json

    from .conftest import tiny_config, write_corpus
    from .helpers import cli, one_line_error

    pytest.importorskip("matplotlib")
    cfg = tiny_config(tmp_path, write_corpus(tmp_path / "c.txt"), train={"curves": True})
    for name in ("a", "b"):
        r = cli("train", "--config", cfg, "--out", tmp_path / name)
        assert r.exit_code == 0, r.output
        png = tmp_path / name / "curves.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = [
            _json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        ]
        assert [row["best"] for row in rows].count(True) >= 1
    out = tmp_path / "both.png"
    r = cli("plot", tmp_path / "a", tmp_path / "b", "--out", out)
    assert r.exit_code == 0 and "2 runs" in r.output and out.is_file(), r.output
    r = cli("plot", tmp_path / "missing", "--out", out)
    one_line_error(r, "does not exist", code=1)
