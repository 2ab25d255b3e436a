"""`mlgov audit` and `mlgov reproduce` on a real champion, against the original training time.

    .venv/bin/python benchmarks/bench_audit.py [--repeats 3] [--fast] [--json results.json]

Builds a throwaway project (git + DVC, the shipped Adult files) and state directory under the
system temp area, trains a champion with `mlgov train` (the governed path: data, schema gates,
features, challenger, fairness-mitigated candidate, fairness/SHAP/metric gates, champion), then
times, each as a user runs it (a fresh `mlgov` process, so interpreter and library start-up are
included):

- `mlgov audit champion`: median of --repeats runs (every link verified: DVC cache re-hash, model
  artifact re-hash, policy, MLflow run, Dagster run and materializations, gates, decision log);
- `mlgov reproduce champion`: median of --repeats runs (retrain from the DVC cache, compare holdout
  predictions, write the certificate), with its own fit time (from the report);
- the original training: the whole `mlgov train` run, and the challenger_model + candidate_model
  step durations from the Dagster run (what reproduce redoes).

Default: the shipped policy and default hyperparameters. --fast: quicker model (max_iter 60) and
cheaper fairness/SHAP evidence (n_boot 20, SHAP on 1,000 rows), for a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MLGOV = [sys.executable, "-m", "mlgov_assets.cli"]


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
    return time.perf_counter() - t, done


def _policy(fast: bool) -> str:
    import yaml

    text = (ROOT / "mlgov_assets" / "policies" / "default.yaml").read_text()
    if not fast:
        return text
    policy = yaml.safe_load(text)
    if policy.get("fairness"):
        policy["fairness"]["n_boot"] = 20
    if policy.get("explanations") is not None:
        policy["explanations"]["max_rows"] = 1000
    return yaml.safe_dump(policy, sort_keys=False)


def _step_seconds(home: Path, run_id: str, steps: list[str]) -> float | None:
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    stats = instance.get_run_step_stats(run_id, step_keys=steps)
    total = sum(s.end_time - s.start_time for s in stats if s.start_time and s.end_time)
    instance.dispose()
    return total or None


def _env(home: Path, project: Path, policy: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MLGOV_HOME": str(home),
        "MLGOV_PROJECT_DIR": str(project),
        "MLGOV_POLICY": str(policy),
        "MLGOV_LANDING_DIR": str(home / "incoming"),
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DAGSTER_HOME": str(home / "dagster"),
    }


def _timed(argv: list[str], env: dict[str, str], repeats: int) -> tuple[list[float], list[dict]]:
    """Wall seconds of `repeats` runs of a `mlgov ... --json` command, and their JSON reports."""
    seconds, reports = [], []
    for _ in range(repeats):
        elapsed, done = _run(argv, env)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[2:])} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
        seconds.append(elapsed)
        reports.append(json.loads(done.stdout))
    return seconds, reports


def _measure(work: Path, fast: bool, repeats: int) -> dict:
    from mlgov_tests.conftest import make_project

    with contextlib.redirect_stdout(io.StringIO()):  # DVC's "To track the changes with git" hint
        project = make_project(work / "project")
    home, policy = work / "state", work / "policy.yaml"
    policy.write_text(_policy(fast))
    env = _env(home, project, policy)
    train_argv = [*MLGOV, "train", "--json"] + (["--set", "max_iter=60", "--set", "learning_rate=0.15"] if fast else [])
    train_s, done = _run(train_argv, env)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"mlgov train failed (exit {done.returncode})")
    model_steps = _step_seconds(home, json.loads(done.stdout)["run_id"], ["challenger_model", "candidate_model"])
    audits, audited = _timed([*MLGOV, "audit", "champion", "--json"], env, repeats)
    repros, reports = _timed([*MLGOV, "reproduce", "champion", "--json"], env, repeats)
    report = reports[-1]
    return {
        "policy": "shipped default" if not fast else "fast (max_iter 60, n_boot 20, SHAP 1,000 rows)",
        "champion_version": audited[-1]["version"],
        "variant": report["variant"],
        "repeats": repeats,
        "train_wall_seconds": train_s,
        "original_model_steps_seconds": model_steps,
        "audit_wall_seconds_median": statistics.median(audits),
        "audit_wall_seconds": audits,
        "reproduce_wall_seconds_median": statistics.median(repros),
        "reproduce_wall_seconds": repros,
        "reproduce_fit_seconds_median": statistics.median(r["timings"]["fit_seconds"] for r in reports),
        "identical": report["identical"],
    }


def _print_table(r: dict) -> None:
    print(
        f"\n### mlgov audit / reproduce ({r['policy']}; champion v{r['champion_version']}, {r['variant']}; "
        f"median of {r['repeats']}; fresh `mlgov` process each)\n"
    )
    print("| What | Seconds |")
    print("|---|---:|")
    print(f"| original training: whole `mlgov train` run (wall) | {r['train_wall_seconds']:.1f} |")
    steps = r["original_model_steps_seconds"]
    print(
        f"| original training: challenger_model + candidate_model steps | {steps:.1f} |"
        if steps
        else "| original training: model steps | n/a |"
    )
    print(f"| `mlgov audit champion` (wall) | {r['audit_wall_seconds_median']:.1f} |")
    print(f"| `mlgov reproduce champion` (wall) | {r['reproduce_wall_seconds_median']:.1f} |")
    print(f"| of which refitting base + mitigation | {r['reproduce_fit_seconds_median']:.1f} |")
    print(f"\nreproduction identical: {r['identical']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the temporary project and state")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlgov-bench-audit-"))
    try:
        results = _measure(work, args.fast, args.repeats)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
