"""The production profile's cross-host lock: a PostgreSQL session-level advisory lock.

Same contract as :func:`mlgov_assets.core.locks.holding` (bounded wait, then :class:`LockBusy` naming
the holder), but held by a database session instead of an OS file lock, so every host of a deployment
that talks to the same database is serialized. The lock belongs to its connection: when the holder
dies (SIGKILL, lost host) its connection closes and PostgreSQL releases the lock — nothing to clean up.
TCP keepalives (``Services.connect_kwargs``) bound how long a vanished peer's session lingers.

While held, a row in ``mlgov_lock_holders`` says who holds it (pid, host, purpose, since); a waiter
that gives up reads it, matched to the backend that really holds the lock (``pg_locks``), so a row left
by a killed holder is never blamed. psycopg2 is imported only here, inside functions: a leaf.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlgov_assets.core.errors import MlgovError

if TYPE_CHECKING:
    from mlgov_assets.core.settings import Services

__all__ = ["advisory_holder", "advisory_holding", "advisory_key"]

_POLL_SECONDS = 0.1
_TABLE = "mlgov_lock_holders"


def advisory_key(resource: str) -> int:
    """The signed 64-bit advisory-lock key of a resource name (stable across hosts and versions)."""
    return int.from_bytes(hashlib.sha256(resource.encode("utf-8")).digest()[:8], "big", signed=True)


def _connect(services: Services) -> Any:
    try:
        import psycopg2
    except ImportError as exc:  # pragma: no cover - shipped with mlgov
        raise MlgovError("the prod profile needs psycopg2 (uv sync)") from exc
    try:
        conn = psycopg2.connect(**services.connect_kwargs(services.lock_db), application_name=_app_name())
    except psycopg2.OperationalError as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise MlgovError(
            f"cannot reach PostgreSQL {services.pg_host}:{services.pg_port} database {services.lock_db} "
            f"for the promotion lock: {first} (start it: make prod-up)"
        ) from None
    conn.autocommit = True
    return conn


def _app_name() -> str:
    return f"mlgov pid {os.getpid()}@{socket.gethostname()}"[:63]


def _ensure_table(cur: Any) -> None:
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {_TABLE} (lock_key bigint PRIMARY KEY, backend_pid integer NOT NULL, "
        "pid integer NOT NULL, host text NOT NULL, purpose text NOT NULL, since timestamptz NOT NULL DEFAULT now())"
    )


def _split(key: int) -> tuple[int, int]:
    """``pg_locks`` shows a bigint key as (classid, objid): its high and low 32 bits, unsigned."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def advisory_holder(services: Services, resource: str) -> str:
    """Who holds the advisory lock of ``resource`` now, in words."""
    key = advisory_key(resource)
    classid, objid = _split(key)
    conn = _connect(services)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT l.pid, a.application_name, a.client_addr::text FROM pg_locks l "
                "LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1 AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                (classid, objid),
            )
            rows = cur.fetchall()
            if not rows:
                return "nobody now (it was just released)"
            backend, app, addr = rows[0]
            row = None
            with contextlib.suppress(Exception):
                cur.execute(
                    f"SELECT pid, host, purpose, since FROM {_TABLE} WHERE lock_key = %s AND backend_pid = %s",
                    (key, backend),
                )
                row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        return f"database session {backend} ({str(app)[:63]}, from {addr or 'local socket'})"
    pid, host, purpose, since = row
    return (
        f"pid {pid} on {str(host)[:64]} (database session {backend}, alive), {str(purpose)[:120]}, "
        f"since {since.isoformat(timespec='seconds') if hasattr(since, 'isoformat') else since}"
    )


@contextlib.contextmanager
def advisory_holding(
    services: Services, resource: str, *, purpose: str, timeout: float, shared: bool = False
) -> Iterator[None]:
    """Hold the advisory lock of ``resource`` (exclusive, or ``shared`` for readers) for the block;
    poll ``pg_try_advisory_lock`` for at most ``timeout`` seconds, then raise ``LockBusy`` naming the
    holder. The lock is released at the end of the block, or by PostgreSQL when the session dies."""
    from mlgov_assets.core.locks import TIMEOUT_ENV, LockBusy

    key = advisory_key(resource)
    deadline = time.monotonic() + timeout
    conn = _connect(services)
    try:
        with conn.cursor() as cur:
            fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
            while True:
                cur.execute(f"SELECT {fn}(%s)", (key,))
                if cur.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    raise LockBusy(
                        f"gave up after {timeout:g} s waiting for the database lock '{resource}': held by "
                        f"{advisory_holder(services, resource)}; retry when it finishes (or raise {TIMEOUT_ENV})"
                    )
                time.sleep(_POLL_SECONDS)
            if not shared:
                with contextlib.suppress(Exception):  # who holds it is advisory: never block on it
                    _ensure_table(cur)
                    cur.execute(
                        f"INSERT INTO {_TABLE} (lock_key, backend_pid, pid, host, purpose) "
                        "VALUES (%s, pg_backend_pid(), %s, %s, %s) ON CONFLICT (lock_key) DO UPDATE SET "
                        "backend_pid = EXCLUDED.backend_pid, pid = EXCLUDED.pid, host = EXCLUDED.host, "
                        "purpose = EXCLUDED.purpose, since = now()",
                        (key, os.getpid(), socket.gethostname(), purpose[:500]),
                    )
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a lost session released it already
                    cur.execute(f"SELECT {'pg_advisory_unlock_shared' if shared else 'pg_advisory_unlock'}(%s)", (key,))
    finally:
        conn.close()
