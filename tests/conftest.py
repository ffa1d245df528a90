"""Generate the gRPC code (`src/chat4all/v1/`, not committed) when it is missing or older than
a .proto, so that `uv run pytest` works on a fresh checkout as `make` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller did it
        return
    generated = ROOT / "src" / "chat4all" / "v1" / "__init__.py"
    protos = list((ROOT / "proto").rglob("*.proto"))
    if generated.exists() and all(p.stat().st_mtime <= generated.stat().st_mtime for p in protos):
        return
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py")], check=True)
