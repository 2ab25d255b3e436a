"""Issue 13: the UI's "Materialize all" (Jobs -> adult__governed_training) against ``mlgov train``.

    .venv/bin/python benchmarks/ui_materialize.py [--repeats 3] [--via browser|graphql] [--json out.json]

Both sides run the governed path (shipped default policy: fairness, mitigation, SHAP; the Adult
project only) on a fresh ``MLGOV_HOME`` and a fresh copy of one git + DVC project; they alternate
sample by sample (the order flips every repeat), so both see the same machine load.

- CLI: ``mlgov train --json`` from process start to exit (the champion alias is set inside the run).
- UI: the real ``mlgov ui --no-mlflow`` (webserver + daemon, started as the browser tests start it:
  ``mlgov_tests/browser/ui.py``). Its start (until the code location is loaded) is NOT timed but
  reported. ``--via browser`` (default): Debian's Chromium, driven by Playwright, opens Jobs ->
  adult__governed_training and the clock starts when "Materialize all" is clicked. ``--via graphql``:
  the mutation that button sends (``LaunchPipelineExecution``, the job's assets and checks selected,
  tag ``dagster/from_ui``) posted directly, no browser. The run's tags and selection are printed.

Every figure is taken against the same clock: t0 = process start (CLI) or the click (UI); then the
run's creation, start and end and the ``champion`` asset's materialization as the Dagster instance
recorded them (its SQLite files), and when the caller saw the end (process exit / GraphQL poll).
Prints medians, the UI / CLI ratios and the load average per sample.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlgov_assets.isolated_env import isolated_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MLGOV = str(Path(sys.executable).parent / "mlgov")
TRAINING = "adult__governed_training"
RUN_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Sample:
    """Seconds from t0 (process start / click) to each point of one governed run."""

    side: str
    created: float  # the run record exists
    started: float  # the run worker (CLI: the process itself) began executing it
    champion: float  # the champion asset was materialized (alias set just before)
    ended: float  # the run's end as recorded
    seen: float  # the caller knew: process exit / the poll that saw SUCCESS
    champion_version: int
    load: float  # 1-minute load average at the end of the sample
    server_start: float | None = None  # UI only: `mlgov ui` until its code location loaded (not in t0)
    operation: str = ""  # UI only: how the run was launched and what it selected


def _utc(text: str) -> float:
    """A naive-UTC DATETIME column of Dagster's SQLite storage as epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _run_times(home: Path, run_id: str) -> tuple[float, float, float, float]:
    """(created, started, champion materialized, ended) of ``run_id`` as epoch seconds."""
    history = home / "dagster" / "history"
    with contextlib.closing(sqlite3.connect(f"file:{history / 'runs.db'}?mode=ro", uri=True)) as db:
        query = "select create_timestamp, start_time, end_time from runs where run_id = ?"
        row = db.execute(query, (run_id,)).fetchone()
    with contextlib.closing(sqlite3.connect(f"file:{history / 'runs' / (run_id + '.db')}?mode=ro", uri=True)) as db:
        champ = db.execute(
            "select timestamp from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION' and asset_key = ?",
            (json.dumps(["adult", "champion"]),),
        ).fetchone()
    if row is None or champ is None:
        raise SystemExit(f"run {run_id}: no run record or no champion materialization in {history}")
    return _utc(row[0]), float(row[1]), _utc(champ[0]), float(row[2])


