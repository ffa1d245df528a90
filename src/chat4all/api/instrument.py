"""Request metrics and the request's span, as one light ASGI middleware.

The route label is the matched route's template (`/v1/conversations/{conversation_id}/messages`),
read from the scope after routing, so label values stay bounded; requests no route matched are
`unmatched`. WebSockets pass through (the stream counts itself).
"""

from __future__ import annotations

import time

from opentelemetry.trace import Span
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat4all.observability import metrics, tracing

UNMATCHED = "unmatched"


class Instrumented:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (method, route, status) -> its histogram child: `labels()` costs more than `observe()`
        self._children: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if tracing.enabled():
            with tracing.server_span(scope["method"], _headers(scope)) as span:
                await self._measured(scope, receive, send, span)
        else:
            await self._measured(scope, receive, send, None)

    async def _measured(
        self, scope: Scope, receive: Receive, send: Send, span: Span | None
    ) -> None:
        status = 500  # unless a response starts: an exception escaped the app
        started = time.perf_counter()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            elapsed = time.perf_counter() - started
            method, route = scope["method"], _route(scope)
            key = (method, route, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = metrics.HTTP_REQUEST_DURATION.labels(
                    method, route, str(status)
                )
            child.observe(elapsed)
            if span is not None:
                span.update_name(f"{method} {route}")
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "http.response.status_code": status,
                    }
                )


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
