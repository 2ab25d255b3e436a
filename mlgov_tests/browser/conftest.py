"""Browser tests: Debian's Chromium (``make browser`` installs it) driven by Playwright against a real
``mlgov ui`` on a temporary state directory. Without Chromium the suite says so in one line and skips;
with ``MLGOV_REQUIRE_SERVICES=1`` (CI) that is a failure. A failing test leaves a screenshot and the
page's HTML in ``$MLGOV_ARTIFACTS_DIR`` (default ``.ci/artifacts/``) and names them in its report."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgov_tests.browser.ui import CHROMIUM, CHROMIUM_ARGS, UiServer, artifacts_dir, mlgov_ui
from mlgov_tests.conftest import REPO

MISSING = (
    f"browser tests: Chromium not found at {CHROMIUM} "
    "(install it with `make browser` as root, i.e. apt-get install -y chromium)"
)


def _required() -> bool:
    return os.environ.get("MLGOV_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without Chromium every browser test is skipped with the same reason: one line in the summary."""
    if CHROMIUM.exists() or _required():
        return
    skip = pytest.mark.skip(reason=MISSING)
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(MISSING + " and MLGOV_REQUIRE_SERVICES=1", pytrace=False)
    return CHROMIUM


def ui_policy() -> str:
    """The shipped policy (fairness gates the unmitigated challenger, mitigation on) with explanations on
    a 200-row subsample and a champion comparison any model above the floors meets (retraining promotes)."""
    data = yaml.safe_load((REPO / "mlgov_assets" / "policies" / "default.yaml").read_text())
    data["explanations"]["max_rows"] = 200
    data["champion_comparison"]["roc_auc"].pop("min_absolute_change", None)
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture(scope="module")
def ui(chromium: Path, project_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    root = tmp_path_factory.mktemp("ui")
    with mlgov_ui(root, project_template, ui_policy()) as server:
        yield server


@pytest.fixture(scope="module")
def browser_context(ui: UiServer, chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="mlgov-chromium-")  # a fresh user-data dir: first-visit dialogs included
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any, ui: UiServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    page = browser_context.new_page()
    page.set_default_timeout(30_000)
    # Dagster's first-visit "Join the Dagster community" dialog: dismissed with Skip whenever it shows
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"), lambda _: page.get_by_role("button", name="Skip").click()
    )
    request.node.mlgov_page = page
    request.node.mlgov_ui = ui
    yield page
    page.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    page = getattr(item, "mlgov_page", None)
    if report.when == "call" and report.failed and page is not None:
        saved = save_artifacts(item.name, page, getattr(item, "mlgov_ui", None))
        longrepr = report.longrepr
        note = f"browser artifacts (screenshot, page HTML, server log): {saved}"
        if hasattr(longrepr, "addsection"):
            longrepr.addsection("browser artifacts", note)
        else:
            report.sections.append(("browser artifacts", note))
        crash = getattr(longrepr, "reprcrash", None)
        if crash is not None:  # the one-line summary (-ra) names the directory too
            crash.message = f"{crash.message} [browser artifacts: {saved}]"
    return report


def save_artifacts(name: str, page: Any, ui: UiServer | None) -> Path:
    """A screenshot, the page's HTML and URL, and the server log, under the artifacts directory."""
    out = artifacts_dir() / "browser" / re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    out.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(out / "screenshot.png"), full_page=True)
        (out / "page.html").write_text(page.content())
        (out / "url.txt").write_text(page.url + "\n")
    except Exception as exc:  # a crashed page: say so next to whatever was saved
        (out / "capture-error.txt").write_text(repr(exc))
    if ui is not None and ui.log.exists():
        shutil.copyfile(ui.log, out / "mlgov-ui.log")
    return out
