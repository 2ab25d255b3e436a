"""Quoting raw input in evidence: the one helper reports, logs, alerts and webhooks use.

Raw values come from files mlgov does not control (a 64 MB field, control characters, another
file's content), so they are never copied verbatim: a value longer than the cap is quoted as a short
prefix plus its sha256 and length, and control characters are escaped so a value cannot forge a
log line. The cap comes from the policy (``ingestion.quote_chars``).
"""

from __future__ import annotations

import hashlib

from mlgov_assets.core.governance.policy import Ingestion

#: The policy's default (``ingestion.quote_chars``), for callers that were given no policy.
DEFAULT_QUOTE_CHARS: int = Ingestion().quote_chars


def _escape(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def quote(value: object, limit: int = DEFAULT_QUOTE_CHARS) -> str:
    """``value`` as text fit for evidence: whole (control characters escaped) if it has at most
    ``limit`` characters, else ``<prefix>… [<n> chars, sha256 <hex>]``."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        escaped = _escape(text)
        if len(escaped) <= 4 * limit:
            return escaped
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_escape(text[:limit])[: 4 * limit]}… [{len(text)} chars, sha256 {digest}]"


def quote_bytes(data: bytes, limit: int = DEFAULT_QUOTE_CHARS) -> str:
    """Raw bytes as evidence: a printable prefix (undecodable bytes as ``\\xNN``), length, sha256."""
    digest = hashlib.sha256(data).hexdigest()
    prefix = _escape(data[:limit].decode("utf-8", "backslashreplace"))[: 4 * limit]
    return f"{prefix}{'…' if len(data) > limit else ''} [{len(data)} bytes, sha256 {digest}]"


def quote_names(names: list[str], limit: int = DEFAULT_QUOTE_CHARS, *, most: int = 10) -> str:
    """A list of raw names (e.g. unknown columns), each quoted, at most ``most`` of them."""
    shown = ", ".join(repr(quote(n, limit)) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
