"""`lyricgen generate --explain` on a terminal: the sample coloured by how sure the model was
of each token, a legend, and a table of every token's probability, the entropy of the
model's distribution and its likeliest alternatives. Drawn with `rich` (Typer's own
dependency); without a terminal the same text and table are printed without colour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lyricgen.craft.generate import Sample

# probability bands, likeliest first: (lower bound, colour, legend text)
BANDS = (
    (0.5, "green", "p >= 0.5"),
    (0.2, "yellow", "0.2-0.5"),
    (0.05, "dark_orange", "0.05-0.2"),
    (0.0, "red", "< 0.05"),
)


def band(p: float) -> str:
    return next(colour for lo, colour, _ in BANDS if p >= lo)


def shown(token: str) -> str:
    """A token as the table shows it (a line break is drawn as ↵)."""
    return "↵" if token == "\n" else token


def render(sample: Sample, start: str, level: str) -> list:
    """The rich renderables for one explained sample: coloured text, legend, table."""
    from rich.table import Table
    from rich.text import Text

    text = Text(start, style="bold")
    for tok, why in zip(sample.tokens, sample.why or [], strict=False):
        piece = " " + tok if level == "space" and tok != "\n" else tok
        text.append(piece, style=band(why.p) if tok != "\n" else None)
    legend = Text("probability under the model: ")
    for _, colour, label in BANDS:
        legend.append(f"■ {label}  ", style=colour)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for name, justify in (("#", "right"), ("token", "left"), ("p", "right"),
                          ("entropy", "right"), ("alternatives (p; ✗ = not allowed)", "left")):  # fmt: skip
        table.add_column(name, justify=justify)
    for i, (tok, why) in enumerate(zip(sample.tokens, sample.why or [], strict=False), 1):
        alts = "  ".join(f"{shown(t)} {q:.2f}{'' if ok else ' ✗'}" for t, q, ok in why.alternatives)
        table.add_row(
            str(i),
            Text(shown(tok), style=band(why.p)),
            f"{why.p:.3f}",
            f"{why.entropy:.2f} bits",
            alts,
        )
    return [text, legend, table]


def print_explained(samples: list[Sample], start: str, level: str) -> None:
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False)
    for i, s in enumerate(samples):
        if i:
            console.print("\n----\n")
        for part in render(s, start, level):
            console.print(part)
