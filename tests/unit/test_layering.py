"""The layout is the architecture: check what each layer may import."""

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "chat4all"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(folder: str) -> list[Path]:
    return sorted((SRC / folder).rglob("*.py"))


@pytest.mark.parametrize("path", modules("domain"), ids=lambda p: p.name)
def test_domain_imports_only_the_standard_library_and_itself(path):
    for name in imports_of(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith("chat4all.domain"), name


@pytest.mark.parametrize("path", modules("ports"), ids=lambda p: p.name)
def test_ports_import_only_the_domain(path):
    for name in imports_of(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith(
            ("chat4all.domain", "chat4all.ports")
        ), name


@pytest.mark.parametrize(
    "path", modules("services") + modules("workers"), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_services_and_workers_never_import_adapters_or_the_api(path):
    for name in imports_of(path):
        assert not name.startswith(("chat4all.adapters", "chat4all.api", "fastapi")), name


@pytest.mark.parametrize(
    "path",
    [p for p in modules("adapters") if p.parent.name != "adapters"],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_adapters_never_import_one_another(path):
    own = f"chat4all.adapters.{path.relative_to(SRC / 'adapters').parts[0]}"
    for name in imports_of(path):
        if name.startswith("chat4all.adapters"):
            assert name.startswith(own), name
        if name in SERVICE_INTERFACES:  # what a remote service client implements
            continue
        assert not name.startswith(("chat4all.services", "chat4all.api", "chat4all.workers")), name


# The services' interfaces and the shapes they send, which adapters may implement.
SERVICE_INTERFACES = ("chat4all.services.interfaces", "chat4all.services.frames")


@pytest.mark.parametrize("module", SERVICE_INTERFACES)
def test_service_interfaces_import_only_the_core(module):
    path = SRC.parent / (module.replace(".", "/") + ".py")
    for name in imports_of(path):
        top = name.split(".")[0]
        assert (
            top in sys.stdlib_module_names
            or top == "orjson"
            or name.startswith(("chat4all.domain", "chat4all.ports", *SERVICE_INTERFACES))
        ), name


GRPC_EDGES = ("api/grpc", "adapters/grpc", "v1")


@pytest.mark.parametrize(
    "path",
    [p for p in SRC.rglob("*.py") if not str(p.relative_to(SRC)).startswith(GRPC_EDGES)],
    ids=lambda p: str(p.relative_to(SRC)),
)
def test_only_the_grpc_edges_import_grpc_and_the_generated_code(path):
    for name in imports_of(path):
        assert not name.startswith(("grpc", "chat4all.v1", "google.protobuf")), name


OBSERVABILITY = ("prometheus_client", "opentelemetry", "chat4all.observability")


@pytest.mark.parametrize(
    "path",
    modules("domain") + modules("ports") + modules("services"),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_the_core_never_imports_metrics_or_tracing(path):
    # The edges (api/, workers/, adapters/) measure; the core reaches them through hooks.
    for name in imports_of(path):
        assert not name.startswith(OBSERVABILITY), name


@pytest.mark.parametrize("path", modules("observability"), ids=lambda p: p.name)
def test_observability_depends_only_on_the_domain(path):
    for name in imports_of(path):
        assert not name.startswith(
            ("chat4all.services", "chat4all.adapters", "chat4all.api", "chat4all.workers")
        ), name
