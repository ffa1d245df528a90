"""Request metrics and the request's span, as one light ASGI middleware.

The route label is the matched route's template (`/v1/conversations/{conversation_id}/messages`),
read from the scope after routing, so label values stay bounded; requests no route matched are
`unmatched`. WebSockets pass through (the stream counts itself).
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chat4all.observability import metrics, tracing

UNMATCHED = "unmatched"


class Instrumented:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception escaped the app
        started = time.perf_counter()

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        with tracing.server_span(method, _headers(scope) if tracing.enabled() else {}) as span:
            try:
                await self.app(scope, receive, send_and_watch)
            finally:
                route = _route(scope)
                metrics.HTTP_REQUEST_DURATION.labels(method, route, str(status)).observe(
                    time.perf_counter() - started
                )
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
