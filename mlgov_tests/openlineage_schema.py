"""Validating OpenLineage events offline: the vendored spec (``openlineage_spec/``, see its README) and
mlgov's own facet schemas, registered under their ``$id`` so no URL is fetched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).with_name("openlineage_spec")
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _schemas() -> list[dict[str, Any]]:
    from mlgov_assets.core.audit.openlineage.facets import SCHEMAS_DIR

    files = [SPEC_DIR / "OpenLineage.json", *sorted((SPEC_DIR / "facets").glob("*.json"))]
    files += sorted(SCHEMAS_DIR.glob("*.json"))
    return [json.loads(f.read_text()) for f in files]


def registry():
    from referencing import Registry, Resource

    return Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in _schemas())


def validator_for(url: str):
    """A Draft 2020-12 validator for the schema at ``url`` (an ``$id`` plus a ``#/$defs/...`` pointer)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator({"$ref": url}, registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def facets(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, key, facet) for every facet of an event: run, job, dataset, input and output facets."""
    for key, facet in (event["run"].get("facets") or {}).items():
        yield "run", key, facet
    for key, facet in (event["job"].get("facets") or {}).items():
        yield "job", key, facet
    for side in ("inputs", "outputs"):
        for ds in event.get(side) or []:
            for group in ("facets", "inputFacets", "outputFacets"):
                for key, facet in (ds.get(group) or {}).items():
                    yield f"{side}:{ds['name']}:{group}", key, facet


def problems(events: list[dict[str, Any]]) -> list[str]:
    """Every schema violation of the events and of each facet against the schema its ``_schemaURL`` names."""
    run_event = validator_for(RUN_EVENT)
    found: list[str] = []
    cache: dict[str, Any] = {}
    for i, event in enumerate(events):
        found += [f"event {i}: {e.message}" for e in run_event.iter_errors(event)]
        for where, key, facet in facets(event):
            url = facet.get("_schemaURL")
            if not facet.get("_producer") or not url:
                found.append(f"event {i} {where} facet {key}: no _producer/_schemaURL")
                continue
            validator = cache.setdefault(url, validator_for(url))
            found += [f"event {i} {where} facet {key}: {e.message}" for e in validator.iter_errors(facet)]
    return found
