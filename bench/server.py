"""Start and stop the server under test as a separate process, on a temporary data folder.

`chat4all up` is started as `python -m chat4all up --port P --data-dir D` (as the crash test
does); the ceiling app as `python -m bench.ceiling_app`. Both are ready when `/readyz` answers
200. The process's CPU time is read from /proc, and py-spy can be attached for a profile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

BENCH_ENV = {
    "CHAT4ALL_JWT_SECRET": "bench-secret-" + "x" * 40,
    # Cheap password hashing: registering the bench users is not what is measured.
    "CHAT4ALL_PASSWORD_HASH_TIME_COST": "1",
    "CHAT4ALL_SEND_RATE_PER_SECOND": "0",  # the bench measures the platform, not the limit
    "CHAT4ALL_PASSWORD_HASH_MEMORY_KIB": "1024",
    # A full run takes a few minutes; tokens must not expire in the middle of it.
    "CHAT4ALL_ACCESS_TOKEN_TTL_SECONDS": "7200",
}
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_cpu_seconds(pid: int, stat: str | None = None) -> float | None:
    """User + system CPU time of a process and all its threads, or None off Linux."""
    try:
        fields = Path(stat or f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the ")" closing the command name: state is fields[0]; utime, stime are 14th/15th.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores of the machine spent busy since boot (everything but idle and
    iowait), or None off Linux: with the server's and the load generator's own CPU time this
    tells whether something else was running during a measurement."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int, tid: int) -> float | None:
    """CPU time of one thread of a process (the main thread's id is the process id)."""
    return process_cpu_seconds(pid, f"/proc/{pid}/task/{tid}/stat")


def py_spy_path() -> str | None:
    """py-spy: $PY_SPY, next to this interpreter (`uv pip install py-spy`), on PATH, or where
    `uv tool install py-spy` puts it."""
    candidates = [
        os.environ.get("PY_SPY"),
        str(Path(sys.executable).with_name("py-spy")),
        shutil.which("py-spy"),
        str(Path.home() / ".local" / "bin" / "py-spy"),
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@dataclass
class ServerProcess:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    profilers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.proc.pid)

    def loop_cpu_seconds(self) -> float | None:
        """CPU time of the main thread alone: the event loop's, where all Python request,
        stream and worker code runs (the SQLite writer and reader threads are the others)."""
        return thread_cpu_seconds(self.proc.pid, self.proc.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_idle(
        self, threshold: float = 0.05, quiet: float = 0.5, limit: float = 60.0
    ) -> float:
        """Wait until the server uses less than `threshold` of a core for `quiet` seconds (its
        workers have drained what earlier runs queued); returns the seconds waited."""
        start = time.perf_counter()
        before = self.cpu_seconds()
        if before is None:
            await asyncio.sleep(quiet)
            return quiet
        while time.perf_counter() - start < limit:
            await asyncio.sleep(quiet)
            now = self.cpu_seconds()
            if now is None or now - before < threshold * quiet:
                break
            before = now
        return time.perf_counter() - start

    def start_profile(
        self, seconds: float, out: Path, *, gil: bool = False, rate: int = 100
    ) -> bool:
        """Attach py-spy for `seconds`, writing collapsed stacks, one root per thread, to `out`
        (`gil`: only the thread holding the GIL is sampled). False when py-spy is missing."""
        exe = py_spy_path()
        if exe is None:
            return False
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            exe, "record", "--pid", str(self.pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(rate), "--format", "raw", "--threads", "--output", str(out),
        ]  # fmt: skip
        if gil:
            argv.append("--gil")
        profiler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.profilers.append(profiler)
        return True

    async def finish_profiles(self) -> None:
        for profiler in self.profilers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(profiler.wait, 30)
            if profiler.poll() is None:
                profiler.kill()
        self.profilers.clear()


async def _wait_ready(server: ServerProcess) -> None:
    deadline = time.perf_counter() + READY_TIMEOUT
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while time.perf_counter() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(server.url + "/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(
        f"{server.name} was not ready after {READY_TIMEOUT:.0f}s:\n{server.log_tail()}"
    )


async def _stop(server: ServerProcess) -> None:
    await server.finish_profiles()
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown (lifespan stop)
        try:
            await asyncio.to_thread(server.proc.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            await asyncio.to_thread(server.proc.wait)


def _spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


@contextlib.asynccontextmanager
async def _serve(
    name: str, args: Sequence[str], env: dict[str, str]
) -> AsyncIterator[ServerProcess]:
    with tempfile.TemporaryDirectory(prefix=f"{name}-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        log_path = Path(tmp) / "server.log"
        port = free_port()
        argv = [sys.executable, "-m", *args, "--port", str(port), "--data-dir", str(data_dir)]
        proc = _spawn([*argv, "--log-level", "warning"], os.environ | env, log_path)
        server = ServerProcess(name, f"http://127.0.0.1:{port}", proc, data_dir, log_path)
        try:
            await _wait_ready(server)
            yield server
        finally:
            await _stop(server)


def chat4all_server() -> contextlib.AbstractAsyncContextManager[ServerProcess]:
    """`chat4all up` in the embedded profile, on a fresh data folder."""
    return _serve("chat4all", ["chat4all", "up"], BENCH_ENV)


def ceiling_server() -> contextlib.AbstractAsyncContextManager[ServerProcess]:
    """The bare FastAPI + SQLite app of `bench.ceiling_app`."""
    root = str(Path(__file__).resolve().parent.parent)  # so `-m bench.ceiling_app` resolves
    pythonpath = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return _serve("ceiling", ["bench.ceiling_app"], {"PYTHONPATH": pythonpath})
