"""A scoring request: JSON body -> raw rows in the project's input layout -> the project's own
validation gate (the batch schema the monitoring intake uses), refused with the field and rule.

The body is ``{"rows": [{column: value, ...}, ...], "reasons": N}`` (or ``{"row": {...}}`` for one
row). Values are the raw file's values: strings, or numbers/booleans (written as text, as a CSV
would carry them); ``null`` is the spec's first missing token. Nothing from the body is echoed back
except through :func:`~mlgov_assets.core.project.quoting.quote` (bounded).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.project.quoting import quote, quote_bytes, quote_names

if TYPE_CHECKING:
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.serving.options import ServeOptions

RawValue = str | int | float | bool | None


class PredictRequest(BaseModel):
    """The documented body of ``POST /predict`` (OpenAPI); parsing is :func:`parse_request`."""

    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, RawValue]] | None = Field(
        default=None, description="rows in the project's raw input layout (column -> raw value)"
    )
    row: dict[str, RawValue] | None = Field(default=None, description="one row (instead of rows)")
    reasons: int | None = Field(default=None, description="top reasons per row from the champion's explainer")


class Problem(BaseModel):
    """One reason a request was refused: where (field/column), which rule, which rows, a quoted value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    rule: str
    rows: list[int] = Field(default_factory=list)
    value: str | None = None


