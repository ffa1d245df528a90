"""`chat4all fakes up`, run as a person would: four fakes on consecutive ports, Ctrl-C stops them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from contextlib import ExitStack

import httpx

from chat4all.devcluster import wait_for_port


def free_run_of_ports(count: int) -> int:
    """A first port such that it and the next count-1 are free now (the OS picks the start)."""
    for _ in range(50):
        with ExitStack() as held, socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            base = int(first.getsockname()[1])
            try:
                for port in range(base + 1, base + count):
                    other = held.enter_context(socket.socket())
                    other.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise AssertionError(f"no {count} consecutive free ports")


def test_fakes_up_serves_the_four_fakes_until_interrupted():
    base = free_run_of_ports(4)
    process = subprocess.Popen(
        [sys.executable, "-m", "chat4all", "fakes", "up", "--port-base", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for port in range(base, base + 4):
            wait_for_port(port, timeout=30)
        whatsapp, telegram, messenger, instagram = (
            f"http://127.0.0.1:{base + n}" for n in range(4)
        )
        send = {"recipient": {"id": "p"}, "message": {"text": "hi"}}
        auth = {"Authorization": "Bearer any"}
        with httpx.Client() as client:
            me = client.get(f"{telegram}/bot1:abc/getMe").json()
            on_messenger = client.post(f"{messenger}/v21.0/me/messages", json=send, headers=auth)
            on_instagram = client.post(f"{instagram}/v21.0/me/messages", json=send, headers=auth)
            unsigned = client.post(f"{whatsapp}/v21.0/1/messages", json={}, headers={})
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)

    assert me["ok"] is True
    assert on_messenger.json()["recipient_id"] == on_instagram.json()["recipient_id"] == "p"
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == 190
    assert process.returncode == 0, err
    for name, url in [
        ("WhatsApp", whatsapp),
        ("Telegram", telegram),
        ("Messenger", messenger),
        ("Instagram", instagram),
    ]:
        assert any(name in line and url in line for line in out.splitlines()), out