def cli_sample(work: Path, template: Path, policy_text: str) -> Sample:
    project, home, policy = work / "project", work / "state", work / "policy.yaml"
    shutil.copytree(template, project, symlinks=True)
    policy.write_text(policy_text)
    t0 = time.time()
    done = subprocess.run(
        [MLGOV, "train", "--json"],
        cwd=ROOT,
        env=isolated_env(home, project, policy),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    seen = time.time() - t0
    if done.returncode != 0:
        raise SystemExit(f"mlgov train failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    created, started, champion, ended = (t - t0 for t in _run_times(home, report["run_id"]))
    version = int(report["champion"]["champion"])
    return Sample("cli", created, started, champion, ended, seen, version, os.getloadavg()[0])


def _graphql_launch(ui: Any) -> None:
    """Post the mutation "Materialize all" sends (the UI's bundle: ``LaunchPipelineExecution``, the
    ``dagster/from_ui`` tag added): the job, every asset and check of the job selected, no run config."""
    nodes = ui.graphql(
        """{ assetNodes { assetKey { path } jobNames isMaterializable
               assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""
    )["assetNodes"]
    mine = [n for n in nodes if TRAINING in n["jobNames"] and n["isMaterializable"]]
    params = {
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "dagster/from_ui", "value": "true"}]},
        "runConfigData": "{}",
        "selector": {
            "repositoryLocationName": "mlgov",
            "repositoryName": "__repository__",
            "pipelineName": TRAINING,
            "assetSelection": [{"path": n["assetKey"]["path"]} for n in mine],
            "assetCheckSelection": [
                {"assetKey": {"path": n["assetKey"]["path"]}, "name": c["name"]}
                for n in mine
                for c in n["assetChecksOrError"].get("checks", [])
            ],
        },
    }
    data = ui.graphql(
        """mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
             launchPipelineExecution(executionParams: $executionParams) {
               __typename ... on LaunchRunSuccess { run { runId } }
               ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } } } }""",
        {"executionParams": params},
    )
    result = data["launchPipelineExecution"]
    if result["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"launch refused: {result}")


@contextlib.contextmanager
def _job_page(ui: Any) -> Iterator[Any]:
    """Chromium on the job's page (Jobs -> the training job, as the browser test clicks), "Materialize
    all" enabled; yields the button."""
    from playwright.sync_api import expect, sync_playwright

    from mlgov_tests.browser.ui import CHROMIUM, CHROMIUM_ARGS

    profile = tempfile.mkdtemp(prefix="mlgov-bench-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = context.new_page()
                page.set_default_timeout(120_000)
                page.add_locator_handler(
                    page.get_by_text("Join the Dagster community"),
                    lambda _: page.get_by_role("button", name="Skip").click(),
                )
                page.goto(ui.url + "/")
                page.get_by_text("Jobs", exact=True).first.click()
                page.get_by_text(TRAINING, exact=True).first.click()
                button = page.get_by_role("button", name=re.compile(r"Materialize all"))
                expect(button).to_be_enabled(timeout=120_000)
                yield button
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _launched(ui: Any, run_id: str) -> str:
    """What the launch asked for, as the webserver recorded it on the run (the click's mutation is not
    visible to Playwright's request events; its tags and selection are on the run)."""
    run = ui.graphql(
        """query($id: ID!) { runOrError(runId: $id) { ... on Run {
             tags { key value } assetSelection { path } assetCheckSelection { name } } } }""",
        {"id": run_id},
    )["runOrError"]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    return (
        f"dagster/from_ui={tags.get('dagster/from_ui', '-')}, "
        f"{len(run['assetSelection'] or [])} assets and {len(run['assetCheckSelection'] or [])} checks selected"
    )


def ui_sample(work: Path, template: Path, policy_text: str, via: str) -> Sample:
    from mlgov_tests.browser.ui import mlgov_ui

    t_server = time.time()
    with mlgov_ui(work, template, policy_text, timeout=600) as ui:
        server_start = time.time() - t_server
        if via == "browser":
            with _job_page(ui) as button:
                t0 = time.time()
                button.click()
                run = ui.wait_run(TRAINING, timeout=RUN_TIMEOUT)
                seen = time.time() - t0
        else:
            t0 = time.time()
            _graphql_launch(ui)
            run = ui.wait_run(TRAINING, timeout=RUN_TIMEOUT)
            seen = time.time() - t0
        operation = f"{via}: {_launched(ui, run['runId'])}"
        if run["status"] != "SUCCESS":
            raise SystemExit(f"UI run {run['runId']} ended {run['status']} (log: {ui.log})")
        created, started, champion, ended = (t - t0 for t in _run_times(ui.home, run["runId"]))
        data = ui.graphql(
            """{ assetOrError(assetKey: {path: ["adult", "champion"]}) { ... on Asset {
                 assetMaterializations(limit: 1) { metadataEntries {
                   label ... on IntMetadataEntry { intValue } } } } } }"""
        )
        entries = data["assetOrError"]["assetMaterializations"][0]["metadataEntries"]
        version = int(next(e["intValue"] for e in entries if e["label"] == "champion_version"))
    load = os.getloadavg()[0]
    return Sample("ui", created, started, champion, ended, seen, version, load, server_start, operation)


ROWS = [
    ("t0 → run created", "created"),
    ("t0 → run started", "started"),
    ("t0 → champion materialized", "champion"),
    ("t0 → run ended", "ended"),
    ("t0 → caller saw it end", "seen"),
]


def _table(cli: list[Sample], ui: list[Sample]) -> str:
    def med(samples: list[Sample], field: str) -> float:
        return statistics.median(float(getattr(s, field)) for s in samples)

    def series(samples: list[Sample], field: str) -> str:
        return " ".join(f"{float(getattr(s, field)):.1f}" for s in samples)

    out = [
        "| seconds from t0 (CLI: process start; UI: the click) | `mlgov train` | UI Materialize all | UI / CLI "
        "| samples (CLI / UI) |",
        "|---|---:|---:|---:|---|",
    ]
    for label, field in ROWS:
        c, u = med(cli, field), med(ui, field)
        ratio = f"{u / c:.2f}" if c > 0.5 else "—"
        out.append(f"| {label} | {c:.1f} | {u:.1f} | {ratio} | {series(cli, field)} / {series(ui, field)} |")
    steps_c = [s.ended - s.started for s in cli]
    steps_u = [s.ended - s.started for s in ui]
    sc, su = statistics.median(steps_c), statistics.median(steps_u)
    out.append(
        f"| run started → ended (the steps) | {sc:.1f} | {su:.1f} | {su / sc:.2f} | "
        f"{' '.join(f'{x:.1f}' for x in steps_c)} / {' '.join(f'{x:.1f}' for x in steps_u)} |"
    )
    starts = [s.server_start or 0.0 for s in ui]
    out.append(
        f"\n`mlgov ui` start until its code location loaded (not in t0): median {statistics.median(starts):.1f} s "
        f"({' '.join(f'{x:.1f}' for x in starts)})."
    )
    out.append(f"Load average (1 min) after each sample, CLI: {series(cli, 'load')}; UI: {series(ui, 'load')}.")
    out.append(f"Champion versions: CLI {[s.champion_version for s in cli]}, UI {[s.champion_version for s in ui]}.")
    out.append(f"UI launch ({ui[0].operation})." if ui else "")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--via", choices=("browser", "graphql"), default="browser")
    ap.add_argument("--json", type=Path, help="also write every sample here")
    args = ap.parse_args()
    from mlgov_tests.browser.ui import CHROMIUM
    from mlgov_tests.conftest import make_project

    if args.via == "browser" and not CHROMIUM.exists():
        print(f"SKIPPED: {CHROMIUM} missing (`make browser`), or use --via graphql")
        return 0
    policy_text = (ROOT / "mlgov_assets" / "policies" / "default.yaml").read_text()
    root = Path(tempfile.mkdtemp(prefix="mlgov-bench-ui-"))
    cli: list[Sample] = []
    ui: list[Sample] = []
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # DVC's "To track the changes with git" hint
            template = make_project(root / "template")
        for i in range(args.repeats):
            order = ("cli", "ui") if i % 2 == 0 else ("ui", "cli")
            for side in order:
                work = root / f"{side}-{i}"
                work.mkdir()
                if side == "cli":
                    cli.append(cli_sample(work, template, policy_text))
                else:
                    ui.append(ui_sample(work, template, policy_text, args.via))
                s = (cli if side == "cli" else ui)[-1]
                print(
                    f"repeat {i + 1} {side}: champion at {s.champion:.1f} s, run ended {s.ended:.1f} s, "
                    f"seen {s.seen:.1f} s, load {s.load:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
                shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(_table(cli, ui))
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in cli + ui], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
