"""Servers of a test's own, to stop and restart without disturbing the shared ones."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from chat4all.devcluster import wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def _as_postgres(*args: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


@dataclass
class PrivatePostgres:
    """An initdb'd PostgreSQL (trust on loopback) in a folder the postgres user can enter."""

    port: int
    data: Path = field(init=False)

    def __post_init__(self) -> None:
        bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        self._bin = bin_dir
        base = Path(tempfile.mkdtemp(prefix="chat4all-pg-", dir="/var/tmp"))
        self.data = base / "data"
        if os.geteuid() == 0:
            shutil.chown(base, "postgres")
        subprocess.run(
            _as_postgres(
                str(bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "chat4all",
                "--auth=trust",
                "-E",
                "UTF8",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://chat4all@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k /tmp -c fsync=off"
        subprocess.run(
            _as_postgres(
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-w",
                "-o",
                options,
                "-l",
                str(self.data / "log"),
                "start",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres(str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def remove(self) -> None:
        subprocess.run(
            _as_postgres(
                str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(self.data.parent, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, 10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@dataclass
class PrivateKafka:
    """A broker of its own (scripts/infra/kafka.sh with another port and data folder)."""

    port: int
    data: Path

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "CHAT4ALL_KAFKA_PORT": str(self.port),
            "CHAT4ALL_KAFKA_DATA": str(self.data),
        }
        subprocess.run([str(ROOT / "scripts/infra/kafka.sh")], env=env, check=True)

    def stop(self) -> None:
        pid = int((self.data / "kafka.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
