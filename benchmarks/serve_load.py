"""`mlgov serve` under load on loopback, beside `mlflow models serve` on the same champion.

A fresh state directory gets a champion through `mlgov train` (the shipped policy: a mitigated
champion and its unmitigated challenger, which is the shadow). Then, in each of ``--repeats``
rounds, one server at a time, ``--concurrency`` threads with an httpx client each send a fixed
number of requests; reported per configuration: the median over rounds of throughput and p50/p99
latency (client side, ms), the load average while it ran, and the ratio to `mlflow models serve`
of the same round. Configurations: 1-row and 100-row requests, shadow on/off, reasons off/3, and
`mlflow models serve --env-manager local` on a *copy* of the champion's artifacts (MLflow's server
writes `registered_model_meta` into the directory it serves, which mlgov's verified loader would
then refuse: the governed store is never handed to it, and it is verified unaltered at the end).
MLflow's server takes model features (its signature), not raw rows: the same rows, featurised.

    .venv/bin/python benchmarks/serve_load.py --requests 300 --concurrency 1 --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WARM_SECONDS = 8.0


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


def _load(url: str, bodies: list[bytes], requests: int, concurrency: int) -> dict[str, float]:
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

    # warm-up, not measured: the first requests import and build caches, and a fresh `mlgov serve`
    # imports shap on a background thread (seconds on a loaded host); wait until that settles
    with httpx.Client(timeout=120, headers={"content-type": "application/json"}) as c:
        deadline = time.monotonic() + WARM_SECONDS
        for i in itertools.count():
            c.post(url, content=bodies[i % len(bodies)])
            if i >= 20 and time.monotonic() >= deadline:
                break
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    q = statistics.quantiles(lat, n=100)
    load = (load0 + os.getloadavg()[0]) / 2
    return {"rps": len(lat) / elapsed, "p50": statistics.median(lat), "p99": q[98], "failed": failures[0], "load": load}


def _serve(bin_: Path, env: dict[str, str], extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen([str(bin_), "serve", "--port", str(port), *extra], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/ready", proc)
    except BaseException:
        proc.terminate()
        raise
    return proc, base


def _shadow_live(base: str, body: bytes, timeout: float = 300) -> None:
    """Wait until the shadow has scored a request: its process (or thread) loaded its model, so its
    start-up (imports, the verified load) is not measured as the request path's load."""
    import httpx

    httpx.post(f"{base}/predict", content=body, headers={"content-type": "application/json"}, timeout=60)
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = httpx.get(f"{base}/metrics", timeout=10).text
        if any(f'outcome="{k}"}} 0' not in text for k in ("scored", "failed")):
            return
        time.sleep(0.5)
    raise RuntimeError(f"{base}: the shadow scored nothing after {timeout} s")


