"""``mlgov approve`` / ``mlgov reject``: a person's (or a pipeline's) decision on the version staged for
approval, and the pending requests ``mlgov status`` shows.

Both run the project's ``approve_candidate`` job (so the decision is a Dagster run beside the others)
around ``core/governance/approval.decide``. Identity: ``$MLGOV_ACTOR`` if set (pipelines), else the OS
user. Neither Dagster OSS nor this CLI authenticates anyone: the identity is the account the command
runs under, recorded as given; deploy behind an authenticating proxy (and restrict who may run
``mlgov``) where that is not enough.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Literal

from pydantic import JsonValue

from mlgov_assets.core.errors import MlgovError, Refusal

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Settings

IDENTITY_NOTE = (
    "Identity: $MLGOV_ACTOR if set (pipelines), else the OS user. Dagster OSS has no authentication and "
    "neither has this CLI: the identity is recorded as given, not verified."
)


def _decide(decision: Literal["approve", "reject"], args: argparse.Namespace) -> int:
    from mlgov_assets.cli import run_job, summarize_run
    from mlgov_assets.core.governance.approval import ApprovalOutcome
    from mlgov_assets.core.provenance import identity
    from mlgov_assets.core.settings import get_settings
    from mlgov_assets.defs.scope import scoped_name

    if not args.reason.strip():
        print(f"mlgov {decision}: --reason must say why (it is recorded)", file=sys.stderr)
        return MlgovError.exit_code
    op = scoped_name(get_settings().project_name, "approval_decision")
    config = {"version": args.version, "decision": decision, "reason": args.reason, "actor": identity()}
    result = run_job("approve_candidate", {"ops": {op: {"config": config}}}, tags={"mlgov/trigger": "cli"})
    if not result.success:
        failures = summarize_run(result).failed_steps
        refused = bool(failures) and all(f.refused for f in failures)
        error = "; ".join(f.error for f in failures) or "the approve_candidate run failed"
        if args.json:
            print(json.dumps({"ok": False, "refused": refused, "error": error, "run_id": result.run_id}, indent=2))
        else:
            print(f"{'REFUSED' if refused else 'ERROR'}: {error}", file=sys.stderr)
        return Refusal.exit_code if refused else MlgovError.exit_code
    out = ApprovalOutcome.model_validate(result.output_for_node(op))
    if args.json:
        print(json.dumps(out.model_dump(mode="json") | {"ok": True, "run_id": result.run_id}, indent=2))
    else:
        print(out.message)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide("approve", args)


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide("reject", args)


def status_hook(settings: Settings) -> dict[str, JsonValue]:
    """``approvals``: the requests awaiting approval (approval mode only; empty otherwise)."""
    from mlgov_assets.core.governance.approval import pending
    from mlgov_assets.core.governance.policy import load_policy
    from mlgov_assets.core.models.registry import Registry

    try:
        if load_policy(settings.policy_path).promotion.mode != "approval":
            return {}
        return {"approvals": [p.model_dump(mode="json") for p in pending(Registry(settings))]}
    except MlgovError as exc:
        return {"approvals": {"error": str(exc)}}


def print_approvals(rows: JsonValue) -> None:
    """The ``approvals`` section of ``mlgov status``, one line per pending request."""
    if not isinstance(rows, list):
        return
    if not rows:
        print("approvals: none pending")
    for r in rows:
        if isinstance(r, dict):
            names = r.get("approved_by")
            who = ", ".join(str(n) for n in names) if isinstance(names, list) and names else "none yet"
            count = len(names) if isinstance(names, list) else 0
            state = "EXPIRED" if r.get("expired") else f"expires {r.get('expires_at')}"
            print(
                f"approval pending: version {r.get('version')} [staging] {count}/{r.get('approvals_required')} "
                f"approvals ({who}); {state} — mlgov approve --version {r.get('version')} --reason TEXT"
            )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, verb, func in (("approve", "approve", cmd_approve), ("reject", "reject", cmd_reject)):
        p = subparsers.add_parser(
            name,
            help=f"{verb} the version staged for approval (policy promotion.mode: approval)",
            description=f"Record your decision to {verb} version N, bound to the evidence it was staged with "
            "(artifacts, gate verdicts, policy, data). The approval that completes the policy's quorum moves "
            "the champion; a rejection closes the request. Refused (exit 1): the version's trainer or "
            "requester, someone not in the policy's approvers, a second decision by the same person, an "
            "expired request, evidence that changed since the request. " + IDENTITY_NOTE,
        )
        p.add_argument("--version", type=int, required=True)
        p.add_argument("--reason", required=True, help="why (recorded in the decision log)")
        p.add_argument("--json", action="store_true", help="one JSON document on stdout")
        p.set_defaults(func=func)
