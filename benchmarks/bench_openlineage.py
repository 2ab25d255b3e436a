"""What OpenLineage emission adds to a run: a run of a chain of N assets, each with a check (the
governed path has ~20 assets and 13 checks), executed in-process on a persistent SQLite instance;
then ``emit_run`` (read the run back from the event log, build the events, append them to the file),
side by side in the same process, median of ``--repeats``.

    uv run python benchmarks/bench_openlineage.py [--assets 20] [--repeats 7]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def build(n: int):
    from dagster import (
        AssetCheckResult,
        AssetIn,
        AssetSelection,
        Definitions,
        Output,
        asset,
        asset_check,
        define_asset_job,
    )

    meta = {"dvc_md5": "5d7c0f6e8a1b2c3d4e5f60718293a4b5", "dagster/row_count": 100}
    assets, checks = [], []
    for i in range(n):
        if i:

            @asset(key=["bench", f"a{i}"], ins={"up": AssetIn(key=["bench", f"a{i - 1}"])})
            def node(up: int) -> Output[int]:
                return Output(up + 1, metadata=meta)
        else:

            @asset(key=["bench", "a0"])
            def node() -> Output[int]:
                return Output(1, metadata=meta)

        @asset_check(asset=node, name=f"gate{i}", blocking=True)
        def gate() -> AssetCheckResult:
            return AssetCheckResult(passed=True, metadata={"policy_sha256": "c" * 64})

        assets.append(node)
        checks.append(gate)
    return Definitions(assets=assets, asset_checks=checks, jobs=[define_asset_job("bench__job", AssetSelection.all())])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLGOV_HOME"] = str(Path(tmp) / "state")
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "dagster")
        Path(os.environ["DAGSTER_HOME"]).mkdir()
        from dagster import DagsterInstance

        from mlgov_assets.defs.lineage_events import emit_run

        job = build(args.assets).resolve_job_def("bench__job")
        runs, emits, counts = [], [], []
        with DagsterInstance.get() as instance:
            emit_run(instance, job.execute_in_process(instance=instance).run_id)  # warm imports
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                result = job.execute_in_process(instance=instance)
                t1 = time.perf_counter()
                report = emit_run(instance, result.run_id)
                t2 = time.perf_counter()
                assert report is not None and report.ok
                runs.append(t1 - t0)
                emits.append(t2 - t1)
                counts.append(report.written)
    run, emit = statistics.median(runs), statistics.median(emits)
    print(f"{args.assets} assets + {args.assets} checks, {counts[0]} events per run, median of {args.repeats}")
    print(f"run (in-process)  {run:.3f} s   samples {' '.join(f'{x:.3f}' for x in runs)}")
    print(f"emit_run          {emit:.3f} s   samples {' '.join(f'{x:.3f}' for x in emits)}")
    print(f"emission / run    {emit / run:.3f}")


if __name__ == "__main__":
    main()
