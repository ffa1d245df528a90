"""Host names to IP addresses, through the system's resolver (the event loop's getaddrinfo)."""

from __future__ import annotations

import asyncio
import socket

from chat4all.domain.errors import InvalidInput

RESOLVE_TIMEOUT_SECONDS = 5.0


class SystemResolver:
    """`chat4all.ports.webhooks.HostResolver` on the operating system's resolver."""

    def __init__(self, timeout: float = RESOLVE_TIMEOUT_SECONDS) -> None:
        self._timeout = timeout

    async def resolve(self, host: str, port: int) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), self._timeout
            )
        except (OSError, UnicodeError, ValueError) as e:  # ValueError: a NUL in the name
            raise InvalidInput(f"the host {host!r} does not resolve: {e}") from e
        except TimeoutError as e:
            raise InvalidInput(f"resolving the host {host!r} took over {self._timeout}s") from e
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise InvalidInput(f"the host {host!r} resolves to no address")
        return addresses
