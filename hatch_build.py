"""Hatch build hook: a wheel carries the gRPC code generated from proto/ (which git ignores).

The generation is scripts/gen_proto.py, the same that `make proto` runs; grpcio-tools and
mypy-protobuf are build requirements for it (pyproject.toml), not runtime ones. Editable
installs (`uv sync`) skip it: `make` regenerates the working tree's code when a .proto changes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class GenerateProtos(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        script = Path(self.root) / "scripts" / "gen_proto.py"
        spec = importlib.util.spec_from_file_location("gen_proto", script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.generate(Path(self.root))
