"""Webhook requests over httpx, to an address fixed in advance.

The request goes to the IP address the SSRF check approved, never to a second lookup of the
name (which a rebinding DNS server could answer differently); the `Host` header and, for
HTTPS, the TLS server name (SNI and certificate check) stay the URL's host.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from chat4all.ports.webhooks import HttpResult

DEFAULT_TIMEOUT_SECONDS = 10.0


class HttpxWebhookSender:
    """`chat4all.ports.webhooks.WebhookSender` on one pooled httpx client."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_SECONDS, max_connections: int = 100):
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=max_connections),
            follow_redirects=False,  # a redirect could lead anywhere, past the SSRF check
            trust_env=False,  # no proxy from the environment: the address is the one checked
        )

    async def post(
        self, url: str, address: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResult:
        try:
            target = httpx.URL(url)
            request = self._client.build_request(
                "POST",
                target.copy_with(host=address),
                headers={**headers, "host": _host_header(target)},
                content=body,
                extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
            )
            # The answer's body is not read: only its status counts.
            response = await self._client.send(request, stream=True)
            await response.aclose()
        except httpx.TimeoutException as e:
            return HttpResult(None, f"timed out after {self._timeout}s ({type(e).__name__})")
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as e:
            return HttpResult(None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
        return HttpResult(response.status_code, None)

    async def close(self) -> None:
        await self._client.aclose()


def _host_header(url: httpx.URL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{host}:{url.port}" if url.port is not None else host
