"""Issue-2 benchmarks: code-location load time and the full governed path vs a plain script.

    .venv/bin/python benchmarks/bench_path.py [--repeats 5] [--path-repeats 3] [--project NAME ...]
        [--baseline-root /path/to/other/checkout] [--skip-load]

1. Load: `python -c "import mlgov_assets.definitions"` in fresh processes (median), side by side
   with `import dagster` alone (the floor) and a module importing the whole ML stack at top level
   (what the code location would cost without lazy imports).
2. Path, per project: `mlgov train --project NAME` with its shipped policy on a FRESH state dir
   (in-process executor, real MLflow SQLite store, real DVC, every gate, promotion, decision log),
   against a plain Python
   script doing the same computations (hash the data, read, validate with pandera, features, fit,
   holdout metrics, mitigation, two fairness reports with bootstrap, SHAP over the holdout with
   additivity) with no Dagster, no MLflow and no DVC, in the same run. Both are fresh processes,
   so both pay their imports. Reports both medians and the ratio.
3. With ``--baseline-root``: the same `mlgov train` from another checkout (its own ``.venv`` and
   tree, e.g. main's), alternating with this one run by run (plain, baseline, this), so both see the
   same machine load; reports the baseline's median, its ratio to the plain script, and this
   checkout's time relative to it. Every sample is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

PLAIN = r"""
import os, sys, time
t0 = time.perf_counter()
from mlgov_assets.core.data.schemas import validate
from mlgov_assets.core.data.split import split_holdout
from mlgov_assets.core.project.project import open_project, TARGET
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.project.schemas import raw_schema, feature_schema
from mlgov_assets.core.project.features import build_features
from mlgov_assets.core.models import training
from mlgov_assets.core.governance.policy import load_policy
from mlgov_assets.core.models.mitigation import fit_mitigated
from mlgov_assets.core.models.scoring import score_frame, holdout_metrics
from mlgov_assets.core.governance.fairness import fairness_report
from mlgov_assets.core.governance.explanations import (
    explain_pipeline, local_reasons_frame, model_raw_output, check_additivity,
)
from mlgov_assets.core.integrity import md5_file
project = open_project(sys.argv[1], "."); MODEL_FEATURES = project.model_features
policy = load_policy(project.policy_path); fz = policy.fairness
raw_t = read_raw(project, project.train_file); md5_file(project.train_file)
if project.holdout_file:
    raw_h = read_raw(project, project.holdout_file); md5_file(project.holdout_file)
else:
    parts = split_holdout(project, raw_t, project.spec.data.holdout); raw_t, raw_h = parts.train, parts.holdout
rs = raw_schema(project); fs = feature_schema(project)
vt = validate(raw_t, rs, source="t"); vh = validate(raw_h, rs, source="h")
ft = build_features(project, vt.validated); fh = build_features(project, vh.validated)
validate(ft, fs, source="ft"); validate(fh, fs, source="fh")
m = training.fit(ft, training.HyperParams(), project)
training.holdout_metrics(fh[TARGET].to_numpy(), m.predict_proba(fh[MODEL_FEATURES])[:, 1])
cols = MODEL_FEATURES + fz.sensitive_features
models = [m]
if fz.mitigation.enabled:
    models.append(fit_mitigated(m, ft[cols], ft[TARGET].to_numpy(), sensitive_features=fz.sensitive_features))
for model in models:
    sc = score_frame(model, fh[cols]); holdout_metrics(fh[TARGET].to_numpy(), sc)
    fairness_report(fh[TARGET].to_numpy(), sc["decision"].to_numpy(), fh[fz.sensitive_features],
                    features=fz.sensitive_features, intersections=fz.intersections, min_group_size=fz.min_group_size,
                    n_boot=fz.n_boot, ci_level=fz.confidence_level, random_state=0)
