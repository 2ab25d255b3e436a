"""The promotion result types keep the JSON forms the CLI prints (``mlgov train/promote/status --json``)."""

from __future__ import annotations

import json

import pytest

from mlgov_assets.core.governance.promotion import (
    ChampionOutcome,
    GateStatus,
    PolicyRef,
    PromotionDecision,
    StatusReport,
    VersionStatus,
)


def test_a_decision_names_its_kind_only_when_the_alias_moved():
    unmoved = PromotionDecision(promoted=False, champion=3, previous=3, reason="already champion")
    assert unmoved.model_dump(mode="json") == {
        "promoted": False,
        "champion": 3,
        "previous": 3,
        "reason": "already champion",
    }
    moved = PromotionDecision(promoted=True, champion=4, previous=None, reason="passed", kind="promotion")
    assert list(moved.to_dict()) == ["promoted", "champion", "previous", "reason", "kind"]
    # the champion asset's output: the decision plus the model name, in the order it always had
    outcome = ChampionOutcome(**unmoved.to_dict(), model_name="adult")
    assert list(outcome.model_dump()) == ["promoted", "champion", "previous", "reason", "model_name"]
    assert ChampionOutcome.model_validate(outcome.model_dump()) == outcome


def _report() -> StatusReport:
    gate = GateStatus(verdict="failed", summary="auc low", severity="ERROR", policy_sha256="ab", current_policy=True)
    v1 = VersionStatus(
        version=1,
        aliases=["champion"],
        metrics={"roc_auc": 0.9},
        train_data_md5="md5",
        git_commit=None,
        variant="baseline",
        gates={"metric_floors": gate},
        promotable=False,
    )
    return StatusReport(
        model_name="adult",
        policy=PolicyRef(path="policy.yaml", sha256="ab"),
        champion=v1,
        history=[1],
        versions=[v1],
        state_dir="/state",
    )


def test_status_sections_are_flattened_beside_the_reports_own_keys():
    report = _report().with_sections({"monitoring": {"batches": 2}}).with_sections({"audit": {"head": None}})
    out = report.to_dict()
    assert list(out) == ["model_name", "policy", "champion", "history", "versions", "state_dir", "monitoring", "audit"]
    assert out["versions"][0]["gates"]["metric_floors"]["verdict"] == "failed"
    assert json.loads(json.dumps(out)) == out
    with pytest.raises(ValueError, match="clash"):
        report.with_sections({"champion": None})


def test_a_status_section_must_be_json():
    with pytest.raises(ValueError):
        _report().with_sections({"monitoring": {"at": object()}})
