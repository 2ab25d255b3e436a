"""Evidence bundle -> model card (Markdown and self-contained HTML). Pure: dict in, text out.

Why a bundle first and a rendering second: the bundle is the evidence (content-addressed by
`bundle_digest`, so it can be cited in the decision log and tagged on the MLflow model version);
the card is only a view of it. Every section of the bundle carries a `source` naming the artifact
the claim came from (a Dagster materialization or run, an MLflow run or model version, a DVC
object, a git commit, a decision-log record) and that artifact's sha256, and the card prints
both next to the claim, so an auditor can follow and re-hash every statement.

Rendering is deterministic (no clock, no environment), so the same bundle always renders to the
same bytes. All text is escaped: HTML through `html.escape` plus a Content-Security-Policy that
forbids scripts and remote loads; Markdown by escaping inline HTML and link/emphasis syntax.

Bundle schema (all JSON; `canonical_json` refuses NaN, so map undefined metrics to None):

    model           ModelSection            required
    intended_use    TextSection             required
    limitations     TextSection             required
    data            list[Dataset]           required, non-empty
    code            CodeSection             required
    environment     EnvironmentSection      required
    hyperparameters ValuesSection           required
    metrics         MetricsSection          required (holdout metrics)
    gates           list[Gate]              required (may be empty)
    decisions       list[Decision]          required (may be empty)
    fairness        FairnessSection | NotAvailable        optional
    explanations    ExplanationsSection | NotAvailable    optional
    drift           list[DriftEntry] | NotAvailable       optional
    schema_version  int, generated_at str                 optional

An absent optional section, or {"not_available": "<reason>"}, renders as
"not available (<reason>)".
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import urlsplit

from mlgov_assets.core.integrity import canonical_hash, is_sha256

__all__ = [
    "SCHEMA_VERSION",
    "SOURCE_KINDS",
    "BundleError",
    "bundle_digest",
    "iter_sources",
    "render_html",
    "render_markdown",
    "validate_bundle",
]

SCHEMA_VERSION = 1
SOURCE_KINDS = frozenset(
    {
        "dagster_materialization",
        "dagster_run",
        "mlflow_run",
        "mlflow_model_version",
        "dvc",
        "git",
        "decision_log",
        "monitoring_ledger",
    }  # monitoring_ledger: a batch's state.json under $MLGOV_HOME/monitoring (core.monitoring)
)
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")
_GIT_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


# --------------------------------------------------------------------------- schema


class Source(TypedDict, total=False):
    kind: str  # one of SOURCE_KINDS (required)
    ref: str  # run id, asset key + materialization id, models:/name/version, path#index ... (required)
    sha256: str  # content hash of the artifact behind `ref` (required)
    url: str  # optional http(s) link to the Dagster/MLflow UI page


class ModelSection(TypedDict):
    name: str
    version: str | int
    run_id: str
    registered_at: str
    artifact_manifest_digest: str  # integrity.manifest_digest of the model's artifact files
    source: Source


class TextSection(TypedDict):
    text: str
    source: Source


class Column(TypedDict):
    name: str
    dtype: str


class Dataset(TypedDict):
    role: str  # "training", "holdout", "reference", ...
    path: str
    dvc_md5: str
    rows: int
    columns: list[Column]
    provenance: str  # where the bytes came from originally (e.g. the UCI archive URL)
    source: Source


class CodeSection(TypedDict):
    git_commit: str
    git_dirty: bool
    code_versions: dict[str, str]  # Dagster asset key -> code_version
    source: Source


class EnvironmentSection(TypedDict):
    uv_lock_sha256: str | None  # None: no uv.lock at training time (rendered as such)
    python_version: str
    packages: dict[str, str]
    source: Source


class ValuesSection(TypedDict):
    values: dict[str, Any]
    source: Source


class MetricsSection(TypedDict):
    split: str
    values: dict[str, Any]
    source: Source


class Gate(TypedDict, total=False):
    name: str
    passed: bool
    severity: str  # "error" (blocking) or "warn"
    values: dict[str, Any]
    thresholds: dict[str, Any]
    policy_hash: str
    evaluated_at: str
    link: str  # optional http(s) URL of the check evaluation
    source: Source


class FairnessSection(TypedDict):
    groups: list[dict[str, Any]]  # one row per (attribute, group): n, selection_rate, tpr, ...
    summary: dict[str, Any]  # e.g. demographic_parity_ratio per attribute
    source: Source


class Feature(TypedDict):
    feature: str
    importance: float


class ExplanationsSection(TypedDict):
    method: str
    top_features: list[Feature]
    source: Source


class DriftEntry(TypedDict):
    batch: str
    time: str
    dataset_drift: bool
    drifted_columns: list[str]
    source: Source


class Decision(TypedDict):
    index: int
    kind: str
    actor: str
    reason: str
    time: str
    source: Source  # kind "decision_log", sha256 = the record's hash


class NotAvailable(TypedDict):
    not_available: str


class EvidenceBundle(TypedDict, total=False):
    schema_version: int
    generated_at: str
    model: ModelSection
    intended_use: TextSection
    limitations: TextSection
    data: list[Dataset]
    code: CodeSection
    environment: EnvironmentSection
    hyperparameters: ValuesSection
    metrics: MetricsSection
    gates: list[Gate]
    decisions: list[Decision]
    fairness: FairnessSection | NotAvailable
    explanations: ExplanationsSection | NotAvailable
    drift: list[DriftEntry] | NotAvailable


class BundleError(ValueError):
    """The bundle does not match the schema; `problems` names every bad field by path."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s) in evidence bundle: " + "; ".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------- validation

