"""Databases of the production profile: reachability, create-if-missing, drop (psycopg2, lazily)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlgov_assets.core.errors import ConfigError
from mlgov_assets.core.settings import Services

__all__ = ["create_database", "drop_database", "ensure_database", "postgres_problem"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"database name {name[:80]!r} must match {_NAME.pattern} (lowercase, digits, underscores)")
    return name


@contextmanager
def _admin_cursor(services: Services) -> Iterator[Any]:
    """A cursor on the ``postgres`` maintenance database (autocommit: CREATE/DROP DATABASE need it)."""
    import psycopg2

    conn = psycopg2.connect(**{**services.connect_kwargs("postgres"), "connect_timeout": 5})
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def postgres_problem(services: Services) -> str | None:
    """None when PostgreSQL answers at ``services``; else one line saying what failed."""
    try:
        with _admin_cursor(services) as cur:
            cur.execute("SELECT 1")
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return f"PostgreSQL at {services.pg_host}:{services.pg_port} (user {services.pg_user}) does not answer: {first}"
    return None


def ensure_database(services: Services, name: str) -> bool:
    """Create database ``name`` if missing; True when it was created."""
    with _admin_cursor(services) as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_checked(name),))
        if cur.fetchone():
            return False
        cur.execute(f'CREATE DATABASE "{name}"')
        return True


def create_database(services: Services, name: str) -> None:
    """Create database ``name`` (it must not exist)."""
    with _admin_cursor(services) as cur:
        cur.execute(f'CREATE DATABASE "{_checked(name)}"')


def drop_database(services: Services, name: str) -> None:
    """Drop database ``name`` (its sessions are terminated first); nothing if it does not exist."""
    with _admin_cursor(services) as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')
