"""The asset graph's specs as a reviewed snapshot: any lineage change is a visible diff.

Compares the code location's assets (key, deps, group, code_version, owners, kinds, partitioning),
checks (name, asset, blocking), jobs (selected assets, tags), sensors and schedules with the
committed ``graph_snapshot.json``. Code versions are hashes of the modules that implement an asset,
so editing an asset's logic shows up here too — that is the point: the reviewer sees which assets
(and everything downstream) will be marked stale.

After an intended change, regenerate and commit the snapshot with the diff:

    MLGOV_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest mlgov_tests/dagster/test_graph_snapshot.py
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")
REGENERATE = "MLGOV_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest mlgov_tests/dagster/test_graph_snapshot.py"


def graph_snapshot(defs) -> dict[str, Any]:
    """Everything an auditor reads off the graph, as sorted plain JSON (stable across runs)."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "group": node.group_name,
            "code_version": node.code_version,
            "owners": sorted(node.owners),
            "kinds": sorted(node.kinds),
            "type": "observable source" if node.is_observable else ("asset" if node.is_materializable else "external"),
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
        }
    checks = sorted(
        (
            {
                "name": ck.name,
                "asset": ck.asset_key.to_user_string(),
                "blocking": bool(graph.get_check_spec(ck).blocking),
            }
            for ck in graph.asset_check_keys
        ),
        key=lambda c: (c["asset"], c["name"]),
    )
    jobs = {
        j.name: _job(j)
        for j in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name)
        if not j.name.startswith("__")
    }
    sensors = {
        s.name: {
            "type": type(s).__name__,
            "default_status": s.default_status.value,
            "targets": sorted(t.job_name for t in s.targets if t.job_name),
        }
        for s in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    schedules = {
        s.name: {"cron": s.cron_schedule, "job": s.job_name, "default_status": s.default_status.value}
        for s in sorted(defs.schedules or [], key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "sensors": sensors, "schedules": schedules}


def _job(job) -> dict[str, Any]:
    """An asset job's assets; an op job (which reports external assets) also names its ops."""
    entry: dict[str, Any] = {
        "assets": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
        "tags": dict(sorted(job.tags.items())),
    }
    if not entry["assets"]:
        entry["ops"] = sorted(n.name for n in job.nodes)
    return entry


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def test_asset_graph_matches_the_reviewed_snapshot():
    from mlgov_assets.definitions import defs

    current = _dump(graph_snapshot(defs))
    if os.environ.get("MLGOV_UPDATE_SNAPSHOT") == "1":
        tmp = SNAPSHOT.with_suffix(".json.tmp")
        tmp.write_text(current, encoding="utf-8")
        os.replace(tmp, SNAPSHOT)
    assert SNAPSHOT.exists(), f"no committed snapshot at {SNAPSHOT}; create it with:\n    {REGENERATE}"
    committed = SNAPSHOT.read_text(encoding="utf-8")
    if committed != current:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                current.splitlines(keepends=True),
                fromfile="graph_snapshot.json (committed)",
                tofile="asset graph (now)",
            )
        )
        raise AssertionError(
            "The asset graph differs from the reviewed snapshot (lineage, checks, code versions, jobs or "
            f"sensors changed):\n\n{diff}\nIf the change is intended, regenerate and commit the snapshot:\n"
            f"    {REGENERATE}"
        )


@pytest.mark.parametrize("p", ["adult", "credit_default"])
def test_model_cards_are_downstream_of_champion_and_never_block_it(p: str):
    """Read off the same snapshot structure: the audit stage hangs below promotion, never above it."""
    from mlgov_assets.definitions import defs

    snap = graph_snapshot(defs)
    assert f"{p}/champion" in snap["assets"][f"{p}/model_cards"]["deps"]
    assert snap["assets"][f"{p}/model_cards"]["group"] == f"{p}__audit"
    # model cards are never upstream of the champion: promotion cannot wait on (or be blocked by) them
    upstream_of_champion, frontier = set(), {f"{p}/champion"}
    while frontier:
        deps = {d for a in frontier for d in snap["assets"][a]["deps"]}
        frontier = deps - upstream_of_champion
        upstream_of_champion |= deps
    assert {f"{p}/training_data", f"{p}/challenger_model"} <= upstream_of_champion
    assert f"{p}/model_cards" not in upstream_of_champion
    assert all(a.startswith(f"{p}/") for a in upstream_of_champion)  # no lineage across projects
    blocking = {(c["asset"], c["name"]) for c in snap["checks"] if c["blocking"]}
    assert (f"{p}/training_data", "check_training_data_schema") in blocking
    assert (f"{p}/model_cards", "check_model_cards_champion_lineage") not in blocking