_Check = Callable[[Any], bool]


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_dict(v: Any) -> bool:
    return isinstance(v, dict)


def _is_list(v: Any) -> bool:
    return isinstance(v, list)


_FIELDS: dict[str, dict[str, tuple[_Check, str]]] = {
    "model": {
        "name": (_is_str, "non-empty string"),
        "version": (lambda v: _is_str(v) or _is_int(v), "string or int"),
        "run_id": (_is_str, "non-empty string"),
        "registered_at": (_is_str, "non-empty string"),
        "artifact_manifest_digest": (is_sha256, "sha256 hex"),
    },
    "text": {"text": (_is_str, "non-empty string")},
    "dataset": {
        "role": (_is_str, "non-empty string"),
        "path": (_is_str, "non-empty string"),
        "dvc_md5": (lambda v: isinstance(v, str) and bool(_MD5_RE.match(v)), "32-hex md5"),
        "rows": (lambda v: _is_int(v) and v >= 0, "int >= 0"),
        "columns": (
            lambda v: (
                _is_list(v) and all(_is_dict(c) and _is_str(c.get("name")) and _is_str(c.get("dtype")) for c in v)
            ),
            "list of {name, dtype}",
        ),
        "provenance": (_is_str, "non-empty string"),
    },
    "code": {
        # "unknown" when the project was not a git checkout: stated, not hidden (renders as such)
        "git_commit": (
            lambda v: isinstance(v, str) and (bool(_GIT_RE.match(v)) or v == "unknown"),
            "40- or 64-hex git commit, or 'unknown'",
        ),
        "git_dirty": (lambda v: isinstance(v, bool), "bool"),
        "code_versions": (_is_dict, "object asset -> code_version"),
    },
    "environment": {
        "uv_lock_sha256": (lambda v: v is None or is_sha256(v), "sha256 hex, or null when no uv.lock was found"),
        "python_version": (_is_str, "non-empty string"),
        "packages": (_is_dict, "object name -> version"),
    },
    "values": {"values": (_is_dict, "object")},
    "metrics": {"split": (_is_str, "non-empty string"), "values": (_is_dict, "object")},
    "gate": {
        "name": (_is_str, "non-empty string"),
        "passed": (lambda v: isinstance(v, bool), "bool"),
        "severity": (_is_str, "non-empty string"),
        "values": (_is_dict, "object"),
        "thresholds": (_is_dict, "object"),
        "policy_hash": (is_sha256, "sha256 hex"),
        "evaluated_at": (_is_str, "non-empty string"),
    },
    "fairness": {
        "groups": (lambda v: _is_list(v) and all(_is_dict(g) for g in v), "list of objects"),
        "summary": (_is_dict, "object"),
    },
    "explanations": {
        "method": (_is_str, "non-empty string"),
        "top_features": (
            lambda v: _is_list(v) and all(_is_dict(f) and _is_str(f.get("feature")) for f in v),
            "list of {feature, importance}",
        ),
    },
    "drift": {
        "batch": (_is_str, "non-empty string"),
        "time": (_is_str, "non-empty string"),
        "dataset_drift": (lambda v: isinstance(v, bool), "bool"),
        "drifted_columns": (lambda v: _is_list(v) and all(isinstance(c, str) for c in v), "list of strings"),
    },
    "decision": {
        "index": (lambda v: _is_int(v) and v >= 0, "int >= 0"),
        "kind": (_is_str, "non-empty string"),
        "actor": (_is_str, "non-empty string"),
        "reason": (_is_str, "non-empty string"),
        "time": (_is_str, "non-empty string"),
    },
}

