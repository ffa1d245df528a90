"""The cluster benchmarks still run (tiny sizes; figures not checked)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.servers import server_url


def _run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.redis
def test_realtime_redis_bench_runs() -> None:
    out = _run(
        "bench.realtime_redis", "--url", server_url("redis"), "--seconds", "0.2", "--rate", "200",
        "--users", "20", "--group", "5", "--concurrency", "4",
    )  # fmt: skip
    assert "redis A->B latency" in out and "in-process fan-out" in out


@pytest.mark.postgres
def test_metadata_store_bench_runs() -> None:
    out = _run(
        "bench.metadata_store", "--postgres", server_url("postgres"), "--calls", "20",
        "--users", "10", "--conversations", "10", "--members", "3", "--concurrency", "1,4",
    )  # fmt: skip
    assert "sqlite     get_member" in out and "postgres   advance_watermarks" in out
