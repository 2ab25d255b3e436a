"""The approval API: approve or reject the staged version over HTTP, behind an authenticating proxy.

Dagster OSS has no authentication, and neither has the ``mlgov`` CLI (it records ``$MLGOV_ACTOR`` or
the OS user as given). A deployment that needs a verified approver puts this small service behind
the organisation's authenticating proxy (oauth2-proxy, an ingress with OIDC, …), which signs the
person in and forwards their identity in a header (e.g. ``X-Forwarded-User``). The service:

- takes the approver's identity **only** from that configured header (``MLGOV_IDENTITY_HEADER`` or
  ``--identity-header``; it will not start without one), and only from a peer in the trusted proxy
  list (default: loopback, i.e. a proxy on the same host): anything else is refused (401/403), so a
  client that reaches it directly cannot claim a name;
- records each decision through the same ``approve_candidate`` job as ``mlgov approve`` (a Dagster
  run; the decision log says which header and proxy identified the approver), so separation of
  duties, approver groups, quorum and evidence binding are the core's, not this module's;
- binds 127.0.0.1 by default.

Endpoints: ``GET /health``; ``GET /approvals`` (the requests awaiting approval); ``POST
/approvals/{version}`` with ``{"decision": "approve"|"reject", "reason": "..."}``: 200 with the
outcome, 409 when refused (the message says why), 500 on an error. FastAPI is imported only here.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime
import threading
from collections.abc import Collection
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

if TYPE_CHECKING:
    from fastapi import FastAPI

IDENTITY_HEADER_ENV = "MLGOV_IDENTITY_HEADER"
TRUSTED_PROXIES_ENV = "MLGOV_TRUSTED_PROXIES"
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1", "::1")
_MAX_IDENTITY = 200


class DecisionRequest(BaseModel):
    """One person's decision on a staged version."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


def _identity(raw: str | None) -> str | None:
    """The header's identity if it is a plausible one (printable, bounded), else None."""
    value = (raw or "").strip()
    if not value or len(value) > _MAX_IDENTITY or not value.isprintable():
        return None
    return value


def create_app(identity_header: str, trusted_proxies: Collection[str] = DEFAULT_TRUSTED_PROXIES) -> "FastAPI":
    """The API for the selected project (``MLGOV_PROJECT_SPEC`` / ``--project``)."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import JSONResponse

    from mlgov_assets.commands.approval import decide_via_job, status_hook
    from mlgov_assets.core.settings import get_settings

    header = identity_header.strip()
    if not header:
        raise ValueError("an identity header is required (e.g. X-Forwarded-User)")
    trusted = frozenset(trusted_proxies)
    one_at_a_time = threading.Lock()
    app = FastAPI(title="mlgov approvals", description=__doc__)

    def who(request: Request) -> str:
        peer = request.client.host if request.client else ""
        if peer not in trusted:
            raise HTTPException(
                403, f"requests must come through the authenticating proxy ({', '.join(sorted(trusted))})"
            )
        actor = _identity(request.headers.get(header))
        if actor is None:
            raise HTTPException(401, f"no usable identity in the {header} header: sign in through the proxy")
        return actor

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/approvals")
    def approvals(request: Request) -> dict[str, JsonValue]:
        who(request)
        return {"project": get_settings().project_name, **status_hook(get_settings())}

    @app.post("/approvals/{version}")
    def decide(version: int, body: DecisionRequest, request: Request) -> JSONResponse:
        actor = who(request)
        via = (
            f"approval API: identity from header {header} set by proxy {request.client.host if request.client else '?'}"
        )
        with one_at_a_time:
            res = decide_via_job(body.decision, version, body.reason, actor=actor, via=via)
        if res.outcome is not None:
            return JSONResponse({"ok": True, "run_id": res.run_id, **res.outcome.model_dump(mode="json")})
        status = 409 if res.refused else 500
        return JSONResponse({"ok": False, "refused": res.refused, "error": res.error, "run_id": res.run_id}, status)

    return app