_SECTIONS: dict[str, tuple[str, bool]] = {  # bundle key -> (field spec, is a list)
    "model": ("model", False),
    "intended_use": ("text", False),
    "limitations": ("text", False),
    "data": ("dataset", True),
    "code": ("code", False),
    "environment": ("environment", False),
    "hyperparameters": ("values", False),
    "metrics": ("metrics", False),
    "gates": ("gate", True),
    "decisions": ("decision", True),
    "fairness": ("fairness", False),
    "explanations": ("explanations", False),
    "drift": ("drift", True),
}
OPTIONAL = frozenset({"fairness", "explanations", "drift"})


def _source_problems(src: Any, where: str) -> list[str]:
    if not _is_dict(src):
        return [f"{where}.source: missing (every claim must name its source)"]
    out = []
    if src.get("kind") not in SOURCE_KINDS:
        out.append(f"{where}.source.kind: {src.get('kind')!r} not in {sorted(SOURCE_KINDS)}")
    if not _is_str(src.get("ref")):
        out.append(f"{where}.source.ref: must be a non-empty string")
    if not is_sha256(src.get("sha256")):
        out.append(f"{where}.source.sha256: must be a sha256 hex, got {src.get('sha256')!r}")
    if "url" in src and _safe_url(src["url"]) is None:
        out.append(f"{where}.source.url: only absolute http(s) URLs are allowed, got {src['url']!r}")
    return out


def _item_problems(item: Any, spec: str, where: str) -> list[str]:
    if not _is_dict(item):
        return [f"{where}: must be an object, got {type(item).__name__}"]
    out = [
        f"{where}.{name}: expected {what}, got {item.get(name)!r}"
        for name, (check, what) in _FIELDS[spec].items()
        if not check(item.get(name))
    ]
    if spec == "gate" and "link" in item and _safe_url(item["link"]) is None:
        out.append(f"{where}.link: only absolute http(s) URLs are allowed, got {item['link']!r}")
    return out + _source_problems(item.get("source"), where)


def _unavailable(value: Any) -> str | None:
    """The reason an optional section is absent, or None if it is present."""
    if value is None:
        return "not provided in the evidence bundle"
    if _is_dict(value) and set(value) == {"not_available"}:
        return str(value["not_available"]) or "no reason given"
    return None


def validate_bundle(bundle: Mapping[str, Any]) -> list[str]:
    """Every schema problem, each naming its path (e.g. `gates[2].source.sha256`); [] if valid."""
    if not isinstance(bundle, Mapping):
        return [f"bundle must be an object, got {type(bundle).__name__}"]
    problems = [
        f"{k}: unknown section" for k in bundle if k not in _SECTIONS and k not in ("schema_version", "generated_at")
    ]
    for key, (spec, is_list) in _SECTIONS.items():
        value = bundle.get(key)
        if key in OPTIONAL and _unavailable(value) is not None:
            continue
        if value is None:
            problems.append(f"{key}: required section missing")
        elif is_list and not _is_list(value):
            problems.append(f"{key}: must be a list")
        elif is_list:
            if key == "data" and not value:
                problems.append("data: at least one dataset is required")
            for i, item in enumerate(value):
                problems += _item_problems(item, spec, f"{key}[{i}]")
        else:
            problems += _item_problems(value, spec, key)
    try:
        canonical_hash(bundle)
    except (TypeError, ValueError) as exc:  # NaN, non-str keys, objects: not content-addressable
        problems.append(str(exc))
    return problems


