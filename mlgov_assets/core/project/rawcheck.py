"""The structure of a raw file, checked before any value is: what a careful reviewer refuses first.

Byte-order marks and the encoding are named; physical lines and fields over the policy's caps are
refused with their line numbers; every record must have as many fields as the header (ragged rows
lose values silently otherwise); the header must name exactly the spec's columns (unknown, missing
and duplicate columns refused by name). Training data, holdout and production batches go through
the same rules (:func:`mlgov_assets.core.project.reader.read_raw`). Raw values in the evidence are
quoted (:mod:`mlgov_assets.core.project.quoting`), never copied.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.project.quoting import DEFAULT_QUOTE_CHARS, quote, quote_bytes

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Ingestion
    from mlgov_assets.core.project.spec import Format

#: Byte-order marks, longest first (UTF-32-LE starts like UTF-16-LE).
BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32-LE"),
    (b"\x00\x00\xfe\xff", "UTF-32-BE"),
    (b"\xef\xbb\xbf", "UTF-8"),
    (b"\xff\xfe", "UTF-16-LE"),
    (b"\xfe\xff", "UTF-16-BE"),
)
#: How many examples (lines, values) a rule keeps, and how many unknown/missing columns are named.
MAX_EXAMPLES = 5
MAX_NAMED = 20
_NEWLINE = re.compile(r"\r\n|\r|\n")


@dataclass
class RuleFailure:
    """One rule a file breaks: the column (or ``<file>``/``<row>``), the check, how many cases fail,
    and examples (``row`` = the table's index, ``line`` = the physical line; ``value`` quoted)."""

    column: str
    check: str
    count: int
    examples: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "check": self.check, "count": self.count, "examples": self.examples}

    def describe(self) -> str:
        rows = [ex["row"] for ex in self.examples if ex.get("row") is not None]
        lines = [ex["line"] for ex in self.examples if ex.get("line") is not None]
        vals = [ex["value"] for ex in self.examples if "value" in ex]
        where = (f" rows {rows}" if rows else "") + (f" lines {lines}" if lines else "")
        return f"column '{self.column}' fails '{self.check}' in {self.count} case(s){where} (values {vals})"


class RawFileError(InputError):
    """A raw file refused for its structure; ``failures`` are the rules it breaks, as evidence."""

    def __init__(self, source: str, failures: list[RuleFailure]) -> None:
        self.source, self.failures = source, failures
        super().__init__(f"{source}: refused: " + "; ".join(f.describe() for f in failures))


def _lines_rule(column: str, check: str, hits: Sequence[tuple[int, str]], limit: int) -> RuleFailure:
    examples = [{"row": None, "line": n, "value": quote(v, limit)} for n, v in hits[:MAX_EXAMPLES]]
    return RuleFailure(column=column, check=check, count=len(hits), examples=examples)


def _file_rule(check: str, value: str, line: int | None = None) -> RuleFailure:
    return RuleFailure(column="<file>", check=check, count=1, examples=[{"row": None, "line": line, "value": value}])


def quote_limit(limits: Ingestion | None) -> int:
    return limits.quote_chars if limits is not None else DEFAULT_QUOTE_CHARS


# --------------------------------------------------------------------------- bytes -> lines


def decode(data: bytes, encoding: str, source: str, limits: Ingestion | None = None) -> str:
    """The text of a file; a byte-order mark, an undecodable byte or a NUL character is refused
    naming the line (a BOM would otherwise turn the header into an unknown first column)."""
    q = quote_limit(limits)
    for bom, name in BOMS:
        if data.startswith(bom):
            marks = " ".join(f"{b:02X}" for b in bom)
            raise RawFileError(
                source, [_file_rule(f"no byte-order mark ({encoding} without BOM)", f"{name} BOM {marks}", 1)]
            )
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"byte {exc.start}: {exc.reason}"
        value = f"{where}: {quote_bytes(data[exc.start : exc.start + 8], q)}"
        raise RawFileError(source, [_file_rule(f"{encoding} text", value, line)]) from exc
    nul = text.find("\x00")
    if nul >= 0:
        raise RawFileError(
            source, [_file_rule("no NUL character (binary content)", f"char {nul}", text.count("\n", 0, nul) + 1)]
        )
    return text


def content_lines(text: str, fmt: Format, source: str, limits: Ingestion | None = None) -> list[tuple[int, str]]:
    """``(line number, line)`` of the lines that hold records: blank and comment lines dropped; a
    line over ``ingestion.max_line_chars`` is refused with its number."""
    lines = _NEWLINE.split(text)
    if limits is not None:
        long = [(i, ln) for i, ln in enumerate(lines, 1) if len(ln) > limits.max_line_chars]
        if long:
            rule = _lines_rule(
                "<file>", f"lines of at most {limits.max_line_chars} characters", long, limits.quote_chars
            )
            raise RawFileError(source, [rule])
    prefix = fmt.comment_prefix
    return [(i, ln) for i, ln in enumerate(lines, 1) if ln.strip() and not (prefix and ln.startswith(prefix))]


