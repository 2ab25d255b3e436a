"""A table and a typed description of it, passed together instead of in ``DataFrame`` attributes.

A :class:`FramedTable` is a DataFrame plus a pydantic model saying what the rows are (their lineage,
the batch they came from, the models that scored them). The asset store keeps any such value as
the Parquet table plus a JSON sidecar ``<asset>.<SIDECAR>.json`` that also names the table's sha256,
and rebuilds it for a consumer annotated with the concrete type; nothing is special-cased per type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

_SIDECARS: dict[str, type[FramedTable]] = {}


class FramedTable(ABC):
    """The contract of a "frame + typed metadata" value (subclasses are frozen dataclasses).

    ``SIDECAR`` names the sidecar file and its JSON field; each concrete class declares its own,
    distinct from every other one (checked when the class is defined).
    """

    SIDECAR: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        key = cls.__dict__.get("SIDECAR")
        if key is None:
            return  # an intermediate (abstract) class
        other = _SIDECARS.setdefault(key, cls)
        if other.__qualname__ != cls.__qualname__ or other.__module__ != cls.__module__:
            raise TypeError(f"{cls.__qualname__}: sidecar {key!r} is already used by {other.__qualname__}")
        _SIDECARS[key] = cls  # a reloaded module replaces its own class

    @property
    @abstractmethod
    def table(self) -> pd.DataFrame:
        """The rows (stored as Parquet)."""

    @property
    @abstractmethod
    def description(self) -> BaseModel:
        """What the rows are (stored in the sidecar)."""

    @classmethod
    @abstractmethod
    def from_stored(cls, table: pd.DataFrame, description: Mapping[str, Any]) -> Self:
        """The value rebuilt from a stored table and its sidecar's (already verified) description."""


def sidecar_names() -> tuple[str, ...]:
    """The ``SIDECAR`` of every concrete :class:`FramedTable` defined so far."""
    return tuple(sorted(_SIDECARS))
