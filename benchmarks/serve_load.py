"""`mlgov serve` under a bounded load on loopback, beside `mlflow models serve` on the same champion.

A fresh state directory gets a champion through `mlgov train` (the shipped policy: a mitigated
champion and its unmitigated challenger, which is the shadow). Then, one server at a time, threads
with an httpx client each send a fixed number of requests; reported per configuration: throughput
and p50/p99 latency (client side, ms). Configurations: 1-row and 100-row requests, shadow on/off,
reasons off/3, and `mlflow models serve -m models:/NAME@champion --env-manager local` with the
same rows (as model features: MLflow's server takes the model's signature, not raw rows).

    .venv/bin/python benchmarks/serve_load.py --requests 300 --concurrency 2
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def _load(name: str, url: str, bodies: list[bytes], requests: int, concurrency: int) -> dict[str, float]:
    import httpx

    lat: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def worker(k: int) -> None:
        with httpx.Client(timeout=60, headers={"content-type": "application/json"}) as c:
            for i in range(k, requests, concurrency):
                t0 = time.perf_counter()
                r = c.post(url, content=bodies[i % len(bodies)])
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    lat.append(dt)
                    failures[0] += r.status_code != 200

    # warm-up (first requests import and build caches): not measured
    with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as c:
        for body in bodies[:5]:
            c.post(url, content=body)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    out = {"rps": len(lat) / elapsed, "p50": statistics.median(lat), "p99": q[98], "failed": failures[0]}
    print(f"{name}: {out} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    return out


def _serve(env: dict[str, str], extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen(
        [str(BIN / "mlgov"), "serve", "--port", str(port), *extra], env=env, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/ready", proc)
    except BaseException:
        proc.terminate()
        raise
    return proc, base


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--home", help="a state directory with a champion (default: a fresh one, trained here)")
    args = ap.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    tmp = tempfile.mkdtemp(prefix="mlgov-bench-serve-")
    env["MLGOV_HOME"] = args.home or str(Path(tmp) / "home")
    if not args.home:
        subprocess.run([str(BIN / "mlgov"), "train"], env=env, check=True, stdout=subprocess.DEVNULL)

    sys.path.insert(0, str(REPO))
    from mlgov_assets.core.monitoring.scoring import model_inputs
    from mlgov_assets.core.project.project import open_project
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_assets.core.settings import get_settings

    os.environ["MLGOV_HOME"] = env["MLGOV_HOME"]
    s = get_settings()
    project = open_project(s.project_spec, s.project_dir)
    raw = read_raw(project, project.holdout_file).drop(columns=[project.label]).head(2000)
    rows = raw.to_dict("records")
    single = [json.dumps({"row": r}).encode() for r in rows[:500]]
    hundred = [json.dumps({"rows": rows[i : i + 100]}).encode() for i in range(0, 1000, 100)]
    results: list[tuple[str, dict[str, float]]] = []

    def run(name: str, url: str, bodies: list[bytes], n: int) -> None:
        results.append((name, _load(name, url, bodies, n, args.concurrency)))

    for shadow in (False, True):
        proc, base = _serve(env, [] if shadow else ["--no-shadow"])
        try:
            tag = "shadow" if shadow else "no shadow"
            run(f"mlgov serve, 1 row, {tag}", f"{base}/predict", single, args.requests)
            run(f"mlgov serve, 100 rows, {tag}", f"{base}/predict", hundred, args.requests // 5)
            if shadow:
                run("mlgov serve, 1 row, shadow, reasons=3", f"{base}/predict?reasons=3", single, args.requests)
                run(
                    "mlgov serve, 100 rows, shadow, reasons=3",
                    f"{base}/predict?reasons=3",
                    hundred,
                    args.requests // 10,
                )
        finally:
            proc.terminate()
            proc.wait(60)

    features = model_inputs(project, raw.reset_index(drop=True))
    f_single = [
        json.dumps({"dataframe_split": json.loads(features.iloc[[i]].to_json(orient="split", index=False))}).encode()
        for i in range(500)
    ]
    f_hundred = [
        json.dumps(
            {"dataframe_split": json.loads(features.iloc[i : i + 100].to_json(orient="split", index=False))}
        ).encode()
        for i in range(0, 1000, 100)
    ]
    port = _port()
    mlflow_env = {
        **env,
        "MLFLOW_TRACKING_URI": s.tracking_uri,
        "MLFLOW_REGISTRY_URI": s.tracking_uri,
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # it execs `uvicorn` by name
    }
    proc = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{s.model_name}@champion",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "1",
        ],
        env=mlflow_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # runs last: `mlflow models serve` writes `registered_model_meta` into the registered artifact
    # directory, after which mlgov's verified loader refuses that version (an unexpected extra file)
    try:
        _wait(f"http://127.0.0.1:{port}/ping", proc)
        inv = f"http://127.0.0.1:{port}/invocations"
        results.append(
            (
                "mlflow models serve, 1 row",
                _load("mlflow models serve, 1 row", inv, f_single, args.requests, args.concurrency),
            )
        )
        results.append(
            (
                "mlflow models serve, 100 rows",
                _load("mlflow models serve, 100 rows", inv, f_hundred, args.requests // 5, args.concurrency),
            )
        )
    finally:
        proc.terminate()
        proc.wait(60)

    load = os.getloadavg()
    print(
        f"\n{args.requests} requests (100-row: /5, with reasons: /10), {args.concurrency} client threads; "
        f"load average {load[0]:.1f}\n"
    )
    print("| configuration | requests/s | p50 ms | p99 ms | failed |\n|---|---:|---:|---:|---:|")
    for name, r in results:
        print(f"| {name} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} | {int(r['failed'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
