"""Where a table came from, passed explicitly beside the table.

A :class:`LineagedFrame` is what the data and feature assets produce: the DataFrame and its
:class:`DataLineage` (role, project-relative source path, DVC md5). Consumers that record
provenance (training, fairness) read ``.lineage``; nothing travels in the DataFrame's own attributes,
so a missing lineage is an error, never an ``"unknown"`` tag on a registered model. It is a
:class:`FramedTable`: stored as Parquet plus a ``.lineage.json`` sidecar.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, field_validator

from mlgov_assets.core.data.split import SplitRecord
from mlgov_assets.core.errors import InputError
from mlgov_assets.core.framed import FramedTable

if TYPE_CHECKING:
    import pandas as pd

_MD5 = re.compile(r"^[0-9a-f]{32}$")


class LineageError(InputError):
    """A table that must carry its lineage does not (or carries an invalid one)."""


class DataLineage(BaseModel):
    """The identity of a dataset as the training path read it (recorded on every model version)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    role: Literal["training", "holdout"]
    source: str
    """The file, relative to the project (DVC) directory."""
    dvc_md5: str
    """md5 of the file's bytes, as DVC records it (the training data's Dagster DataVersion)."""
    model_features: tuple[str, ...] | None = None
    """Set on feature tables: the columns the model is fitted on."""
    split: SplitRecord | None = None
    """Set when the rows are one part of a seeded holdout split of ``source`` (both parts carry it)."""

    @field_validator("dvc_md5")
    @classmethod
    def _is_md5(cls, value: str) -> str:
        if not _MD5.match(value):
            raise ValueError(f"dvc_md5 must be 32 lowercase hex characters, got {value!r}")
        return value


@dataclass(frozen=True)
class LineagedFrame(FramedTable):
    """A DataFrame and the lineage of its rows (the value of the data and feature assets)."""

    SIDECAR: ClassVar[str] = "lineage"

    frame: pd.DataFrame
    lineage: DataLineage

    @property
    def table(self) -> pd.DataFrame:
        return self.frame

    @property
    def description(self) -> DataLineage:
        return self.lineage

    @classmethod
    def from_stored(cls, table: pd.DataFrame, description: Mapping[str, Any]) -> Self:
        return cls(frame=table, lineage=DataLineage.model_validate(description))

    def derive(self, frame: pd.DataFrame, **changes: object) -> LineagedFrame:
        """A table computed from this one: same lineage, with ``changes`` applied."""
        return LineagedFrame(frame=frame, lineage=DataLineage.model_validate(self.lineage.model_dump() | changes))
