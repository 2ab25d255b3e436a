"""Databases of the production profile: reachability, create-if-missing, drop (psycopg2, lazily)."""

from __future__ import annotations

import re
from typing import Any

from mlgov_assets.core.errors import ConfigError
from mlgov_assets.core.settings import Services

__all__ = ["create_database", "drop_database", "ensure_database", "postgres_problem"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _checked(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"database name {name[:80]!r} must match {_NAME.pattern} (lowercase, digits, underscores)")
    return name


def _admin(services: Services) -> Any:
    import psycopg2

    conn = psycopg2.connect(**{**services.connect_kwargs("postgres"), "connect_timeout": 5})
    conn.autocommit = True
    return conn


def postgres_problem(services: Services) -> str | None:
    """None when PostgreSQL answers at ``services``; else one line saying what failed."""
    try:
        conn = _admin(services)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return f"PostgreSQL at {services.pg_host}:{services.pg_port} (user {services.pg_user}) does not answer: {first}"
    conn.close()
    return None


def ensure_database(services: Services, name: str) -> bool:
    """Create database ``name`` if missing; True when it was created."""
    conn = _admin(services)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (_checked(name),))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{name}"')
            return True
    finally:
        conn.close()


def create_database(services: Services, name: str) -> None:
    """Create database ``name`` (it must not exist)."""
    conn = _admin(services)
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{_checked(name)}"')
    finally:
        conn.close()


def drop_database(services: Services, name: str) -> None:
    """Drop database ``name`` (its sessions are terminated first); nothing if it does not exist."""
    conn = _admin(services)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)')
    finally:
        conn.close()