class RequestRefused(InputError):
    """A request the service will not score: the HTTP status and every problem found."""

    def __init__(self, status: int, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.status = status
        self.problems = problems or []

    def to_dict(self) -> dict[str, JsonValue]:
        return {"error": str(self), "problems": [p.model_dump() for p in self.problems]}


@dataclass(frozen=True)
class ParsedRequest:
    """A request that passed every rule: its raw rows (validated) and what it asked for."""

    raw: pd.DataFrame  # the project's columns as raw strings, validated by the batch schema
    rows: list[dict[str, str | None]]  # the same rows as logged and rolled into landing batches
    reasons: int
    input_sha256: str


def _decode(body: bytes, opts: ServeOptions, quote_chars: int) -> dict[str, Any]:
    if len(body) > opts.max_body_bytes:
        raise RequestRefused(413, f"request body of {len(body)} bytes is over the limit of {opts.max_body_bytes}")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestRefused(
            400,
            f"malformed JSON: {exc.__class__.__name__} at position {getattr(exc, 'pos', '?')}",
            [Problem(field="<body>", rule="valid JSON", value=quote_bytes(body, quote_chars))],
        ) from None
    if not isinstance(doc, dict):
        raise RequestRefused(422, "the body must be a JSON object", [Problem(field="<body>", rule="a JSON object")])
    unknown = sorted(set(doc) - {"rows", "row", "reasons"})
    if unknown:
        names = quote_names(unknown, quote_chars)
        raise RequestRefused(
            422,
            f"unknown body field(s) {names}",
            [Problem(field="<body>", rule="fields rows|row|reasons", value=names)],
        )
    return doc


def _rows(doc: dict[str, Any], opts: ServeOptions) -> list[Any]:
    if ("rows" in doc) == ("row" in doc):
        raise RequestRefused(
            422,
            "give exactly one of 'rows' (a list) or 'row' (an object)",
            [Problem(field="rows", rule="exactly one of rows|row")],
        )
    rows = doc["rows"] if "rows" in doc else [doc["row"]]
    if not isinstance(rows, list) or not rows:
        raise RequestRefused(
            422, "'rows' must be a non-empty list of objects", [Problem(field="rows", rule="a non-empty list")]
        )
    if len(rows) > opts.max_rows:
        raise RequestRefused(
            422,
            f"{len(rows)} rows is over the limit of {opts.max_rows} per request",
            [Problem(field="rows", rule=f"at most {opts.max_rows} rows")],
        )
    return rows


def _reasons(doc: dict[str, Any], query: int | None, opts: ServeOptions) -> int:
    value = doc.get("reasons", query)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= opts.max_reasons:
        raise RequestRefused(
            422,
            f"'reasons' must be an integer from 0 to {opts.max_reasons}",
            [Problem(field="reasons", rule=f"integer in [0, {opts.max_reasons}]", value=quote(value))],
        )
    return value


def _cell(project: Project, value: Any) -> str | None:
    if value is None:
        return project.missing_tokens[0] if project.missing_tokens else None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise TypeError(type(value).__name__)


def _raw_rows(project: Project, rows: list[Any], quote_chars: int, max_field: int) -> list[dict[str, str | None]]:
    known = set(project.columns)
    problems: list[Problem] = []
    out: list[dict[str, str | None]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            problems.append(Problem(field=f"rows[{i}]", rule="an object of column -> raw value", rows=[i]))
            continue
        unknown = [str(k) for k in row if k not in known]
        if unknown:
            problems.append(
                Problem(
                    field=quote_names(unknown, quote_chars),
                    rule="a column of the project's spec (unknown column)",
                    rows=[i],
                )
            )
        cells: dict[str, str | None] = {}
        for col in project.columns:
            if col not in row:
                continue
            try:
                cell = _cell(project, row[col])
            except TypeError as exc:
                problems.append(
                    Problem(
                        field=quote(col, quote_chars), rule=f"a string, number, boolean or null (got {exc})", rows=[i]
                    )
                )
                continue
            if cell is not None and len(cell) > max_field:
                problems.append(
                    Problem(
                        field=quote(col, quote_chars),
                        rule=f"fields of at most {max_field} characters",
                        rows=[i],
                        value=quote(cell, quote_chars),
                    )
                )
                continue
            cells[col] = cell
        out.append(cells)
    if problems:
        raise RequestRefused(
            422, "; ".join(f"{p.field}: {p.rule} (rows {p.rows})" for p in problems[:10]), problems[:50]
        )
    return out


class RequestGate:
    """The project's batch schema, built once per service (not per request), and the fast pre-check
    compiled from that same schema object (:mod:`~mlgov_assets.core.data.rowcheck`): rows it
    certainly accepts skip Pandera; every other request is judged by the schema itself, so a refusal
    names the same field and rule as the monitoring intake would."""

    def __init__(self, project: Project):
        from mlgov_assets.core.data.rowcheck import compile_schema
        from mlgov_assets.core.project.schemas import raw_schema

        self.project = project
        self.schema = raw_schema(project, batch=True)
        self.compiled = compile_schema(self.schema)

    def judge(self, columns: dict[str, list[str | None]], quote_chars: int) -> pd.DataFrame:
        """The validated raw frame (the request's columns), or :class:`RequestRefused` with each problem."""
        from mlgov_assets.core.monitoring.intake import absent_label, validate_batch

        label, n = absent_label(self.project, columns), len(next(iter(columns.values()), []))
        empty: list[str | None] = [None] * n
        judged = columns if label is None else {**columns, label: empty}
        frame = pd.DataFrame(columns, dtype=object)
        if self.compiled is not None and self.compiled.certainly_passes(judged):
            return frame
        report = validate_batch(self.project, frame, source="request", schema=self.schema)
        if report.passed:
            return frame
        problems = [
            Problem(
                field=f.column,
                rule=f.check,
                rows=[int(e["row"]) for e in f.examples if isinstance(e.get("row"), int)],
                value=None if not f.examples else quote(f.examples[0].get("value"), quote_chars),
            )
            for f in report.failures
        ]
        raise RequestRefused(422, report.summary()[:2000], problems)


def request_columns(project: Project, rows: list[dict[str, str | None]]) -> dict[str, list[str | None]]:
    """The request's rows as columns (the spec's order; a column any row has, ``None`` where one lacks it)."""
    cols = [c for c in project.columns if any(c in r for r in rows)]
    return {c: [r.get(c) for r in rows] for c in cols}


def parse_request(
    project: Project,
    body: bytes,
    opts: ServeOptions,
    *,
    reasons: int | None = None,
    quote_chars: int = 40,
    max_field_chars: int = 4096,
    gate: RequestGate | None = None,
) -> ParsedRequest:
    """The body, judged: decoded, shaped, and validated by the project's batch schema (strict: an
    unknown column, a missing one, a wrong value are refused naming the column and rule). ``gate``:
    the service's (built once); without one, a gate is built for this call."""
    doc = _decode(body, opts, quote_chars)
    rows = _raw_rows(project, _rows(doc, opts), quote_chars, max_field_chars)
    n_reasons = _reasons(doc, reasons, opts)
    columns = request_columns(project, rows)
    frame = (gate or RequestGate(project)).judge(columns, quote_chars)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return ParsedRequest(raw=frame, rows=rows, reasons=n_reasons, input_sha256=digest)