def iter_sources(bundle: Mapping[str, Any]) -> list[tuple[str, Source]]:
    """(path, source) for every claim in a valid bundle: what `mlgov audit` re-hashes."""
    out: list[tuple[str, Source]] = []
    for key, (_, is_list) in _SECTIONS.items():
        value = bundle.get(key)
        if value is None or (key in OPTIONAL and _unavailable(value) is not None):
            continue
        items = enumerate(value) if is_list else [(None, value)]
        for i, item in items:
            out.append((key if i is None else f"{key}[{i}]", item["source"]))
    return out


def bundle_digest(bundle: Mapping[str, Any]) -> str:
    """sha256 of the bundle's canonical JSON: the card's content address."""
    return canonical_hash(bundle)


# --------------------------------------------------------------------------- document model
# Sections are built once as a small block list; two backends render it. Keeps MD and HTML in step.


@dataclass(frozen=True)
class _Code:
    text: str


@dataclass(frozen=True)
class _Link:
    text: str
    url: str


@dataclass(frozen=True)
class _Src:
    source: Mapping[str, Any]


Cell = str | _Code | _Link | _Src


@dataclass(frozen=True)
class _Block:
    kind: str  # "text" | "kv" | "table" | "source" | "na" | "h3"
    data: Any


@dataclass(frozen=True)
class _Section:
    anchor: str
    title: str
    blocks: list[_Block]


