"""``mlgov serve``'s FastAPI app: a thin layer over :class:`~mlgov_assets.core.serving.service.ScoringService`.

The body is read here with its size capped (``Content-Length`` first, then while streaming) and
handed to the service as bytes, so malformed JSON, wrong types and unknown columns are judged by the
project's own rules and answered 4xx with the field and rule; scoring runs on a worker thread so
``/health`` answers while a large request scores.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mlgov_assets.core.serving.requests import PredictRequest, RequestRefused
from mlgov_assets.core.serving.service import NotReady, PredictResponse

if TYPE_CHECKING:
    from mlgov_assets.core.serving.service import ScoringService

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestRefused(413, f"request body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRefused(413, f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(service: ScoringService, *, manage: bool = True) -> FastAPI:
    """The app; ``manage``: start the service's threads with the app and stop them with it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage:
            service.start()
        try:
            yield
        finally:
            if manage:
                service.stop()

    app = FastAPI(
        title=f"mlgov serve: {service.project.spec.name}",
        description="Online scoring with the governed champion (verified artifacts) and a shadow challenger.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestRefused)
    async def refused(request: Request, exc: RequestRefused) -> JSONResponse:
        if exc.status == 413:
            service.metrics.refused(413)
        return JSONResponse(exc.to_dict(), status_code=exc.status)

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, exc: NotReady) -> JSONResponse:
        return JSONResponse({"error": f"not ready: {exc}"}, status_code=503)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
            }
        },
        responses={
            400: {"description": "malformed JSON"},
            413: {"description": "body too large"},
            422: {"description": "refused: field and rule named"},
            503: {"description": "no verified champion"},
        },
    )
    async def predict(
        request: Request, reasons: int | None = Query(default=None, description="top reasons per row")
    ) -> PredictResponse:
        body = await _body(request, service.opts.max_body_bytes)
        return await run_in_threadpool(service.predict, body, reasons=reasons)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"description": "no verified champion loaded (reason given)"}})
    async def ready() -> JSONResponse:
        state = service.holder.state()
        body = {
            "ready": state.champion is not None,
            "champion_version": state.champion,
            "shadow_version": state.shadow,
            "problem": state.problem,
        }
        return JSONResponse(body, status_code=200 if state.champion is not None else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        state = service.holder.state()
        text = service.metrics.exposition(
            champion=state.champion,
            shadow=state.shadow,
            ready=state.champion is not None,
            shadow_queue=service.shadow_pending(),
        )
        return PlainTextResponse(text, media_type=PROMETHEUS)

    return app
