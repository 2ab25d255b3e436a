"""The registry through a real ``mlflow server`` (PostgreSQL store, served artifacts): clients hold
only the tracking URI; artifact hashes, verified loading and compare-and-set work through it."""

from __future__ import annotations

import pytest

from mlgov_assets.core.governance.promotion import promote
from mlgov_assets.core.integrity import IntegrityError
from mlgov_tests.core.governance import _promo_harness as h


@pytest.mark.slow
def test_versions_are_hashed_served_verified_and_promoted_through_the_server(prod_env, mlflow_server):
    reg = prod_env.registry()
    assert reg.client.tracking_uri == mlflow_server.url
    assert not (prod_env.settings().mlflow_dir / "mlflow.db").exists()  # no local store in prod
    v1, _ = h.make_versions(reg, prod_env.policy, 2)
    info = reg.version_info(v1)
    assert info.tags["mlgov.model_dir"].startswith("mlflow-artifacts:/")
    manifest = reg.verify_artifacts(v1)
    assert manifest and any(p.endswith("MLmodel") for p in manifest)
    model = reg.load_model(v1)
    assert hasattr(model, "predict_proba")
    # the bytes the server serves are what was hashed: tamper with them server-side and loading refuses
    tree = mlflow_server.artifacts / info.tags["mlgov.model_dir"].removeprefix("mlflow-artifacts:/")
    served = max((p for p in tree.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    original = served.read_bytes()
    try:
        served.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(IntegrityError):
            reg.load_model(v1)
    finally:
        served.write_bytes(original)
    h.compared_with_current(reg, prod_env.policy, v1)
    assert promote(reg, prod_env.policy_obj(), v1, actor="t", reason="first").promoted
    assert reg.champion_version() == v1
