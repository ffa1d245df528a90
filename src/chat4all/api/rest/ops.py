"""Operations: liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from chat4all.api.problems import problem
from chat4all.api.rest.deps import PlatformDep
from chat4all.observability import metrics

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (nothing else is asked)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "What is down", "content": {"application/problem+json": {}}}},
)
async def readyz(platform: PlatformDep, request: Request) -> JSONResponse:
    """Every store, server and worker this process depends on answers, each within a short
    timeout; otherwise 503 problem+json whose `checks` names what is down and why."""
    checks = await platform.check()
    down = {name: why for name, why in checks.items() if why}
    report = {name: why or "ok" for name, why in checks.items()}
    if not down:
        return JSONResponse({"status": "ok", "checks": report})
    return problem(
        503,
        "not-ready",
        "Not ready",
        "down: " + "; ".join(f"{name} ({why})" for name, why in down.items()),
        instance=request.url.path,
        down=sorted(down),
        checks=report,
    )


@router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """This process's metrics in the Prometheus text format (docs/observability.md)."""
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE_LATEST)
