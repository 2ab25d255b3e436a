"""``mlgov monitor --once`` and ``mlgov simulate``: the monitoring loop without a daemon, and batches
to watch it work.

``monitor --once`` evaluates the real sensor definitions (landing, then retraining) once each, as
the daemon would (stored cursors, dynamic partitions, run keys), and runs what they request in this
process against the persistent instance, so its runs appear in the UI and a daemon started later
does not repeat them. Exit codes: 0 done, 1 a gate refused something (a batch quarantined, a labels
file refused or held for review, a retrained model refused), 2 an error.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from dagster import DagsterInstance, Definitions, ExecuteInProcessResult
    from pydantic import JsonValue

    from mlgov_assets.commands.summary import RunSummary
    from mlgov_assets.core.monitoring.ledger import BatchLedger
    from mlgov_assets.core.monitoring.retraining import RetrainRequest

    from .monitor_report import BatchOutcome, RetrainingDecision, RetrainingPass

TRIGGER = "mlgov monitor --once"
#: Landing-sensor ticks per pass at most: a file that just landed is waited for until it settles.
MAX_LANDING_TICKS = 3
DEFAULT_SIM_ROWS = 5000


def register(subparsers: Any) -> None:
    m = subparsers.add_parser(
        "monitor",
        help="process the batches waiting in the landing folder (headless sensors), retraining included",
        description="Validate, score (+ shadow), drift-check and performance-check every batch waiting in the landing "
        "folder, run delayed labels, and request retraining on a breach, exactly as the sensors would. "
        "For cron/CI without a Dagster daemon.",
    )
    m.add_argument("--once", action="store_true", help="one pass over the landing folder, then exit (required)")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.set_defaults(func=cmd_monitor)

    s = subparsers.add_parser(
        "simulate",
        help="write a realistic production batch (from the project's holdout) into the landing folder",
        description="Write a batch derived from the project's holdout (its holdout file, e.g. the demo's "
        "data/adult.test, or its seeded holdout split) into the landing folder ($MLGOV_HOME/incoming when "
        "MLGOV_HOME is set) and print its path: none = no drift, covariate = higher values of the spec's "
        "monitoring.simulation.shift_columns (the demo: older applicants / longer hours), label = half "
        "the rows favourable, broken = fails the schema. --labels also writes the delayed labels file.",
    )
    s.add_argument("--kind", choices=["none", "covariate", "label", "broken"], required=True)
    s.add_argument("--rows", type=int, default=DEFAULT_SIM_ROWS, help=f"rows (default {DEFAULT_SIM_ROWS})")
    s.add_argument("--seed", type=int, help="random seed (default: a fresh one, printed)")
    s.add_argument("--labels", action="store_true", help="also write <batch_id>.labels.csv (label drift always does)")
    s.add_argument("--batch-id", help="batch id (default sim-<kind>-<UTC time>-s<seed>)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_simulate)


# --------------------------------------------------------------------------- simulate


def cmd_simulate(args: argparse.Namespace) -> int:
    import pandas as pd

    from mlgov_assets.core.integrity import atomic_write_with
    from mlgov_assets.core.monitoring.batches import labels_filename, simulate_batch, validate_batch_id
    from mlgov_assets.core.monitoring.reevaluation import read_holdout
    from mlgov_assets.core.project.project import open_project

    s = get_settings()
    project = open_project(s.project_spec, s.project_dir)
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    batch_id = validate_batch_id(args.batch_id or f"sim-{args.kind}-{stamp}-s{seed}")
    landing = Path(s.landing_dir)
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / f"{batch_id}.csv"
    if path.exists() or (landing / f"{batch_id}.parquet").exists():
        print(f"mlgov simulate: {path} exists; batches are immutable, pick another --batch-id", file=sys.stderr)
        return 2
    batch, labels = simulate_batch(project, args.kind, read_holdout(project), args.rows, seed, with_labels=args.labels)
    # written under a dot-name and renamed: the sensor never sees half a file
    atomic_write_with(path, lambda tmp: batch.to_csv(tmp, index=False))
    labels_path = None
    if labels is not None:
        labels_path = landing / labels_filename(batch_id)
        atomic_write_with(labels_path, lambda tmp: pd.DataFrame(labels).to_csv(tmp, index=False))
    out = {
        "batch_id": batch_id,
        "kind": args.kind,
        "rows": len(batch),
        "seed": seed,
        "batch": str(path),
        "labels": str(labels_path) if labels_path else None,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(path)
        if labels_path:
            print(labels_path)
    return 0


# --------------------------------------------------------------------------- monitor --once


def cmd_monitor(args: argparse.Namespace) -> int:
    if not args.once:
        print("mlgov monitor: pass --once (continuous monitoring is the sensors' job: run `mlgov ui`)", file=sys.stderr)
        return 2
    from mlgov_assets.core.monitoring.landing import plan_landing
    from mlgov_assets.core.monitoring.ledger import BatchLedger, MonitoringPaths
    from mlgov_assets.core.monitoring.summary import monitoring_status

    from ..definitions import location_defs
    from ..instance import get_instance

    s = get_settings()
    instance = get_instance(s)
    defs = location_defs()
    ledger = BatchLedger(MonitoringPaths.of(s))
    found = plan_landing(s.landing_dir, ledger, None)  # what the folder holds, for the report
    batches, labels = _landing_pass(defs, instance, s, ledger)
    report: dict[str, Any] = {
        "landing_dir": str(s.landing_dir),
        "found": found.to_dict(),
        "batches": [b.model_dump(mode="json") for b in batches],
        "labels": [b.model_dump(mode="json") for b in labels],
        "retraining": _retraining_pass(defs, instance, s).model_dump(mode="json"),
        "status": monitoring_status(s).model_dump(mode="json"),
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_report(report)
    return _exit_code(report)


def _launched(result: ExecuteInProcessResult, instance: DagsterInstance) -> ExecuteInProcessResult:
    """A run this command executed: its OpenLineage events emitted (never raises; once per run)."""
    from ..defs.lineage_events import emit_run

    emit_run(instance, result.run_id)
    return result


def _landing_pass(
    defs: Definitions, instance: DagsterInstance, s: Settings, ledger: BatchLedger
) -> tuple[list[BatchOutcome], list[BatchOutcome]]:
    """Tick the landing sensor and run what it asks for; a file still settling is waited for."""
    from ..cli import summarize_run
    from ..defs.monitoring.once import evaluate_once, launch
    from ..defs.monitoring.shared import LANDING_SENSOR, LANDING_SETTLE_SECONDS
    from ..defs.scope import scoped_name

    batches: list[BatchOutcome] = []
    labels: list[BatchOutcome] = []
    for _ in range(MAX_LANDING_TICKS):
        tick = evaluate_once(defs, instance, scoped_name(s.project_name, LANDING_SENSOR), project_dir=s.project_dir)
        for request in tick.requests:
            result = _launched(launch(defs, instance, tick, request, tags={"mlgov/trigger": TRIGGER}), instance)
            batch_id = str(request.partition_key)
            file = request.tags.get("mlgov/batch_file") or request.tags.get("mlgov/labels_file") or batch_id
            outcome = _batch_outcome(batch_id, file, summarize_run(result), ledger.get(batch_id) or {})
            (batches if request.job_name == scoped_name(s.project_name, "monitor_batch") else labels).append(outcome)
        settling = [n for n, seen in json.loads(tick.cursor or "{}").items() if seen.get("outcome") == "settling"]
        if not settling:
            break
        time.sleep(LANDING_SETTLE_SECONDS)
    return batches, labels


def _retraining_pass(defs: Definitions, instance: DagsterInstance, s: Settings) -> RetrainingPass:
    """Tick the retraining sensor and run the governed training it asks for."""
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.monitoring.ledger import MonitoringPaths
    from mlgov_assets.core.monitoring.retrain_dataset import built_dataset
    from mlgov_assets.core.monitoring.retraining import read_retrain_requests

    from ..cli import summarize_run
    from ..defs.monitoring.once import evaluate_once, launch
    from ..defs.monitoring.shared import RETRAIN_SENSOR
    from ..defs.scope import scoped_name
    from .monitor_report import RetrainingPass, RetrainRun

    registry = Registry(s)
    tick = evaluate_once(defs, instance, scoped_name(s.project_name, RETRAIN_SENSOR), project_dir=s.project_dir)
    recorded = {r.run_key: r for r in read_retrain_requests(MonitoringPaths.of(s))}
    runs: list[RetrainRun] = []
    for request in tick.requests:
        rec = recorded.get(str(request.run_key))
        before = registry.champion_version()
        summary = summarize_run(
            _launched(launch(defs, instance, tick, request, tags={"mlgov/trigger": TRIGGER}), instance)
        )
        # the run builds the dataset (requests recorded by older versions carry its facts themselves)
        built = built_dataset(s, rec.dataset) if rec and rec.dataset_md5 is None else None
        run = RetrainRun(
            run_key=str(request.run_key),
            dataset=rec.dataset if rec else None,
            dataset_md5=built[0] if built else rec.dataset_md5 if rec else None,
            rows=built[1] if built else rec.rows if rec else None,
            run_id=summary.run_id,
            success=summary.success,
            champion_before=before,
            champion_after=registry.champion_version(),
            refused_by=[{"check": c.check, "description": c.description} for c in summary.refused_by],
            failed_steps=[f.model_dump() for f in summary.failed_steps],
        )
        runs.append(run)
    requested = [recorded[str(r.run_key)] for r in tick.requests if str(r.run_key) in recorded]
    return RetrainingPass(decision=_decision(tick.skip_message, requested), runs=runs)


def _decision(skip_message: str | None, requested: list[RetrainRequest]) -> RetrainingDecision:
    """The retraining decision as the report shows it: the requests the sensor made, or why none."""
    from .monitor_report import RetrainingDecision

    if not requested:
        return RetrainingDecision(kind="none", message=skip_message or "nothing to retrain", breaches=[], plan=None)
    last = requested[-1]
    return RetrainingDecision(
        kind="request",
        message="; ".join(r.describe() for r in requested),
        breaches=last.trigger_batch_ids,
        plan=last,
    )


def _batch_outcome(batch_id: str, file: str, summary: RunSummary, entry: dict[str, Any]) -> BatchOutcome:
    from .monitor_report import BatchOutcome

    failed = [x for x in summary.failed_steps if "check" not in (x.step or "")]
    return BatchOutcome(
        batch_id=batch_id,
        file=file,
        run_id=summary.run_id,
        success=summary.success,
        status=entry.get("status"),
        rows=entry.get("rows"),
        champion_version=entry.get("champion_version"),
        shadow_version=entry.get("shadow_version"),
        quarantine_dir=entry.get("quarantine_dir"),
        validation=(entry.get("validation") or {}).get("summary"),
        drift=entry.get("drift"),
        performance=entry.get("performance"),
        labels=entry.get("labels"),
        failed_steps=[x.model_dump() for x in failed],
        refused=bool(failed) and all(x.refused for x in failed),
        reason="; ".join(f"step {x.step}: {x.error}" for x in failed) or None,
    )


def _exit_code(report: dict[str, Any]) -> int:
    items = report["batches"] + report["labels"]
    if any(not b["success"] and b["status"] != "quarantined" and not b.get("refused") for b in items):
        return 2
    runs = report["retraining"]["runs"]
    run_refused = [bool(r["refused_by"]) or all(f["refused"] for f in r["failed_steps"]) for r in runs]
    if any(not r["success"] and not refused for r, refused in zip(runs, run_refused, strict=True)):
        return 2
    if any(b["status"] == "quarantined" or b.get("refused") or _labels_not_applied(b) for b in items) or any(
        not r["success"] and refused for r, refused in zip(runs, run_refused, strict=True)
    ):
        return 1
    return 0


def _labels_not_applied(b: dict[str, Any]) -> dict[str, Any] | None:
    """The decision on the batch's labels file when it was refused or held (exit 1), else None."""
    decision = (b.get("labels") or {}).get("decision") or {}
    return decision if decision.get("decision") in ("refused", "held") else None


