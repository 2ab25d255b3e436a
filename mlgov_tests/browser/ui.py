"""A real ``mlgov ui`` (dagster webserver + daemon) on a temporary state directory and a free port,
Debian's Chromium driven by Playwright, and the webserver's GraphQL API to wait on real conditions."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mlgov_assets.isolated_env import isolated_env

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
T = TypeVar("T")


def artifacts_dir() -> Path:
    """Where failing browser tests leave screenshots and page HTML: CI keeps this directory."""
    return Path(os.environ.get("MLGOV_ARTIFACTS_DIR") or REPO / ".ci" / "artifacts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception as exc:  # the server may not be up yet
            last, value = exc, None
        if value:
            return value
        time.sleep(interval)
    detail = f" (last error: {last})" if last else ""
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")


@dataclass
class UiServer:
    url: str
    home: Path
    project: Path
    policy: Path
    log: Path
    process: subprocess.Popen[bytes]

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        r = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    def runs(self, job: str) -> list[dict[str, Any]]:
        """The job's runs, newest first: id, status, tags."""
        data = self.graphql(
            """query($job: String!) { runsOrError(filter: {pipelineName: $job}) {
                 __typename ... on Runs { results { runId status tags { key value } } } } }""",
            {"job": job},
        )
        runs: list[dict[str, Any]] = data["runsOrError"].get("results", [])
        return runs

    def wait_run(self, job: str, *, after: int = 0, timeout: float) -> dict[str, Any]:
        """The job's run number ``after + 1`` once it finished (any terminal status)."""

        def finished() -> dict[str, Any] | None:
            runs = self.runs(job)
            if len(runs) <= after:
                return None
            run = runs[-(after + 1)]
            return run if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"} else None

        return wait_for(f"run #{after + 1} of {job} to finish (server log: {self.log})", finished, timeout)

    def location_loaded(self) -> bool:
        data = self.graphql(
            """{ workspaceOrError { __typename ... on Workspace { locationEntries {
                 name loadStatus locationOrLoadError { __typename } } } } }"""
        )
        entries = data["workspaceOrError"].get("locationEntries", [])
        return bool(entries) and all(
            e["loadStatus"] == "LOADED" and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for e in entries
        )


@contextmanager
def mlgov_ui(root: Path, project_template: Path, policy_text: str, *, timeout: float = 300) -> Iterator[UiServer]:
    """``mlgov ui --no-mlflow`` on a fresh state directory and project copy (the adult project only)."""
    project = root / "project"
    shutil.copytree(project_template, project, symlinks=True)
    home, policy, log = root / "state", root / "policy.yaml", root / "mlgov-ui.log"
    policy.write_text(policy_text)
    port = free_port()
    env = isolated_env(home, project, policy)
    mlgov = Path(sys.executable).parent / "mlgov"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(mlgov), "ui", "--no-mlflow", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = UiServer(f"http://127.0.0.1:{port}", home, project, policy, log, proc)
    try:
        wait_for(f"mlgov ui to load its code location (log: {log})", server.location_loaded, timeout)
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to ``mlgov ui`` (it stops dagster dev with SIGINT); the whole session it started if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=40)
    with suppress(ProcessLookupError):  # our own session: leftover webserver/daemon/code-server children
        os.killpg(proc.pid, signal.SIGKILL)
