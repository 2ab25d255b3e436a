"""The card as a document: sections of blocks built once from a validated bundle, so the Markdown
and HTML backends stay in step. Pure and deterministic (no clock, no environment)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mlgov_assets.core.audit.modelcard.schema import (
    OPTIONAL,
    SCHEMA_VERSION,
    AnyBundle,
    CodeSection,
    Dataset,
    Decision,
    DriftEntry,
    EnvironmentSection,
    EvidenceBundle,
    ExplanationsSection,
    FairnessSection,
    Gate,
    MetricsSection,
    ModelSection,
    ProjectSection,
    Source,
    TextSection,
    ValuesSection,
    as_json,
    bundle_digest,
    parse_bundle,
    unavailable,
)

__all__ = ["Block", "Cell", "Code", "Document", "Href", "Section", "Src", "build_document", "fmt"]


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Href:
    text: str
    url: str


@dataclass(frozen=True)
class Src:
    source: Source


Cell = str | Code | Href | Src
BlockKind = Literal["text", "kv", "table", "source", "na", "h3"]


@dataclass(frozen=True)
class Block:
    kind: BlockKind
    data: Any  # text: str; kv: [(label, Cell)]; table: (headers, rows); source: Source; na/h3: str


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    blocks: list[Block]


@dataclass(frozen=True)
class Document:
    title: str
    header: list[Block]
    sections: list[Section]
    digest: str


def fmt(value: Any) -> str:
    """Human-readable scalar/dict/list formatting shared by both backends."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items()) or "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value) or "—"
    return str(value)


def _kv(rows: list[tuple[str, Cell]]) -> Block:
    return Block("kv", rows)


def _table(headers: list[str], rows: list[list[Cell]]) -> Block:
    return Block("table", (headers, rows))


def _src(source: Source) -> Block:
    return Block("source", source)


def _mapping_table(headers: list[str], values: Mapping[str, Any]) -> Block:
    return _table(headers, [[str(k), fmt(v)] for k, v in values.items()])


def _model_section(m: ModelSection) -> list[Block]:
    return [
        _kv(
            [
                ("Name", m.name),
                ("Version", str(m.version)),
                ("MLflow run", Code(m.run_id)),
                ("Registered at", m.registered_at),
                ("Artifact manifest digest", Code(m.artifact_manifest_digest)),
            ]
        ),
        _src(m.source),
    ]


def _text_section(t: TextSection) -> list[Block]:
    return [Block("text", t.text), _src(t.source)]


def _data_section(datasets: list[Dataset]) -> list[Block]:
    rows: list[list[Cell]] = [
        [d.role, Code(d.path), f"{d.rows:,}", str(len(d.columns)), Code(d.dvc_md5), d.provenance, Src(d.source)]
        for d in datasets
    ]
    blocks = [_table(["Role", "Path", "Rows", "Columns", "DVC md5", "Provenance", "Source"], rows)]
    for d in datasets:
        schema = ", ".join(f"{c.name}: {c.dtype}" for c in d.columns) or "—"
        blocks.append(_kv([(f"Schema ({d.role})", schema)]))
    return blocks


def _project_section(p: ProjectSection) -> list[Block]:
    protected = ", ".join(
        a.column if a.judged_as == a.column else f"{a.column} (judged as {a.judged_as}: {', '.join(a.bands or [])})"
        for a in p.protected
    )
    recorded = "yes" if p.recorded_with_version else "no (registered before projects were recorded)"
    blocks = [
        _kv(
            [
                ("Project", p.name),
                ("Spec sha256", Code(p.spec_sha256)),
                ("Spec recorded with the version", recorded),
                ("Target", f"{p.target} (favourable: {p.favourable})"),
                ("Protected attributes", protected),
                ("Model features", ", ".join(p.model_features) or "—"),
                ("Holdout", p.holdout),
            ]
        )
    ]
    if p.exclusions:
        rows: list[list[Cell]] = [[e.column, e.reason, e.note or "—"] for e in p.exclusions]
        blocks += [Block("h3", "Excluded columns"), _table(["Column", "Reason", "Note"], rows)]
    if p.split is not None:
        blocks += [Block("h3", "Holdout split record"), _mapping_table(["Field", "Value"], p.split)]
    return [*blocks, _src(p.source)]


def _code_section(c: CodeSection) -> list[Block]:
    dirty = fmt(c.git_dirty) + (" — NOT reproducible from the commit alone" if c.git_dirty else "")
    blocks = [_kv([("Git commit", Code(c.git_commit)), ("Working tree dirty", dirty)])]
    if c.code_versions:
        blocks.append(_mapping_table(["Dagster asset", "code_version"], c.code_versions))
    return [*blocks, _src(c.source)]


def _env_section(e: EnvironmentSection) -> list[Block]:
    lock: Cell = Code(e.uv_lock_sha256) if e.uv_lock_sha256 else "not recorded (no uv.lock at training time)"
    blocks = [_kv([("uv.lock sha256", lock), ("Python", e.python_version)])]
    if e.packages:
        blocks.append(_mapping_table(["Package", "Version"], e.packages))
    return [*blocks, _src(e.source)]


def _values_section(v: ValuesSection | MetricsSection, headers: list[str], prefix: list[Block]) -> list[Block]:
    body = _mapping_table(headers, v.values) if v.values else Block("text", "(none recorded)")
    return [*prefix, body, _src(v.source)]


