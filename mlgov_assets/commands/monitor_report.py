"""What one ``mlgov monitor --once`` pass did, as its ``--json`` report shows it (imported lazily:
the retraining records it holds pull in pandas, which ``mlgov --help`` should not pay for)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mlgov_assets.core.monitoring.retraining import RetrainRequest

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class BatchOutcome(BaseModel):
    """One batch (or labels) run of a pass, with the ledger's verdicts after it."""

    model_config = _FROZEN

    batch_id: str
    file: str
    run_id: str
    success: bool
    status: str | None
    rows: int | None
    champion_version: int | None
    shadow_version: int | None
    quarantine_dir: str | None
    validation: str | None
    drift: dict[str, Any] | None
    performance: dict[str, Any] | None
    failed_steps: list[dict[str, Any]]
    labels: dict[str, Any] | None = None  # the ledger's labels info (``decision``: the labels file judged)
    refused: bool = False  # every failed step was a governance no (e.g. the champion failed verification)
    reason: str | None = None  # why the run failed, in a sentence (None when it succeeded)


class RetrainRun(BaseModel):
    """One governed retraining run of a pass: what it trained on and whether the champion moved."""

    model_config = _FROZEN

    run_key: str
    dataset: str | None
    dataset_md5: str | None
    rows: int | None
    run_id: str
    success: bool
    champion_before: int | None
    champion_after: int | None
    refused_by: list[dict[str, Any]]
    failed_steps: list[dict[str, Any]]


class RetrainingDecision(BaseModel):
    """The retraining decision of a pass: the requests the sensor made (``plan`` is the last one,
    ``message`` describes all), or why it made none."""

    model_config = _FROZEN

    kind: Literal["none", "request"]
    message: str
    breaches: list[str]
    plan: RetrainRequest | None


class RetrainingPass(BaseModel):
    """The retraining sensor's tick of a pass and the governed runs it launched."""

    model_config = _FROZEN

    decision: RetrainingDecision
    runs: list[RetrainRun]
