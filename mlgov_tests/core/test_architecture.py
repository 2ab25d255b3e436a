"""The import rules ARCHITECTURE.md states, checked on the source (no imports executed)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "mlgov_assets" / "core"
#: Lower ranks may be imported by higher ones, never the reverse.
RANK = {"project": 0, "data": 1, "models": 2, "governance": 3, "monitoring": 4, "serving": 5, "audit": 6}
#: Modules every package may import: shared infrastructure, configuration and the decision log.
LEAVES = (
    "mlgov_assets.core.errors",
    "mlgov_assets.core.settings",
    "mlgov_assets.core.integrity",
    "mlgov_assets.core.faults",
    "mlgov_assets.core.locks",
    "mlgov_assets.core.pglock",
    "mlgov_assets.core.provenance",
    "mlgov_assets.core.governance.policy",
    "mlgov_assets.core.audit.decision_log",
)
MAX_LINES = 550


def _imports(path: Path) -> list[str]:
    package = ("mlgov_assets", "core", *path.relative_to(CORE).parts[:-1])
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            out.append(".".join((*base, *([node.module] if node.module else []))))
    return out


MODULES = sorted(CORE.rglob("*.py"))


def test_core_imports_no_dagster_and_nothing_above_it() -> None:
    bad = [
        f"{path.relative_to(CORE)}: {name}"
        for path in MODULES
        for name in _imports(path)
        if name.startswith("dagster") or (name.startswith("mlgov_assets.") and not name.startswith("mlgov_assets.core"))
    ]
    assert not bad


def _upward(own: str, name: str) -> bool:
    """Whether package ``own`` importing ``name`` breaks the rank order (leaves excepted)."""
    parts = name.split(".")
    if name.startswith(LEAVES) or parts[:2] != ["mlgov_assets", "core"] or len(parts) < 3:
        return False
    other = parts[2]
    return other in RANK and own in RANK and other != own and RANK[other] > RANK[own]


def test_packages_import_only_lower_ranks_or_leaves() -> None:
    bad = []
    for path in MODULES:
        rel = path.relative_to(CORE)
        if ("mlgov_assets.core." + ".".join(rel.with_suffix("").parts)).startswith(LEAVES):
            continue
        bad += [f"{rel}: {name}" for name in _imports(path) if _upward(rel.parts[0], name)]
    assert not bad


def test_modules_stay_small() -> None:
    paths = sorted(CORE.parent.rglob("*.py"))  # the whole package: core, defs, commands, the CLI
    big = {str(p.relative_to(CORE.parent)): n for p in paths if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"split these along their seams: {big}"


def test_the_rank_rule_can_fail() -> None:
    assert _upward("data", "mlgov_assets.core.audit.lineage.gather")
    assert _upward("governance", "mlgov_assets.core.monitoring.ledger")
    assert not _upward("audit", "mlgov_assets.core.data.adult")
    assert not _upward("models", "mlgov_assets.core.governance.policy")  # a leaf
