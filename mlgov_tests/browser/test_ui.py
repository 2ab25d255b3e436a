"""The Dagster UI as a newcomer uses it, against a real ``mlgov ui`` (webserver + daemon): train from the
Jobs page, read every gate as a check with its evidence, watch a drifted batch retrain without a click.

One server per module; the tests run in order and build on each other (train, inspect, drift, edit the policy). Waits
are on real conditions (run status through the webserver's GraphQL API, visible text), bounded."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from mlgov_tests.browser.ui import UiServer, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]

TRAINING = "adult__governed_training"
GLOBAL_JOB = "__ASSET_JOB"  # the implicit job the asset graph pages launch
RUN_TIMEOUT = 600  # seconds per run: the governed path with fairness and SHAP takes ~2-3 min on a loaded 2-core machine


def _expect() -> Any:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)  # a loaded machine renders slowly; still bounded
    return expect


def _trained(ui: UiServer) -> None:
    if not any(r["status"] == "SUCCESS" for r in ui.runs(TRAINING)):
        pytest.skip("needs the champion test_materialize_all_on_the_job_page_promotes_a_champion trains")


def _champion_version(ui: UiServer) -> int:
    data = ui.graphql(
        """{ assetOrError(assetKey: {path: ["adult", "champion"]}) { ... on Asset {
             assetMaterializations(limit: 1) { metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }"""
    )
    entries = data["assetOrError"]["assetMaterializations"][0]["metadataEntries"]
    version: int = next(e["intValue"] for e in entries if e["label"] == "champion_version")
    return version


def _latest_check(ui: UiServer, asset: str, check: str) -> dict[str, Any] | None:
    data = ui.graphql(
        """query($path: [String!]!, $check: String!) {
             assetCheckExecutions(assetKey: {path: $path}, checkName: $check, limit: 1) {
               status evaluation { severity metadataEntries { label } } } }""",
        {"path": ["adult", asset], "check": check},
    )
    runs: list[dict[str, Any]] = data["assetCheckExecutions"]
    return runs[0] if runs else None


def _check_row(page: Any, name: str) -> Any:
    """A check's row in an asset's Checks tab (status icon, name, status word)."""
    # the name is middle-truncated when long: the full name is then the title (and a hidden measuring copy)
    named = page.locator(f'[title="{name}"]').or_(page.get_by_text(name, exact=True))
    return page.locator("[class*='checkRow']").filter(has=named).first


def _open_failed_check(ui: UiServer, page: Any, asset: str, check: str, severity: str) -> None:
    """The latest execution of ``check`` failed at ``severity``; its row on the asset's Checks tab says
    Failed, and is opened (the evidence shows below it)."""
    latest = _latest_check(ui, asset, check)
    assert latest and latest["status"] == "FAILED" and latest["evaluation"]["severity"] == severity, latest
    page.goto(f"{ui.url}/assets/adult/{asset}?view=checks")
    row = _check_row(page, check)
    _expect()(row).to_contain_text("Failed")
    row.click()


def _checks_by_asset(ui: UiServer) -> dict[str, list[str]]:
    """Every asset check of the governed training job, by asset name."""
    data = ui.graphql(
        """{ assetNodes { assetKey { path } jobNames
               assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""
    )
    return {
        n["assetKey"]["path"][-1]: [c["name"] for c in n["assetChecksOrError"].get("checks", [])]
        for n in data["assetNodes"]
        if TRAINING in n["jobNames"] and n["assetChecksOrError"].get("checks")
    }


def test_materialize_all_on_the_job_page_promotes_a_champion(page: Any, ui: UiServer) -> None:
    expect = _expect()
    page.goto(ui.url + "/")
    page.get_by_text("Jobs", exact=True).first.click()
    page.get_by_text(TRAINING, exact=True).first.click()
    button = page.get_by_role("button", name=re.compile(r"Materialize all"))
    expect(button).to_be_enabled()
    # the governed path only: no partitioned asset in it, so no backfill dialog ("…" marks one)
    assert "…" not in button.inner_text(), button.inner_text()
    button.click()
    expect(page.get_by_text(re.compile(r"Launched run"))).to_be_visible()
    run = ui.wait_run(TRAINING, timeout=RUN_TIMEOUT)
    assert run["status"] == "SUCCESS", f"{TRAINING} run {run['runId']} ended {run['status']} (log: {ui.log})"

    version = _champion_version(ui)
    page.goto(ui.url + "/assets/adult/champion")
    row = page.get_by_role("row").filter(has=page.get_by_text("champion_version", exact=True))
    expect(row.first).to_contain_text(str(version))
    expect(page.get_by_role("row").filter(has=page.get_by_text("promoted", exact=True)).first).to_contain_text("true")


def _in_the_global_view(ui: UiServer) -> tuple[set[str], set[str], set[str]]:
    """Every asset of the location as the global lineage page loads it: what its "Materialize all" selects
    (executable, not observable), the partitioned ones, and the ones the governed training job materializes."""
    data = ui.graphql(
        """{ assetNodes { assetKey { path } isExecutable isObservable jobNames partitionDefinition { type } } }"""
    )
    nodes = data["assetNodes"]

    def keys(pick: Any) -> set[str]:
        return {"/".join(n["assetKey"]["path"]) for n in nodes if pick(n)}

    return (
        keys(lambda n: n["isExecutable"] and not n["isObservable"]),
        keys(lambda n: n["partitionDefinition"]),
        keys(lambda n: TRAINING in n["jobNames"] and not n["isObservable"]),
    )


def test_materialize_all_on_the_global_lineage_page_is_one_plain_run_not_a_backfill(page: Any, ui: UiServer) -> None:
    """The default Lineage page: its "Materialize all" launches one run of the unpartitioned graph (the governed
    path and the daily assets); the per-batch assets are external (reported by the landing sensor's runs), so
    no partition or backfill dialog opens."""
    _trained(ui)
    expect = _expect()
    selected, partitioned, governed = _in_the_global_view(ui)
    batch = {
        f"adult/{n}" for n in ("batch_data", "batch_scores", "batch_drift", "batch_drift_report", "batch_performance")
    }
    assert batch <= partitioned and not selected & partitioned, (selected, partitioned)
    assert governed and governed <= selected, (governed, selected)
    before = len(ui.runs(GLOBAL_JOB))

    page.goto(ui.url + "/")
    page.get_by_text("Lineage", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/asset-groups"))
    button = page.get_by_role("button", name=re.compile(r"Materialize all"))
    # the count of what it selects, and no "…" after it (Dagster's mark of a partitioned selection: the dialog)
    expect(button).to_have_text(re.compile(rf"Materialize all \({len(selected)}\)$"))
    button.click()
    expect(page.get_by_text(re.compile(r"Launched run"))).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text("Launch backfill")).to_have_count(0)

    run = ui.wait_run(GLOBAL_JOB, after=before, timeout=RUN_TIMEOUT)
    assert run["status"] == "SUCCESS", f"{GLOBAL_JOB} run {run['runId']} ended {run['status']} (log: {ui.log})"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert not {k for k in tags if k.startswith(("dagster/partition", "dagster/backfill"))}, tags
    data = ui.graphql(
        """query($id: ID!) { runOrError(runId: $id) { ... on Run { assetSelection { path } } } }""",
        {"id": run["runId"]},
    )
    assert {"/".join(k["path"]) for k in data["runOrError"]["assetSelection"]} == selected


def test_every_gate_is_a_check_with_its_evidence_and_lineage_reaches_the_data(page: Any, ui: UiServer) -> None:
    _trained(ui)
    expect = _expect()
    checks = _checks_by_asset(ui)
    assert {"champion_meets_current_policy", "champion_artifact_verified"} <= set(checks.get("champion", [])), checks
    assert "check_fairness_report_challenger" in checks.get("fairness_report", []), checks
    for asset, names in sorted(checks.items()):
        page.goto(f"{ui.url}/assets/adult/{asset}?view=checks")
        for name in names:
            latest = wait_for(f"an evaluation of {asset}/{name}", lambda a=asset, n=name: _latest_check(ui, a, n), 60)
            status = {"SUCCEEDED": "Succeeded", "FAILED": "Failed"}.get(latest["status"], latest["status"])
            # the check's row in the list shows its status; its page shows the evidence (metadata)
            row = _check_row(page, name)
            expect(row).to_contain_text(status)
            row.click()
            expect(page.get_by_text("Evaluation result")).to_be_visible()
            evaluation = latest["evaluation"] or {}
            labels = [e["label"] for e in evaluation.get("metadataEntries", [])]
            if evaluation.get("severity") == "ERROR":  # a gate: its evidence is in the metadata
                assert labels, f"{asset}/{name} carries no evidence"
            if labels:
                expect(page.get_by_text(labels[0], exact=True).first).to_be_visible()

    # the refused unmitigated challenger: its fairness check is red (failed, ERROR); the candidate's passed
    refused = _latest_check(ui, "fairness_report", "check_fairness_report_challenger")
    assert refused and refused["status"] == "FAILED" and refused["evaluation"]["severity"] == "ERROR", refused
    page.goto(f"{ui.url}/assets/adult/fairness_report?view=checks")
    red = _check_row(page, "check_fairness_report_challenger")
    expect(red).to_contain_text("Failed")
    expect(red.locator("[role=img][aria-label=cancel]")).to_have_attribute("style", re.compile("accent-red"))
    expect(_check_row(page, "check_fairness_report_candidate")).to_contain_text("Succeeded")

    # the champion's own verdict under the current policy, where an auditor looks
    page.goto(f"{ui.url}/assets/adult/champion?view=checks")
    for name in ("champion_meets_current_policy", "champion_artifact_verified"):
        expect(_check_row(page, name)).to_contain_text("Succeeded")

    # lineage: champion back to the DVC-versioned training file
    page.goto(f"{ui.url}/assets/adult/champion?view=lineage&lineageScope=upstream&lineageDepth=8")
    for node in ("candidate_model", "challenger_model", "train_features", "training_data", "training_file"):
        expect(page.get_by_text(node, exact=True).first).to_be_visible()


def test_a_drifted_labelled_batch_runs_then_retrains_without_a_click(page: Any, ui: UiServer) -> None:
    _trained(ui)
    from mlgov_assets.core.monitoring.batches import labels_filename, simulate_batch
    from mlgov_tests.core.monitoring.helpers import ADULT, read_adult
    from mlgov_tests.dagster.test_monitoring_sensors import land

    expect = _expect()
    trainings = len(ui.runs(TRAINING))
    batches = len(ui.runs("adult__monitor_batch"))
    holdout = read_adult(ui.project / "data" / "adult.test")
    batch, labels = simulate_batch(ADULT, "covariate", holdout, 2500, 7, with_labels=True)
    landing = ui.home / "incoming"
    land(landing, labels_filename("drift-1"), labels)
    land(landing, "drift-1.csv", batch)

    page.goto(ui.url + "/runs")
    run = ui.wait_run("adult__monitor_batch", after=batches, timeout=RUN_TIMEOUT)
    assert run["status"] == "SUCCESS", run
    page.reload()
    expect(page.get_by_text("adult__monitor_batch").first).to_be_visible()
    # the batch run reported the drift check of the batch (a breach: WARN) with its evidence, on the asset's page
    _open_failed_check(ui, page, "batch_drift", "check_batch_drift_within_policy", "WARN")
    expect(page.get_by_text("drifted_share", exact=True).first).to_be_visible()

    started = time.monotonic()
    retrain = ui.wait_run(TRAINING, after=trainings, timeout=RUN_TIMEOUT)
    tags = {t["key"]: t["value"] for t in retrain["tags"]}
    assert tags.get("dagster/sensor_name") == "adult__retrain_on_breach_sensor", tags
    assert retrain["status"] == "SUCCESS", f"retraining run {retrain['runId']} ended {retrain['status']}"
    page.goto(f"{ui.url}/runs/{retrain['runId']}")
    expect(page.get_by_text(TRAINING).first).to_be_visible()
    # launched by the retraining sensor (its name is middle-truncated on the page; the full name is the title)
    expect(page.locator('[title="adult__retrain_on_breach_sensor"]').first).to_be_visible()
    print(f"retraining run finished {time.monotonic() - started:.0f} s after the batch run")


def test_a_policy_edit_turns_the_champions_own_check_red_without_a_click(page: Any, ui: UiServer) -> None:
    """Last: it leaves a policy no model meets. The policy sensor sees the new sha256 and re-runs the
    champion's checks; the verdict and the new policy's hash are on the champion's page."""
    import hashlib

    import yaml

    _trained(ui)
    expect = _expect()
    checks_runs = len(ui.runs("adult__champion_checks"))
    policy = yaml.safe_load(ui.policy.read_text())
    policy["metric_floors"]["roc_auc"] = {"min": 0.999}
    ui.policy.write_text(yaml.safe_dump(policy, sort_keys=False))
    digest = hashlib.sha256(ui.policy.read_bytes()).hexdigest()

    run = ui.wait_run("adult__champion_checks", after=checks_runs, timeout=RUN_TIMEOUT)
    assert run["status"] == "SUCCESS", run
    _open_failed_check(ui, page, "champion", "champion_meets_current_policy", "ERROR")
    expect(page.get_by_text(digest, exact=True).first).to_be_visible()  # the evidence names the new policy
    expect(page.get_by_text("gate/metric_floors", exact=True).first).to_be_visible()