def _gates_section(gates: list[Gate]) -> list[Block]:
    if not gates:
        return [Block("text", "No gate results recorded for this model version.")]
    failed = [g.name for g in gates if not g.passed]
    summary = f"{len(gates)} gate(s): {len(gates) - len(failed)} passed, {len(failed)} failed"
    summary += f" ({', '.join(failed)})." if failed else "."
    rows: list[list[Cell]] = [
        [
            g.name,
            "PASS" if g.passed else "FAIL",
            g.severity,
            fmt(g.values),
            fmt(g.thresholds),
            Code(g.policy_hash),
            g.evaluated_at,
            Href("open", g.link) if g.link else "—",
            Src(g.source),
        ]
        for g in gates
    ]
    headers = ["Gate", "Result", "Severity", "Values", "Thresholds", "Policy sha256", "Evaluated at", "Link", "Source"]
    return [Block("text", summary), _table(headers, rows)]


def _fairness_section(f: FairnessSection) -> list[Block]:
    keys: list[str] = []
    for row in f.groups:
        keys += [k for k in row if k not in keys]
    blocks: list[Block] = []
    if keys:
        blocks.append(_table(keys, [[fmt(row.get(k)) for k in keys] for row in f.groups]))
    if f.summary:
        blocks += [Block("h3", "Summary"), _mapping_table(["Measure", "Value"], f.summary)]
    return (blocks or [Block("text", "(no fairness rows)")]) + [_src(f.source)]


def _explanations_section(x: ExplanationsSection) -> list[Block]:
    rows: list[list[Cell]] = [[str(i + 1), f.feature, fmt(f.importance)] for i, f in enumerate(x.top_features)]
    return [_kv([("Method", x.method)]), _table(["Rank", "Feature", "Importance"], rows), _src(x.source)]


def _drift_section(entries: list[DriftEntry]) -> list[Block]:
    if not entries:
        return [Block("text", "No production batches monitored yet.")]
    rows: list[list[Cell]] = [
        [e.batch, e.time, "DRIFT" if e.dataset_drift else "no drift", fmt(e.drifted_columns), Src(e.source)]
        for e in entries
    ]
    return [_table(["Batch", "Time", "Dataset drift", "Drifted columns", "Source"], rows)]


def _decisions_section(decisions: list[Decision]) -> list[Block]:
    if not decisions:
        return [Block("text", "No decisions recorded for this model version.")]
    overrides = sum(d.kind == "override" for d in decisions)
    rows: list[list[Cell]] = [
        [str(d.index), d.time, d.kind.upper() if d.kind == "override" else d.kind, d.actor, d.reason, Src(d.source)]
        for d in decisions
    ]
    intro = f"{len(decisions)} decision(s), {overrides} override(s) of a failed gate."
    approvers = [d.actor for d in decisions if d.kind == "approval"]
    if any(d.kind.startswith("approval") for d in decisions):  # approval mode (four eyes)
        intro += f" Approved by: {', '.join(approvers) or 'nobody yet'}" + "".join(
            f"; {d.kind.replace('approval_', '')} by {d.actor}" for d in decisions if d.kind == "approval_rejection"
        )
        intro += "."
    return [Block("text", intro), _table(["#", "Time", "Kind", "Actor", "Reason", "Source"], rows)]


def _metrics_section(v: MetricsSection) -> list[Block]:
    return _values_section(v, ["Metric", "Value"], [_kv([("Split", v.split)])])


_BUILDERS: list[tuple[str, str, Callable[[Any], list[Block]]]] = [
    ("model", "Model", _model_section),
    ("intended_use", "Intended use", _text_section),
    ("limitations", "Limitations", _text_section),
    ("project", "Project", _project_section),
    ("data", "Data", _data_section),
    ("code", "Code", _code_section),
    ("environment", "Environment", _env_section),
    ("hyperparameters", "Hyperparameters", lambda v: _values_section(v, ["Parameter", "Value"], [])),
    ("metrics", "Holdout metrics", _metrics_section),
    ("gates", "Governance gates", _gates_section),
    ("fairness", "Fairness", _fairness_section),
    ("explanations", "Explanations", _explanations_section),
    ("drift", "Drift history", _drift_section),
    ("decisions", "Decisions", _decisions_section),
]


def build_document(bundle: AnyBundle) -> Document:
    """The card's blocks for a bundle; raises BundleError naming every schema problem."""
    parsed: EvidenceBundle = parse_bundle(bundle)
    bundle = as_json(bundle)
    digest = bundle_digest(bundle)
    m = parsed.model
    header = [
        _kv(
            [
                ("Evidence bundle sha256", Code(digest)),
                ("Schema version", str(bundle.get("schema_version", SCHEMA_VERSION))),
                ("Generated at", parsed.generated_at or "—"),
            ]
        )
    ]
    sections = []
    for key, heading, build in _BUILDERS:
        value = getattr(parsed, key)
        reason = unavailable(value) if key in OPTIONAL else None
        blocks = [Block("na", reason)] if reason is not None else build(value)
        sections.append(Section(key.replace("_", "-"), heading, blocks))
    return Document(f"Model card: {m.name} version {m.version}", header, sections, digest)
