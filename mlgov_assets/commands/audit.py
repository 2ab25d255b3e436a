"""``mlgov audit MODEL_REF | verify | cards`` and ``mlgov reproduce MODEL_REF``.

Exit codes (as the rest of the CLI): 0 verified / reproduced; 1 a link is broken, the decision log
is tampered with, or the reproduction differs or is refused (each named); 2 usage or other error.
Exceptions map to exit codes by type (``core.errors.exit_code_for``).

MODEL_REF: ``models:/NAME@champion`` (any alias), ``models:/NAME/N``, a version number ``N``, or
``champion``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import getpass
import json
import sys
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.errors import MlgovError, exit_code_for
from mlgov_assets.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from pydantic import JsonValue

    from mlgov_assets.core.audit.lineage.model import WitnessedLog
    from mlgov_assets.core.models.registry import Registry

VERIFIED, BROKEN = 0, 1
_MARK = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL", "skipped": "SKIP"}


def _registry(settings: Settings, ref: str | None = None) -> Registry:
    """A registry for the model the ref names (default: the home's model)."""
    from mlgov_assets.core.audit.lineage.refs import parse_model_ref
    from mlgov_assets.core.models.registry import Registry

    if ref is not None:
        name, _, _ = parse_model_ref(ref, settings.model_name)
        settings = dataclasses.replace(settings, model_name=name)
    return Registry(settings)


def _instance(settings: Settings) -> DagsterInstance:
    from ..instance import get_instance

    instance: DagsterInstance = get_instance(settings)
    return instance


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


# --------------------------------------------------------------------------- mlgov audit MODEL_REF


def _refused(command: str, exc: MlgovError) -> int:
    """Print an exception the CLI expected and return its exit code (by type: refusal 1, error 2)."""
    code = exit_code_for(exc)
    print(f"mlgov {command}: {'REFUSED: ' if code == BROKEN else ''}{exc}", file=sys.stderr)
    return code


def cmd_audit_ref(ref: str, as_json: bool) -> int:
    from mlgov_assets.core.audit.lineage.audit import audit

    from ..defs.audit import dagster_reader

    s = get_settings()
    try:
        registry = _registry(s, ref)
        _recover(registry, "audit")
        report, _ = audit(registry, ref, dagster_reader=dagster_reader(_instance(s)))
    except MlgovError as exc:  # a malformed or unknown MODEL_REF is a usage error: 2
        return _refused("audit", exc)
    if as_json:
        _print_json(report.to_dict())
    else:
        print(
            f"audit {ref} -> models:/{report.model_name}/{report.version}"
            f"{' (' + ', '.join(report.aliases) + ')' if report.aliases else ''}"
        )
        for link in report.links:
            print(f"  [{_MARK[link.status]}] {link.name:<16} {link.summary}")
            for extra in link.problems[1:] if link.status == "fail" else []:
                print(f"  {'':6} {'':<16} {extra}")
        print("VERIFIED: every link of the lineage checks out." if report.ok else f"BROKEN: {', '.join(report.broken)}")
    return VERIFIED if report.ok else BROKEN


# --------------------------------------------------------------------------- mlgov audit verify


def _recover(registry: Registry, command: str) -> None:
    """Finish what a dead process left (interrupted append, unfinished alias move, runs of dead
    processes) before auditing; each thing done is logged (stderr) and recorded in the decision log."""
    from mlgov_assets.core.governance.promotion import recover_for_status

    for note in recover_for_status(registry, actor=f"{getpass.getuser()} ({command})"):
        print(f"mlgov {command}: {note}", file=sys.stderr)


def verify_log(settings: Settings) -> WitnessedLog:
    """The decision log verified against its head anchor, its witness, every head published on a
    version, and the registry's champion alias and history (after recovery)."""
    from mlgov_assets.core.audit.lineage.audit import verify_against_registry
    from mlgov_assets.core.audit.lineage.gather import published_heads

    registry = _registry(settings)
    _recover(registry, "audit verify")
    return verify_against_registry(registry, settings.decision_log, published_heads(registry))


def cmd_audit_repair(reason: str | None, as_json: bool) -> int:
    """``mlgov audit repair --reason TEXT``: cut an interrupted append back to the last complete
    record (at most one line), re-anchor head and witness, and record the repair in the log."""
    from mlgov_assets.core.audit.decision_log.writer import DecisionLog

    if not (reason or "").strip():
        print("mlgov audit repair needs --reason TEXT (it is recorded in the decision log)", file=sys.stderr)
        return 2
    s = get_settings()
    try:
        done = DecisionLog(s.decision_log).repair(actor=f"{getpass.getuser()} (mlgov audit repair)", reason=str(reason))
    except MlgovError as exc:
        return _refused("audit repair", exc)
    except OSError as exc:
        print(
            f"mlgov audit repair: cannot write {s.decision_log} ({exc.strerror or exc}); nothing changed",
            file=sys.stderr,
        )
        return 2
    if as_json:
        _print_json({"repaired": done is not None, "summary": done})
    else:
        print(f"decision log {s.decision_log}: " + (done or "nothing to repair (log, head and witness agree)"))
    return VERIFIED


def cmd_audit_verify(as_json: bool) -> int:
    try:
        res = verify_log(get_settings())
    except MlgovError as exc:
        return _refused("audit verify", exc)
    if as_json:
        _print_json(res.to_dict())
    elif res.ok:
        print(
            f"decision log {res.path}: VERIFIED, {res.count} record(s), head {str(res.last_hash)[:16]}…, "
            f"{res.witnesses_checked} head(s) published on model versions still extended"
        )
    else:
        at = (
            f"first bad record: index {res.first_bad_index}" if res.first_bad_index is not None else "log-level problem"
        )
        print(f"decision log {res.path}: BROKEN ({at})")
        for problem in ([res.problem] if res.problem else []) + res.witness_problems:
            print(f"  {problem}")
    return VERIFIED if res.ok else BROKEN


# --------------------------------------------------------------------------- mlgov audit cards


def cmd_audit_cards(as_json: bool) -> int:
    from ..cli import _finish, run_job, summarize_run
    from .summary import CardRef, CardsRunSummary

    result = run_job("refresh_model_cards", {}, tags={"mlgov/trigger": "cli"})
    raw: list[Any] = []
    with contextlib.suppress(Exception):  # the step failed: no cards to show
        out: Any = result.output_for_node("model_cards")
        raw = out["cards"]
    cards = [CardRef.model_validate(c) for c in raw]
    if not as_json:
        for c in cards:
            state = "republished" if c.rebuilt else "up to date"
            print(f"version {c.version}: card {state}, bundle sha256 {c.bundle_sha256[:16]}…, {c.artifact}")
    return _finish(CardsRunSummary(**summarize_run(result).model_dump(), cards=cards), as_json)


def cmd_audit(args: argparse.Namespace) -> int:
    if args.target != "export-lineage" and (args.model_ref or args.out or args.emit):
        print("mlgov audit: a second MODEL_REF, --out and --emit belong to export-lineage", file=sys.stderr)
        return 2
    if args.target == "verify":
        return cmd_audit_verify(args.json)
    if args.target == "cards":
        return cmd_audit_cards(args.json)
    if args.target == "repair":
        return cmd_audit_repair(args.reason, args.json)
    if args.target == "export-lineage":
        from .export_lineage import cmd_export_lineage

        return cmd_export_lineage(args.model_ref, args.out, args.emit, args.json)
    return cmd_audit_ref(args.target, args.json)


# --------------------------------------------------------------------------- mlgov reproduce


def _original_training_seconds(instance: DagsterInstance, run_id: str | None) -> float | None:
    """Duration of the challenger_model step (fit + evaluation + registration) in the recorded run."""
    if not run_id:
        return None
    stats = instance.get_run_step_stats(run_id, step_keys=["challenger_model"])
    spans = [(x.start_time, x.end_time) for x in stats if x.start_time and x.end_time]
    return spans[0][1] - spans[0][0] if spans else None


def _print_reproduction(r: dict[str, Any]) -> None:
    print(f"reproduce models:/{r['model_name']}/{r['version']} (MLflow run {r['run_id']})")
    d = r["data"]
    print(
        f"  data:    training md5 {d['training']['md5']} ({d['training']['rows']} rows), holdout md5 "
        f"{d['holdout']['md5']} ({d['holdout']['rows']} rows), copied from the DVC cache and re-hashed"
    )
    print(f"  model:   {r['variant']}; params {json.dumps(r['params'], sort_keys=True)}")
    code = r["recorded_code"]
    if r["code_identity"] == "identical":
        print(f"  code:    the recorded code (commit {str(code['commit'])[:12]} = HEAD, clean tree)")
    else:
        print("  code:    DIFFERS from the recorded code: " + "; ".join(r["code_notes"]))
    print(f"  method:  {r['method']}")
    if r["identical"]:
        verdict = "IDENTICAL (bitwise)"
    elif r["within_tolerance"]:
        verdict = f"within tolerance {r['tolerance']:g}"
    else:
        verdict = "DIFFERENT"
    print(
        f"  holdout predictions on {r['rows']} rows: {verdict}; max |diff| {r['max_abs_diff']:.3g}, "
        f"{r['differing_decisions']} decision(s) changed ({r['differing_share']:.2%})"
    )
    for k in sorted(r["metrics_recorded"]):
        rec, rep = r["metrics_recorded"][k], r["metrics_reproduced"].get(k)
        print(
            f"    {k:<10} recorded {rec:.6f}  reproduced {rep:.6f}" if rep is not None else f"    {k}: recorded {rec}"
        )
    t = r["timings"]
    orig = f"{t['original_training_seconds']:.1f} s" if t["original_training_seconds"] is not None else "unknown"
    print(
        f"  time:    original challenger_model step {orig}; reproduction {t['reproduce_seconds']:.1f} s "
        f"(fit {t['fit_seconds']:.1f} s)"
    )
    cert = r["certificate"]
    print(
        f"  certificate: decision log record #{cert['index']} (hash {cert['hash'][:16]}…)"
        if cert
        else "  certificate: NOT written (predictions differ)"
    )


def cmd_reproduce(args: argparse.Namespace) -> int:
    from mlgov_assets.core.audit.lineage.refs import resolve_version
    from mlgov_assets.core.audit.reproduce import reproduce

    from ..defs.common import CODE_VERSIONS

    s = get_settings()
    try:
        registry = _registry(s, args.model_ref)
        version = resolve_version(registry, args.model_ref)
        run_id = registry.version_info(version).tags.get("mlgov.dagster_run_id")
        report = reproduce(
            registry,
            version,
            actor=f"{getpass.getuser()} (mlgov reproduce)",
            tolerance=args.tolerance,
            current_code_version=CODE_VERSIONS["training"],
            original_training_seconds=_original_training_seconds(_instance(s), run_id),
        )
    except MlgovError as exc:  # a bad MODEL_REF: 2; altered bytes or an unreproducible version: 1
        return _refused("reproduce", exc)
    out = report.to_dict()
    _print_json(out) if args.json else _print_reproduction(out)
    return VERIFIED if report.reproduced else BROKEN


# --------------------------------------------------------------------------- wiring


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = subparsers.add_parser(
        "audit",
        help="verify a model's lineage (MODEL_REF), the decision log (verify), or refresh model cards (cards)",
        description="mlgov audit MODEL_REF: print and verify the lineage chain model version -> MLflow run -> Dagster "
        "run and the materializations it consumed (data versions) -> DVC md5 of the training data -> git "
        "commit -> policy hash -> check results -> decision log, re-hashing the training data in the DVC "
        "cache, every model artifact file and the policy file. mlgov audit verify: check the hash-chained "
        "decision log (edited, deleted, reordered, truncated records) against its head, its witness, every "
        "head published on a model version and the registry's champion alias and history. mlgov audit "
        "repair --reason TEXT: recover a log an interrupted append left damaged (recorded). mlgov audit "
        "cards: rebuild stale model cards. mlgov audit export-lineage MODEL_REF [--out FILE] [--emit]: the "
        "version's whole chain (data, validated data, features, model, gates, registration, champion "
        "decisions) as OpenLineage run events. Exit 1 names what is broken.",
        epilog="MODEL_REF: models:/NAME@champion, models:/NAME/N, N, or champion.",
    )
    a.add_argument("target", metavar="MODEL_REF|verify|cards|repair|export-lineage")
    a.add_argument("model_ref", nargs="?", metavar="MODEL_REF", help="export-lineage: the version to export")
    a.add_argument("--out", metavar="FILE", help="export-lineage: write the events (JSON lines) to FILE")
    a.add_argument(
        "--emit",
        action="store_true",
        help="export-lineage: also send the events through the configured transport (MLGOV_OPENLINEAGE_URL)",
    )
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.add_argument(
        "--reason",
        help="repair: why (recorded). `mlgov audit repair --reason TEXT` cuts an interrupted append back to "
        "the last complete record (at most one line; the bytes are kept beside the log), re-anchors the "
        "head and the witness, and records the repair in the log",
    )
    a.set_defaults(func=cmd_audit)

    r = subparsers.add_parser(
        "reproduce",
        help="retrain a version from its recorded lineage and compare holdout predictions",
        description="Retrain MODEL_REF from the DVC-cached data (by recorded md5), recorded params and seed, with the "
        "current code (stated if it differs from the recorded commit), in an isolated temporary directory; "
        "compare holdout predictions with the registered model (loaded after verifying its artifact "
        "hashes). Identical (or within --tolerance) -> a reproducibility certificate in the decision log; "
        "otherwise exit 1 with the size of the difference.",
    )
    r.add_argument("model_ref", metavar="MODEL_REF")
    r.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        help="max |difference| in holdout probabilities still certified (default 0: bitwise identical); "
        "recorded in the certificate",
    )
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(func=cmd_reproduce)