def _safe_url(url: Any) -> str | None:
    """The URL if it is an absolute http(s) URL without characters that could break out of markup."""
    if not isinstance(url, str) or any(c in url for c in "<>\"'`| \t\r\n\\"):
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _fmt(value: Any) -> str:
    """Human-readable scalar/dict/list formatting shared by both backends."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) or "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value) or "—"
    return str(value)


def _kv(rows: list[tuple[str, Cell]]) -> _Block:
    return _Block("kv", rows)


def _table(headers: list[str], rows: list[list[Cell]]) -> _Block:
    return _Block("table", (headers, rows))


def _src(section: Mapping[str, Any]) -> _Block:
    return _Block("source", section["source"])


def _na(reason: str) -> _Block:
    return _Block("na", reason)


def _model_section(m: Mapping[str, Any]) -> list[_Block]:
    return [
        _kv(
            [
                ("Name", m["name"]),
                ("Version", str(m["version"])),
                ("MLflow run", _Code(m["run_id"])),
                ("Registered at", m["registered_at"]),
                ("Artifact manifest digest", _Code(m["artifact_manifest_digest"])),
            ]
        ),
        _src(m),
    ]


def _text_section(t: Mapping[str, Any]) -> list[_Block]:
    return [_Block("text", t["text"]), _src(t)]


def _data_section(datasets: list[Mapping[str, Any]]) -> list[_Block]:
    rows: list[list[Cell]] = [
        [
            d["role"],
            _Code(d["path"]),
            f"{d['rows']:,}",
            str(len(d["columns"])),
            _Code(d["dvc_md5"]),
            d["provenance"],
            _Src(d["source"]),
        ]
        for d in datasets
    ]
    blocks = [_table(["Role", "Path", "Rows", "Columns", "DVC md5", "Provenance", "Source"], rows)]
    for d in datasets:
        schema = ", ".join(f"{c['name']}: {c['dtype']}" for c in d["columns"]) or "—"
        blocks.append(_kv([(f"Schema ({d['role']})", schema)]))
    return blocks


def _mapping_table(headers: list[str], values: Mapping[str, Any]) -> _Block:
    return _table(headers, [[str(k), _fmt(v)] for k, v in values.items()])


def _code_section(c: Mapping[str, Any]) -> list[_Block]:
    blocks = [
        _kv(
            [
                ("Git commit", _Code(c["git_commit"])),
                (
                    "Working tree dirty",
                    _fmt(c["git_dirty"]) + (" — NOT reproducible from the commit alone" if c["git_dirty"] else ""),
                ),
            ]
        )
    ]
    if c["code_versions"]:
        blocks.append(_mapping_table(["Dagster asset", "code_version"], c["code_versions"]))
    return [*blocks, _src(c)]


def _env_section(e: Mapping[str, Any]) -> list[_Block]:
    lock: Cell = _Code(e["uv_lock_sha256"]) if e["uv_lock_sha256"] else "not recorded (no uv.lock at training time)"
    blocks = [_kv([("uv.lock sha256", lock), ("Python", e["python_version"])])]
    if e["packages"]:
        blocks.append(_mapping_table(["Package", "Version"], e["packages"]))
    return [*blocks, _src(e)]


def _values_section(v: Mapping[str, Any], headers: list[str], prefix: list[_Block] | None = None) -> list[_Block]:
    body = _mapping_table(headers, v["values"]) if v["values"] else _Block("text", "(none recorded)")
    return (prefix or []) + [body, _src(v)]


def _gates_section(gates: list[Mapping[str, Any]]) -> list[_Block]:
    if not gates:
        return [_Block("text", "No gate results recorded for this model version.")]
    failed = [g["name"] for g in gates if not g["passed"]]
    summary = f"{len(gates)} gate(s): {len(gates) - len(failed)} passed, {len(failed)} failed"
    summary += f" ({', '.join(failed)})." if failed else "."
    rows: list[list[Cell]] = [
        [
            g["name"],
            "PASS" if g["passed"] else "FAIL",
            g["severity"],
            _fmt(g["values"]),
            _fmt(g["thresholds"]),
            _Code(g["policy_hash"]),
            g["evaluated_at"],
            _Link("open", g["link"]) if g.get("link") else "—",
            _Src(g["source"]),
        ]
        for g in gates
    ]
    headers = ["Gate", "Result", "Severity", "Values", "Thresholds", "Policy sha256", "Evaluated at", "Link", "Source"]
    return [_Block("text", summary), _table(headers, rows)]


def _union_keys(rows: list[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    return keys


def _fairness_section(f: Mapping[str, Any]) -> list[_Block]:
    keys = _union_keys(f["groups"])
    blocks: list[_Block] = []
    if keys:
        blocks.append(_table(keys, [[_fmt(row.get(k)) for k in keys] for row in f["groups"]]))
    if f["summary"]:
        blocks += [_Block("h3", "Summary"), _mapping_table(["Measure", "Value"], f["summary"])]
    return (blocks or [_Block("text", "(no fairness rows)")]) + [_src(f)]


def _explanations_section(x: Mapping[str, Any]) -> list[_Block]:
    rows: list[list[Cell]] = [
        [str(i + 1), f["feature"], _fmt(f.get("importance"))] for i, f in enumerate(x["top_features"])
    ]
    return [_kv([("Method", x["method"])]), _table(["Rank", "Feature", "Importance"], rows), _src(x)]


def _drift_section(entries: list[Mapping[str, Any]]) -> list[_Block]:
    if not entries:
        return [_Block("text", "No production batches monitored yet.")]
    rows: list[list[Cell]] = [
        [
            e["batch"],
            e["time"],
            "DRIFT" if e["dataset_drift"] else "no drift",
            _fmt(e["drifted_columns"]),
            _Src(e["source"]),
        ]
        for e in entries
    ]
    return [_table(["Batch", "Time", "Dataset drift", "Drifted columns", "Source"], rows)]


def _decisions_section(decisions: list[Mapping[str, Any]]) -> list[_Block]:
    if not decisions:
        return [_Block("text", "No decisions recorded for this model version.")]
    overrides = sum(d["kind"] == "override" for d in decisions)
    rows: list[list[Cell]] = [
        [
            str(d["index"]),
            d["time"],
            d["kind"].upper() if d["kind"] == "override" else d["kind"],
            d["actor"],
            d["reason"],
            _Src(d["source"]),
        ]
        for d in decisions
    ]
    intro = f"{len(decisions)} decision(s), {overrides} override(s) of a failed gate."
    return [_Block("text", intro), _table(["#", "Time", "Kind", "Actor", "Reason", "Source"], rows)]


_BUILDERS: list[tuple[str, str, Callable[[Any], list[_Block]]]] = [
    ("model", "Model", _model_section),
    ("intended_use", "Intended use", _text_section),
    ("limitations", "Limitations", _text_section),
    ("data", "Data", _data_section),
    ("code", "Code", _code_section),
    ("environment", "Environment", _env_section),
    ("hyperparameters", "Hyperparameters", lambda v: _values_section(v, ["Parameter", "Value"])),
    ("metrics", "Holdout metrics", lambda v: _values_section(v, ["Metric", "Value"], [_kv([("Split", v["split"])])])),
    ("gates", "Governance gates", _gates_section),
    ("fairness", "Fairness", _fairness_section),
    ("explanations", "Explanations", _explanations_section),
    ("drift", "Drift history", _drift_section),
    ("decisions", "Decisions", _decisions_section),
]


def _document(bundle: Mapping[str, Any]) -> tuple[str, list[_Block], list[_Section]]:
    problems = validate_bundle(bundle)
    if problems:
        raise BundleError(problems)
    m = bundle["model"]
    title = f"Model card: {m['name']} version {m['version']}"
    header = [
        _kv(
            [
                ("Evidence bundle sha256", _Code(bundle_digest(bundle))),
                ("Schema version", str(bundle.get("schema_version", SCHEMA_VERSION))),
                ("Generated at", bundle.get("generated_at") or "—"),
            ]
        )
    ]
    sections = []
    for key, heading, build in _BUILDERS:
        reason = _unavailable(bundle.get(key)) if key in OPTIONAL else None
        blocks = [_na(reason)] if reason is not None else build(bundle[key])
        sections.append(_Section(key.replace("_", "-"), heading, blocks))
    return title, header, sections


# --------------------------------------------------------------------------- Markdown backend

# Escaped everywhere: syntax that could link, embed, emphasize or split a table cell. An underscore
# inside a word cannot start emphasis in GFM, so identifiers like `education_num` stay readable.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md_text(text: str) -> str:
    """Escape Markdown syntax and inline HTML: the card must show text, never interpret it."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), html.escape(text, quote=False))


