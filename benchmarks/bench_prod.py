"""Issue-11 benchmark: the governed path in the embedded profile vs the prod profile, in one run.

    .venv/bin/python benchmarks/bench_prod.py [--repeats 3] [--lock-repeats 200]

Needs PostgreSQL (``MLGOV_PG_*``, default 127.0.0.1:5432 user postgres). Creates two fresh databases
(Dagster, MLflow), starts ``mlflow server`` on a free loopback port against the MLflow one (its first
start, migrations included, is reported), then alternates ``mlgov train`` (shipped Adult policy,
in-process executor) on a fresh ``MLGOV_HOME``: embedded (SQLite Dagster + SQLite MLflow + file lock)
and prod (Dagster on PostgreSQL, MLflow through the server, advisory lock; a registered model of its
own per run). Also times one promotion-lock acquire + release of each kind. Prints medians, ratios
and Markdown; drops the databases and stops the server at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _train(env: dict[str, str]) -> float:
    home = tempfile.mkdtemp(prefix="mlgov-bench-prod-")
    try:
        t0 = time.perf_counter()
        res = subprocess.run(
            [PY, "-m", "mlgov_assets.cli", "train"],
            cwd=ROOT,
            env={**env, "MLGOV_HOME": home},
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        took = time.perf_counter() - t0
        if res.returncode != 0:
            raise SystemExit(f"mlgov train failed ({env.get('MLGOV_PROFILE', 'embedded')}):\n{res.stderr[-3000:]}")
        return took
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _lock_times(settings_env: dict[str, str], repeats: int) -> float:
    """Median seconds of one promotion-lock acquire + release in a process with ``settings_env``."""
    code = (
        "import statistics, sys, time, tempfile\n"
        "from mlgov_assets.core.models.registry import promotion_guard\n"
        "from mlgov_assets.core.settings import get_settings\n"
        "s = get_settings(home=tempfile.mkdtemp())\n"
        "out = []\n"
        f"for _ in range({repeats}):\n"
        "    t0 = time.perf_counter()\n"
        "    with promotion_guard(s, purpose='bench'):\n"
        "        pass\n"
        "    out.append(time.perf_counter() - t0)\n"
        "print(statistics.median(out))\n"
    )
    res = subprocess.run([PY, "-c", code], cwd=ROOT, env=settings_env, capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lock-repeats", type=int, default=200)
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from mlgov_assets.core.settings import Services
    from mlgov_assets.deploy.postgres import create_database, drop_database, postgres_problem
    from mlgov_assets.deploy.stack import mlflow_server_process, start, stop, wait_healthy

    services = Services.from_env()
    problem = postgres_problem(services)
    if problem:
        print(f"SKIPPED: {problem} (start PostgreSQL to run this benchmark)")
        return 0
    token = secrets.token_hex(3)
    dagster_db, mlflow_db = f"mlgov_bench_{token}_dagster", f"mlgov_bench_{token}_mlflow"
    run_dir = Path(tempfile.mkdtemp(prefix="mlgov-bench-mlflow-"))
    port = _free_port()
    proc = mlflow_server_process(services, backend_db=mlflow_db, artifacts=str(run_dir / "artifacts"), port=port)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLGOV_", "DAGSTER_"))}
    base.update({"MLGOV_PG_HOST": services.pg_host, "MLGOV_PG_PORT": str(services.pg_port)})
    base.update({"MLGOV_PG_USER": services.pg_user, "MLGOV_PG_PASSWORD": services.pg_password})
    try:
        create_database(services, dagster_db)
        create_database(services, mlflow_db)
        t0 = time.perf_counter()
        pid = start(proc, run_dir)
        wait_healthy(proc, run_dir, pid)
        server_start = time.perf_counter() - t0
        prod = {
            **base,
            "MLGOV_PROFILE": "prod",
            "MLGOV_DAGSTER_DB": dagster_db,
            "MLGOV_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
        }
        embedded: list[float] = []
        production: list[float] = []
        for i in range(args.repeats):
            embedded.append(_train(base))
            production.append(_train({**prod, "MLGOV_MODEL_NAME": f"mlgov-adult-bench-{i}"}))
            print(f"run {i + 1}: embedded {embedded[-1]:.2f} s, prod {production[-1]:.2f} s", file=sys.stderr)
        lock_file = _lock_times(base, args.lock_repeats)
        lock_db = _lock_times({**prod, "MLGOV_LOCK_DB": dagster_db}, args.lock_repeats)
    finally:
        stop(proc.name, run_dir)
        for db in (dagster_db, mlflow_db):
            drop_database(services, db)
        shutil.rmtree(run_dir, ignore_errors=True)
    me, mp = statistics.median(embedded), statistics.median(production)
    print("| what | embedded | prod | ratio (prod / embedded) | samples (embedded / prod) |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| `mlgov train` on a fresh home (s) | {me:.2f} | {mp:.2f} | {mp / me:.2f} | "
        f"{' '.join(f'{x:.2f}' for x in embedded)} / {' '.join(f'{x:.2f}' for x in production)} |"
    )
    print(
        f"| promotion lock acquire + release (ms, median of {args.lock_repeats}) | {lock_file * 1000:.2f} | "
        f"{lock_db * 1000:.2f} | {lock_db / lock_file:.1f} | file lock / PostgreSQL advisory lock |"
    )
    print(f"\nMLflow server first start on a new database (migrations): {server_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
