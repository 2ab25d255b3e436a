"""Whether a retraining run is due, decided from the ledger: which breaches, which data, which recipe."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field, field_serializer

from mlgov_assets.core.data.datasets import GENERATED_PREFIX, dataset_location
from mlgov_assets.core.models.training import HyperParams
from mlgov_assets.core.monitoring.batches import retrain_run_key
from mlgov_assets.core.monitoring.ledger import JUDGED_STATUSES, BatchLedger, LedgerEntry
from mlgov_assets.core.monitoring.reference import ReferenceRecord

if TYPE_CHECKING:
    from mlgov_assets.core.models.registry import VersionInfo
    from mlgov_assets.core.monitoring.retraining import RetrainRequest

#: Retraining datasets are recorded under this logical folder; their bytes live in the generated-data
#: directory under the state directory (``Settings.generated_dir``, see ``core/data/datasets.py``).
GENERATED_DIR = GENERATED_PREFIX.rstrip("/")


class RetrainPlan(BaseModel):
    """A retraining request, decided from the ledger: the breaches, the data and the champion's recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_key: str
    champion_version: int
    trigger_batch_ids: list[str]
    reasons: dict[str, list[str]]
    reference: ReferenceRecord
    training_batch_ids: list[str]
    new_labelled_rows: int
    params: HyperParams  # the champion's hyperparameters: retraining changes the data, not the recipe

    @field_serializer("params")
    def _recorded_params(self, params: HyperParams) -> dict[str, Any]:
        """Only what the champion recorded: the job config's own defaults cover the rest."""
        return params.model_dump(exclude_unset=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def dataset(self) -> str:
        """The new training set, relative to the project."""
        return f"{GENERATED_DIR}/{self.run_key}.csv"


class RetrainDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["none", "request", "pending_labels"]
    message: str
    plan: RetrainPlan | None = None
    breaches: list[str] = []


def describe_breaches(batch_ids: Sequence[str], reasons: Mapping[str, Sequence[str]]) -> str:
    """``retrain: <batch> (<reason>+<reason>), ...``: why a retraining run is requested."""
    return "retrain: " + ", ".join(f"{b} ({'+'.join(reasons.get(b, []))})" for b in batch_ids)


def breach_reasons(entry: Mapping[str, Any], retrain_on: Sequence[str]) -> list[str]:
    """Why a batch calls for retraining under the policy's ``monitoring.retrain_on`` (empty: it does not)."""
    if entry.get("status") not in JUDGED_STATUSES:
        return []
    reasons = []
    if "dataset_drift" in retrain_on and (entry.get("drift") or {}).get("breach"):
        reasons.append("dataset_drift")
    if "performance" in retrain_on and (entry.get("performance") or {}).get("breach"):
        reasons.append("performance")
    return reasons


def verdicts_pending(entry: Mapping[str, Any] | None, retrain_on: Sequence[str]) -> bool:
    """Whether a batch may still record a verdict that calls for retraining under ``retrain_on``.

    Pending: nothing recorded yet, or no drift verdict yet, or (with ``performance`` in ``retrain_on``
    and labelled rows) no performance verdict yet, which comes after scoring. Not pending: quarantined
    (it records no verdict), a breach already recorded (one is enough to act), or every verdict it can
    record is in."""
    if not entry:
        return True
    if entry.get("status") == "quarantined" or breach_reasons(entry, retrain_on):
        return False
    if "drift" not in entry:
        return True
    labelled = int((entry.get("labels") or {}).get("n_labelled") or 0) > 0
    return "performance" in retrain_on and labelled and "performance" not in entry


def dataset_manifest_path(dataset: Path) -> Path:
    return dataset.with_name(dataset.stem + ".manifest.json")


def lineage_batch_ids(project_dir: Path, train_data_path: str, generated_dir: Path | None = None) -> list[str]:
    """Batches already inside a training dataset (from its manifest; the shipped data has none)."""
    if not train_data_path:
        return []
    manifest = dataset_manifest_path(dataset_location(Path(project_dir), train_data_path, generated_dir)[1])
    if not manifest.exists():
        return []
    return [str(b) for b in json.loads(manifest.read_text(encoding="utf-8")).get("included_batch_ids", [])]


def champion_hyperparams(params: Mapping[str, str]) -> HyperParams:
    """The champion's hyperparameters, parsed from the strings MLflow stored (``"None"``/``""`` is None;
    other run params are ignored). Only the recorded ones are set (``model_fields_set``)."""
    recorded = {k: None if v in ("None", "") else v for k, v in params.items() if k in HyperParams.model_fields}
    return HyperParams.model_validate(recorded)


def _usable_rows(entry: LedgerEntry) -> int:
    """Labelled rows of a batch a retraining may use: those whose labels are not in dispute."""
    labels = entry.get("labels") or {}
    return max(0, int(labels.get("n_labelled", 0)) - int(labels.get("disputed", 0)))


def _training_entries(ledger: BatchLedger, entries: list[LedgerEntry], in_lineage: set[str]) -> list[LedgerEntry]:
    """Validated batches with a drift verdict (scored or not yet: training needs their rows and labels,
    not their scores) and archived labels, not yet in the champion's training data."""
    return [
        e
        for e in entries
        if e.get("status") in JUDGED_STATUSES
        and e["batch_id"] not in in_lineage
        and _usable_rows(e) > 0
        and ledger.labels_path(e["batch_id"]).exists()
    ]


def plan_retraining(
    ledger: BatchLedger,
    requests: Sequence[RetrainRequest],
    *,
    champion: int | None,
    champion_info: VersionInfo | None,
    project_dir: Path,
    retrain_on: Sequence[str],
    generated_dir: Path | None = None,
) -> RetrainDecision:
    """Decide whether a retraining run is due, from the ledger and the earlier requests.

    Breaches count only against the champion that scored the batch, and only once per request, so
    repeated ticks, fresh cursors and restarts decide the same thing. The run key covers the
    unhandled breaching batches, the reference fingerprint and the champion version. The training
    set is the reference plus every labelled batch not already in the champion's training data,
    less the rows whose labels are in dispute; with no such row the decision is ``pending_labels``.
    """
    if champion is None or champion_info is None:
        return RetrainDecision(kind="none", message="no champion")
    entries = ledger.entries()
    breaching = {e["batch_id"]: breach_reasons(e, retrain_on) for e in entries if e.get("champion_version") == champion}
    breaching = {k: v for k, v in breaching.items() if v}
    if not breaching:
        return RetrainDecision(kind="none", message=f"no breach against champion v{champion}")
    handled = {b for r in requests if r.champion_version == champion for b in r.trigger_batch_ids}
    new = sorted(b for b in breaching if b not in handled)
    if not new:
        message = f"breaches {sorted(breaching)} already have a retraining request"
        return RetrainDecision(kind="none", message=message, breaches=sorted(breaching))
    in_lineage = set(lineage_batch_ids(project_dir, champion_info.tags.get("mlgov.train_data_path", ""), generated_dir))
    training = _training_entries(ledger, entries, in_lineage)
    n_rows = sum(_usable_rows(e) for e in training)
    if not n_rows:
        message = (
            f"breach in {new} against champion v{champion}, but no labelled batch "
            f"rows beyond its training data yet: retraining waits for labels"
        )
        return RetrainDecision(kind="pending_labels", message=message, breaches=new)
    reference = ReferenceRecord.model_validate({e["batch_id"]: e for e in entries}[new[-1]]["reference"])
    key = retrain_run_key(
        {"batch_ids": new, "reference_fingerprint": reference.fingerprint, "champion_version": champion}
    )
    plan = RetrainPlan(
        run_key=key,
        champion_version=int(champion),
        trigger_batch_ids=new,
        reasons={b: breaching[b] for b in new},
        reference=reference,
        training_batch_ids=[e["batch_id"] for e in training],
        new_labelled_rows=n_rows,
        params=champion_hyperparams(champion_info.params),
    )
    return RetrainDecision(kind="request", message=describe_breaches(new, breaching), plan=plan, breaches=new)
