"""A real `chat4all up` for the browser tests: its own process, free port and data folder,
serving the built web client; it can be killed and started again on the same port and data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chat4all.devcluster import free_port

ROOT = Path(__file__).resolve().parents[2]
WEB_BUILD = ROOT / "web" / "dist" / "web" / "browser"
STARTUP_SECONDS = 60


class Gateway:
    def __init__(self, data_dir: Path, log: Path, **settings: str) -> None:
        """`settings`: CHAT4ALL_* variables for the process, e.g. access_token_ttl_seconds."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._data_dir = data_dir
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._env = {f"CHAT4ALL_{name.upper()}": value for name, value in settings.items()}

    def start(self) -> None:
        cheap_hashing = {
            "CHAT4ALL_PASSWORD_HASH_TIME_COST": "1",
            "CHAT4ALL_PASSWORD_HASH_MEMORY_KIB": "1024",
        }
        env = os.environ | cheap_hashing | {"CHAT4ALL_WEB_DIR": str(WEB_BUILD)} | self._env
        command = [sys.executable, "-m", "chat4all", "up", "--port", str(self.port)]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, "--data-dir", str(self._data_dir), "--log-level", "warning"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"chat4all up did not start; its log:\n{self._log.read_text()}"
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """A crash, not a shutdown: every connection drops at once."""
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