def _print_report(report: dict[str, Any]) -> None:
    found = report["found"]
    print(
        f"mlgov monitor: {report['landing_dir']}: {len(found['new_batches'])} new batch(es), "
        f"{len(found['new_labels'])} labels file(s), {len(found['done'])} already done"
    )
    for item in found["refused"]:
        print(f"  refused {item['file']}: {item['reason']}")
    for item in found["waiting"]:
        print(f"  waiting {item['file']}: {item['reason']}")
    for b in report["batches"] + report["labels"]:
        print(f"  {b['batch_id']} ({b['file']}): {_describe(b)}")
    r = report["retraining"]
    print(f"retraining: {r['decision']['message'] if r['decision'] else 'not evaluated'}")
    for run in r["runs"]:
        if run["success"]:
            moved = run["champion_after"] != run["champion_before"]
            verdict = (
                f"champion v{run['champion_before']} -> v{run['champion_after']}"
                if moved
                else f"champion stays v{run['champion_after']}"
            )
        elif run["refused_by"]:
            verdict = (
                f"REFUSED by {', '.join(c['check'] for c in run['refused_by'])}: "
                f"champion stays v{run['champion_after']}"
            )
        else:
            reasons = "; ".join(f"step {f['step']}: {f['error']}" for f in run["failed_steps"])
            verdict = f"FAILED: {reasons or 'the run failed'}"
        print(f"  {run['run_key']} on {run['dataset']} ({run['rows']} rows), dagster run {run['run_id']}: {verdict}")