def parse_records(lines: list[tuple[int, str]], fmt: Format, source: str) -> tuple[list[int], list[list[str]]]:
    """CSV records (fields as written) and the line each starts on (quoted fields may span lines)."""
    if len(fmt.delimiter) != 1:
        raise InputError(f"{source}: the spec's delimiter {fmt.delimiter!r} must be one character")

    def reader() -> Any:
        return csv.reader(
            (ln for _, ln in lines), delimiter=fmt.delimiter, quotechar='"', skipinitialspace=fmt.skip_initial_space
        )

    try:
        records = list(reader())
    except csv.Error:
        records = []  # located below
    if records and len(records) == len(lines):  # one record per line: the common case, at C speed
        return [n for n, _ in lines], records
    starts: list[int] = []
    records = []
    consumed = 0
    rd = reader()
    try:
        for record in rd:
            starts.append(lines[consumed][0])
            records.append(record)
            consumed = rd.line_num
    except csv.Error as exc:
        at = lines[min(consumed, len(lines) - 1)][0]
        raise RawFileError(source, [_file_rule("CSV syntax", quote(str(exc)), at)]) from exc
    return starts, records


# --------------------------------------------------------------------------- records -> table


def check_ragged(header: Sequence[str], starts: Sequence[int], records: Sequence[Sequence[str]], source: str) -> None:
    """Every record has as many fields as the header (a short or long record would shift or lose
    values, its label among them): refused with the line numbers."""
    width = len(header)
    ragged = [(starts[i], f"{len(r)} fields") for i, r in enumerate(records) if len(r) != width]
    if ragged:
        raise RawFileError(source, [_lines_rule("<row>", f"{width} fields per record (as the header)", ragged, 10**6)])


def check_field_lengths(
    df: pd.DataFrame, source: str, limits: Ingestion | None, starts: Sequence[int] | None = None
) -> None:
    """No field over ``ingestion.max_field_chars``; refused per column with lines (or rows) and the
    values quoted."""
    if limits is None or df.empty:
        return
    cap, q = limits.max_field_chars, limits.quote_chars
    failures = []
    for pos, name in enumerate(df.columns):
        col = df.iloc[:, pos]
        over = np.flatnonzero(col.map(lambda v: v is not None and len(str(v)) > cap).to_numpy(dtype=bool))
        if not len(over):
            continue
        examples = [
            {"row": None, "line": starts[i], "value": quote(col.iloc[i], q)}
            if starts is not None
            else {"row": int(i), "value": quote(col.iloc[i], q)}
            for i in over[:MAX_EXAMPLES]
        ]
        failures.append(RuleFailure(quote(name, q), f"fields of at most {cap} characters", len(over), examples))
    if failures:
        raise RawFileError(source, failures)


def check_columns(
    names: Sequence[str],
    expected: Sequence[str],
    source: str,
    *,
    optional: Iterable[str] = (),
    extra: Iterable[str] = (),
    limits: Ingestion | None = None,
) -> None:
    """The columns are exactly ``expected`` (less ``optional`` ones that may be absent, plus
    ``extra`` ones that may be present), each once: unknown, missing and duplicate columns are refused
    by name, never dropped or renamed silently."""
    q = quote_limit(limits)
    allowed = {*expected, *extra}
    failures: list[RuleFailure] = []
    seen: dict[str, list[int]] = {}
    for pos, name in enumerate(names, 1):
        seen.setdefault(name, []).append(pos)
    dups = [(n, p) for n, p in seen.items() if len(p) > 1]
    for name, positions in dups[:MAX_NAMED]:
        failures.append(
            RuleFailure(
                quote(name, q),
                "unique column name",
                len(positions),
                [{"row": None, "value": f"positions {positions[:MAX_EXAMPLES]}"}],
            )
        )
    unknown = [n for n in seen if n not in allowed]
    for name in unknown[:MAX_NAMED]:
        failures.append(
            RuleFailure(
                quote(name, q),
                "column in the project spec (unknown column)",
                1,
                [{"row": None, "value": f"position {seen[name][0]}"}],
            )
        )
    missing = [c for c in expected if c not in seen and c not in set(optional)]
    for name in missing[:MAX_NAMED]:
        failures.append(RuleFailure(name, "column present (missing column)", 1, []))
    hidden = max(0, len(dups) - MAX_NAMED) + max(0, len(unknown) - MAX_NAMED) + max(0, len(missing) - MAX_NAMED)
    if hidden:
        failures.append(RuleFailure("<header>", f"{hidden} more column rule(s) not listed", hidden, []))
    if failures:
        raise RawFileError(source, failures)


def empty_file(source: str) -> RawFileError:
    return RawFileError(source, [_file_rule("not empty (a header and data rows)", "no header and no rows")])
