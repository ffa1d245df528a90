"""The HTTP framework's cost of the send route, in process and without the network:
`python -m bench.route`.

The ASGI app is called directly with a stub platform whose services answer at once, so what is
timed is routing, dependency solving, body validation, the endpoint and the response: the part
of a send that the load scenarios cannot separate from the rest, measured steadily enough to
compare two versions of the API layer (the load runs vary by ±10-15 % on this VM).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import MutableMapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson

from chat4all.api.app import create_app
from chat4all.services.interfaces import Principal

USER = uuid.uuid4()


class _Auth:
    async def authenticate(self, token: str) -> Principal:
        return Principal(USER, "jti", 9e12)


class _Messages:
    async def send(self, sender: Any, cid: Any, mid: Any, *rest: Any) -> Any:
        m = SimpleNamespace(
            message_id=mid, conversation_id=cid, sequence_number=1, created_at=datetime.now(UTC)
        )
        return SimpleNamespace(message=m, created=True)


async def _no_platform() -> Any:
    raise RuntimeError("the stub platform is set directly")


async def measure(requests: int) -> float:
    """Microseconds per send request."""
    app = create_app(_no_platform)
    app.state.platform = SimpleNamespace(auth=_Auth(), messages=_Messages())
    path = f"/v1/conversations/{uuid.uuid4()}/messages"

    async def call(body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"bench"),
                (b"content-type", b"application/json"),
                (b"authorization", b"Bearer token"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        return status[0]

    bodies = [
        orjson.dumps({"message_id": str(uuid.uuid4()), "payload": {"type": "text", "text": "hi"}})
        for _ in range(requests)
    ]
    assert await call(bodies[0]) == 202
    start = time.perf_counter()
    for body in bodies:
        await call(body)
    return (time.perf_counter() - start) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = [asyncio.run(measure(args.requests)) for _ in range(args.repeat)]
    print(
        f"send route, in process: {min(runs):.1f} us per request "
        f"(best of {args.repeat}; all: {', '.join(f'{r:.1f}' for r in runs)})"
    )


if __name__ == "__main__":
    main()
