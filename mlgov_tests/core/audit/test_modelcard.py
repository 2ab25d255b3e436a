"""Model card rendering: every claim shows its source ref and hash; text is escaped; gaps degrade.

The data section of the full bundle is built from the real Adult training file (row count, md5,
columns computed here with pandas/hashlib), and sources are collected with an independent walk of
the bundle rather than the module's own `iter_sources`.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mlgov_assets.core.audit.modelcard import (
    BundleError,
    bundle_digest,
    iter_sources,
    render_html,
    render_markdown,
    validate_bundle,
)
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.settings import DEFAULT_PROJECT_DIR, DEFAULT_PROJECT_SPEC

DATA = Path(__file__).resolve().parents[3] / "data" / "adult.data"
ADULT = open_project(DEFAULT_PROJECT_SPEC, DEFAULT_PROJECT_DIR)
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _h(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def _src(kind: str, ref: str, url: str | None = None) -> dict[str, str]:
    out = {"kind": kind, "ref": ref, "sha256": _h(kind + ref)}
    if url:
        out["url"] = url
    return out


@pytest.fixture(scope="module")
def adult_dataset() -> dict[str, Any]:
    df = read_raw(ADULT, DATA)
    raw = DATA.read_bytes()
    return {
        "role": "training",
        "path": "data/adult.data",
        "dvc_md5": hashlib.md5(raw).hexdigest(),
        "rows": len(df),
        "columns": [{"name": c, "dtype": str(t)} for c, t in df.dtypes.items()],
        "provenance": "UCI Machine Learning Repository, Adult (Becker & Kohavi 1996)",
        "source": {"kind": "dvc", "ref": "data/adult.data.dvc", "sha256": hashlib.sha256(raw).hexdigest()},
    }


def _minimal(dataset: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "model": {
            "name": "adult_income",
            "version": "7",
            "run_id": "3f2a9c",
            "registered_at": "2026-11-20T10:00:00+00:00",
            "artifact_manifest_digest": _h("manifest"),
            "source": _src("mlflow_model_version", "models:/adult_income/7"),
        },
        "intended_use": {
            "text": "Ranking loan-marketing leads.\n\nNot for credit decisions.",
            "source": _src("git", "mlgov_assets/model_card.yaml@abc"),
        },
        "limitations": {
            "text": "Trained on 1994 US census data; selection rates differ by sex.",
            "source": _src("git", "mlgov_assets/model_card.yaml@abc#limits"),
        },
        "data": [dataset],
        "code": {
            "git_commit": "a" * 40,
            "git_dirty": False,
            "code_versions": {"challenger_model": "v3", "features": "v1"},
            "source": _src("git", "a" * 40),
        },
        "environment": {
            "uv_lock_sha256": _h("uv.lock"),
            "python_version": "3.11.7",
            "packages": {"scikit-learn": "1.9.1", "mlflow": "3.17.2"},
            "source": _src("dagster_run", "run-8d1e&x=1"),
        },
        "hyperparameters": {
            "values": {"learning_rate": 0.1, "max_iter": 200, "random_state": 0},
            "source": _src("mlflow_run", "3f2a9c/params"),
        },
        "metrics": {
            "split": "holdout (adult.test)",
            "values": {"roc_auc": 0.9271234, "accuracy": 0.8712},
            "source": _src(
                "dagster_materialization", "evaluation@run-8d1e", "https://dagster.example/runs/8d1e?a=1&b=2"
            ),
        },
        "gates": [],
        "decisions": [],
    }


def _full(dataset: dict[str, Any]) -> dict[str, Any]:
    bundle = _minimal(dataset)
    holdout = {
        **dataset,
        "role": "holdout",
        "path": "data/adult.test",
        "rows": 16281,
        "dvc_md5": "b" * 32,
        "source": _src("dvc", "data/adult.test.dvc"),
    }
    bundle["data"] = [dataset, holdout]
    bundle["code"]["git_dirty"] = True
    bundle["gates"] = [
        {
            "name": "min_roc_auc",
            "passed": True,
            "severity": "error",
            "values": {"roc_auc": 0.927},
            "thresholds": {"min": 0.85},
            "policy_hash": _h("policy"),
            "evaluated_at": "2026-11-20T10:01:00+00:00",
            "link": "https://dagster.example/checks/min_roc_auc",
            "source": _src("dagster_materialization", "check:min_roc_auc"),
        },
        {
            "name": "demographic_parity_ratio",
            "passed": False,
            "severity": "error",
            "values": {"sex": 0.325},
            "thresholds": {"min": 0.8},
            "policy_hash": _h("policy"),
            "evaluated_at": "2026-11-20T10:01:02+00:00",
            "source": _src("dagster_materialization", "check:dp_ratio"),
        },
    ]
    bundle["fairness"] = {
        "groups": [
            {"attribute": "sex", "group": "Female", "n": 5421, "selection_rate": 0.083},
            {"attribute": "sex", "group": "Male", "n": 10860, "selection_rate": 0.256, "tpr": 0.61},
        ],
        "summary": {"demographic_parity_ratio_sex": 0.325},
        "source": _src("dagster_materialization", "fairness_report@run-8d1e"),
    }
    bundle["explanations"] = {
        "method": "TreeExplainer (exact)",
        "top_features": [
            {"feature": "relationship", "importance": 0.91},
            {"feature": "capital_gain", "importance": 0.55},
        ],
        "source": _src("dagster_materialization", "explanations@run-8d1e"),
    }
    bundle["drift"] = [
        {
            "batch": "2026-11-21",
            "time": "2026-11-21T00:10:00+00:00",
            "dataset_drift": False,
            "drifted_columns": ["age"],
            "source": _src("dagster_materialization", "drift_report|2026-11-21"),
        }
    ]
    bundle["decisions"] = [
        {
            "index": 3,
            "kind": "override",
            "actor": "carol",
            "time": "2026-11-20T11:00:00+00:00",
            "reason": f"Fairness gate waived for pilot | ticket GOV-12\nsecond line {XSS}",
            "source": {"kind": "decision_log", "ref": "audit/decisions.jsonl#3", "sha256": _h("rec3")},
        },
        {
            "index": 4,
            "kind": "rollback",
            "actor": "dave",
            "time": "2026-11-22T09:00:00+00:00",
            "reason": "AUC dropped on batch 2026-11-21",
            "source": {"kind": "decision_log", "ref": "audit/decisions.jsonl#4", "sha256": _h("rec4")},
        },
    ]
    bundle["project"] = {
        "name": ADULT.name,
        "spec_sha256": ADULT.sha256,
        "recorded_with_version": True,
        "target": ADULT.label,
        "favourable": ADULT.favourable,
        "protected": [
            {"column": "sex", "judged_as": "sex"},
            {"column": "age", "judged_as": "age_band", "bands": ["<25", "25-60", ">=60"]},
        ],
        "exclusions": [{"column": "fnlwgt", "reason": "sampling_weight", "note": "a census sampling weight"}],
        "model_features": ADULT.model_features,
        "holdout": "a stratified split of data/adult.data: fraction 0.3, seed 0",
        "split": {"fraction": 0.3, "seed": 0, "rows": 9768},
        "source": _src("project_spec", "mlgov_assets/projects/adult.yaml"),
    }
    return bundle


def _walk_sources(obj: Any) -> list[dict[str, str]]:
    """Every dict under a `source` key, found by brute-force recursion."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "source" and isinstance(v, dict):
                found.append(v)
            else:
                found += _walk_sources(v)
    elif isinstance(obj, list):
        for v in obj:
            found += _walk_sources(v)
    return found


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Collector:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    return parser


