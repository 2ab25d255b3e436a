"""When the champion's check may cite the gate verdicts of the run that just promoted it
(``core.monitoring.reevaluation.citation_refused``): only when every key matches; any mismatch means
a full re-evaluation (a fresh holdout score). The Dagster side is in
``mlgov_tests/dagster/test_champion_checks.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from mlgov_assets.core.governance.policy import METRIC_GATES
from mlgov_assets.core.models.registry import GateRecord
from mlgov_assets.core.monitoring.reevaluation import RunEvidence, RunGateCheck, citation_refused

POLICY = "a" * 64
OTHER = "b" * 64
RUN = "0123456789abcdef"
MD5 = "c" * 32
V = 7


def _policy(sha: str = POLICY) -> Any:
    return SimpleNamespace(sha256=sha)


def _evidence(**change: Any) -> RunEvidence:
    checks = [
        RunGateCheck(gate=g, check=f"check_candidate_model_{g}", model_version=V, policy_sha256=POLICY, passed=True)
        for g in METRIC_GATES
    ]
    fields: dict[str, Any] = {"run_id": RUN, "promoted_version": V, "policy_sha256": POLICY, "gate_checks": checks}
    return RunEvidence(**(fields | change))


def _records(**change: Any) -> dict[str, GateRecord]:
    out = {
        g: GateRecord(name=g, passed=True, policy_sha256=POLICY, severity="ERROR", summary="ok") for g in METRIC_GATES
    }
    for gate, rec in change.items():
        if rec is None:
            del out[gate]
        else:
            out[gate] = rec
    return out


def _refused(evidence: RunEvidence | None = None, *, policy: str = POLICY, **kw: Any) -> str | None:
    args: dict[str, Any] = {"champion": V, "records": _records(), "holdout_md5": MD5, "recorded_md5": MD5} | kw
    return citation_refused(evidence if evidence is not None else _evidence(), policy=_policy(policy), **args)


def test_every_key_matching_cites() -> None:
    assert _refused() is None


def _check(gate: str, **change: Any) -> list[RunGateCheck]:
    return [c.model_copy(update=change) if c.gate == gate else c for c in _evidence().gate_checks]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"evidence": None, "none": True}, "not run in a Dagster run"),
        ({"evidence": _evidence(promoted_version=None)}, "promoted no version"),
        ({"evidence": _evidence(promoted_version=V - 1)}, "the champion is v7"),
        ({"champion": V + 1}, "the champion is v8"),
        ({"policy": OTHER}, "not bbbbbbbbbbbb"),  # the policy changed since the run's promotion
        ({"evidence": _evidence(policy_sha256=OTHER)}, "promoted under policy bbbbbbbbbbbb"),
        ({"holdout_md5": "d" * 32}, "differs from the one recorded"),  # another data version
        ({"recorded_md5": None}, "differs from the one recorded"),
        ({"evidence": _evidence(gate_checks=_check("metric_floors")[1:])}, "evaluated no metric_floors check"),
        ({"evidence": _evidence(gate_checks=_check("metric_floors", passed=False))}, "is not a pass of v7"),
        ({"evidence": _evidence(gate_checks=_check("champion_comparison", model_version=V - 1))}, "not a pass"),
        ({"evidence": _evidence(gate_checks=_check("champion_comparison", policy_sha256=OTHER))}, "not a pass"),
        ({"records": _records(metric_floors=None)}, "registry's metric_floors record"),
        (
            {
                "records": _records(
                    champion_comparison=GateRecord("champion_comparison", False, POLICY, "ERROR", "worse")
                )
            },
            "registry's champion_comparison record",
        ),
        (
            {"records": _records(metric_floors=GateRecord("metric_floors", True, OTHER, "ERROR", "old policy"))},
            "registry's metric_floors record",
        ),
    ],
)
def test_any_mismatching_key_means_a_full_reevaluation(case: dict[str, Any], expected: str) -> None:
    case = dict(case)
    if case.pop("none", False):
        why = citation_refused(None, V, _policy(), _records(), MD5, MD5)
    else:
        why = _refused(**case)
    assert why is not None and expected in why, why
