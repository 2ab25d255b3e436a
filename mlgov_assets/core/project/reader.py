"""Read a project's raw files exactly as delivered: every value a stripped string, missing as ``None``.

Numeric parsing and range checks are the validation gate's job, so a bad value is reported, not
silently coerced. The spec's format says delimiter, header, encoding, comment lines and label
normalisation.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from mlgov_assets.core.project.hooks import call_hook, resolve_hook
from mlgov_assets.core.project.project import Project
from mlgov_assets.core.project.rawcheck import (
    RawFileError,
    check_columns,
    check_field_lengths,
    check_ragged,
    content_lines,
    decode,
    empty_file,
    parse_records,
)

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Ingestion

__all__ = ["RawFileError", "read_raw", "write_raw"]

HeaderMode = Literal["present", "absent", "auto"]


def read_raw(
    project: Project,
    path: str | Path,
    *,
    header: HeaderMode | None = None,
    content: bytes | None = None,
    limits: Ingestion | None = None,
) -> pd.DataFrame:
    """The file at ``path`` in the project's raw layout (columns named as in the spec).

    ``header`` overrides the spec's header mode, e.g. ``"present"`` for files mlgov wrote itself
    (:func:`write_raw`), whatever the team's own files look like. The spec's ``hooks.reader``, when
    set, reads the team's own files (``header`` not given); mlgov's own files never go through it.
    ``content`` is the file's bytes when the caller already read them (the landing folder reads each
    file once, without following links); ``limits`` caps lines and fields (policy ``ingestion``).
    The structure rules (:mod:`~mlgov_assets.core.project.rawcheck`: encoding, BOM, caps, ragged
    records, duplicate columns) raise :class:`RawFileError`; unknown and missing columns are the
    schema's to report (``strict``), by name, next to every other failing rule.
    """
    fmt = project.spec.data.format
    path = Path(path)
    hook = resolve_hook("reader", project.spec.hooks, project.repo) if header is None else None
    if hook is not None:
        df = _from_hook(hook, path, project)
    elif fmt.kind == "parquet" or path.suffix == ".parquet":
        df = _read_parquet(path, content, limits)
    else:
        data = path.read_bytes() if content is None else content
        df = _read_csv(project, data, path.name, header or fmt.header, limits)
    names = [_column_name(project, str(c)) for c in df.columns]
    check_columns(names, names, path.name, limits=limits)  # each column once (after aliasing)
    df.columns = names
    df = df.replace("", None)  # an empty field is a missing value, reported as such by the gate
    if fmt.label_strip_suffix and project.label in df.columns:
        df[project.label] = df[project.label].str.removesuffix(fmt.label_strip_suffix)
    return df


def _from_hook(hook: Callable[..., Any], path: Path, project: Project) -> pd.DataFrame:
    """The reader hook's table as raw strings (``None`` for missing); then normalised like any file."""
    df = call_hook("reader", hook, project.spec.hooks, path, project)
    return _as_strings(df, path.name)


def _as_strings(df: pd.DataFrame, source: str, limits: Ingestion | None = None) -> pd.DataFrame:
    """Every value a stripped string (``None`` for missing); duplicate column names refused first
    (building the table by name would silently keep one of them)."""
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        check_columns(names, names, source, limits=limits)
    out = pd.DataFrame(
        {n: [None if v is None or pd.isna(v) else str(v).strip() for v in df.iloc[:, i]] for i, n in enumerate(names)},
        dtype=object,
    )
    check_field_lengths(out, source, limits)
    return out


def _read_parquet(path: Path, content: bytes | None, limits: Ingestion | None) -> pd.DataFrame:
    stored = pd.read_parquet(path if content is None else io.BytesIO(content))
    return _as_strings(stored, path.name, limits)


def _read_csv(project: Project, data: bytes, source: str, mode: HeaderMode, limits: Ingestion | None) -> pd.DataFrame:
    fmt = project.spec.data.format
    text = decode(data, fmt.encoding, source, limits)
    lines = content_lines(text, fmt, source, limits)
    if not lines:
        raise empty_file(source)
    header = mode == "present" or (mode == "auto" and _looks_like_header(project, [ln for _, ln in lines[:1]]))
    starts, records = parse_records(lines, fmt, source)
    names = [f.strip() for f in records[0]] if header else list(project.columns)
    body, body_starts = (records[1:], starts[1:]) if header else (records, starts)
    check_ragged(names, body_starts, body, source)
    df = pd.DataFrame(body, columns=range(len(names)), dtype=object)
    for pos in range(len(names)):
        df[pos] = df[pos].str.strip()
    df.columns = names
    check_field_lengths(df, source, limits, body_starts)
    return df


def _looks_like_header(project: Project, lines: list[str]) -> bool:
    """``auto``: a first line is a header row when its first field names the first column, or when
    most of its fields name the spec's columns (a batch may lead with its own ``row_id`` column)."""
    if not lines:
        return False
    fields = [f.strip().strip('"') for f in lines[0].split(project.spec.data.format.delimiter)]
    named = sum(_column_name(project, f) in project.spec.columns for f in fields)
    return _column_name(project, fields[0]) == project.columns[0] or named * 2 > len(fields)


def _column_name(project: Project, name: str) -> str:
    """Header names as the spec spells them (``native-country`` in a header is ``native_country``)."""
    name = name.strip()
    alias = name.replace("-", "_")
    return alias if name not in project.spec.columns and alias in project.spec.columns else name


def write_raw(project: Project, df: pd.DataFrame, path: str | Path) -> None:
    """Write raw rows as CSV with a header row, in the spec's delimiter and encoding (read back with
    ``read_raw(project, path, header="present")``), atomically."""
    from mlgov_assets.core.integrity import atomic_write_bytes

    fmt = project.spec.data.format
    text = df.to_csv(index=False, sep=fmt.delimiter, na_rep="")
    atomic_write_bytes(path, text.encode(fmt.encoding))