def _describe(b: dict[str, Any]) -> str:
    if b["status"] == "quarantined":
        return f"QUARANTINED to {b['quarantine_dir']}: {(b['validation'] or '')[:300]}"
    not_applied = _labels_not_applied(b)
    if not_applied:
        return f"labels {str(not_applied['decision']).upper()}: {not_applied['reason']}"
    failure = (
        None
        if b["success"]
        else f"{'REFUSED' if b.get('refused') else 'FAILED'}: {b.get('reason') or 'the run failed'}"
    )
    if failure and not b.get("drift"):
        return failure
    # the drift verdict comes before scoring: a run refused later (e.g. a champion failing verification)
    # still has one, and the refusal leads the line
    parts = [failure] if failure else []
    parts += [
        f"{b['rows']} rows, champion v{b['champion_version']}"
        + (f" (shadow v{b['shadow_version']})" if b.get("shadow_version") else "")
    ]
    d = b.get("drift") or {}
    if d:
        cols = ", ".join(d.get("drifted_columns") or []) or "none"
        parts.append(
            f"drift {str(d.get('verdict')).upper()} ({d.get('n_drifted')}/{d.get('n_columns')} columns: {cols}; "
            f"prediction {d.get('prediction_verdict')})"
        )
    p = b.get("performance") or {}
    if p.get("labelled"):
        m = p.get("champion") or {}
        parts.append(
            f"performance {str(p.get('status')).upper()} on {p.get('n_labelled')} labels "
            f"(accuracy {m.get('accuracy', 0):.3f}, roc_auc {m.get('roc_auc') or float('nan'):.3f})"
        )
    else:
        parts.append("performance: awaiting labels")
    return "; ".join(parts)


# --------------------------------------------------------------------------- mlgov status


def status_hook(settings: Settings) -> dict[str, JsonValue]:
    """The latest drift and performance verdicts as the ``monitoring`` section (never fails ``mlgov status``)."""
    from mlgov_assets.core.monitoring.summary import monitoring_status

    try:
        return {"monitoring": monitoring_status(settings).model_dump(mode="json")}
    except Exception as exc:
        return {"monitoring": {"error": f"{type(exc).__name__}: {exc}"}}