def status_hook(settings: Settings) -> dict[str, JsonValue]:
    """``mlgov status`` gains "audit": decision log verified? its head, certificates, model cards."""
    from mlgov_assets.core.audit.decision_log.records import LogIntegrityError, read_records
    from mlgov_assets.core.audit.decision_log.writer import DecisionLog
    from mlgov_assets.core.audit.lineage.audit import verify_against_registry
    from mlgov_assets.core.audit.lineage.gather import published_heads, version_tags
    from mlgov_assets.core.audit.openlineage.transport import OpenLineageConfig
    from mlgov_assets.core.audit.openlineage.transport import status as lineage_status

    try:
        registry = _registry(settings)
        tags = version_tags(registry)
        res = verify_against_registry(registry, settings.decision_log, published_heads(registry))
        try:
            certs = read_records(settings.decision_log, kinds=["reproducibility_certificate"])
        except LogIntegrityError:
            certs = []
        section = {
            "decision_log": res.model_dump(include={"path", "ok", "count", "first_bad_index", "witnesses_checked"})
            | {"problem": res.problem or next(iter(res.witness_problems), None)},
            "head": DecisionLog(settings.decision_log).head(),
            "certificates": {
                r.model_version: {"index": r.index, "time": r.time, "code_identity": r.payload.get("code_identity")}
                for r in certs
            },
            "model_cards": {str(v): t.get("mlgov.model_card_sha256") for v, t in sorted(tags.items())},
            "openlineage": lineage_status(OpenLineageConfig.from_env(settings)).model_dump(mode="json"),
        }
    except Exception as exc:
        return {"audit": {"error": f"{type(exc).__name__}: {exc}"}}
    # the JSON ``mlgov status --json`` prints (record payloads are free-form; a version-less key is "null")
    audit: JsonValue = json.loads(json.dumps(section, default=str))
    return {"audit": audit}
