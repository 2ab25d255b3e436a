"""Issue-3 benchmarks: SHAP local explanations for the whole holdout and the fairness report
with bootstrap CIs (seconds, peak memory), and SHAP TreeExplainer throughput against
shap.KernelExplainer on a 100-row sample, in the same run.

    .venv/bin/python benchmarks/bench_fairness.py [--kernel-rows 100] [--n-boot 100]

Each measurement runs in a fresh subprocess; peak memory is that process's ru_maxrss (which
includes the data and model held by the process, not only the measured call).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP = r"""
import json, resource, sys, time
import numpy as np
from mlgov_assets.core.project.project import open_project
from mlgov_assets.core.project.reader import read_raw
from mlgov_assets.core.project.features import build_features
from mlgov_assets.core.models import training
from mlgov_assets.core.settings import DEFAULT_PROJECT_SPEC
project = open_project(DEFAULT_PROJECT_SPEC, ".")
tr = build_features(project, read_raw(project, "data/adult.data"))
ho = build_features(project, read_raw(project, "data/adult.test"))
model = training.fit(tr, training.HyperParams(), project)
MODEL_FEATURES = project.model_features
X = ho[MODEL_FEATURES]
def done(**kw):
    kw["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(kw))
"""

CASES = {
    "shap_tree": SETUP
    + r"""
from mlgov_assets.core.governance.explanations import (
    explain_pipeline, local_reasons_frame, check_additivity, model_raw_output,
)
t = time.perf_counter()
e = explain_pipeline(model, X, top_k_reasons=3)
frame = local_reasons_frame(e)
dt = time.perf_counter() - t
add = check_additivity(e, model_raw_output(model, X), 1e-6)
done(seconds=dt, rows=len(frame), rows_per_s=len(frame) / dt, max_additivity_error=add.max_abs_error)
""",
    "shap_kernel": SETUP
    + r"""
import shap
from mlgov_assets.core.governance.explanations import _encode
Z, names, _ = _encode(model, X, None)
est = model.steps[-1][1]
rng = np.random.default_rng(0)
bg = Z[rng.choice(len(Z), 100, replace=False)]
rows = Z[rng.choice(len(Z), int(sys.argv[1]), replace=False)]
f = lambda z: est.decision_function(z)
t = time.perf_counter()
vals = shap.KernelExplainer(f, bg).shap_values(rows, silent=True)
dt = time.perf_counter() - t
done(seconds=dt, rows=len(rows), rows_per_s=len(rows) / dt)
""",
    "fairness": SETUP
    + r"""
from mlgov_assets.core.governance.fairness import fairness_report
pred = (model.predict_proba(X)[:, 1] >= 0.5).astype(int)
t = time.perf_counter()
r = fairness_report(ho.label.to_numpy(), pred, ho[["sex", "race"]], features=["sex", "race"],
                    intersections=[["sex", "race"]], min_group_size=200, n_boot=int(sys.argv[1]),
                    ci_level=0.95, random_state=0)
dt = time.perf_counter() - t
done(seconds=dt, rows=r.n_rows, n_boot=int(sys.argv[1]))
""",
}


def run(case: str, arg: str = "") -> dict:
    out = subprocess.run([sys.executable, "-c", CASES[case], arg], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel-rows", type=int, default=100)
    ap.add_argument("--n-boot", type=int, default=100)
    a = ap.parse_args()
    tree = run("shap_tree")
    kernel = run("shap_kernel", str(a.kernel_rows))
    fair = run("fairness", str(a.n_boot))
    print("| measurement | rows | seconds | rows/s | peak MB (process) |\n|---|---:|---:|---:|---:|")
    print(
        f"| SHAP TreeExplainer, local explanations + reasons, whole holdout | {tree['rows']} | {tree['seconds']:.2f} | "
        f"{tree['rows_per_s']:.0f} | {tree['peak_mb']:.0f} |"
    )
    print(
        f"| shap.KernelExplainer (background 100), sample | {kernel['rows']} | {kernel['seconds']:.2f} | "
        f"{kernel['rows_per_s']:.2f} | {kernel['peak_mb']:.0f} |"
    )
    print(
        f"| fairness report, sex + race + sex×race, n_boot={a.n_boot} | {fair['rows']} | {fair['seconds']:.2f} | — | "
        f"{fair['peak_mb']:.0f} |"
    )
    print(
        f"\nTreeExplainer / KernelExplainer throughput ratio: {tree['rows_per_s'] / kernel['rows_per_s']:.0f}x; "
        f"max additivity error {tree['max_additivity_error']:.1e}"
    )


if __name__ == "__main__":
    main()
