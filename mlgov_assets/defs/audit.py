"""Stage 5 — audit: a model card (evidence bundle) for every registered model version, and the
champion's lineage verified in the UI.

``model_cards`` (one unpartitioned asset, downstream of ``champion`` so a card can never block a
promotion) rebuilds every version's evidence bundle on each run and republishes only the cards
whose digest changed (tag ``mlgov.model_card_sha256``). The ``model_cards_after_*`` sensors run
``refresh_model_cards`` after governance runs. The Dagster side of the lineage is read here
(:func:`read_dagster_lineage`) and handed to the pure core as plain data. Design notes:
docs/design-notes.md ("Audit").
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    EventLogRecord,
    Failure,
    MetadataValue,
    Output,
    RunRecord,
    RunRequest,
    RunStatusSensorContext,
    SkipReason,
    asset,
    asset_check,
    define_asset_job,
    run_status_sensor,
)

from mlgov_assets.core.errors import MlgovError
from mlgov_assets.core.provenance import source_version

from ..resources import MlgovResource, TrainingLock
from .common import json_md, rows_table
from .governance import champion
from .scope import ProjectScope, scoped

if TYPE_CHECKING:
    from mlgov_assets.core.audit.lineage.audit import DagsterReader
    from mlgov_assets.core.models.registry import Registry

CODE_VERSION = source_version("defs/audit.py")
CARD_TAG = "mlgov.model_card_sha256"
CARD_DIR = "model_card"
POINTER = "dagster/input_event_pointer/"


# --------------------------------------------------------------------------- reading Dagster (thin)


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def _node(instance: DagsterInstance, rec: EventLogRecord, role: str) -> dict[str, Any]:
    """One materialization as plain data: what the audit checks and the card cites."""
    mat = rec.asset_materialization
    assert mat is not None
    meta = {k: _value(v) for k, v in (mat.metadata or {}).items()}
    tags = dict(mat.tags or {})
    schema = meta.get("dagster/column_schema")
    columns = [{"name": c.name, "dtype": c.type} for c in getattr(schema, "columns", None) or []]
    key = mat.asset_key
    latest = instance.fetch_materializations(key, limit=1).records
    simple = {
        k.split("/")[-1]: v
        for k, v in meta.items()
        if isinstance(v, (str, int, float, bool))
        and k in ("dagster/row_count", "path", "dvc_md5", "model_version", "mlflow_run_id", "source", "train_data_md5")
    }
    return {
        "asset": key.path[-1],  # the asset's name within its project (keys are prefixed by the project)
        "role": role,
        "storage_id": rec.storage_id,
        "run_id": rec.run_id,
        "timestamp": rec.timestamp,
        "data_version": tags.get("dagster/data_version"),
        "code_version": tags.get("dagster/code_version"),
        "sha256": meta.get("mlgov/sha256"),
        "stored_at": meta.get("mlgov/stored_at"),
        "is_latest": bool(latest) and latest[0].storage_id == rec.storage_id,
        "metadata": simple,
        "columns": columns,
        "inputs": {k[len(POINTER) :]: int(v) for k, v in tags.items() if k.startswith(POINTER) and str(v).isdigit()},
    }


def _model_records(instance: DagsterInstance, run_record: RunRecord, version: int) -> list[EventLogRecord]:
    """The materializations of `version` by this run: challenger_model (which trained it) and/or
    candidate_model (the version proposed for promotion; the same version when mitigation is off)."""
    from mlgov_assets.core.audit.lineage.model import MODEL_ASSETS

    found = []
    for rec in instance.get_records_for_run(
        run_record.dagster_run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        ev = rec.event_log_entry.dagster_event
        if ev is None or ev.asset_key is None or ev.asset_key.path[-1] not in MODEL_ASSETS:
            continue  # keyed <project>/<asset> (or <asset> in a state directory from before the prefixes)
        mat = ev.step_materialization_data.materialization
        if str(_value((mat.metadata or {}).get("model_version"))) != str(version):
            continue
        found.append(_indexed(instance, rec, ev.asset_key))
    return found


def _indexed(instance: DagsterInstance, rec: EventLogRecord, key: AssetKey) -> EventLogRecord:
    """A run's materialization as the asset index records it. On SQLite a run's own event log numbers
    its events apart from the index that input pointers (and every other record here) cite, so a
    run-local storage id may equal an unrelated index id."""
    window = AssetRecordsFilter(asset_key=key, after_timestamp=rec.timestamp - 1, before_timestamp=rec.timestamp + 1)
    same = [
        r
        for r in instance.fetch_materializations(window, limit=100).records
        if r.run_id == rec.run_id and r.timestamp == rec.timestamp
    ]
    return same[0] if same else rec


def _checks(instance: DagsterInstance, run_ids: set[str], nodes: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Check evaluations (in the runs involved) that target one of the lineage's materializations."""
    out = []
    for run_id in sorted(run_ids):
        for rec in instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records:
            ev = rec.event_log_entry.asset_check_evaluation
            if ev is None:
                continue
            target = ev.target_materialization_data.storage_id if ev.target_materialization_data else None
            if target not in nodes:
                continue
            meta = {k: _value(v) for k, v in (ev.metadata or {}).items()}
            found = meta.get("evidence")
            evidence: dict[str, Any] = found if isinstance(found, dict) else {}
            out.append(
                {
                    "asset": ev.asset_key.path[-1],
                    "check": ev.check_name,
                    "passed": bool(ev.passed),
                    "severity": ev.severity.value,
                    "blocking": bool(ev.blocking),
                    "run_id": run_id,
                    "target_storage_id": target,
                    "description": ev.description,
                    "role": "model" if nodes[target]["role"] == "model" else "data",
                    "gate": evidence.get("gate"),
                    "metadata": {
                        k: v for k, v in meta.items() if k in ("policy_path", "policy_sha256", "model_version")
                    },
                }
            )
    return out


