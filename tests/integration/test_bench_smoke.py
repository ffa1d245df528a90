"""`make bench` keeps working: a very short S1 run, checked for its shape, not its speed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench")]


def test_bench_runs_and_reports(tmp_path: Path):
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--scenario",
            "s1",
            "--duration",
            "1",
            "--warmup",
            "0.5",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "S1 accepted msgs/s" in result.stdout
    report = json.loads(output.read_text())
    closed = report["runs"]["s1_closed"]
    assert closed["accepted"] > 0
    assert closed["missing"] == 0
