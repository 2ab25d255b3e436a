"""The registry's alias moves are compare-and-set and serialized; stores are seeded correctly."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgov_assets.core.models.registry import ChampionChanged, Registry
from mlgov_assets.core.settings import get_settings


def _tiny_version(reg: Registry, seed: int) -> int:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    y = (X.a + rng.normal(scale=0.5, size=50) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    info = reg.log_model_version(
        model=model,
        flavor="sklearn",
        run_name=f"tiny-{seed}",
        params={"seed": seed},
        metrics={"roc_auc": 0.9},
        tags={"mlgov.fingerprint": f"fp{seed}"},
        input_example=X.head(3),
        text_artifacts={},
        pip_requirements=["scikit-learn"],
    )
    return info.version


@pytest.fixture(scope="module")
def reg(tmp_path_factory) -> Registry:
    home = tmp_path_factory.mktemp("reg")
    return Registry(get_settings(home=home, model_name="cas-test"))


def _race(home: str, version: int, expected, barrier, out) -> None:
    r = Registry(get_settings(home=home, model_name="cas-test"))
    barrier.wait()
    try:
        r.move_champion(version, expected_current=expected, history_op="push")
        out.put(("ok", version))
    except ChampionChanged:
        out.put(("changed", version))


def test_compare_and_set_and_serialization(reg):
    v1, v2, v3 = (_tiny_version(reg, s) for s in (1, 2, 3))
    assert reg.find_by_fingerprint("fp2") == v2
    assert reg.move_champion(v1, expected_current=None, history_op="push") is None
    # a decision made against "no champion" is stale now: refused, nothing changes
    with pytest.raises(ChampionChanged):
        reg.move_champion(v2, expected_current=None, history_op="push")
    assert reg.champion_version() == v1 and reg.champion_history() == [v1]
    # two processes both decided against v1 and race: exactly one wins, the other is refused
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(reg.settings.home), v, v1, barrier, out)) for v in (v2, v3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    results = sorted(out.get(timeout=5) for _ in procs)
    assert [r[0] for r in results] == ["changed", "ok"]
    winner = next(v for status, v in results if status == "ok")
    assert reg.champion_version() == winner
    assert reg.champion_history() == [v1, winner]
    assert int(reg.client.get_model_version_by_alias(reg.name, "previous-champion").version) == v1


def test_new_store_is_seeded_from_a_migrated_template(tmp_path):
    reg = Registry(get_settings(home=tmp_path / "fresh", model_name="seed-test"))
    assert (tmp_path / "fresh" / "mlflow" / "mlflow.db").exists()
    assert reg.versions() == [] and reg.champion_version() is None
    v = _tiny_version(reg, 7)
    assert reg.versions() == [v]
    loaded = reg.load_model(v)
    assert hasattr(loaded, "predict_proba")


def test_version_info_and_gate_details_are_typed(tmp_path):
    reg = Registry(get_settings(home=tmp_path / "typed", model_name="typed-test"))
    v = _tiny_version(reg, 11)
    info = reg.version_info(v)
    assert (info.version, info.params["seed"], info.metrics["roc_auc"]) == (v, "11", 0.9)
    assert info.tags["mlgov.fingerprint"] == "fp11"
    with pytest.raises(TypeError):  # no dict-style access left: attributes only
        info["tags"]
    assert reg.gate_details(v, "metric_floors") == {}  # never recorded
    details = {"compared_champion_version": 3, "rows": [{"metric": "roc_auc", "delta": None}]}
    reg.record_gate(
        v,
        "champion_comparison",
        passed=True,
        severity="ERROR",
        policy_sha256="ab",
        summary="beats v3",
        evidence={"gate": "champion_comparison", "details": details},
    )
    assert reg.gate_details(v, "champion_comparison") == details
    assert reg.gate_records(v)["champion_comparison"].summary == "beats v3"


def test_sklearn_version_is_a_skops_model_with_its_example_and_loads_verified(tmp_path):
    """Logged without MLflow's serving-input reload: the saved model is still the sklearn flavor in
    skops format with its signature, input example and pinned requirements, and it loads (and
    predicts) through the verified loader, which keeps the deserialized object but re-hashes the
    registry's files on every load: an artifact edited after the first load is refused."""
    import yaml

    from mlgov_assets.core.integrity import IntegrityError
    from mlgov_assets.core.models.registry import TAG

    reg = Registry(get_settings(home=tmp_path / "h", model_name="flavor-test"))
    v = _tiny_version(reg, 11)
    model_dir = Path(reg.version_info(v).tags[TAG + "model_dir"])  # the embedded store: a local path
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "skops"
    assert mlmodel["flavors"]["python_function"]["predict_fn"] == "predict_proba"
    assert mlmodel["signature"]["inputs"] and mlmodel["saved_input_example_info"]
    assert (model_dir / "serving_input_example.json").exists()
    assert (model_dir / "requirements.txt").read_text().split()[1:] == ["scikit-learn"]
    X = pd.DataFrame({"a": [0.1, -2.0], "b": [0.3, 0.0]})
    assert reg.load_governed(v).predict_proba(X).shape == (2, 2)
    assert reg.load_governed(v) is reg.load_governed(v)  # deserialized once, re-verified on every load
    (model_dir / "requirements.txt").write_text("scikit-learn\nevil\n")
    with pytest.raises(IntegrityError):
        reg.load_governed(v)