def read_dagster_lineage(
    instance: DagsterInstance, run_id: str, version: int, *, max_nodes: int = 50
) -> dict[str, Any]:
    """The Dagster part of a version's lineage, as plain data for ``core.audit.lineage``.

    From the run recorded on the version (tag mlgov.dagster_run_id): the challenger_model and/or
    candidate_model materialization of this version, then every materialization they consumed, via the
    ``dagster/input_event_pointer/*`` tags Dagster writes (so inputs materialized by earlier runs
    are found too), each with its data version, code version and the sha256 the IO manager recorded
    for the stored value; and the check evaluations that targeted those materializations.
    """
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return {
            "run": None,
            "materializations": [],
            "checks": [],
            "problems": [
                f"Dagster run {run_id} recorded on version {version} is not in this instance "
                f"({getattr(instance, 'root_directory', '?')})"
            ],
        }
    run = record.dagster_run
    out: dict[str, Any] = {
        "run": {
            "run_id": run.run_id,
            "job_name": run.job_name,
            "status": run.status.value,
            "start_time": record.start_time,
            "end_time": record.end_time,
        },
        "materializations": [],
        "checks": [],
        "problems": [],
    }
    models = _model_records(instance, record, version)
    nodes: dict[int, dict[str, Any]] = {}
    queue = [(rec, "model") for rec in models]
    while queue and len(nodes) < max_nodes:
        rec, role = queue.pop(0)
        if rec.storage_id in nodes:
            continue
        node = nodes[rec.storage_id] = _node(instance, rec, role)
        for key, sid in node["inputs"].items():
            found = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey.from_user_string(key), storage_ids=[sid]), limit=1
            ).records
            if found:  # observations of source files are not materializations: the chain ends there
                queue.append((found[0], "input"))
    out["materializations"] = sorted(nodes.values(), key=lambda n: n["storage_id"])
    out["checks"] = _checks(instance, {n["run_id"] for n in nodes.values()}, nodes)
    return out


def dagster_reader(instance: DagsterInstance) -> "DagsterReader":
    """The ``dagster_reader`` of ``core.audit.lineage.audit.audit``, bound to an instance."""

    def read(run_id: str, version: int) -> Mapping[str, Any] | None:
        return read_dagster_lineage(instance, run_id, version)

    return read


# --------------------------------------------------------------------------- cards


