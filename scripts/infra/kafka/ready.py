"""Exit 0 once the Kafka broker at HOST:PORT answers a Metadata request listing itself.

Standard library only (it runs before any virtualenv exists): one Metadata v4 request (no
topics), read the broker list from the reply. An open port is not enough: the listener accepts
connections before the broker has caught up with the metadata log and been unfenced.
Usage: python3 ready.py HOST:PORT SECONDS [PID]   (with PID: give up at once if it has exited)
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time

METADATA, VERSION = 3, 4


def brokers(host: str, port: int) -> int:
    client_id = b"chat4all-ready"
    header = struct.pack(">hhih", METADATA, VERSION, 1, len(client_id)) + client_id
    body = struct.pack(">i?", 0, False)  # an empty topic list, no auto-creation
    request = header + body
    with socket.create_connection((host, port), timeout=2) as conn:
        conn.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read(conn, 4))[0]
        reply = _read(conn, size)
    # correlation id, throttle time, then the broker array's length
    correlation, _throttle, count = struct.unpack(">iii", reply[:12])
    if correlation != 1:
        raise OSError("unexpected reply")
    return int(count)


def _read(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def main() -> int:
    host, _, port = sys.argv[1].rpartition(":")
    deadline = time.monotonic() + float(sys.argv[2])
    pid = int(sys.argv[3]) if len(sys.argv) > 3 else None
    while True:
        try:
            if brokers(host, int(port)) > 0:
                return 0
        except OSError:
            pass
        if time.monotonic() > deadline or (pid is not None and not _alive(pid)):
            return 1
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    return True


if __name__ == "__main__":
    sys.exit(main())
