"""Fairness reports for people: Markdown, self-contained HTML, and the accuracy/fairness trade-off."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from mlgov_assets.core.governance.fairness.bootstrap import GROUP_METRICS, SUMMARY_METRICS, clean
from mlgov_assets.core.governance.fairness.gate import GateVerdict
from mlgov_assets.core.governance.fairness.results import FairnessReport, FeatureFairness, SummaryValue, _Result

#: (title, header, rows, note): one render-neutral table that Markdown and HTML share.
Table = tuple[str, list[str], list[list[str]], str | None]


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _fmt_ci(v: float | None, lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return _fmt(v)
    return f"{_fmt(v)} [{_fmt(lo)}, {_fmt(hi)}]"


def _verdict_table(verdict: GateVerdict) -> Table:
    rows = [
        [
            r.feature,
            r.metric,
            r.comparison,
            _fmt(r.threshold),
            r.bound,
            _fmt(r.judged_value),
            "PASS" if r.passed else "FAIL",
            ", ".join(r.small_groups_ignored) or "–",
        ]
        for r in verdict.rules
    ]
    header = ["feature", "metric", "rule", "threshold", "bound", "judged", "verdict", "small groups ignored"]
    return f"Fairness gate: {'PASSED' if verdict.passed else 'FAILED'}", header, rows, None


def _feature_tables(report: FairnessReport, ff: FeatureFairness) -> list[Table]:
    level, min_size = report.config.ci_level, report.config.min_group_size
    srows = [[m, _fmt_ci(s.value, s.lower, s.upper)] for m, s in ff.summary.items()]
    grows = [
        [g.group + (" (small)" if g.small_group else ""), str(g.count)]
        + [_fmt_ci(*g.estimate(m)) for m in GROUP_METRICS]
        + [_fmt(g.disparate_impact)]
        for g in ff.groups
    ]
    small_note = "small = below the minimum group size: reported, not gated" if ff.small_groups else None
    return [
        (f"{ff.name}: summary over groups with n >= {min_size} (CI {level})", ["metric", "value [CI]"], srows, ff.note),
        (f"{ff.name}: per group", ["group", "count", *GROUP_METRICS, "disparate impact"], grows, small_note),
    ]


def _tables(report: FairnessReport, verdict: GateVerdict | None) -> list[Table]:
    tables = [_verdict_table(verdict)] if verdict is not None else []
    for ff in report.features.values():
        tables += _feature_tables(report, ff)
    return tables


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(report: FairnessReport, verdict: GateVerdict | None = None) -> str:
    """A readable Markdown report (Dagster markdown metadata, MLflow artifact)."""
    parts = [
        f"# Fairness report\n\n{report.n_rows} rows; overall selection rate "
        f"{_fmt(report.overall.get('selection_rate'))}, accuracy {_fmt(report.overall.get('accuracy'))}."
    ]
    for title, header, rows, note in _tables(report, verdict):
        parts.append(f"## {title}\n\n{_md_table(header, rows)}" + (f"\n\n_{note}_" if note else ""))
    return "\n\n".join(parts) + "\n"


_CSS = (
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin-bottom:1em}"
    "td,th{border:1px solid #999;padding:2px 6px;font-size:13px}th{background:#eee}.fail{color:#b00}"
)


def render_html(report: FairnessReport, verdict: GateVerdict | None = None) -> str:
    """A self-contained HTML page (inline CSS, no external assets)."""
    e = html.escape
    body = [
        f"<h1>Fairness report</h1><p>{report.n_rows} rows; overall selection rate "
        f"{e(_fmt(report.overall.get('selection_rate')))}, accuracy "
        f"{e(_fmt(report.overall.get('accuracy')))}.</p>"
    ]
    for title, header, rows, note in _tables(report, verdict):
        cls = ' class="fail"' if title.endswith("FAILED") else ""
        body.append(f"<h2{cls}>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for r in rows:
            body.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
        body.append("</table>" + (f"<p><em>{e(note)}</em></p>" if note else ""))
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Fairness report</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )


class Tradeoff(_Result):
    """Side-by-side performance and fairness summaries; ``rows`` are keyed by ``columns``."""

    columns: list[str]
    rows: list[dict[str, Any]]
    markdown: str


def compare_tradeoff(
    reports: Mapping[str, tuple[Mapping[str, float], FairnessReport]],
    *,
    summary_metrics: Sequence[str] = ("demographic_parity_ratio", "equalized_odds_difference", "fpr_ratio"),
) -> Tradeoff:
    """Performance metrics and fairness summaries (``feature:metric`` -> value/lower/upper) per challenger."""
    for m in summary_metrics:
        if m not in SUMMARY_METRICS:
            raise ValueError(f"compare_tradeoff: unknown summary metric {m!r}")
    perf_keys = list(dict.fromkeys(k for metrics, _ in reports.values() for k in metrics))
    feat_keys = list(dict.fromkeys(k for _, rep in reports.values() for k in rep.features))
    fair_cols = [f"{f}:{m}" for f in feat_keys for m in summary_metrics]
    rows = []
    for name, (metrics, rep) in reports.items():
        row: dict[str, Any] = {"challenger": name}
        row.update({k: clean(metrics.get(k)) for k in perf_keys})
        for f in feat_keys:
            for m in summary_metrics:
                sv = rep.features[f].summary[m] if f in rep.features else SummaryValue(value=None)
                row[f"{f}:{m}"] = sv.to_dict()
        rows.append(row)
    columns = ["challenger", *perf_keys, *fair_cols]
    md_rows = [
        [
            r["challenger"],
            *[_fmt(r[k]) for k in perf_keys],
            *[_fmt_ci(r[c]["value"], r[c]["lower"], r[c]["upper"]) for c in fair_cols],
        ]
        for r in rows
    ]
    return Tradeoff(columns=columns, rows=rows, markdown=_md_table(columns, md_rows) + "\n")