# ----------------------------------------------------------------------------- full bundle


def test_full_bundle_shows_every_source_ref_and_hash(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    assert validate_bundle(bundle) == []
    sources = _walk_sources(bundle)
    assert len(sources) == 17  # 16 + the project spec
    assert sorted(json.dumps(s, sort_keys=True) for _, s in iter_sources(bundle)) == sorted(
        json.dumps(s, sort_keys=True) for s in sources
    )
    md, page = render_markdown(bundle), render_html(bundle)
    text = "".join(_parse(page).text)
    for s in sources:
        assert s["sha256"] in md and s["sha256"] in page
        # refs sit in code spans, shown verbatim (a pipe is backslash-escaped inside a table row)
        assert s["ref"] in md or s["ref"].replace("|", "\\|") in md, s["ref"]
        assert s["ref"] in text and html.escape(s["ref"]) in page
    for digest in (
        adult_dataset["dvc_md5"],
        bundle["model"]["artifact_manifest_digest"],
        bundle["code"]["git_commit"],
        bundle["environment"]["uv_lock_sha256"],
        _h("policy"),
        bundle_digest(bundle),
    ):
        assert digest in md and digest in page


def test_full_bundle_content_from_real_data(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    md, page = render_markdown(bundle), render_html(bundle)
    assert f"{len(read_raw(ADULT, DATA)):,}" in md  # 32,561 rows, counted independently
    for col in adult_dataset["columns"]:
        assert f"{col['name']}: {col['dtype']}" in md
    for heading in (
        "Model",
        "Intended use",
        "Limitations",
        "Project",
        "Data",
        "Code",
        "Environment",
        "Hyperparameters",
        "Holdout metrics",
        "Governance gates",
        "Fairness",
        "Explanations",
        "Drift history",
        "Decisions",
    ):
        assert f"## {heading}\n" in md and f"<h2>{heading}</h2>" in page
    assert "2 gate(s): 1 passed, 1 failed (demographic_parity_ratio)" in md
    assert '<span class="FAIL">FAIL</span>' in page and '<span class="OVERRIDE">OVERRIDE</span>' in page
    assert "| roc_auc | 0.927123 |" in md  # holdout roc_auc at 6 significant digits
    assert "NOT reproducible" in md  # git_dirty is surfaced
    assert "income (favourable: &gt;50K)" in md and "age (judged as age_band: &lt;25, 25-60, &gt;=60)" in md
    assert "| fnlwgt | sampling_weight | a census sampling weight |" in md and "| rows | 9768 |" in md
    assert ADULT.sha256 in md and ADULT.sha256 in page and "age_band" in page
    assert "Not available" not in md and "Not available" not in page


def test_links_are_rendered_only_for_http_urls(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    page = render_html(bundle)
    hrefs = [a["href"] for tag, a in _parse(page).tags if tag == "a"]
    assert sorted(hrefs) == sorted(
        ["https://dagster.example/runs/8d1e?a=1&b=2", "https://dagster.example/checks/min_roc_auc"]
    )
    md = render_markdown(bundle)
    assert "(<https://dagster.example/checks/min_roc_auc>)" in md
    bad = copy.deepcopy(bundle)
    bad["gates"][0]["link"] = "javascript:alert(1)"
    bad["metrics"]["source"]["url"] = 'https://ok.example/"><script>'
    with pytest.raises(BundleError) as exc:
        render_html(bad)
    assert "gates[0].link" in str(exc.value) and "metrics.source.url" in str(exc.value)


# ----------------------------------------------------------------------------- escaping


def test_html_escapes_hostile_text(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    bundle["model"]["name"] = "adult<b>income</b>"
    bundle["fairness"]["groups"][0]["group"] = XSS
    page = render_html(bundle)
    parsed = _parse(page)
    tags = {t for t, _ in parsed.tags}
    assert "script" not in tags and "img" not in tags and "b" not in tags
    assert "<script" not in page.lower()
    text = "".join(parsed.text)
    assert XSS in text  # shown to the reader as text, intact
    assert "adult<b>income</b>" in text
    assert html.escape(XSS) in page


def test_markdown_escapes_html_and_keeps_tables_intact(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    md = render_markdown(bundle)
    assert "<script" not in md.lower() and "<img" not in md.lower()
    assert "&lt;script&gt;" in md
    row = next(line for line in md.splitlines() if "carol" in line)
    unescaped_pipes = len(re.findall(r"(?<!\\)\|", row))
    assert unescaped_pipes == 7  # 6 columns: the reason's '|' and newline did not split the row
    drift_row = next(line for line in md.splitlines() if line.startswith("| 2026-11-21 |"))
    assert len(re.findall(r"(?<!\\)\|", drift_row)) == 6  # the '|' in the source ref did not split it


def test_markdown_neutralizes_link_syntax(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    bundle["limitations"]["text"] = (
        "see ![x](https://tracker.example/p.png) and [here](javascript:alert(1))\n# Injected heading\n1. injected list"
    )
    md = render_markdown(bundle)
    assert not any(line.startswith(("# Injected", "1. injected")) for line in md.splitlines())
    assert "![x](https" not in md and "[here](javascript" not in md
    assert "!\\[x\\]" in md


# ----------------------------------------------------------------------------- self-contained


def test_html_is_self_contained(adult_dataset: dict[str, Any]) -> None:
    page = render_html(_full(adult_dataset))
    parsed = _parse(page)
    tags = [t for t, _ in parsed.tags]
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(tags)
    for _, attrs in parsed.tags:
        assert "src" not in attrs
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert "@import" not in style and "url(" not in style
    csp = [a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]
    assert page.startswith("<!DOCTYPE html>")


# ----------------------------------------------------------------------------- minimal bundle


def test_minimal_bundle_renders_not_available(adult_dataset: dict[str, Any]) -> None:
    bundle = _minimal(adult_dataset)
    bundle["explanations"] = {"not_available": "SHAP skipped: model type unsupported"}
    md, page = render_markdown(bundle), render_html(bundle)
    assert md.count("Not available (not provided in the evidence bundle)") == 3  # fairness, drift, project
    assert "Not available (SHAP skipped: model type unsupported)" in md
    assert page.count('<p class="na">') == 4
    assert "No gate results recorded" in md and "No decisions recorded" in page
    for s in _walk_sources(bundle):
        assert s["ref"] in md and s["sha256"] in md and s["sha256"] in page


def test_rendering_is_deterministic(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    assert render_html(bundle) == render_html(copy.deepcopy(bundle))
    assert render_markdown(bundle) == render_markdown(copy.deepcopy(bundle))


# ----------------------------------------------------------------------------- validation and digest


def test_validation_names_every_problem(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    del bundle["gates"][1]["source"]
    bundle["data"][0]["source"]["sha256"] = "abc"
    bundle["decisions"][0]["source"]["kind"] = "email"
    bundle["metrics"]["values"]["auc"] = float("nan")
    del bundle["limitations"]
    with pytest.raises(BundleError) as exc:
        render_markdown(bundle)
    msg = str(exc.value)
    for where in (
        "gates[1].source",
        "data[0].source.sha256",
        "decisions[0].source.kind",
        "limitations",
        "metrics.values.auc",
    ):
        assert where in msg, where
    assert len(exc.value.problems) == 5


def test_bundle_digest_is_canonical(adult_dataset: dict[str, Any]) -> None:
    bundle = _full(adult_dataset)
    expected = hashlib.sha256(
        json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert bundle_digest(bundle) == expected
    reordered = dict(reversed(list(bundle.items())))
    assert bundle_digest(reordered) == expected
    changed = copy.deepcopy(bundle)
    changed["gates"][0]["thresholds"]["min"] = 0.84
    assert bundle_digest(changed) != expected


def test_unknown_commit_and_missing_lockfile_are_stated_not_invalid(adult_dataset: dict[str, Any]) -> None:
    # a model trained outside a git checkout / without uv.lock still gets a card that says so
    bundle = copy.deepcopy(_minimal(copy.deepcopy(adult_dataset)))
    bundle["data"][0]["source"]["sha256"] = _h("data")  # the module fixture is shared (and edited elsewhere)
    bundle["code"]["git_commit"] = "unknown"
    bundle["environment"]["uv_lock_sha256"] = None
    assert validate_bundle(bundle) == []
    md = render_markdown(bundle)
    assert "`unknown`" in md and "not recorded (no uv.lock at training time)" in md
    bundle["code"]["git_commit"] = "deadbeef"  # neither a full sha nor "unknown"
    bundle["environment"]["uv_lock_sha256"] = "abc"
    problems = validate_bundle(bundle)
    assert any(p.startswith("code.git_commit") for p in problems)
    assert any(p.startswith("environment.uv_lock_sha256") for p in problems)
