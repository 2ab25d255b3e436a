"""Where OpenLineage events go, and emitting them without ever failing the caller.

Configuration (environment, read per emission):

- ``MLGOV_OPENLINEAGE=off`` turns emission off (default on).
- ``MLGOV_OPENLINEAGE_FILE``: the JSON-lines file (default ``$MLGOV_HOME/openlineage/events.jsonl``,
  the code location's state directory): one event per line, appended. Always written when on.
- ``MLGOV_OPENLINEAGE_URL``: also POST each event to ``URL/api/v1/lineage`` (Marquez, DataHub's
  OpenLineage endpoint, …); ``MLGOV_OPENLINEAGE_ENDPOINT`` overrides the path,
  ``MLGOV_OPENLINEAGE_API_KEY`` is sent as a bearer token (only over HTTPS or to a loopback host),
  ``MLGOV_OPENLINEAGE_TIMEOUT`` (seconds, default 5) bounds each request; no retries, so a server
  that is down costs one timeout per event batch, not minutes.
- ``MLGOV_OPENLINEAGE_NAMESPACE``: the job and dataset namespace (default ``mlgov``).

The library's transports are built explicitly: its ambient configuration (``openlineage.yml``,
``OPENLINEAGE_*``) is not read, and the client's environment-variable facets are never added.
A transport failure (unwritable file, server down) is logged and reported, never raised.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

    from mlgov_assets.core.settings import Settings

__all__ = ["EmitReport", "OpenLineageConfig", "TransportStatus", "claim_run", "emit", "event_json", "status"]

log = logging.getLogger("mlgov.openlineage")
_OFF = {"0", "off", "false", "no", "disabled"}


@dataclass(frozen=True)
class OpenLineageConfig:
    """Resolved transport settings (build with :meth:`from_env`)."""

    enabled: bool
    file: Path
    namespace: str = "mlgov"
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    timeout: float = 5.0
    api_key: str | None = field(default=None, repr=False)

    @property
    def state_dir(self) -> Path:
        """Where emission keeps its own state (which runs were emitted): beside the default file."""
        return self.file.parent

    @classmethod
    def from_env(cls, settings: Settings, env: Mapping[str, str] | None = None) -> OpenLineageConfig:
        e = os.environ if env is None else env
        default_file = settings.location / "openlineage" / "events.jsonl"
        try:
            timeout = float(e.get("MLGOV_OPENLINEAGE_TIMEOUT") or 5.0)
        except ValueError:
            timeout = 5.0
        return cls(
            enabled=(e.get("MLGOV_OPENLINEAGE") or "on").strip().lower() not in _OFF,
            file=Path(e.get("MLGOV_OPENLINEAGE_FILE") or default_file),
            namespace=e.get("MLGOV_OPENLINEAGE_NAMESPACE") or "mlgov",
            url=(e.get("MLGOV_OPENLINEAGE_URL") or "").strip() or None,
            endpoint=e.get("MLGOV_OPENLINEAGE_ENDPOINT") or "api/v1/lineage",
            timeout=max(0.1, min(timeout, 60.0)),
            api_key=e.get("MLGOV_OPENLINEAGE_API_KEY") or None,
        )


class EmitReport(BaseModel):
    """What one emission did: events written to the file / sent over HTTP, and every failure."""

    model_config = ConfigDict(extra="forbid")

    events: int
    file: str | None = None
    written: int = 0
    url: str | None = None
    sent: int = 0
    errors: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def event_json(event: RunEvent) -> str:
    """One event as the single-line JSON both transports send (keys sorted, nulls dropped)."""
    from openlineage.client.serde import Serde

    return Serde.to_json(event)


def _loopback(host: str | None) -> bool:
    if host in (None, ""):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_problem(url: str, api_key: str | None) -> str | None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return f"MLGOV_OPENLINEAGE_URL {url!r} is not an http(s) URL: events not sent"
    if api_key and parsed.scheme != "https" and not _loopback(parsed.hostname):
        return f"refusing to send MLGOV_OPENLINEAGE_API_KEY over plain HTTP to {parsed.hostname}: events not sent"
    return None


def _write_file(path: Path, events: Sequence[RunEvent]) -> int:
    from openlineage.client.transport.file import FileConfig, FileTransport

    path.parent.mkdir(parents=True, exist_ok=True)
    transport = FileTransport(FileConfig(log_file_path=str(path), append=True))
    for e in events:
        transport.emit(e)
    return len(events)


def _send_http(cfg: OpenLineageConfig, url: str, events: Sequence[RunEvent]) -> int:
    from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

    auth = ApiKeyTokenProvider({"apiKey": cfg.api_key}) if cfg.api_key else None
    config = HttpConfig(url=url, endpoint=cfg.endpoint, timeout=cfg.timeout, retry={"total": 0})
    if auth is not None:
        config.auth = auth
    transport = HttpTransport(config)
    sent = 0
    for e in events:
        transport.emit(e)  # raises on a connection error or an HTTP error status
        sent += 1
    return sent


def emit(events: Sequence[RunEvent], cfg: OpenLineageConfig) -> EmitReport:
    """Write ``events`` to the file and, if configured, the HTTP endpoint. Never raises: each
    failure is logged (logger ``mlgov.openlineage``) and listed in the report."""
    report = EmitReport(events=len(events))
    if not cfg.enabled or not events:
        return report
    report.file = str(cfg.file)
    try:
        report.written = _write_file(cfg.file, events)
    except Exception as exc:
        report.errors.append(f"OpenLineage file {cfg.file}: {type(exc).__name__}: {exc}")
    if cfg.url:
        parsed = urlparse(cfg.url)
        report.url = f"{parsed.scheme}://{parsed.hostname}{f':{parsed.port}' if parsed.port else ''}"  # no secrets
        problem = _http_problem(cfg.url, cfg.api_key)
        if problem:
            report.errors.append(problem)
        else:
            try:
                report.sent = _send_http(cfg, cfg.url, events)
            except Exception as exc:
                report.errors.append(f"OpenLineage HTTP {report.url}: {type(exc).__name__}: {str(exc)[:300]}")
    for error in report.errors:
        log.warning("OpenLineage emission failed (the run is unaffected): %s", error)
    return report


def claim_run(cfg: OpenLineageConfig, run_id: str) -> bool:
    """Claim the emission of a Dagster run's events (True once per run): the CLI and the sensor may
    both see a run end. The claim is a file created exclusively under ``state_dir/emitted``."""
    safe = "".join(c for c in run_id if c.isalnum() or c == "-")[:64] or "unknown"
    folder = cfg.state_dir / "emitted"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / safe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:  # cannot record the claim: emit anyway (a duplicate beats a gap)
        log.warning("OpenLineage: cannot record that run %s was emitted (%s)", safe, exc)
        return True
    os.close(fd)
    return True


class TransportStatus(BaseModel):
    """``mlgov status``: where events go (the URL as scheme://host:port only) and how many runs went."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    file: str
    file_bytes: int | None
    url: str | None
    runs_emitted: int


def status(cfg: OpenLineageConfig) -> TransportStatus:
    parsed = urlparse(cfg.url) if cfg.url else None
    try:
        size: int | None = cfg.file.stat().st_size
    except OSError:
        size = None
    try:
        runs = sum(1 for _ in (cfg.state_dir / "emitted").iterdir())
    except OSError:
        runs = 0
    return TransportStatus(
        enabled=cfg.enabled,
        file=str(cfg.file),
        file_bytes=size,
        url=f"{parsed.scheme}://{parsed.hostname}{f':{parsed.port}' if parsed.port else ''}" if parsed else None,
        runs_emitted=runs,
    )
