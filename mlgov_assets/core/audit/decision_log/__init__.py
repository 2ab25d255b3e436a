"""Hash-chained, append-only decision log (JSONL): every governance decision, verifiably in order.

``records`` (format, parsing, reading), ``verify`` (chain and head checks), ``writer``
(:class:`DecisionLog`). The public names are re-exported here.
"""

from mlgov_assets.core.audit.decision_log.records import (
    GENESIS_HASH,
    KINDS,
    RECORD_FIELDS,
    Head,
    Kind,
    LogIntegrityError,
    Record,
    head_path,
    read_head,
    read_records,
    read_witness,
    records,
    witness_path,
)
from mlgov_assets.core.audit.decision_log.verify import VerifyResult, verify
from mlgov_assets.core.audit.decision_log.writer import DecisionLog

__all__ = [
    "GENESIS_HASH",
    "KINDS",
    "RECORD_FIELDS",
    "DecisionLog",
    "Head",
    "Kind",
    "LogIntegrityError",
    "Record",
    "VerifyResult",
    "head_path",
    "read_head",
    "read_records",
    "read_witness",
    "records",
    "verify",
    "witness_path",
]
