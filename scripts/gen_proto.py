"""Generate the gRPC code of proto/chat4all/v1/*.proto into src/chat4all/v1/ (not committed).

For each .proto: the messages (`*_pb2.py`), the service stubs and servicer bases
(`*_pb2_grpc.py`), and their type stubs (`*.pyi`, by mypy-protobuf) so that code using them is
type-checked. The Python package mirrors the proto package: `chat4all.v1`.

`make` runs this whenever a .proto changes; `hatch_build.py` runs it when a wheel is built.
Usage: python scripts/gen_proto.py [ROOT]  (ROOT: the repository, by default this file's parent's)
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tempfile
from importlib import resources
from pathlib import Path

PROTO_DIR = Path("proto")
PACKAGE = Path("chat4all") / "v1"
OUTPUT = Path("src")
INIT = '"""Generated from proto/chat4all/v1 by scripts/gen_proto.py. Do not edit."""\n'


def _plugin(name: str) -> str:
    """A protoc plugin installed beside this interpreter (mypy-protobuf's), or on PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / name, Path(sys.executable).parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"gen_proto: {name} not found; install mypy-protobuf")
    return found


def generate(root: Path) -> list[Path]:
    """Regenerate `src/chat4all/v1/` from `proto/chat4all/v1/*.proto`; the files written."""
    from grpc_tools import protoc  # a build and dev dependency, not a runtime one

    protos = sorted((root / PROTO_DIR / PACKAGE).glob("*.proto"))
    if not protos:
        raise SystemExit(f"gen_proto: no .proto files under {root / PROTO_DIR / PACKAGE}")
    well_known = resources.files("grpc_tools") / "_proto"
    target = root / OUTPUT / PACKAGE
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"--proto_path={root / PROTO_DIR}",
            f"--proto_path={well_known}",
            f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
            f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_out=quiet:{tmp}",
            f"--mypy_grpc_out=quiet:{tmp}",
            *(str(p.relative_to(root / PROTO_DIR)) for p in protos),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("gen_proto: protoc failed")
        generated = Path(tmp) / PACKAGE
        (generated / "__init__.py").write_text(INIT)
        (generated / "py.typed").write_text("")
        # Replace the whole folder, so a .proto removed leaves no module behind.
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(generated, target)
    return sorted(target.iterdir())


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    written = generate(root.resolve())
    print(f"gen_proto: {len(written)} files in {root / OUTPUT / PACKAGE}")


if __name__ == "__main__":
    main()
