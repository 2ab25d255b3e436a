"""Approval mode: approve or reject the staged candidate from the Launchpad (``<project>__approve_candidate``).

The same core decision as ``mlgov approve``/``reject`` (``core/governance/approval``). Dagster OSS has
no authentication: ``actor`` is whoever the launcher says they are (default: the OS user of the code
server, or ``MLGOV_ACTOR``); the run id and that OS user are recorded beside it.
"""

import getpass
from collections.abc import Iterator
from typing import Any, Literal

from dagster import (
    AssetMaterialization,
    AssetObservation,
    Config,
    Definitions,
    Failure,
    OpExecutionContext,
    Output,
    job,
    op,
)

from ..resources import MlgovResource
from .common import json_md
from .governance import REFUSED, approval_metadata, candidate_observation
from .scope import ProjectScope


class ApproveConfig(Config):
    """One person's decision on the version staged for approval."""

    version: int
    decision: Literal["approve", "reject"] = "approve"
    reason: str
    actor: str = ""  # empty: $MLGOV_ACTOR, else the OS user running the code server (no authentication)
    via: str = ""  # how the actor was identified (e.g. the approval API's proxy header); recorded


def project_defs(scope: ProjectScope) -> Definitions:
    @op(name=scope.named("approval_decision"), description="Record an approval or rejection of the staged version.")
    def approve_candidate(
        context: OpExecutionContext, config: ApproveConfig, mlgov: MlgovResource
    ) -> Iterator[AssetMaterialization | AssetObservation | Output[dict[str, Any]]]:
        from mlgov_assets.core.governance.approval import ApprovalRefused, decide
        from mlgov_assets.core.provenance import identity

        mlgov = mlgov.for_project(scope.name)
        policy, registry = mlgov.policy(), mlgov.registry()
        try:
            out = decide(
                registry,
                policy,
                config.version,
                config.decision,
                actor=config.actor.strip() or identity(),
                reason=config.reason,
                via=f"{config.via.strip()[:300] or 'launched'}: dagster run {context.run_id[:8]} as OS user "
                f"{getpass.getuser()}",
                dagster_run_id=context.run_id,
            )
        except ApprovalRefused as exc:
            raise Failure(description=str(exc), metadata={REFUSED: True, "policy_sha256": policy.sha256}) from exc
        context.log.info(out.message)
        yield candidate_observation(scope.key("candidate_model"), mlgov, out.message)
        if out.promoted:  # every alias move is a materialization of champion
            yield AssetMaterialization(
                asset_key=scope.key("champion"),
                description=out.message,
                metadata={
                    "champion_version": out.version,
                    "promoted": True,
                    "action": "approval",
                    "reason": out.message,
                    "policy_sha256": policy.sha256,
                    "result": json_md(out.model_dump(mode="json")),
                    **approval_metadata(mlgov),
                },
            )
        yield Output(out.model_dump(mode="json"))

    @job(
        name=scope.named("approve_candidate"),
        description=f"Approve or reject the version of {scope.name} staged for approval (policy promotion.mode: "
        "approval). The approval that completes the quorum moves the champion. Dagster OSS has no "
        "authentication: the actor field is not verified.",
        tags={"mlgov/serial": "training", "mlgov/project": scope.name},
    )
    def approve_job() -> None:
        approve_candidate()

    return Definitions(jobs=[approve_job])


defs = Definitions()
