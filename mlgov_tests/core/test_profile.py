"""One setting picks the profile: ``MLGOV_PROFILE`` (embedded by default, untouched; prod from env)."""

from __future__ import annotations

import pytest
import yaml

from mlgov_assets.core.errors import ConfigError
from mlgov_assets.core.locks import guard
from mlgov_assets.core.models.registry import promotion_guard
from mlgov_assets.core.settings import get_settings


def test_embedded_is_the_default_and_keeps_sqlite_and_file_locks(tmp_path, monkeypatch):
    monkeypatch.delenv("MLGOV_PROFILE", raising=False)
    s = get_settings(home=tmp_path)
    assert (s.profile, s.services, s.is_prod) == ("embedded", None, False)
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert s.artifact_location() == (tmp_path / "mlflow" / "artifacts").as_uri()
    with promotion_guard(s, purpose="t"):
        assert (s.lock_dir / "promotion.lock.holder").exists()  # the file lock, as before


def test_prod_profile_from_one_setting_with_loopback_defaults(tmp_path, monkeypatch):
    for var in ("MLGOV_PG_HOST", "MLGOV_PG_PORT", "MLGOV_MLFLOW_TRACKING_URI", "MLGOV_DAGSTER_DB", "MLGOV_LOCK_DB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLGOV_PROFILE", "prod")
    s = get_settings(home=tmp_path)
    assert s.is_prod and s.services is not None
    assert s.tracking_uri == "http://127.0.0.1:5000" == s.mlflow_ui_url
    assert s.artifact_location() is None  # the server decides (mlflow-artifacts:/)
    assert s.services.sqlalchemy_url("db").startswith("postgresql+psycopg2://postgres@127.0.0.1:5432/")
    assert s.services.lock_db == s.services.dagster_db
    monkeypatch.setenv("MLGOV_PG_PASSWORD", "p@ss/word")
    assert "postgres:p%40ss%2Fword@" in get_settings(home=tmp_path).services.sqlalchemy_url("db")  # type: ignore[union-attr]


def test_prod_instance_yaml_is_postgres_with_the_same_run_queue(tmp_path, monkeypatch):
    from mlgov_assets.deploy.instance_yaml import render_prod_instance_yaml
    from mlgov_assets.instance import prepare_environment

    monkeypatch.setenv("MLGOV_PROFILE", "prod")
    monkeypatch.setenv("MLGOV_PG_PASSWORD", "secret-not-in-file")
    s = get_settings(home=tmp_path)
    text = render_prod_instance_yaml(s)
    cfg = yaml.safe_load(text)
    db = cfg["storage"]["postgres"]["postgres_db"]
    assert db["scheme"] == "postgresql+psycopg2" and db["password"] == {"env": "MLGOV_PG_PASSWORD"}
    assert "secret-not-in-file" not in text
    limits = cfg["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "mlgov/serial", "value": "training", "limit": 1} in limits
    home = prepare_environment(s)
    assert (home / "dagster.yaml").read_text() == text


def test_an_unknown_profile_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("MLGOV_PROFILE", "production")
    with pytest.raises(ConfigError, match="MLGOV_PROFILE must be one of embedded, prod"):
        get_settings(home=tmp_path)


def test_guard_without_a_path_is_no_lock_when_embedded(monkeypatch):
    monkeypatch.delenv("MLGOV_PROFILE", raising=False)
    with guard("x", path=None, purpose="t"), guard("x", path=None, purpose="t"):
        pass