def _md_paragraph(text: str) -> str:
    """`_md_text` for free text, also neutralizing line-start block syntax (headings, lists, rules)."""
    lines = []
    for line in _md_text(text).splitlines():
        line = re.sub(r"^(\s*)([#+=-])", r"\1\\\2", line)
        lines.append(re.sub(r"^(\s*\d{1,9})([.)])(?=\s|$)", r"\1\\\2", line))
    return "  \n".join(lines)  # keep the author's line breaks as hard breaks


def _md_code(text: str) -> str:
    text = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(r) for r in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_source(src: Mapping[str, Any]) -> str:
    ref = _md_code(src["ref"])
    url = _safe_url(src.get("url"))
    ref = f"[{ref}](<{url}>)" if url else ref
    return f"{_md_text(src['kind'])} {ref} · sha256 {_md_code(src['sha256'])}"


def _md_cell(cell: Cell, in_table: bool) -> str:
    if isinstance(cell, _Link):
        return f"[{_md_text(cell.text)}](<{cell.url}>)"  # _safe_url admits no '|', '<' or '>'
    if isinstance(cell, (_Code, _Src)):
        out = _md_code(cell.text) if isinstance(cell, _Code) else _md_source(cell.source)
        # GFM splits table cells on '|' before parsing code spans, so pipes there need a backslash
        return out.replace("|", "\\|") if in_table else out
    return _md_text(cell.replace("\r", " ").replace("\n", " ") if in_table else cell)  # escapes '|'


