"""Issue-11 benchmark: monitoring throughput on the Celery executor with one vs two workers, and the
time to detect drift, under the prod profile, in one run.

    .venv/bin/python benchmarks/bench_distributed.py [--batches 6] [--repeats 2] [--mttd-trials 1]

Needs PostgreSQL (``MLGOV_PG_*``) and RabbitMQ (guest/guest on 127.0.0.1:5672, ``rabbitmqctl`` for a
vhost of its own). Setup (not timed): fresh Dagster and MLflow databases, ``mlflow server``, a
temporary git + DVC project with the Adult files, a champion (``mlgov train``), then the prod process
table's code server, two Celery workers and the daemon (``deploy/stack``). Timed:

* throughput: ``--batches`` no-drift batches land at once; seconds until every one of their
  ``monitor_batch`` runs (landing sensor -> run queue, at most 2 runs at once -> every step on a
  worker) has succeeded; rounds alternate 1 worker (worker 2 stopped) and 2 workers.
* time to detect: a covariate-drifted batch with its labels lands (t0) -> the retraining run the
  ``retrain_on_breach_sensor`` requests exists (its creation time - t0).

Prints medians, the ratio and Markdown; stops everything and drops the databases/vhost at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DONE = ("SUCCESS", "FAILURE", "CANCELED")


def _land(landing: Path, batch_id: str, kind: str, seed: int, rows: int, labels: bool = False) -> None:
    import pandas as pd

    from mlgov_assets.core.monitoring.batches import labels_filename, simulate_batch
    from mlgov_tests.core.monitoring.helpers import ADULT, read_adult

    holdout = read_adult(ROOT / "data" / "adult.test")
    frame, lab = simulate_batch(ADULT, kind, holdout, rows, seed, with_labels=labels)
    files = [(f"{batch_id}.csv", frame)]
    if labels and lab is not None:
        files.insert(0, (labels_filename(batch_id), pd.DataFrame(lab)))
    landing.mkdir(parents=True, exist_ok=True)
    past = time.time() - 60
    for name, data in files:
        tmp = landing / f".{name}.tmp"
        data.to_csv(tmp, index=False)
        os.utime(tmp, (past, past))
        os.replace(tmp, landing / name)


def _wait(instance, pred, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in instance.get_runs() if pred(r)]
        if runs:
            return runs
        time.sleep(1)
    raise SystemExit("timed out waiting for runs")


def _throughput(instance, landing: Path, ids: list[str], rows: int, seed: int) -> float:
    """Seconds from landing ``ids`` to all their monitor_batch runs succeeded."""
    for i, batch_id in enumerate(ids):
        _land(landing, batch_id, "none", seed + i, rows)
    t0 = time.time()

    def finished(r) -> bool:
        return r.job_name == "adult__monitor_batch" and r.tags.get("dagster/partition") in ids

    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        runs = [r for r in instance.get_runs() if finished(r)]
        if len(runs) == len(ids) and all(r.status.value in DONE for r in runs):
            bad = [r.tags["dagster/partition"] for r in runs if r.status.value != "SUCCESS"]
            if bad:
                raise SystemExit(f"monitoring runs failed: {bad}")
            ends = [instance.get_run_record_by_id(r.run_id).end_time for r in runs]
            return max(ends) - t0
        time.sleep(1)
    raise SystemExit("timed out waiting for the monitoring runs")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--mttd-trials", type=int, default=1)
    args = ap.parse_args()

    from mlgov_assets.core.settings import Services, get_settings
    from mlgov_assets.deploy.postgres import create_database, drop_database, postgres_problem
    from mlgov_assets.deploy.stack import PROCESSES, mlflow_server_process, start, stop, wait_healthy
    from mlgov_tests.conftest import make_project
    from mlgov_tests.prod.conftest import free_port

    services = Services.from_env()
    problem = postgres_problem(services)
    ctl = shutil.which("rabbitmqctl")
    if problem or ctl is None:
        print(f"SKIPPED: {problem or 'rabbitmqctl not found'} (start PostgreSQL and RabbitMQ to run this benchmark)")
        return 0
    token = secrets.token_hex(3)
    dagster_db, mlflow_db, vhost = f"mlgov_bench_{token}_dagster", f"mlgov_bench_{token}_mlflow", f"mlgov_bench_{token}"
    tmp = Path(tempfile.mkdtemp(prefix="mlgov-bench-dist-"))
    project = make_project(tmp / "project")
    mlflow_port = free_port()
    mlflow = mlflow_server_process(services, backend_db=mlflow_db, artifacts=str(tmp / "artifacts"), port=mlflow_port)
    os.environ.update(
        {
            "MLGOV_PROFILE": "prod",
            "MLGOV_HOME": str(tmp / "state"),
            "MLGOV_PROJECT_DIR": str(project),
            "MLGOV_PROJECTS": "adult",
            "MLGOV_DAGSTER_DB": dagster_db,
            "MLGOV_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{mlflow_port}",
            "MLGOV_CELERY_BROKER": f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
            "MLGOV_CODE_SERVER_PORT": str(free_port()),
        }
    )
    started: list[str] = []  # process names, stopped in reverse (the MLflow server is `mlflow.name`)
    one: list[float] = []
    two: list[float] = []
    mttd: list[float] = []
    try:
        for db in (dagster_db, mlflow_db):
            create_database(services, db)
        subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(
            [ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True, capture_output=True
        )
        pid = start(mlflow, tmp)
        wait_healthy(mlflow, tmp, pid)
        started.append(mlflow.name)
        train = subprocess.run([sys.executable, "-m", "mlgov_assets.cli", "train"], capture_output=True, text=True)
        if train.returncode != 0:
            raise SystemExit(f"mlgov train failed:\n{train.stderr[-3000:]}")
        from mlgov_assets.instance import get_instance

        settings = get_settings()
        instance = get_instance(settings)
        table = {p.name: p for p in (build(settings) for build in PROCESSES)}
        run_dir = settings.prod_dir

        def up(name: str) -> None:
            wait_healthy(table[name], run_dir, start(table[name], run_dir))
            started.append(name)

        for name in ("code-server", "celery-worker-1", "dagster-daemon"):
            up(name)
        landing = settings.landing_dir
        for r in range(args.repeats):
            for workers in (1, 2):
                if workers == 2:
                    up("celery-worker-2")
                    time.sleep(8)  # the worker connects to the broker
                ids = [f"w{workers}-r{r}-{i:02d}" for i in range(args.batches)]
                took = _throughput(instance, landing, ids, args.rows, seed=1000 * (r + 1) + 100 * workers)
                (one if workers == 1 else two).append(took)
                print(f"round {r + 1}, {workers} worker(s): {args.batches} batches in {took:.1f} s", file=sys.stderr)
                if workers == 2:
                    stop("celery-worker-2", run_dir, grace=5)
                    started.remove("celery-worker-2")
        up("celery-worker-2")
        for t in range(args.mttd_trials):
            batch_id = f"drift-{t}"
            _land(landing, batch_id, "covariate", 50 + t, 2500, labels=True)
            t0 = time.time()
            runs = _wait(
                instance,
                lambda r, b=batch_id: (
                    r.job_name == "adult__governed_training"
                    and r.tags.get("mlgov/trigger") == "retrain_on_breach_sensor"
                    and b in r.tags.get("mlgov/retrain_batches", "")
                ),
                timeout=1200,
            )
            mttd.append(instance.get_run_record_by_id(runs[0].run_id).create_timestamp.timestamp() - t0)
            print(f"trial {t + 1}: time to detect {mttd[-1]:.1f} s", file=sys.stderr)
            if t + 1 < args.mttd_trials:  # settle: the retraining run finishes before the next trial
                _wait(instance, lambda r, rid=runs[0].run_id: r.run_id == rid and r.status.value in DONE, 1800)
    finally:
        from mlgov_assets.core.settings import get_settings as _gs

        run_dir = _gs().prod_dir
        for name in reversed(started):
            stop(name, tmp if name == mlflow.name else run_dir, grace=5)
        for db in (dagster_db, mlflow_db):
            drop_database(services, db)
        subprocess.run([ctl, "delete_vhost", vhost], check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    m1, m2 = statistics.median(one), statistics.median(two)
    r1, r2 = args.batches / m1 * 60, args.batches / m2 * 60
    print(
        f"| {args.batches} batches of {args.rows} rows landed at once | 1 worker | 2 workers | ratio (2 / 1) "
        "| samples (s) |"
    )
    print("|---|---:|---:|---:|---|")
    print(
        f"| seconds until all monitored (median of {args.repeats}) | {m1:.1f} | {m2:.1f} | {m2 / m1:.2f} | "
        f"{' '.join(f'{x:.1f}' for x in one)} / {' '.join(f'{x:.1f}' for x in two)} |"
    )
    print(f"| throughput (batches per minute) | {r1:.2f} | {r2:.2f} | {r2 / r1:.2f} | |")
    print(
        f"\nTime to detect drift under the prod profile (2 workers; landing -> retraining run created): "
        f"median {statistics.median(mttd):.1f} s over {len(mttd)} trial(s): {' '.join(f'{x:.1f}' for x in mttd)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
