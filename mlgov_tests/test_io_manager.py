"""The IO manager: data formats only, atomic, one file per asset (partition), no stale leftovers."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetKey, build_input_context, build_output_context

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