def _mlflow(model_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    argv = [str(BIN / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    proc = subprocess.Popen(
        [*argv, "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env={**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"},  # it execs `uvicorn` by name
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/ping", proc)
    except BaseException:
        proc.terminate()
        raise
    return proc, f"http://127.0.0.1:{port}/invocations"


Bodies = dict[str, list[bytes]]


def _bodies(home: str) -> tuple[Bodies, Bodies, Any]:
    """Raw-row bodies for mlgov, feature bodies for MLflow (the same rows), and the settings."""
    sys.path.insert(0, str(REPO))
    from mlgov_assets.core.monitoring.scoring import model_inputs
    from mlgov_assets.core.project.project import open_project
    from mlgov_assets.core.project.reader import read_raw
    from mlgov_assets.core.settings import get_settings

    os.environ["MLGOV_HOME"] = home
    s = get_settings()
    project = open_project(s.project_spec, s.project_dir)
    raw = read_raw(project, project.holdout_file).drop(columns=[project.label]).head(2000).reset_index(drop=True)
    rows = raw.to_dict("records")
    raw_bodies = {
        "1": [json.dumps({"row": r}).encode() for r in rows[:500]],
        "100": [json.dumps({"rows": rows[i : i + 100]}).encode() for i in range(0, 1000, 100)],
    }
    features = model_inputs(project, raw)

    def split(frame: Any) -> bytes:
        return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()

    feature_bodies = {
        "1": [split(features.iloc[[i]]) for i in range(500)],
        "100": [split(features.iloc[i : i + 100]) for i in range(0, 1000, 100)],
    }
    return raw_bodies, feature_bodies, s


def _champion_copy(s: Any, dst: Path) -> tuple[Path, int]:
    """The champion's registered artifacts, copied out of the governed store for MLflow's server."""
    import mlflow

    from mlgov_assets.core.models.registry import Registry

    version = Registry(s).champion_version()
    assert version is not None, "no champion"
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{s.model_name}/{version}", dst_path=str(dst), tracking_uri=s.tracking_uri
    )
    return Path(local), version


#: (name, server, rows per request, reasons, share of --requests)
CONFIGS = (
    ("mlgov serve, 1 row, no shadow", "plain", "1", False, 1.0),
    ("mlgov serve, 100 rows, no shadow", "plain", "100", False, 0.2),
    ("mlgov serve, 1 row, shadow", "shadow", "1", False, 1.0),
    ("mlgov serve, 100 rows, shadow", "shadow", "100", False, 0.2),
    ("mlgov serve, 1 row, shadow, reasons=3", "shadow", "1", True, 0.5),
    ("mlgov serve, 100 rows, shadow, reasons=3", "shadow", "100", True, 0.1),
    ("--compare-bin's mlgov serve, 1 row, no shadow", "compare", "1", False, 1.0),
    ("--compare-bin's mlgov serve, 1 row, shadow", "compare-shadow", "1", False, 1.0),
    ("mlflow models serve, 1 row", "mlflow", "1", False, 1.0),
    ("mlflow models serve, 100 rows", "mlflow", "100", False, 0.2),
    ("mlflow models serve, 1 row, OMP_NUM_THREADS=1", "mlflow-omp1", "1", False, 1.0),
    ("mlflow models serve, 100 rows, OMP_NUM_THREADS=1", "mlflow-omp1", "100", False, 0.2),
)


def _round(
    args: argparse.Namespace, env: dict[str, str], bodies: Bodies, fbodies: Bodies, model_dir: Path
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    servers = ["plain", "shadow", *(["compare", "compare-shadow"] if args.compare_bin else []), "mlflow"]
    servers = [*(["plain", "mlflow"] if args.mlflow_only else servers), *(["mlflow-omp1"] if args.mlflow_omp1 else [])]
    for server in servers:
        if server.startswith("mlflow"):  # mlflow-omp1: its worker threads limited as mlgov's are
            proc, base = _mlflow(model_dir, {**env, "OMP_NUM_THREADS": "1"} if server == "mlflow-omp1" else env)
        else:
            bin_ = Path(args.compare_bin) if server.startswith("compare") else BIN / "mlgov"
            proc, base = _serve(bin_, env, [] if server.endswith("shadow") else ["--no-shadow"])
            if server.endswith("shadow"):
                _shadow_live(base, bodies["1"][0])
        try:
            for name, srv, rows, reasons, share in CONFIGS:
                if srv != server:
                    continue
                url = base if server.startswith("mlflow") else f"{base}/predict" + ("?reasons=3" if reasons else "")
                pool = fbodies if server.startswith("mlflow") else bodies
                out[name] = _load(url, pool[rows], max(int(args.requests * share), 20), args.concurrency)
                print(f"{name}: {out[name]}", file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            proc.wait(60)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--home", help="a state directory with a champion (default: a fresh one, trained here)")
    ap.add_argument("--mlflow-omp1", action="store_true", help="also MLflow's server with OMP_NUM_THREADS=1")
    ap.add_argument("--mlflow-only", action="store_true", help="only mlgov without shadow and the MLflow servers")
    ap.add_argument("--compare-bin", help="also measure another checkout's `mlgov` (e.g. main's venv), 1 row")
    ap.add_argument(
        "--interleave",
        type=int,
        metavar="BLOCK",
        help="only 1 row, shadow on/off (and --compare-bin's): every server up at once, BLOCK requests to "
        "each in turn, so all see the same host load (for a busy machine)",
    )
    args = ap.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    tmp = Path(tempfile.mkdtemp(prefix="mlgov-bench-serve-"))
    env["MLGOV_HOME"] = args.home or str(tmp / "home")
    if not args.home:
        subprocess.run([str(BIN / "mlgov"), "train"], env=env, check=True, stdout=subprocess.DEVNULL)
    bodies, fbodies, s = _bodies(env["MLGOV_HOME"])
    if args.interleave:
        return _interleaved(args, env, bodies["1"])
    model_dir, version = _champion_copy(s, tmp / "mlflow-copy")
    rounds = [_round(args, env, bodies, fbodies, model_dir) for _ in range(args.repeats)]

    from mlgov_assets.core.models.registry import Registry

    Registry(s).load_governed(version)  # raises if anything in the governed store changed
    print(
        f"\n{args.requests} requests per 1-row row (100-row: /5, reasons: /2 and /10), {args.concurrency} client "
        f"thread(s), median of {args.repeats} rounds; champion v{version} verified unaltered after MLflow's runs\n"
    )
    print("| configuration | requests/s | p50 ms | p99 ms | p50 / MLflow | p99 / MLflow | load avg | failed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, *_ in CONFIGS:
        if name not in rounds[0]:
            continue
        mlflow_name = "mlflow models serve, 100 rows" if "100 rows" in name else "mlflow models serve, 1 row"

        def med(key: str, name: str = name) -> float:
            return statistics.median(r[name][key] for r in rounds)

        ratio = {k: statistics.median(r[name][k] / r[mlflow_name][k] for r in rounds) for k in ("p50", "p99")}
        print(
            f"| {name} | {med('rps'):.1f} | {med('p50'):.1f} | {med('p99'):.1f} | {ratio['p50']:.2f} | "
            f"{ratio['p99']:.2f} | {med('load'):.1f} | {sum(int(r[name]['failed']) for r in rounds)} |"
        )
    _per_round(rounds, "mlgov serve, 1 row, shadow", "mlgov serve, 1 row, no shadow")
    _per_round(rounds, "--compare-bin's mlgov serve, 1 row, shadow", "--compare-bin's mlgov serve, 1 row, no shadow")
    _per_round(rounds, "mlgov serve, 1 row, shadow", "--compare-bin's mlgov serve, 1 row, shadow")
    return 0
    _per_round(rounds, "mlgov serve, 1 row, no shadow", "mlflow models serve, 1 row, OMP_NUM_THREADS=1")


def _interleaved(args: argparse.Namespace, env: dict[str, str], bodies: list[bytes]) -> int:
    """Shadow on/off (both trees with --compare-bin) side by side under the same load: every server
    up at once, ``--interleave`` 1-row requests to each in turn (the order rotated every block)."""
    import httpx

    servers = {"mlgov serve, no shadow": (BIN / "mlgov", ["--no-shadow"]), "mlgov serve, shadow": (BIN / "mlgov", [])}
    if args.compare_bin:
        servers["--compare-bin's, no shadow"] = (Path(args.compare_bin), ["--no-shadow"])
        servers["--compare-bin's, shadow"] = (Path(args.compare_bin), [])
    procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        for name, (bin_, extra) in servers.items():
            procs[name] = _serve(bin_, env, extra)
            if not extra:
                _shadow_live(procs[name][1], bodies[0])
        clients = {n: httpx.Client(timeout=60, headers={"content-type": "application/json"}) for n in servers}
        for c, (_, base) in zip(clients.values(), procs.values(), strict=True):  # warm-up, not measured
            for i in range(50):
                c.post(f"{base}/predict", content=bodies[i % len(bodies)])
        names = list(servers)
        for _ in range(args.repeats):
            lat: dict[str, list[float]] = {n: [] for n in names}
            load0 = os.getloadavg()[0]
            for block in range(0, args.requests, args.interleave):
                order = names[block // args.interleave % len(names) :] + names[: block // args.interleave % len(names)]
                for n in order:
                    url = f"{procs[n][1]}/predict"
                    for i in range(block, min(block + args.interleave, args.requests)):
                        t0 = time.perf_counter()
                        r = clients[n].post(url, content=bodies[i % len(bodies)])
                        lat[n].append((time.perf_counter() - t0) * 1000)
                        assert r.status_code == 200, r.text
            load = (load0 + os.getloadavg()[0]) / 2
            rounds.append(
                {
                    n: {"p50": statistics.median(v), "p99": statistics.quantiles(v, n=100)[98], "load": load}
                    for n, v in lat.items()
                }
            )
            print(rounds[-1], file=sys.stderr, flush=True)
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(60)
    print(
        f"\n1 row, {args.requests} requests per server per round in blocks of {args.interleave}, every server "
        f"up at once, one client; median of {args.repeats} rounds\n"
    )
    print("| configuration | p50 ms | p99 ms | load avg |")
    print("|---|---:|---:|---:|")
    for n in names:
        med = {k: statistics.median(r[n][k] for r in rounds) for k in ("p50", "p99", "load")}
        print(f"| {n} | {med['p50']:.1f} | {med['p99']:.1f} | {med['load']:.1f} |")
    _per_round(rounds, "mlgov serve, shadow", "mlgov serve, no shadow")
    _per_round(rounds, "--compare-bin's, shadow", "--compare-bin's, no shadow")
    return 0


def _per_round(rounds: list[dict[str, dict[str, float]]], a: str, b: str) -> None:
    if a not in rounds[0] or b not in rounds[0]:
        return
    ratios = {k: ", ".join(f"{r[a][k] / r[b][k]:.2f}" for r in rounds) for k in ("p50", "p99")}
    print(f"\n{a} / {b}, per round: p50 {ratios['p50']}; p99 {ratios['p99']}")


if __name__ == "__main__":
    sys.exit(main())
