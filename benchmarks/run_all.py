"""`make bench`: every benchmark script, one after the other, printing Markdown for BENCHMARKS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ("Governed path per project, against a plain script", ["bench_path.py"]),
    ("This tree against the tree before the architecture change", ["bench_baseline.py", "--baseline", "4189841"]),
    ("The governed path on ~1M training rows", ["bench_large.py", "--copies", "30"]),
    ("Fairness and explanations (issue 3)", ["bench_fairness.py"]),
    ("Drift engine vs Evidently (issue 4)", ["bench_drift.py", "--repeats", "3"]),
    ("Mean time to detect (issue 4)", ["mttd.py", "--trials", "3"]),
    ("Audit and reproduction (issue 5)", ["bench_audit.py"]),
    ("Code-location load: one project vs every project (issue 9)", ["bench_import.py"]),
    ("OpenLineage emission against the run (issue 12)", ["bench_openlineage.py"]),
    ("Online scoring: mlgov serve vs mlflow models serve (issue 12)", ["serve_load.py", "--requests", "300"]),
    ("Governed path: embedded vs production profile (issue 11)", ["bench_prod.py"]),
    ("UI Materialize all vs mlgov train (issue 13)", ["ui_materialize.py", "--repeats", "3"]),
    ("Monitoring with 1 vs 2 Celery workers; time to detect drift in prod (issue 11)", ["bench_distributed.py"]),
]


def main() -> int:
    failed = []
    for title, argv in SCRIPTS:
        if not (HERE / argv[0]).exists():
            continue
        print(f"\n# {title}\n\n`.venv/bin/python benchmarks/{' '.join(argv)}`\n", flush=True)
        rc = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], cwd=HERE.parent).returncode
        if rc:
            failed.append(argv[0])
    if failed:
        print(f"\nFAILED: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
