"""``mlgov monitor --once`` and ``mlgov simulate``: the monitoring loop without a daemon, and batches
to watch it work.

``monitor --once`` does what the two sensors and their runs do, in this process, against the
persistent instance (so its runs appear in the UI): register each waiting batch as a ``batches``
partition and run ``monitor_batch`` for it, run ``batch_labels`` for delayed labels, then let the
retraining planner decide and, if a breach calls for it, run ``governed_training`` on the new
dataset with the same run key the sensor would use (so a daemon started later does not retrain
again). Exit codes: 0 done, 1 a gate refused something (a batch quarantined, a retrained model
refused), 2 an error.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlgov_assets.core.settings import get_settings

RUN_KEY_TAG = "dagster/run_key"
PARTITION_TAG = "dagster/partition"
TRIGGER = "mlgov monitor --once"
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
        help="write a realistic production batch (from adult.test) into the landing folder",
        description="Write a batch derived from data/adult.test into the landing folder ($MLGOV_HOME/incoming when "
        "MLGOV_HOME is set) and print its path: none = no drift, covariate = older applicants / longer "
        "hours, label = more >50K, broken = fails the schema. --labels also writes the delayed labels file.",
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

    from mlgov_assets.core.data.adult import read_adult_csv
    from mlgov_assets.core.monitoring.batches import labels_filename, simulate_batch, validate_batch_id
    from mlgov_assets.core.monitoring.service import HOLDOUT_FILE, atomic_write_with

    s = get_settings()
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    batch_id = validate_batch_id(args.batch_id or f"sim-{args.kind}-{stamp}-s{seed}")
    landing = Path(s.landing_dir)
    landing.mkdir(parents=True, exist_ok=True)
    path = landing / f"{batch_id}.csv"
    if path.exists() or (landing / f"{batch_id}.parquet").exists():
        print(f"mlgov simulate: {path} exists; batches are immutable, pick another --batch-id", file=sys.stderr)
        return 2
    batch, labels = simulate_batch(
        args.kind, read_adult_csv(s.project_dir / HOLDOUT_FILE), args.rows, seed, with_labels=args.labels
    )
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
    from dagster import RunsFilter

    from mlgov_assets.core.governance.policy import load_policy
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.monitoring.service import service as mon

    from ..cli import run_job, summarize_run
    from ..instance import get_instance

    s = get_settings()
    instance = get_instance(s)
    paths = mon.MonitoringPaths.of(s)
    ledger = mon.BatchLedger(paths)
    plan = mon.plan_landing(s.landing_dir, ledger, None)
    report: dict[str, Any] = {
        "landing_dir": str(s.landing_dir),
        "found": plan.to_dict(),
        "batches": [],
        "labels": [],
        "retraining": {"decision": None, "runs": []},
    }
    for f in plan.new_batches:
        if not instance.has_dynamic_partition("batches", f.batch_id):
            instance.add_dynamic_partitions("batches", [f.batch_id])
        result = run_job(
            "monitor_batch", {}, tags={PARTITION_TAG: f.batch_id, "mlgov/trigger": TRIGGER, "mlgov/batch_file": f.name}
        )
        report["batches"].append(_batch_outcome(f, summarize_run(result), ledger.get(f.batch_id) or {}))
    for f in plan.new_labels:
        result = run_job(
            "batch_labels", {}, tags={PARTITION_TAG: f.batch_id, "mlgov/trigger": TRIGGER, "mlgov/labels_file": f.name}
        )
        report["labels"].append(_batch_outcome(f, summarize_run(result), ledger.get(f.batch_id) or {}))

    policy, registry = load_policy(s.policy_path), Registry(s)

    def has_run(key: str) -> bool:
        return bool(instance.get_runs(filters=RunsFilter(tags={RUN_KEY_TAG: key}), limit=1))

    pending = mon.unlaunched_requests(mon.read_retrain_requests(paths), registry.champion_version(), has_run)
    decision, record = mon.request_retraining(s, policy, registry, has_run=has_run, trigger=TRIGGER)
    report["retraining"]["decision"] = decision.to_dict()
    for rec in pending + ([record] if record else []):
        before = registry.champion_version()
        result = run_job("governed_training", rec["run_config"], tags={**rec["tags"], RUN_KEY_TAG: rec["run_key"]})
        summary = summarize_run(result)
        report["retraining"]["runs"].append(
            {
                "run_key": rec["run_key"],
                "dataset": rec["dataset"],
                "dataset_md5": rec.get("dataset_md5"),
                "rows": rec.get("rows"),
                "run_id": summary["run_id"],
                "success": summary["success"],
                "champion_before": before,
                "champion_after": registry.champion_version(),
                "refused_by": [{"check": c["check"], "description": c["description"]} for c in summary["refused_by"]],
                "failed_steps": summary["failed_steps"],
            }
        )
    report["status"] = mon.monitoring_status(s)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_report(report)
    return _exit_code(report)


def _batch_outcome(f: Any, summary: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_id": f.batch_id,
        "file": f.name,
        "run_id": summary["run_id"],
        "success": summary["success"],
        "status": entry.get("status"),
        "rows": entry.get("rows"),
        "champion_version": entry.get("champion_version"),
        "shadow_version": entry.get("shadow_version"),
        "quarantine_dir": entry.get("quarantine_dir"),
        "validation": (entry.get("validation") or {}).get("summary"),
        "drift": entry.get("drift"),
        "performance": entry.get("performance"),
        "failed_steps": [x for x in summary["failed_steps"] if "check" not in x["step"]],
    }


def _exit_code(report: dict[str, Any]) -> int:
    items = report["batches"] + report["labels"]
    if any(not b["success"] and b["status"] != "quarantined" for b in items):
        return 2
    runs = report["retraining"]["runs"]
    if any(not r["success"] and not r["refused_by"] for r in runs):
        return 2
    if any(b["status"] == "quarantined" for b in items) or any(r["refused_by"] for r in runs):
        return 1
    return 0


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
            verdict = f"FAILED: {run['failed_steps']}"
        print(f"  {run['run_key']} on {run['dataset']} ({run['rows']} rows), dagster run {run['run_id']}: {verdict}")


def _describe(b: dict[str, Any]) -> str:
    if b["status"] == "quarantined":
        return f"QUARANTINED to {b['quarantine_dir']}: {(b['validation'] or '')[:300]}"
    if not b["success"] and not b.get("drift"):
        return f"FAILED: {b['failed_steps']}"
    parts = [
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


def status_hook(status: dict[str, Any], settings: Any) -> None:
    """Add the latest drift and performance verdicts under ``monitoring`` (never fails ``mlgov status``)."""
    from mlgov_assets.core.monitoring.service import monitoring_status

    try:
        status["monitoring"] = monitoring_status(settings)
    except Exception as exc:
        status["monitoring"] = {"error": f"{type(exc).__name__}: {exc}"}