def _md_table(headers: list[str], rows: list[list[Cell]]) -> list[str]:
    lines = ["| " + " | ".join(_md_text(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(c, True) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _md_block(block: _Block) -> list[str]:
    if block.kind == "text":
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", block.data) if p.strip()]
        return [line for p in paragraphs for line in (_md_paragraph(p), "")]
    if block.kind == "kv":
        return [f"- **{_md_text(k)}:** {_md_cell(v, False)}" for k, v in block.data] + [""]
    if block.kind == "table":
        return _md_table(*block.data)
    if block.kind == "source":
        return [f"_Source:_ {_md_source(block.data)}", ""]
    if block.kind == "na":
        return [f"_Not available ({_md_text(block.data)})._", ""]
    if block.kind == "h3":
        return [f"### {_md_text(block.data)}", ""]
    raise AssertionError(block.kind)


def render_markdown(bundle: Mapping[str, Any]) -> str:
    """The model card as Markdown (GFM tables). Raises BundleError naming every schema problem."""
    title, header, sections = _document(bundle)
    lines = [f"# {_md_text(title)}", ""]
    for block in header:
        lines += _md_block(block)
    for section in sections:
        lines += [f"## {_md_text(section.title)}", ""]
        for block in section.blocks:
            lines += _md_block(block)
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- HTML backend

_CSS = """
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px;background:#fff}
h1{font-size:24px;margin:0 0 12px}h2{font-size:18px;border-bottom:1px solid #dde1e7;padding-bottom:4px;margin-top:28px}
h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;width:100%;font-size:13px}
th,td{border:1px solid #dde1e7;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f2f5}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f0f2f5;padding:1px 3px;border-radius:3px;word-break:break-all}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}dt{font-weight:600}dd{margin:0}
.source{color:#4a5466;font-size:12px;margin:4px 0 12px}
.na{color:#8a6d00;font-style:italic}
.PASS{color:#11723b;font-weight:600}.FAIL,.DRIFT,.OVERRIDE{color:#b3261e;font-weight:600}
footer{margin-top:32px;color:#4a5466;font-size:12px}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_source(src: Mapping[str, Any]) -> str:
    url = _safe_url(src.get("url"))
    ref = (
        f'<a href="{_h(url)}" rel="noopener noreferrer"><code>{_h(src["ref"])}</code></a>'
        if url
        else f"<code>{_h(src['ref'])}</code>"
    )
    return f'{_h(src["kind"])} {ref} · sha256 <code class="hash">{_h(src["sha256"])}</code>'


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, _Code):
        return f"<code>{_h(cell.text)}</code>"
    if isinstance(cell, _Link):
        return f'<a href="{_h(cell.url)}" rel="noopener noreferrer">{_h(cell.text)}</a>'
    if isinstance(cell, _Src):
        return _html_source(cell.source)
    if cell in ("PASS", "FAIL", "DRIFT", "OVERRIDE"):
        return f'<span class="{cell}">{cell}</span>'
    return _h(cell)


def _html_block(block: _Block) -> str:
    if block.kind == "text":
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", block.data) if p.strip()]
        return "".join("<p>" + "<br>".join(_h(x) for x in p.splitlines()) + "</p>" for p in paragraphs)
    if block.kind == "kv":
        return "<dl>" + "".join(f"<dt>{_h(k)}</dt><dd>{_html_cell(v)}</dd>" for k, v in block.data) + "</dl>"
    if block.kind == "table":
        headers, rows = block.data
        head = "".join(f"<th>{_h(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if block.kind == "source":
        return f'<p class="source">Source: {_html_source(block.data)}</p>'
    if block.kind == "na":
        return f'<p class="na">Not available ({_h(block.data)}).</p>'
    if block.kind == "h3":
        return f"<h3>{_h(block.data)}</h3>"
    raise AssertionError(block.kind)


def render_html(bundle: Mapping[str, Any]) -> str:
    """The model card as one self-contained HTML page: inline CSS, no scripts, no remote loads."""
    title, header, sections = _document(bundle)
    body = [f"<h1>{_h(title)}</h1>"] + [_html_block(b) for b in header]
    for section in sections:
        inner = "".join(_html_block(b) for b in section.blocks)
        body.append(f'<section id="{_h(section.anchor)}"><h2>{_h(section.title)}</h2>{inner}</section>')
    digest = bundle_digest(bundle)
    body.append(
        f"<footer>Rendered from evidence bundle sha256 <code>{digest}</code>; every source hash above "
        "can be re-checked with <code>mlgov audit</code>.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_h(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_h(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
