"""Small shared pieces of the Dagster layer: metadata builders and code versions."""

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue, TableColumn, TableSchema

from mlgov_assets.core.provenance import source_version

if TYPE_CHECKING:
    import pandas as pd

    from mlgov_assets.core.data.schemas import ValidationReport

#: Stages whose code includes the project's Python hooks (``hooks.reader``, ``hooks.features``).
HOOKED_STAGES = ("data", "features")


def _code_versions() -> dict[str, str]:
    """Each stage's code version: its module plus everything it imports (see ``source_version``)."""
    return {
        stage: source_version(f"defs/{stage}.py")
        for stage in ("data", "features", "training", "governance", "fairness")
    }


#: The stages' code versions as the templates carry them (no project hooks).
CODE_VERSIONS = _code_versions()


def hooked_code_versions(spec: Path, project_dir: Path) -> dict[str, str]:
    """For a project with Python hooks (``hooks.reader``, ``hooks.features``): template code version ->
    the project's, which includes the hooks' source hash; ``{}`` without hooks, or when the spec or a
    hook cannot be loaded (the run then says why)."""
    from mlgov_assets.core.errors import MlgovError
    from mlgov_assets.core.project.project import open_project

    try:
        hooks = open_project(spec, project_dir).hooks_sha256()
    except MlgovError:
        return {}
    if not hooks:
        return {}
    return {
        CODE_VERSIONS[stage]: hashlib.sha256(f"{CODE_VERSIONS[stage]}+hooks:{hooks}".encode()).hexdigest()[:16]
        for stage in HOOKED_STAGES
    }


def table_metadata(df: "pd.DataFrame") -> dict[str, Any]:
    return {
        "dagster/row_count": len(df),
        "dagster/column_schema": TableSchema(columns=[TableColumn(str(c), str(t)) for c, t in df.dtypes.items()]),
    }


def json_md(obj: Any) -> MetadataValue:
    return MetadataValue.json(json.loads(json.dumps(obj, default=str)))


def rows_table(rows: list[dict[str, Any]]) -> MetadataValue:
    """A list of flat dicts as Markdown (readable in the UI, no schema bookkeeping)."""
    if not rows:
        return MetadataValue.md("_no rows_")
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return MetadataValue.md("\n".join(lines))


def schema_check_result(report: "ValidationReport") -> AssetCheckResult:
    """A Pandera validation report as a blocking (ERROR) check result with the evidence."""
    rows = [
        {
            "column": f.column,
            "check": f.check,
            "failing": f.count,
            "example rows": [e["row"] for e in f.examples],
            "example values": [e["value"] for e in f.examples],
        }
        for f in report.failures
    ]
    return AssetCheckResult(
        passed=report.passed,
        severity=AssetCheckSeverity.ERROR,
        description=report.summary(),
        metadata={
            "source": report.source,
            "schema": report.schema,
            "rows_checked": report.rows,
            "rules_failed": len(report.failures),
            "failures": rows_table(rows),
            "evidence": json_md(report.to_dict()),
        },
    )