def publish_card(
    registry: "Registry", version: int, instance: DagsterInstance, *, force: bool = False
) -> dict[str, Any]:
    """Build the version's evidence bundle; if its digest differs from the one published on the
    version (or ``force``), attach Markdown + HTML + the bundle JSON to the version's MLflow run
    under ``model_card/`` and tag the digest. Returns what was (re)published."""
    from mlgov_assets.core.audit.lineage.bundle import build_bundle
    from mlgov_assets.core.audit.lineage.gather import gather
    from mlgov_assets.core.audit.modelcard.render import render_html, render_markdown
    from mlgov_assets.core.audit.modelcard.schema import bundle_digest
    from mlgov_assets.core.integrity import canonical_json

    info = registry.version_info(version)
    if info.run_id is None:  # mlgov registers every version from a run: one without has nowhere to hold a card
        raise MlgovError(f"version {version} of {registry.name} has no MLflow run to attach its model card to")
    run_id = info.tags.get("mlgov.dagster_run_id")
    facts = gather(registry, version, dagster=read_dagster_lineage(instance, run_id, version) if run_id else None)
    bundle = build_bundle(facts, registry.settings)
    digest = bundle_digest(bundle)
    md = render_markdown(bundle)
    stale = force or info.tags.get(CARD_TAG) != digest
    if stale:
        html = render_html(bundle)
        client = registry.client
        client.log_text(info.run_id, md, f"{CARD_DIR}/model_card.md")
        client.log_text(info.run_id, html, f"{CARD_DIR}/model_card.html")
        client.log_text(info.run_id, canonical_json(bundle.to_json()), f"{CARD_DIR}/evidence_bundle.json")
        client.set_model_version_tag(registry.name, str(version), CARD_TAG, digest)
        # the MLflow UI renders a version's description as Markdown: point it at the card
        client.update_model_version(
            registry.name,
            str(version),
            description=(
                f"Model card: run artifact `{CARD_DIR}/model_card.html` (Markdown: `{CARD_DIR}/model_card.md`) "
                f"of run {info.run_id}. Evidence bundle sha256 {digest}; verify with "
                f"`mlgov audit models:/{registry.name}/{version}`."
            ),
        )
    return {
        "version": version,
        "bundle_sha256": digest,
        "rebuilt": stale,
        "run_id": info.run_id,
        "artifact": f"runs:/{info.run_id}/{CARD_DIR}/model_card.html",
        "markdown": md,
        "overrides": sum(d.kind == "override" for d in bundle.decisions),
    }


@asset(
    group_name="audit",
    deps=[champion],
    code_version=CODE_VERSION,
    kinds={"mlflow", "markdown"},
    owners=["team:model-risk"],
    tags={"mlgov/stage": "audit"},
    metadata={
        "card_artifacts": f"{CARD_DIR}/model_card.md, {CARD_DIR}/model_card.html, {CARD_DIR}/evidence_bundle.json",
        "staleness_tag": CARD_TAG,
        "schema": "mlgov_assets/core/audit/modelcard/schema.py",
    },
    description="A model card for EVERY registered model version: the evidence bundle (intended use and "
    "limitations from the policy, DVC md5s, row counts and schemas, git commit, Dagster code "
    "versions, uv.lock hash, hyperparameters, holdout metrics, every gate with thresholds and "
    "policy hash, fairness/explanations/drift when recorded, promotions, rollbacks and overrides "
    "with who and why), each claim citing the materialization, run, artifact or decision-log "
    "record it came from with that source's sha256. Rendered as Markdown and self-contained "
    "HTML, attached to the version's MLflow run (model_card/). Only cards whose bundle digest "
    "changed are republished. Downstream of champion: it can never block a promotion.",
)
def model_cards(
    context: AssetExecutionContext, mlgov: MlgovResource, training_lock: TrainingLock
) -> Output[dict[str, Any]]:
    mlgov = scoped(mlgov, context)
    registry = mlgov.registry()
    champ = registry.champion_version()
    cards: list[dict[str, Any]] = []
    failed: dict[int, str] = {}
    for v in registry.versions():  # one broken version must not keep the others' cards stale
        try:
            cards.append(publish_card(registry, v, context.instance))
        except Exception as exc:
            failed[v] = f"{type(exc).__name__}: {exc}"
            context.log.error(f"model card for version {v} not built: {failed[v]}")
    if failed:
        raise Failure(
            description=f"model cards not built for version(s) {sorted(failed)}; the others were published",
            metadata={"errors": json_md({str(k): v for k, v in failed.items()})},
        )
    rebuilt = [c["version"] for c in cards if c["rebuilt"]]
    context.log.info(f"model cards: {len(cards)} version(s), republished {rebuilt or 'none'}")
    champion_card = next((c for c in cards if c["version"] == champ), None)
    rows = [
        {
            "version": c["version"],
            "champion": c["version"] == champ,
            "rebuilt": c["rebuilt"],
            "overrides": c["overrides"],
            "bundle_sha256": c["bundle_sha256"],
            "card": c["artifact"],
        }
        for c in cards
    ]
    value = {"champion": champ, "cards": [{k: v for k, v in c.items() if k != "markdown"} for c in cards]}
    return Output(
        value,
        metadata={
            "champion_version": champ if champ is not None else "none",
            "versions": len(cards),
            "republished": str(rebuilt),
            "cards": rows_table(rows),
            "champion_card": MetadataValue.md(champion_card["markdown"] if champion_card else "_no champion yet_"),
            "champion_bundle_sha256": champion_card["bundle_sha256"] if champion_card else "none",
        },
    )


