"""A fast, conservative pre-check compiled from a Pandera schema object, for a few rows of raw text.

Why: running a Pandera schema costs milliseconds per call whatever the number of rows, which
dominates a one-row scoring request. This module reads the schema Pandera would run (its columns,
dtypes, ``nullable``, ``coerce`` and checks — nothing is restated by hand) and answers one question:
*does this input certainly pass?* ``True`` only when every value meets a rule it understands
exactly; anything else (a failure, or a construct it does not know) is ``False``, and the caller
runs the real schema, which gives the verdict and the evidence. So the fast path can only make
accepting cheaper; refusals and their messages stay Pandera's.

Understood: ``strict`` schemas without schema-level checks; ``str`` columns with ``isin``; ``int64``
/ ``float64`` columns with ``coerce=True`` and ``ge``/``le``/``gt``/``lt`` checks. A numeric value is
accepted only in a plain decimal spelling (an integer column: ``[+-]?[0-9]+`` within int64; a float
column: decimal or exponent notation, finite) — ``nan``, ``inf``, ``1_000`` and non-ASCII digits go to
Pandera. A ``None`` is accepted only in a nullable ``str`` column.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandera.pandas as pa

_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_INT64 = (-(2**63), 2**63 - 1)

_BOUNDS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "greater_than_or_equal_to": ("min_value", lambda v, b: v >= b),
    "less_than_or_equal_to": ("max_value", lambda v, b: v <= b),
    "greater_than": ("min_value", lambda v, b: v > b),
    "less_than": ("max_value", lambda v, b: v < b),
}


@dataclass(frozen=True)
class _Column:
    kind: str  # "str" | "int64" | "float64"
    nullable: bool
    allowed: frozenset[str] | None  # str columns: the isin values
    bounds: tuple[tuple[Callable[[float, float], bool], float], ...]  # numeric columns

    def accepts(self, value: str | None) -> bool:
        if value is None:
            return self.kind == "str" and self.nullable
        if not isinstance(value, str):
            return False
        if self.kind == "str":
            return self.allowed is None or value in self.allowed
        number = self._number(value)
        return number is not None and all(test(number, bound) for test, bound in self.bounds)

    def _number(self, value: str) -> float | int | None:
        if self.kind == "int64":
            if not _INT.fullmatch(value):
                return None
            n = int(value)
            return n if _INT64[0] <= n <= _INT64[1] else None
        if not _FLOAT.fullmatch(value):
            return None
        f = float(value)
        return f if math.isfinite(f) else None


@dataclass(frozen=True)
class CompiledSchema:
    """The schema's rules as plain Python, for :meth:`certainly_passes`."""

    columns: Mapping[str, _Column]

    def certainly_passes(self, frame: Mapping[str, Sequence[str | None]]) -> bool:
        """``frame``: column -> values (every column the same length). True only if the schema
        would accept it; False means "ask Pandera" (it may still pass)."""
        if set(frame) != set(self.columns):  # a missing or unknown column: Pandera names it
            return False
        lengths = {len(v) for v in frame.values()}
        if len(lengths) != 1 or 0 in lengths:
            return False
        for name, values in frame.items():
            rule = self.columns[name]
            if not all(rule.accepts(v) for v in values):
                return False
        return True


def _column(col: Any) -> _Column | None:
    kind = str(col.dtype)
    plain = (
        col.required
        and not col.unique
        and not col.regex
        and col.default is None
        and not col.drop_invalid_rows
        and not getattr(col, "parsers", None)
    )
    if not plain or kind not in ("str", "int64", "float64") or col.coerce != (kind != "str"):
        return None
    allowed: frozenset[str] | None = None
    bounds: list[tuple[Callable[[float, float], bool], float]] = []
    for check in col.checks:
        if not check.ignore_na or check.raise_warning or check.groupby is not None:
            return None
        stats = check.statistics or {}
        if check.name == "isin" and kind == "str" and allowed is None:
            values = list(stats.get("allowed_values", []))
            if not all(isinstance(v, str) for v in values):
                return None
            allowed = frozenset(values)
        elif check.name in _BOUNDS and kind != "str":
            key, test = _BOUNDS[check.name]
            bound = stats.get(key)
            if isinstance(bound, bool) or not isinstance(bound, (int, float)):
                return None
            bounds.append((test, bound))
        else:
            return None
    return _Column(kind=kind, nullable=bool(col.nullable), allowed=allowed, bounds=tuple(bounds))


def compile_schema(schema: pa.DataFrameSchema) -> CompiledSchema | None:
    """The fast pre-check of ``schema``, or ``None`` when it holds anything this module does not
    understand exactly (then every input goes to Pandera)."""
    plain = (
        schema.strict is True
        and not schema.checks
        and not schema.coerce
        and schema.index is None
        and schema.dtype is None
        and not schema.unique
        and not schema.add_missing_columns
        and not getattr(schema, "parsers", None)
    )
    if not plain:
        return None
    columns: dict[str, _Column] = {}
    for name, col in schema.columns.items():
        compiled = _column(col)
        if compiled is None or not isinstance(name, str):
            return None
        columns[name] = compiled
    return CompiledSchema(columns)
