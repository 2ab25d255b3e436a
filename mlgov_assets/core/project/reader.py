"""Read a project's raw files exactly as delivered: every value a stripped string, missing as ``None``.

Numeric parsing and range checks are the validation gate's job, so a bad value is reported, not
silently coerced. The spec's format says delimiter, header, encoding, comment lines and label
normalisation.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from mlgov_assets.core.errors import InputError
from mlgov_assets.core.project.hooks import call_hook, resolve_hook
from mlgov_assets.core.project.project import Project

HeaderMode = Literal["present", "absent", "auto"]


def read_raw(project: Project, path: str | Path, *, header: HeaderMode | None = None) -> pd.DataFrame:
    """The file at ``path`` in the project's raw layout (columns named as in the spec).

    ``header`` overrides the spec's header mode, e.g. ``"present"`` for files mlgov wrote itself
    (:func:`write_raw`), whatever the team's own files look like. The spec's ``hooks.reader``, when
    set, reads the team's own files (``header`` not given); mlgov's own files never go through it.
    """
    fmt = project.spec.data.format
    path = Path(path)
    hook = resolve_hook("reader", project.spec.hooks, project.repo) if header is None else None
    if hook is not None:
        df = _from_hook(hook, path, project)
    elif fmt.kind == "parquet" or path.suffix == ".parquet":
        stored = pd.read_parquet(path)
        df = pd.DataFrame(
            {c: [None if pd.isna(v) else str(v).strip() for v in stored[c]] for c in stored.columns}, dtype=object
        )
    else:
        df = _read_csv(project, path, header or fmt.header)
    df.columns = [_column_name(project, str(c)) for c in df.columns]
    df = df.replace("", None)  # an empty field is a missing value, reported as such by the gate
    if fmt.label_strip_suffix and project.label in df.columns:
        df[project.label] = df[project.label].str.removesuffix(fmt.label_strip_suffix)
    return df


def _from_hook(hook: Callable[..., Any], path: Path, project: Project) -> pd.DataFrame:
    """The reader hook's table as raw strings (``None`` for missing); then normalised like any file."""
    df = call_hook("reader", hook, project.spec.hooks, path, project)
    return pd.DataFrame(
        {str(c): [None if v is None or pd.isna(v) else str(v).strip() for v in df[c]] for c in df.columns},
        dtype=object,
    )


def _read_csv(project: Project, path: Path, mode: HeaderMode) -> pd.DataFrame:
    fmt = project.spec.data.format
    try:
        text = path.read_text(encoding=fmt.encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not {fmt.encoding} text (byte {exc.start}: {exc.reason})") from exc
    lines = [
        ln for ln in text.splitlines() if ln.strip() and not (fmt.comment_prefix and ln.startswith(fmt.comment_prefix))
    ]
    header = mode == "present" or (mode == "auto" and _looks_like_header(project, lines))
    df = pd.read_csv(
        io.StringIO("\n".join(lines)),
        sep=fmt.delimiter,
        header=0 if header else None,
        names=None if header else project.columns,
        dtype=str,
        skipinitialspace=fmt.skip_initial_space,
        keep_default_na=False,
        na_values=[],
    )
    for col in df.columns:
        df[col] = df[col].str.strip()
    return df


def _looks_like_header(project: Project, lines: list[str]) -> bool:
    """``auto``: a first line whose first field names the first column is a header row."""
    if not lines:
        return False
    first = lines[0].split(project.spec.data.format.delimiter)[0].strip().strip('"')
    return _column_name(project, first) == project.columns[0]


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
