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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import JsonValue

from mlgov_assets.core.errors import MlgovError, Refusal

if TYPE_CHECKING:
    from mlgov_assets.core.governance.approval import ApprovalOutcome
    from mlgov_assets.core.settings import Settings

IDENTITY_HEADER_ENV_DOC = "MLGOV_IDENTITY_HEADER or --identity-header"
IDENTITY_NOTE = (
    "Identity: $MLGOV_ACTOR if set (pipelines), else the OS user. Dagster OSS has no authentication and "
    "neither has this CLI: the identity is recorded as given, not verified. Behind an authenticating proxy, "
    "use `mlgov approval-api` (identity from the proxy's header)."
)


@dataclass(frozen=True)
class DecisionResult:
    """What one approve/reject did, for the CLI and the approval API alike."""

    ok: bool
    run_id: str
    refused: bool = False
    error: str | None = None
    outcome: ApprovalOutcome | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else Refusal.exit_code if self.refused else MlgovError.exit_code


def decide_via_job(
    decision: Literal["approve", "reject"], version: int, reason: str, *, actor: str, via: str = ""
) -> DecisionResult:
    """Run the selected project's ``approve_candidate`` job in this process (the decision is a Dagster
    run beside the others) and say what it did."""
    from mlgov_assets.cli import run_job, summarize_run
    from mlgov_assets.core.governance.approval import ApprovalOutcome
    from mlgov_assets.core.settings import get_settings
    from mlgov_assets.defs.scope import scoped_name

    op = scoped_name(get_settings().project_name, "approval_decision")
    config = {"version": version, "decision": decision, "reason": reason, "actor": actor, "via": via}
    result = run_job("approve_candidate", {"ops": {op: {"config": config}}}, tags={"mlgov/trigger": via or "cli"})
    if not result.success:
        failures = summarize_run(result).failed_steps
        error = "; ".join(f.error for f in failures) or "the approve_candidate run failed"
        refused = bool(failures) and all(f.refused for f in failures)
        return DecisionResult(ok=False, refused=refused, error=error, run_id=result.run_id)
    outcome = ApprovalOutcome.model_validate(result.output_for_node(op))
    return DecisionResult(ok=True, run_id=result.run_id, outcome=outcome)


def _decide(decision: Literal["approve", "reject"], args: argparse.Namespace) -> int:
    from mlgov_assets.core.provenance import identity

    if not args.reason.strip():
        print(f"mlgov {decision}: --reason must say why (it is recorded)", file=sys.stderr)
        return MlgovError.exit_code
    res = decide_via_job(decision, args.version, args.reason, actor=identity())
    if res.outcome is None:
        if args.json:
            print(json.dumps({"ok": False, "refused": res.refused, "error": res.error, "run_id": res.run_id}, indent=2))
        else:
            print(f"{'REFUSED' if res.refused else 'ERROR'}: {res.error}", file=sys.stderr)
        return res.exit_code
    if args.json:
        print(json.dumps(res.outcome.model_dump(mode="json") | {"ok": True, "run_id": res.run_id}, indent=2))
    else:
        print(res.outcome.message)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    return _decide("approve", args)


def cmd_reject(args: argparse.Namespace) -> int:
    return _decide("reject", args)


def cmd_approval_api(args: argparse.Namespace) -> int:
    """Serve the approval API (``mlgov_assets/approval_api``) until interrupted."""
    import os

    from mlgov_assets.approval_api import DEFAULT_TRUSTED_PROXIES, IDENTITY_HEADER_ENV, TRUSTED_PROXIES_ENV

    header = (args.identity_header or os.environ.get(IDENTITY_HEADER_ENV, "")).strip()
    if not header:
        print(
            f"mlgov approval-api: no identity header configured: set {IDENTITY_HEADER_ENV} (or --identity-header) to "
            "the header your authenticating proxy sets (e.g. X-Forwarded-User); without a proxy use mlgov approve",
            file=sys.stderr,
        )
        return MlgovError.exit_code
    env_proxies = [p.strip() for p in os.environ.get(TRUSTED_PROXIES_ENV, "").split(",") if p.strip()]
    proxies = args.trusted_proxy or env_proxies or list(DEFAULT_TRUSTED_PROXIES)
    import uvicorn

    from mlgov_assets.approval_api import create_app

    print(
        f"approval API on http://{args.host}:{args.port} (identity from {header}, proxies {proxies})", file=sys.stderr
    )
    uvicorn.run(create_app(header, proxies), host=args.host, port=args.port, log_level="warning")
    return 0


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
    p = subparsers.add_parser(
        "approval-api",
        help="serve approve/reject over HTTP behind an authenticating proxy (identity from its header)",
        description="The approval API for deployments behind an authenticating proxy: the approver is the "
        f"person the proxy's header names ({IDENTITY_HEADER_ENV_DOC}), accepted only from a trusted proxy "
        "address. GET /approvals, POST /approvals/N {decision, reason}. Binds 127.0.0.1 by default.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8087)
    p.add_argument("--identity-header", help="the header the proxy sets (default: $MLGOV_IDENTITY_HEADER)")
    p.add_argument(
        "--trusted-proxy",
        action="append",
        help="an address the proxy connects from (repeatable; default: $MLGOV_TRUSTED_PROXIES, else loopback)",
    )
    p.set_defaults(func=cmd_approval_api)
