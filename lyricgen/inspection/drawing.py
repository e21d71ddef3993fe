"""What the pictures of lyricgen share: matplotlib's Agg classes (an optional extra, imported
only when drawing), a font with Chinese glyphs, and the check of a picture's output path.
Used by the inspection pictures and by the front end's training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lyricgen.errors import LyricgenError

INSTALL_HINT = 'plotting needs matplotlib: pip install "lyricgen[plot]"'


def check_png_out(out: Path) -> Path:
    if out.suffix.lower() != ".png":
        raise LyricgenError(f"--out must name a .png file, got {out}")
    folder = out.parent
    if not folder.is_dir():
        raise LyricgenError(f"folder {folder} does not exist; create it first (mkdir -p {folder})")
    if out.is_dir():
        raise LyricgenError(f"{out} is a directory; --out must name a .png file")
    return out


def matplotlib_classes() -> tuple[Any, Any, Any]:
    """Import the Agg drawing classes, or raise the install hint if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401  (a None entry in sys.modules raises here too)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise LyricgenError(INSTALL_HINT) from None
    return Figure, FigureCanvasAgg, MaxNLocator


_CJK_NAMES = ("Noto Sans CJK", "Noto Serif CJK", "Source Han", "WenQuanYi", "SimHei",
              "Microsoft YaHei", "PingFang", "Heiti", "AR PL")  # fmt: skip


def cjk_font() -> str | None:
    """The family name of an installed font that has Chinese glyphs, or None (matplotlib's
    default font then draws boxes for Han characters)."""
    from matplotlib import font_manager

    manager = font_manager.fontManager

    def find() -> str | None:
        names = sorted({f.name for f in manager.ttflist})
        return next((n for key in _CJK_NAMES for n in names if key in n), None)

    found = find()
    if found is None:  # matplotlib's font cache may predate the font's installation
        for path in font_manager.findSystemFonts():
            if any(k in Path(path).name for k in ("CJK", "wqy", "SourceHan", "simhei", "msyh")):
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = find()
    return found
