"""``mlgov audit export-lineage MODEL_REF [--out FILE] [--emit] [--json]``: a model version's whole chain
(data → validated data → features → model → gates → registration → champion decisions) as OpenLineage
run events, built from the facts ``mlgov audit`` gathers and verifies (``core/audit/openlineage/chain``).

Without ``--out`` the events go to stdout, one JSON line each; with ``--out`` to FILE (written
atomically). ``--emit`` also sends them through the configured transport (``MLGOV_OPENLINEAGE_URL``:
Marquez, DataHub, …). ``--json`` prints one document: the summary, plus the events when there is no
FILE. Exit 0 when the chain verifies, 1 when a link is broken (the events are still written: they
carry what was found), 2 for a bad MODEL_REF or another error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, JsonValue

from mlgov_assets.core.errors import MlgovError
from mlgov_assets.core.settings import get_settings

__all__ = ["ExportSummary", "cmd_export_lineage"]


class ExportSummary(BaseModel):
    """The ``--json`` document of ``mlgov audit export-lineage``."""

    model_config = ConfigDict(extra="forbid")

    ok: bool
    model_name: str
    version: int
    ref: str
    broken: list[str]
    events: int
    out: str | None
    emitted: dict[str, JsonValue] | None = None
    event_list: list[JsonValue] | None = None


def cmd_export_lineage(ref: str | None, out: str | None, emit_events: bool, as_json: bool) -> int:
    from mlgov_assets.core.audit.lineage.audit import audit
    from mlgov_assets.core.audit.openlineage.chain import chain_events
    from mlgov_assets.core.audit.openlineage.events import EventContext
    from mlgov_assets.core.audit.openlineage.transport import OpenLineageConfig, emit, event_json
    from mlgov_assets.core.integrity import atomic_write_bytes

    from ..defs.audit import dagster_reader
    from .audit import BROKEN, VERIFIED, _instance, _recover, _refused, _registry

    if not ref:
        print("mlgov audit export-lineage needs a MODEL_REF (e.g. champion)", file=sys.stderr)
        return 2
    s = get_settings()
    try:
        registry = _registry(s, ref)
        _recover(registry, "audit export-lineage")
        report, facts = audit(registry, ref, dagster_reader=dagster_reader(_instance(s)))
    except MlgovError as exc:
        return _refused("audit export-lineage", exc)
    cfg = OpenLineageConfig.from_env(s)
    events = chain_events(EventContext(cfg.namespace), facts, s.project_name)
    lines = [event_json(e) for e in events]
    text = "".join(line + "\n" for line in lines)
    if out:
        try:
            atomic_write_bytes(Path(out), text.encode("utf-8"))
        except OSError as exc:
            print(f"mlgov audit export-lineage: cannot write {out} ({exc.strerror or exc})", file=sys.stderr)
            return 2
    emitted = emit(events, cfg).model_dump(mode="json") if emit_events else None
    summary = ExportSummary(
        ok=report.ok,
        model_name=report.model_name,
        version=report.version,
        ref=ref,
        broken=report.broken,
        events=len(events),
        out=str(Path(out).resolve()) if out else None,
        emitted=emitted,
        event_list=[json.loads(line) for line in lines] if not out else None,
    )
    if as_json:
        print(summary.model_dump_json(indent=2))
    elif out:
        print(
            f"models:/{report.model_name}/{report.version}: {len(events)} OpenLineage event(s) written to {out}"
            + ("" if report.ok else f"; BROKEN audit link(s): {', '.join(report.broken)}")
        )
    else:
        sys.stdout.write(text)
    if emitted is not None and emitted.get("errors"):
        print(f"mlgov audit export-lineage: emission failed: {emitted['errors']}", file=sys.stderr)
    if not report.ok:
        print(f"mlgov audit export-lineage: BROKEN audit link(s): {', '.join(report.broken)}", file=sys.stderr)
    return VERIFIED if report.ok else BROKEN
