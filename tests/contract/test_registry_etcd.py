import pytest

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.etcd.connection import EtcdConnection
from chat4all.adapters.etcd.registry import EtcdRegistry
from tests.contract.registry_contract import RegistryContract
from tests.servers import server_url, unique_name

pytestmark = pytest.mark.etcd


@pytest.fixture
def root():
    return f"/{unique_name('chat4all_test')}"


@pytest.fixture
async def make_registry(root):
    made: list[EtcdRegistry] = []

    async def make() -> EtcdRegistry:
        registry = await EtcdRegistry.connect(server_url("etcd"), SystemClock(), root=root)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        await registry.close()
    etcd = EtcdConnection(server_url("etcd"))
    await etcd._client.delete_prefix(root.encode())  # leave nothing behind on the shared server
    await etcd.close()


class TestEtcdRegistry(RegistryContract):
    @pytest.fixture
    async def registry(self, make_registry):
        return await make_registry()

    @pytest.fixture
    async def peer(self, make_registry):
        return await make_registry()  # another connection: another process of the cluster