e = explain_pipeline(m, fh[MODEL_FEATURES], top_k_reasons=3)
local_reasons_frame(e); check_additivity(e, model_raw_output(m, fh[MODEL_FEATURES]), 1e-6)
print(time.perf_counter() - t0)
"""

STACK = (
    "import dagster, pandas, sklearn.ensemble, mlflow, shap, fairlearn, evidently, pandera.pandas, dvc.repo, "
    "matplotlib.pyplot"
)


def timed(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def median_of(n: int, fn) -> tuple[float, list[float]]:
    xs = [fn() for _ in range(n)]
    return statistics.median(xs), xs


def bench_load(repeats: int) -> list[tuple[str, float]]:
    rows = []
    for label, code in (
        ("import dagster (floor)", "import dagster"),
        ("import mlgov_assets.definitions", "import mlgov_assets.definitions"),
        ("whole ML stack at top level (baseline)", STACK),
    ):
        med, _ = median_of(repeats, lambda c=code: timed([PY, "-c", c]))
        rows.append((label, med))
    return rows


def train_once(root: Path, project: str) -> float:
    """`mlgov train --project NAME` of the checkout at ``root`` (its own venv) on a fresh state dir."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "MLGOV_HOME": home}
        env.pop("VIRTUAL_ENV", None)
        python = str(root / ".venv" / "bin" / "python")
        return timed([python, "-m", "mlgov_assets.cli", "train", "--project", project], env=env, cwd=root)


def bench_path(repeats: int, project: str, baseline: Path | None) -> dict[str, list[float]]:
    """Samples of the plain script, this checkout's `mlgov train` and (optionally) the baseline's,
    alternating run by run."""
    from mlgov_assets.core.project.catalog import resolve_project

    spec = str(resolve_project(project, ROOT))
    samples: dict[str, list[float]] = {"plain": [], "ours": [], "baseline": []}
    for _ in range(repeats):
        samples["plain"].append(timed([PY, "-c", PLAIN, spec]))
        if baseline is not None:
            samples["baseline"].append(train_once(baseline, project))
        samples["ours"].append(train_once(ROOT, project))
    return samples


def _fmt(xs: list[float]) -> str:
    return " ".join(f"{x:.2f}" for x in xs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--path-repeats", type=int, default=3)
    ap.add_argument("--project", action="append", help="project(s) to run the path on (default: every shipped one)")
    ap.add_argument("--baseline-root", type=Path, help="another checkout (with its .venv) to compare with")
    ap.add_argument("--skip-load", action="store_true", help="only the governed path")
    a = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    if not a.skip_load:
        print(f"## Code location load (fresh process each, median of {a.repeats})\n")
        print("| what | seconds |\n|---|---:|")
        load = bench_load(a.repeats)
        for label, med in load:
            print(f"| {label} | {med:.2f} |")
        ours = dict(load)["import mlgov_assets.definitions"]
        stack = dict(load)["whole ML stack at top level (baseline)"]
        print(f"\nmlgov load / whole-stack load = {ours / stack:.2f} (target: <= 2.5 s absolute)\n")
    print(f"## Full governed path, fresh instance (median of {a.path_repeats}, each a fresh process)\n")
    base = a.baseline_root.resolve() if a.baseline_root else None
    if base is None:
        print("| project | `mlgov train` (Dagster, MLflow, DVC, gates, promotion) | plain script | ratio |")
        print("|---|---:|---:|---:|")
    else:
        print(f"baseline: {base}\n")
        print(
            "| project | `mlgov train` | baseline `mlgov train` | plain script | ratio | baseline ratio "
            "| ours / baseline |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
    notes = []
    for project in a.project or ["adult", "credit_default"]:
        s = bench_path(a.path_repeats, project, base)
        full, plain = statistics.median(s["ours"]), statistics.median(s["plain"])
        if base is None:
            print(f"| {project} | {full:.2f} | {plain:.2f} | {full / plain:.2f} |", flush=True)
        else:
            old = statistics.median(s["baseline"])
            print(
                f"| {project} | {full:.2f} | {old:.2f} | {plain:.2f} | {full / plain:.2f} | {old / plain:.2f} "
                f"| {full / old:.2f} |",
                flush=True,
            )
        notes.append(f"{project}: ours {_fmt(s['ours'])}; baseline {_fmt(s['baseline'])}; plain {_fmt(s['plain'])}")
    print("\nsamples (s): " + " | ".join(notes))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
