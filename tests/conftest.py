"""Generate the gRPC code (`src/chat4all/v1/`, not committed) when it is missing or older than
a .proto, so that `uv run pytest` works on a fresh checkout as `make` does. At import, since
conftests below this one import the generated modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generate_if_stale() -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the controller did it before starting workers
        return
    generated = ROOT / "src" / "chat4all" / "v1" / "__init__.py"
    protos = list((ROOT / "proto").rglob("*.proto"))
    if generated.exists() and all(p.stat().st_mtime <= generated.stat().st_mtime for p in protos):
        return
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py")], check=True)


_generate_if_stale()
