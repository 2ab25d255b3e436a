"""A real MLflow store with tiny registered versions whose gates passed, and a command line to
promote/roll back in a subprocess (so a test can kill it at a fault point).

``python -m mlgov_tests.core.governance._promo_harness HOME POLICY promote N`` /
``... rollback`` / ``... status``. Prints the decision as JSON; exit codes as the CLI's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from mlgov_assets.core.errors import MlgovError, exit_code_for
from mlgov_assets.core.governance.gates import GateResult
from mlgov_assets.core.governance.policy import Policy, load_policy
from mlgov_assets.core.governance.promotion import promote, record_gates, rollback, status
from mlgov_assets.core.models.registry import Registry
from mlgov_assets.core.settings import get_settings

REPO = Path(__file__).resolve().parents[3]
MODEL = "crash-test"


def write_policy(path: Path) -> Path:
    data = yaml.safe_load((REPO / "mlgov_assets" / "policies" / "default.yaml").read_text())
    for key in ("fairness", "explanations"):
        data.pop(key, None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def registry(home: Path) -> Registry:
    return Registry(get_settings(home=home, model_name=MODEL))


def _passed(policy: Policy, gate: str, compared: int | None) -> GateResult:
    return GateResult(
        gate=gate,
        passed=True,
        summary=f"{gate} passed (test setup)",
        policy_sha256=policy.sha256,
        details={"compared_champion_version": compared} if gate == "champion_comparison" else {},
    )


def make_versions(reg: Registry, policy_path: Path, n: int) -> list[int]:
    """``n`` tiny sklearn versions registered in the real store of ``reg``, every gate passed."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    policy = load_policy(policy_path)
    out = []
    for seed in range(n):
        rng = np.random.default_rng(seed)
        X = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
        y = (X.a > 0).astype(int)
        info = reg.log_model_version(
            model=LogisticRegression().fit(X, y),
            flavor="sklearn",
            run_name=f"tiny-{seed}",
            params={"seed": seed},
            metrics={"roc_auc": 0.95, "accuracy": 0.9, "f1": 0.8},
            tags={"mlgov.fingerprint": f"fp{seed}"},
            input_example=X.head(2),
            text_artifacts={},
            pip_requirements=["scikit-learn"],
        )
        out.append(info.version)
    for v in out:
        record_gates(reg, policy, v, [_passed(policy, "metric_floors", None)], actor="test setup")
    return out


def compared_with_current(reg: Registry, policy_path: Path, version: int) -> None:
    """Record that ``version`` was compared with today's champion (what a training run does)."""
    policy = load_policy(policy_path)
    record_gates(
        reg, policy, version, [_passed(policy, "champion_comparison", reg.champion_version())], actor="test setup"
    )


def run(
    home: Path, policy_path: Path, *args: str, fault: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """This module as a subprocess (``MLGOV_FAULT=fault`` when given)."""
    env = {k: v for k, v in os.environ.items() if k != "MLGOV_FAULT"}
    if fault:
        env["MLGOV_FAULT"] = fault
    cmd = [sys.executable, "-m", "mlgov_tests.core.governance._promo_harness", str(home), str(policy_path), *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def main(argv: list[str]) -> int:
    home, policy_path, action, *rest = argv
    reg, policy = registry(Path(home)), load_policy(policy_path)
    try:
        if action == "promote":
            out = promote(reg, policy, int(rest[0]), actor="crash test", reason="test").to_dict()
        elif action == "register":
            out = {"versions": make_versions(reg, Path(policy_path), 1)}
        elif action == "rollback":
            out = rollback(reg, policy, actor="crash test", reason="test rollback").to_dict()
        else:
            st = status(reg, policy)
            out = {"champion": st.champion.version if st.champion else None, "history": st.history}
    except MlgovError as exc:
        print(str(exc), file=sys.stderr)
        return exit_code_for(exc)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
