"""Retraining requests: decide, record the request (``retraining.jsonl``), alert; the retraining run
then builds and DVC-versions the dataset the request names (:func:`prepare_requested_dataset`).

Deciding needs the ledger and the registry only, so the request follows a breach within moments;
building the training set (reading the reference and the labelled batches, DVC add) is the
retraining run's first work, recorded in that run and in the dataset's manifest. The orchestrator
turns a :class:`RetrainRequest` into a run (run config, tags); core does not know how runs are
configured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.models.training import HyperParams
from mlgov_assets.core.monitoring.alerts import raise_alert
from mlgov_assets.core.monitoring.ledger import (
    BatchLedger,
    LedgerEntry,
    Log,
    MonitoringPaths,
    append_jsonl,
    read_jsonl,
    utc_now,
)
from mlgov_assets.core.monitoring.reference import ReferenceRecord
from mlgov_assets.core.monitoring.retrain_dataset import RetrainDataset, build_retraining_dataset
from mlgov_assets.core.monitoring.retrain_plan import (
    RetrainDecision,
    RetrainPlan,
    breach_reasons,
    describe_breaches,
    plan_retraining,
)

if TYPE_CHECKING:
    from mlgov_assets.core.governance.policy import Policy
    from mlgov_assets.core.models.registry import Registry
    from mlgov_assets.core.project.project import Project
    from mlgov_assets.core.settings import Settings


class RetrainRequest(BaseModel):
    """One line of ``retraining.jsonl``: a retraining run to launch under ``run_key``, once."""

    # records written by earlier versions carry extra keys (e.g. a run config): ignored, not refused
    model_config = ConfigDict(extra="ignore", frozen=True)

    at: str
    run_key: str
    champion_version: int
    trigger_batch_ids: list[str]
    reasons: dict[str, list[str]] = {}
    training_batch_ids: list[str] = []
    new_labelled_rows: int = 0
    dataset: str
    # the dataset's facts, recorded here by requests that built it before the run (older versions);
    # a request now names the dataset and its recipe (``reference``), and the run builds it
    dataset_md5: str | None = None
    rows: int | None = None
    holdout_overlap_rows: int | None = None
    disputed_rows_excluded: int = 0  # labelled rows left out: their labels are in dispute
    reference: ReferenceRecord | None = None  # the reference the dataset is built from (the plan's)
    params: dict[str, Any] = {}  # the champion's hyperparameters for the training run
    trigger: str
    policy_sha256: str

    def describe(self) -> str:
        return describe_breaches(self.trigger_batch_ids, self.reasons)

    def plan(self) -> RetrainPlan | None:
        """The plan this request was recorded from (None for a request recorded without its reference)."""
        if self.reference is None:
            return None
        return RetrainPlan(
            run_key=self.run_key,
            champion_version=self.champion_version,
            trigger_batch_ids=self.trigger_batch_ids,
            reasons=self.reasons,
            reference=self.reference,
            training_batch_ids=self.training_batch_ids,
            new_labelled_rows=self.new_labelled_rows,
            params=HyperParams.model_validate(self.params),
        )


def read_retrain_requests(paths: MonitoringPaths) -> list[RetrainRequest]:
    return [RetrainRequest.model_validate(r) for r in read_jsonl(paths.retraining)]


def record_retrain_request(
    paths: MonitoringPaths, plan: RetrainPlan, *, trigger: str, policy_sha256: str
) -> RetrainRequest:
    request = RetrainRequest(
        at=utc_now(),
        run_key=plan.run_key,
        champion_version=plan.champion_version,
        trigger_batch_ids=plan.trigger_batch_ids,
        reasons=plan.reasons,
        training_batch_ids=plan.training_batch_ids,
        new_labelled_rows=plan.new_labelled_rows,
        dataset=plan.dataset,
        reference=plan.reference,
        params=plan.params.model_dump(exclude_unset=True),
        trigger=trigger,
        policy_sha256=policy_sha256,
    )
    append_jsonl(paths.retraining, request.model_dump(mode="json", exclude_none=True))
    return request


def prepare_requested_dataset(
    settings: Settings, project: Project, dataset: str, *, log: Log | None = None
) -> RetrainDataset | None:
    """Build and DVC-version the training set a recorded retraining request names (once per run key:
    a re-run finds the same bytes). None when ``dataset`` is no request's, or its request was recorded
    with its dataset already built."""
    recorded = [r for r in read_retrain_requests(MonitoringPaths.of(settings)) if r.dataset == dataset]
    plan = recorded[-1].plan() if recorded else None
    if plan is None:
        return None
    return build_retraining_dataset(settings, project, plan, log=log)


def unlaunched_requests(
    requests: Sequence[RetrainRequest],
    champion: int | None,
    has_run: Callable[[str], bool],
    skip: set[str] | None = None,
) -> list[RetrainRequest]:
    """Recorded requests for the current champion whose run never appeared (the process stopped
    between recording and launching): safe to re-emit, since a run key is launched once."""
    skip = skip or set()
    return [r for r in requests if r.champion_version == champion and r.run_key not in skip and not has_run(r.run_key)]


def unrequested_breaches(
    entries: Sequence[LedgerEntry], requests: Sequence[RetrainRequest], retrain_on: Sequence[str]
) -> list[str]:
    """Breaching batches that no recorded request covers for the champion that scored them: the only
    ones :func:`plan_retraining` can turn into a new request (or a wait for labels). Needs neither the
    registry nor the dataset: a sensor tick with none of them and every request launched has nothing to do."""
    handled = {(b, r.champion_version) for r in requests for b in r.trigger_batch_ids}
    return [
        e["batch_id"]
        for e in entries
        if breach_reasons(e, retrain_on) and (e["batch_id"], e.get("champion_version")) not in handled
    ]


def request_retraining(
    settings: Settings,
    project: Project,
    policy: Policy,
    registry: Registry,
    *,
    has_run: Callable[[str], bool],
    trigger: str,
    log: Log | None = None,
) -> tuple[RetrainDecision, RetrainRequest | None]:
    """Plan, and if a run is due and its run key was never launched, record the request and alert
    (the run builds the dataset). Returns the decision and the new request (None when nothing new is
    to be launched)."""
    paths = MonitoringPaths.of(settings)
    champion = registry.champion_version()
    decision = plan_retraining(
        BatchLedger(paths),
        read_retrain_requests(paths),
        champion=champion,
        champion_info=registry.version_info(champion) if champion is not None else None,
        project_dir=Path(settings.project_dir),
        retrain_on=list(policy.monitoring.retrain_on),
        generated_dir=settings.generated_dir,
    )
    webhook = policy.monitoring.webhook_url
    if decision.kind == "pending_labels":
        identity = {"breaches": decision.breaches, "champion": champion}
        raise_alert(paths, "retrain_pending_labels", decision.message, identity=identity, webhook_url=webhook, log=log)
        return decision, None
    plan = decision.plan
    if decision.kind != "request" or plan is None:
        return decision, None
    if has_run(plan.run_key):
        message = f"run key {plan.run_key} was already launched"
        return RetrainDecision(kind="none", message=message, breaches=decision.breaches), None
    request = record_retrain_request(paths, plan, trigger=trigger, policy_sha256=policy.sha256)
    raise_alert(
        paths,
        "retrain_requested",
        f"retraining requested ({plan.run_key}) after {decision.message.removeprefix('retrain: ')}; dataset "
        f"{plan.dataset} (the reference {plan.reference.path} + {plan.new_labelled_rows} new labelled rows "
        f"of {plan.training_batch_ids}, built by the retraining run), against champion v{plan.champion_version}",
        identity=plan.run_key,
        webhook_url=webhook,
        log=log,
        evidence={"plan": plan.model_dump(mode="json")},
    )
    return decision, request
