"""One check of typed values and of their ranges, shared by config files (`config`) and
generation options (`craft.options`: flags, JSON requests, keyword arguments).

The rules: a bool is never a number; an int passes where a float is wanted (and becomes a
float); floats must be finite; a list[int] holds whole numbers only. Each caller turns a
`TypeMismatch` into its own one-line error.
"""

from __future__ import annotations

import math
from typing import Any


def bounds(lo: float | None = None, hi: float | None = None, *, lo_open=False, hi_open=False):
    """Field metadata for an allowed range (`out_of_range` reads it); open ends exclude
    their bound."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}


def out_of_range(value: Any, meta: dict) -> str | None:
    """What is wrong with `value` under the field metadata's range, e.g. "it must be >= 1",
    or None when it is in range (or None, or the field has no range)."""
    if value is None:
        return None
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        return f"it must be {'>' if meta.get('lo_open') else '>='} {lo}"
    if hi is not None and (value > hi or (meta.get("hi_open") and value == hi)):
        return f"it must be {'<' if meta.get('hi_open') else '<='} {hi}"
    return None


class TypeMismatch(ValueError):
    """`value` is not of the kind asked for; `str(exc)` says what was expected."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def coerce(value: Any, kind: str, numeric_strings: bool = False) -> Any:
    """`value` checked against `kind` ('bool', 'int', 'float', 'str' or 'list[int]').
    `numeric_strings`: a string that reads as a float passes as one (YAML 1.1 reads "1e-3",
    with no dot, as a string)."""
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = _is_int(value)
    elif kind == "float":
        if numeric_strings and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        ok = _is_int(value) or isinstance(value, float)
        if ok:
            value = float(value)
            if not math.isfinite(value):
                raise TypeMismatch("a finite number")
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "list[int]":
        ok = isinstance(value, list) and all(_is_int(v) for v in value)
        if not ok:
            raise TypeMismatch("a list of whole numbers")
    else:  # pragma: no cover - every field and option uses one of the kinds above
        return value
    if not ok:
        raise TypeMismatch(f"{'an' if kind == 'int' else 'a'} {kind}")
    return value
