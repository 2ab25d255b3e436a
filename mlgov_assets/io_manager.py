"""Asset values on disk as Parquet (tables) or JSON (everything else): never pickle.

Dagster's default filesystem IO manager pickles every output and unpickles it downstream; a
governance tool must not execute bytes it did not hash. This one stores only data formats,
writes atomically (temp file + rename), and records each file's sha256 in the materialization's
metadata so an auditor can tie a stored value to the event that produced it.
"""

import json
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext

from mlgov_assets.core.integrity import atomic_write_with, sha256_file
from mlgov_assets.core.settings import get_settings


class MlgovIOManager(ConfigurableIOManager):
    base_dir: str | None = None

    def _path(self, context: InputContext | OutputContext, suffix: str) -> Path:
        root = Path(self.base_dir) if self.base_dir else get_settings().assets_dir
        key = context.asset_key.path if context.has_asset_key else [context.step_key, context.name]
        parts = list(key)
        if context.has_asset_partitions:
            parts.append(context.asset_partition_key)
        # append, never with_suffix: a partition key like "2026.01" must not lose its ".01"
        return root.joinpath(*parts[:-1], f"{parts[-1]}{suffix}")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None:
            raise TypeError(
                f"{context.asset_key.to_user_string()}: returned None; mlgov stores a value for every "
                "materialization (a skipped write would leave the previous value in place)"
            )
        if isinstance(obj, pd.DataFrame):
            path = self._path(context, ".parquet")
            writer = lambda tmp: obj.to_parquet(tmp, index=False)
        elif isinstance(obj, (dict, list, str, int, float, bool)):
            path = self._path(context, ".json")
            data = json.dumps(obj, indent=1, sort_keys=True, default=str)
            writer = lambda tmp: Path(tmp).write_text(data, encoding="utf-8")
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()}: mlgov stores only DataFrames and JSON "
                f"values (got {type(obj).__name__}); models live in the MLflow registry"
            )
        atomic_write_with(path, writer)
        other = self._path(context, ".json" if path.suffix == ".parquet" else ".parquet")
        if other.exists():  # a value that changed type must not leave its old file to be read back
            other.unlink()
        context.add_output_metadata({"mlgov/stored_at": str(path), "mlgov/sha256": sha256_file(path)})

    def load_input(self, context: InputContext) -> Any:
        for suffix in (".parquet", ".json"):
            path = self._path(context, suffix)
            if path.exists():
                if suffix == ".parquet":
                    return pd.read_parquet(path)
                return json.loads(path.read_text(encoding="utf-8"))
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()}: no stored value under "
            f"{self._path(context, '.*')}; materialize it first"
        )
