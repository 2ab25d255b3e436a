"""Asset values on disk as Parquet (tables) or JSON (everything else): never pickle.

Dagster's default filesystem IO manager pickles every output and unpickles it downstream; a
governance tool must not execute bytes it did not hash. This one stores only data formats,
writes atomically, and records each file's sha256 in the materialization's metadata.

A :class:`FramedTable` (a table plus its typed description: ``LineagedFrame``, ``AcceptedBatch``,
``ScoredBatch``) is stored as its Parquet table plus a ``.<SIDECAR>.json`` sidecar that names the
table's sha256; a pydantic result as its JSON. Tables never carry pandas attributes. What a consumer
receives follows its annotation: a ``FramedTable`` type (sidecar required, checked against the
table's bytes), a pydantic model (parsed), otherwise the plain DataFrame or JSON value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableIOManager, DagsterInvariantViolationError, InputContext, OutputContext
from pydantic import BaseModel

from mlgov_assets.core.data.lineage import LineageError
from mlgov_assets.core.errors import MlgovError
from mlgov_assets.core.framed import FramedTable, sidecar_names
from mlgov_assets.core.integrity import atomic_write_with, sha256_file
from mlgov_assets.core.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd


def _suffixes() -> tuple[str, ...]:
    """Every file a value may be stored as (the sidecars of the framed types defined so far; the
    Dagster definitions import them all)."""
    return (".parquet", ".json", *(f".{name}.json" for name in sidecar_names()))


def _wanted_type(context: InputContext) -> Any:
    """The consumer's annotation (Any when the context was built without one, as in unit tests)."""
    try:
        return context.dagster_type.typing_type
    except DagsterInvariantViolationError:
        return Any


class MlgovIOManager(ConfigurableIOManager):
    base_dir: str | None = None

    def _path(self, context: InputContext | OutputContext, suffix: str) -> Path:
        root = Path(self.base_dir) if self.base_dir else get_settings().assets_dir
        if context.has_asset_key:
            key = context.asset_key.path
        elif isinstance(context, OutputContext):
            key = [context.step_key, context.name]
        else:  # an input always names the asset it reads; only outputs can lack a key
            raise MlgovError("mlgov's IO manager reads asset values only")
        parts = list(key)
        if context.has_asset_partitions:
            parts.append(context.asset_partition_key)
        # append, never with_suffix: a partition key like "2026.01" must not lose its ".01"
        return root.joinpath(*parts[:-1], f"{parts[-1]}{suffix}")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        import pandas as pd  # here, not at module level: the code location loads without pandas

        name = context.asset_key.to_user_string() if context.has_asset_key else context.name
        if obj is None:
            raise TypeError(
                f"{name}: returned None; mlgov stores a value for every "
                "materialization (a skipped write would leave the previous value in place)"
            )
        if isinstance(obj, FramedTable):
            written = self._write_table(context, obj.table, obj)
        elif isinstance(obj, pd.DataFrame):
            written = self._write_table(context, obj, None)
        elif isinstance(obj, BaseModel):
            written = self._write_json(context, obj.model_dump(mode="json"))
        elif isinstance(obj, (dict, list, str, int, float, bool)):
            written = self._write_json(context, obj)
        else:
            raise TypeError(
                f"{name}: mlgov stores only DataFrames and JSON "
                f"values (got {type(obj).__name__}); models live in the MLflow registry"
            )
        for suffix in _suffixes():  # a value that changed type must not leave an old file to be read back
            path = self._path(context, suffix)
            if suffix not in written and path.exists():
                path.unlink()
        (main_path, main_sha), *_ = written.values()
        meta = {"mlgov/stored_at": str(main_path), "mlgov/sha256": main_sha}
        for suffix, (_, sha) in list(written.items())[1:]:
            meta[f"mlgov/{suffix.removeprefix('.').removesuffix('.json')}_sha256"] = sha  # lineage_sha256, …
        context.add_output_metadata(meta)

    def _write_table(
        self, context: OutputContext, frame: pd.DataFrame, framed: FramedTable | None
    ) -> dict[str, tuple[Path, str]]:
        """The table (first entry) and, for a framed value, its sidecar naming the table's sha256."""
        import pandas as pd

        path = self._path(context, ".parquet")
        # a new frame over the same data, without the producer's pandas attributes (which Parquet
        # would keep): a table's description lives in its sidecar only
        bare = pd.DataFrame(frame, copy=False)
        atomic_write_with(path, lambda tmp: bare.to_parquet(tmp, index=False))
        written = {".parquet": (path, sha256_file(path))}
        if framed is not None:
            key = framed.SIDECAR
            side = self._path(context, f".{key}.json")
            doc = {key: framed.description.model_dump(mode="json"), "table_sha256": written[".parquet"][1]}
            text = json.dumps(doc, indent=1, sort_keys=True)
            atomic_write_with(side, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
            written[f".{key}.json"] = (side, sha256_file(side))
        return written

    def _write_json(self, context: OutputContext, value: Any) -> dict[str, tuple[Path, str]]:
        path = self._path(context, ".json")
        data = json.dumps(value, indent=1, sort_keys=True, default=str)
        atomic_write_with(path, lambda tmp: Path(tmp).write_text(data, encoding="utf-8"))
        return {".json": (path, sha256_file(path))}

    def load_input(self, context: InputContext) -> Any:
        import pandas as pd

        wanted = _wanted_type(context)
        table, doc = self._path(context, ".parquet"), self._path(context, ".json")
        if table.exists():
            if isinstance(wanted, type) and issubclass(wanted, FramedTable):
                return wanted.from_stored(pd.read_parquet(table), self._description(context, table, wanted.SIDECAR))
            return pd.read_parquet(table)
        if doc.exists():
            value = json.loads(doc.read_text(encoding="utf-8"))
            if isinstance(wanted, type) and issubclass(wanted, BaseModel):
                return wanted.model_validate(value)
            return value
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()}: no stored value under "
            f"{self._path(context, '.*')}; materialize it first"
        )

    def _description(self, context: InputContext, table: Path, key: str) -> dict[str, Any]:
        """The sidecar's description, refused when absent or written for other table bytes."""
        side = self._path(context, f".{key}.json")
        if not side.exists():
            raise LineageError(f"{table}: stored without its {key} ({side.name} missing); re-materialize it")
        doc = json.loads(side.read_text(encoding="utf-8"))
        if doc.get("table_sha256") != sha256_file(table):
            raise LineageError(f"{side}: describes other bytes than {table.name}; re-materialize it")
        description: dict[str, Any] = doc[key]
        return description
