-- The MLflow tracking server's database, next to Dagster's (POSTGRES_DB creates mlgov_dagster).
CREATE DATABASE mlgov_mlflow;
