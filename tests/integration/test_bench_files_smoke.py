"""S4 keeps working: `python -m bench.files` with a small file, checked for its shape only."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bench")]


def test_s4_uploads_and_reports(tmp_path: Path):
    output = tmp_path / "s4.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.files",
            "--size",
            "16MiB",
            "--chunk",
            "4MiB",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "share of dd" in result.stdout
    report = json.loads(output.read_text())
    assert report["upload_status"] == "completed"
    assert report["size_bytes"] == 16 << 20