@asset_check(
    asset=model_cards,
    blocking=False,
    description="`mlgov audit champion`: re-hashes the champion's training data in the DVC cache, every model "
    "artifact file and the policy, and checks every link from model version to MLflow run, "
    "Dagster run and materializations, git commit, gates and the hash-chained decision log.",
)
def check_model_cards_champion_lineage(context: AssetCheckExecutionContext, mlgov: MlgovResource) -> AssetCheckResult:
    from mlgov_assets.core.audit.lineage.audit import audit

    mlgov = scoped(mlgov, context)
    registry = mlgov.registry()
    if registry.champion_version() is None:
        return AssetCheckResult(
            passed=True, severity=AssetCheckSeverity.WARN, description="no champion yet: nothing to audit"
        )
    report, _ = audit(registry, "champion", dagster_reader=dagster_reader(context.instance))
    rows = [{"link": link.name, "status": link.status.upper(), "summary": link.summary} for link in report.links]
    text = (
        f"champion version {report.version}: every link verified"
        if report.ok
        else f"champion version {report.version}: BROKEN link(s) {', '.join(report.broken)}"
    )
    return AssetCheckResult(
        passed=report.ok,
        severity=AssetCheckSeverity.ERROR,
        description=text,
        metadata={"model_version": report.version, "links": rows_table(rows), "report": json_md(report.to_dict())},
    )


def _card_request(context: RunStatusSensorContext, jobs: frozenset[str]) -> RunRequest | SkipReason:
    run = context.dagster_run
    if run.job_name not in jobs:
        return SkipReason(f"run {run.run_id[:8]} of {run.job_name}: not a governance job of this project")
    return RunRequest(
        run_key=f"cards-after-{run.run_id}", tags={"mlgov/trigger": f"after {run.job_name} {run.run_id[:8]}"}
    )


def project_defs(scope: ProjectScope) -> Definitions:
    """The project's card refresh job and the two run-status sensors that launch it."""
    cards_job = define_asset_job(
        scope.named("refresh_model_cards"),
        selection=AssetSelection.assets(scope.key("model_cards")),
        description="Rebuild stale model cards (every registered version) and audit the champion's lineage.",
        tags={"mlgov/serial": "training"},
    )  # queued behind training: cards read what training writes
    training, decision = scope.named("governed_training"), scope.named("champion_decision")

    @run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        name=scope.named("model_cards_after_success"),
        request_job=cards_job,
        default_status=DefaultSensorStatus.RUNNING,
        description="After a champion_decision run (mlgov promote/rollback) succeeds: refresh the model "
        "cards. (A successful governed_training run builds them itself.)",
    )
    def after_success(context: RunStatusSensorContext) -> RunRequest | SkipReason:
        return _card_request(context, frozenset({decision}))

    @run_status_sensor(
        run_status=DagsterRunStatus.FAILURE,
        name=scope.named("model_cards_after_failure"),
        request_job=cards_job,
        default_status=DefaultSensorStatus.RUNNING,
        description="After a governed_training or champion_decision run fails (e.g. a refused challenger, "
        "which is still a registered version): refresh the model cards.",
    )
    def after_failure(context: RunStatusSensorContext) -> RunRequest | SkipReason:
        return _card_request(context, frozenset({training, decision}))

    return Definitions(jobs=[cards_job], sensors=[after_success, after_failure])


defs = Definitions(assets=[model_cards], asset_checks=[check_model_cards_champion_lineage])
