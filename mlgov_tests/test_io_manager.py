"""The IO manager: data formats only, atomic, one file per asset (partition), no stale leftovers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from dagster import AssetKey, build_input_context, build_output_context

from mlgov_assets.core.data.lineage import LineageError
from mlgov_assets.io_manager import MlgovIOManager


def _out(key, partition=None):
    return build_output_context(asset_key=AssetKey(key), partition_key=partition)


def _in(key, partition=None):
    return build_input_context(asset_key=AssetKey(key), partition_key=partition)


def test_dotted_partition_keys_do_not_collide_and_values_round_trip(tmp_path):
    io = MlgovIOManager(base_dir=str(tmp_path))
    for pk, n in (("2026.01", 1), ("2026.02", 2)):
        io.handle_output(_out("batch_data", pk), pd.DataFrame({"x": [n] * n}))
    assert len(io.load_input(_in("batch_data", "2026.01"))) == 1
    assert len(io.load_input(_in("batch_data", "2026.02"))) == 2
    assert sorted(p.name for p in (tmp_path / "batch_data").iterdir()) == ["2026.01.parquet", "2026.02.parquet"]


def test_type_change_leaves_no_stale_file_and_unsupported_values_are_refused(tmp_path):
    io = MlgovIOManager(base_dir=str(tmp_path))
    io.handle_output(_out("thing"), pd.DataFrame({"a": [1]}))
    io.handle_output(_out("thing"), {"now": "json"})
    assert io.load_input(_in("thing")) == {"now": "json"}
    assert not (tmp_path / "thing.parquet").exists()
    with pytest.raises(TypeError, match="stores only DataFrames"):
        io.handle_output(_out("model"), object())
    with pytest.raises(TypeError, match="returned None"):
        io.handle_output(_out("thing"), None)
    assert io.load_input(_in("thing")) == {"now": "json"}  # the refused writes changed nothing


def _in_as(key, python_type):
    from dagster._core.types.dagster_type import resolve_dagster_type

    return build_input_context(asset_key=AssetKey(key), dagster_type=resolve_dagster_type(python_type))


def test_a_table_with_lineage_round_trips_through_a_sidecar_and_never_through_attrs(tmp_path):
    from mlgov_assets.core.data.lineage import DataLineage, LineagedFrame

    io = MlgovIOManager(base_dir=str(tmp_path))
    lineage = DataLineage(role="training", source="data/adult.data", dvc_md5="5d7c39d7b8804f071cdd1f2a7c460872")
    frame = pd.DataFrame({"age": [39, 50]})
    frame.attrs = {"dvc_md5": "stale"}
    io.handle_output(_out("train_features"), LineagedFrame(frame=frame, lineage=lineage))
    assert frame.attrs == {"dvc_md5": "stale"}  # the producer's frame is not modified
    assert pd.read_parquet(tmp_path / "train_features.parquet").attrs == {}  # lineage is in the sidecar only
    loaded = io.load_input(_in_as("train_features", LineagedFrame))
    assert loaded.lineage == lineage and loaded.frame["age"].tolist() == [39, 50]
    plain = io.load_input(_in_as("train_features", pd.DataFrame))  # consumers that only need the rows
    assert isinstance(plain, pd.DataFrame) and plain["age"].tolist() == [39, 50]


def test_missing_or_mismatched_lineage_fails_loudly(tmp_path):
    from mlgov_assets.core.data.lineage import DataLineage, LineagedFrame, LineageError

    io = MlgovIOManager(base_dir=str(tmp_path))
    io.handle_output(_out("plain"), pd.DataFrame({"a": [1]}))  # a table stored without lineage
    with pytest.raises(LineageError, match="without its lineage"):
        io.load_input(_in_as("plain", LineagedFrame))
    lineage = DataLineage(role="holdout", source="data/adult.test", dvc_md5="0" * 32)
    io.handle_output(_out("holdout_features"), LineagedFrame(frame=pd.DataFrame({"a": [1]}), lineage=lineage))
    pd.DataFrame({"a": [2]}).to_parquet(tmp_path / "holdout_features.parquet", index=False)  # other bytes
    with pytest.raises(LineageError, match="describes other bytes"):
        io.load_input(_in_as("holdout_features", LineagedFrame))
    # a value that is no longer a table leaves neither its Parquet nor its sidecar behind
    io.handle_output(_out("holdout_features"), {"now": "json"})
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("holdout")) == ["holdout_features.json"]


def test_pydantic_results_are_stored_as_json_and_parsed_for_typed_consumers(tmp_path):
    from mlgov_assets.core.models.training import HyperParams

    io = MlgovIOManager(base_dir=str(tmp_path))
    io.handle_output(_out("params"), HyperParams(max_iter=7))
    assert io.load_input(_in_as("params", HyperParams)) == HyperParams(max_iter=7)
    assert io.load_input(_in("params"))["max_iter"] == 7  # untyped consumers get the JSON value


def test_batch_values_round_trip_with_their_typed_description(tmp_path):
    from mlgov_assets.core.monitoring.batch_values import AcceptedBatch, BatchIntake, ScoredBatch, ScoringInfo

    io = MlgovIOManager(base_dir=str(tmp_path))
    intake = BatchIntake(
        batch_id="b.1",
        source="b.1.csv",
        md5="0" * 32,
        valid=False,
        summary="refused",
        validation={"failures": []},
        quarantine_dir=tmp_path / "q",
    )
    io.handle_output(_out("batch_data", "b.1"), AcceptedBatch(frame=pd.DataFrame({"row_id": [0, 1]}), intake=intake))
    side = json.loads((tmp_path / "batch_data" / "b.1.batch.json").read_text())
    assert side["batch"]["quarantine_dir"] == str(tmp_path / "q") and "table_sha256" in side
    loaded = io.load_input(_in_as_partition("batch_data", "b.1", AcceptedBatch))
    assert loaded.intake == intake and loaded.frame["row_id"].tolist() == [0, 1]
    info = ScoringInfo(batch_id="b.1", champion_version=2, shadow_version=None, shadow_gates={})
    io.handle_output(_out("batch_scores", "b.1"), ScoredBatch(frame=pd.DataFrame({"row_id": [0]}), scoring=info))
    assert io.load_input(_in_as_partition("batch_scores", "b.1", ScoredBatch)).scoring == info
    assert sorted(p.name for p in (tmp_path / "batch_scores").iterdir()) == ["b.1.parquet", "b.1.scoring.json"]
    pd.DataFrame({"row_id": [9]}).to_parquet(tmp_path / "batch_scores" / "b.1.parquet", index=False)
    with pytest.raises(LineageError, match="describes other bytes"):
        io.load_input(_in_as_partition("batch_scores", "b.1", ScoredBatch))
    (tmp_path / "batch_data" / "b.1.batch.json").unlink()
    with pytest.raises(LineageError, match="without its batch"):
        io.load_input(_in_as_partition("batch_data", "b.1", AcceptedBatch))


def _in_as_partition(key, partition, python_type):
    from dagster._core.types.dagster_type import resolve_dagster_type

    return build_input_context(
        asset_key=AssetKey(key), partition_key=partition, dagster_type=resolve_dagster_type(python_type)
    )
