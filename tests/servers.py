"""Where the real servers the tests use listen: scripts/infra/ starts them on these addresses.

A test that needs one is marked with its name (`@pytest.mark.postgres`, ...) and asks for its URL
through `server_url`; when nothing listens there, the test fails and says how to start it. It is
never skipped: `make test` starts every server first, and `make test-fast` deselects the marks.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

DEFAULTS = {
    "postgres": "postgresql://chat4all:chat4all@127.0.0.1:5433/chat4all",
    "redis": "redis://127.0.0.1:6379/0",
    "etcd": "http://127.0.0.1:2379",
    "kafka": "127.0.0.1:9092",
    "mongo": "mongodb://127.0.0.1:27017/",
    "minio": "http://127.0.0.1:9000",  # keys: MINIO_KEYS
}
# What scripts/infra/minio.sh starts MinIO with.
MINIO_KEYS = ("chat4all", "chat4all-secret")
SERVERS = tuple(DEFAULTS)


def server_url(name: str) -> str:
    """The server's URL (CHAT4ALL_TEST_<NAME>_URL overrides the default); fails if it is down."""
    url = os.environ.get(f"CHAT4ALL_TEST_{name.upper()}_URL", DEFAULTS[name])
    parsed = urlsplit(url if "://" in url else f"tcp://{url}")
    host, port = parsed.hostname or "127.0.0.1", parsed.port
    assert port is not None, url
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        raise AssertionError(
            f"{name} is not running at {url} ({error}); start it with scripts/infra/up.sh {name}"
        ) from None
    return url


def unique_name(prefix: str) -> str:
    """A name no other test (or xdist worker) uses: for databases, key prefixes and topics."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
