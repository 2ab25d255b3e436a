"""The governed path end to end in the prod profile: Dagster on PostgreSQL (the prod ``dagster.yaml``
that ``prepare_environment`` writes), MLflow through a real tracking server; then ``mlgov status``,
``mlgov audit champion``, ``mlgov audit verify`` and ``mlgov reproduce`` against the server-backed
registry (in-process executor here; the Celery executor is exercised by the executor suite)."""

from __future__ import annotations

import pytest

from mlgov_assets.core.audit.decision_log import DecisionLog
from mlgov_tests.conftest import run_path


def cli(capsys, *argv: str) -> tuple[int, str]:
    from mlgov_assets.cli import main

    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.slow
def test_governed_path_and_audit_through_postgres_and_the_mlflow_server(
    prod_env, prod_instance, prod_dagster_db, pg_services, mlflow_server, capsys
):
    import psycopg2

    assert type(prod_instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(prod_instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    result = run_path(prod_env, prod_instance)
    assert result.success, [c.description for c in result.get_asset_check_evaluations() if not c.passed]
    reg = prod_env.registry()
    champ = reg.champion_version()
    assert champ == 1
    tags = reg.version_info(champ).tags
    assert tags["mlgov.dagster_run_id"] == result.run_id
    assert tags["mlgov.model_dir"].startswith("mlflow-artifacts:/")
    # the run and its events are in PostgreSQL, the model in the server's database
    with psycopg2.connect(**pg_services.connect_kwargs(prod_dagster_db)) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchone() == ("SUCCESS",)
    with psycopg2.connect(**pg_services.connect_kwargs(mlflow_server.database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (reg.name,))
        assert ("champion", 1) in cur.fetchall()
    assert not (prod_env.settings().mlflow_dir / "mlflow.db").exists()

    code, out = cli(capsys, "status")
    assert code == 0 and "champion" in out.lower() and "version 1" in out.lower(), out
    code, out = cli(capsys, "audit", "champion")
    assert code == 0 and "BROKEN" not in out, out[-3000:]
    code, out = cli(capsys, "audit", "verify")
    assert code == 0 and "VERIFIED" in out, out[-3000:]
    code, out = cli(capsys, "reproduce", str(champ))
    assert code == 0, out[-3000:]
    kinds = [r.kind for r in DecisionLog(prod_env.settings().decision_log).read()]
    assert kinds.count("promotion") == 1 and kinds[-1] == "reproducibility_certificate", kinds
    assert cli(capsys, "audit", "verify")[0] == 0  # the certificate keeps the log verifiable
