import asyncio
import shutil
import signal
import time
from pathlib import Path

import pytest

from chat4all.adapters.clock import SystemClock
from chat4all.adapters.etcd.connection import EtcdConnection
from chat4all.adapters.etcd.registry import EtcdRegistry
from chat4all.devcluster import free_port
from chat4all.domain.errors import Unavailable
from chat4all.workers.leader import run_as_leader
from tests.contract.registry_contract import (
    EXPIRY,
    SOON,
    TTL,
    RegistryContract,
    campaign_task,
    ids,
    next_state,
)
from tests.servers import server_url, unique_name

pytestmark = pytest.mark.etcd


@pytest.fixture
def root():
    return f"/{unique_name('chat4all_test')}"


@pytest.fixture
async def etcd(root):
    """A plain connection to the shared server, to act as an operator would (etcdctl)."""
    connection = EtcdConnection(server_url("etcd"))
    yield connection
    await connection.delete_prefix(root.encode())  # leave nothing behind on the shared server
    await connection.close()


@pytest.fixture
async def make_registry(root, etcd):
    made: list[EtcdRegistry] = []

    async def make() -> EtcdRegistry:
        registry = await EtcdRegistry.connect(server_url("etcd"), SystemClock(), root=root)
        made.append(registry)
        return registry

    yield make
    for registry in made:
        await registry.close()


class TestEtcdRegistry(RegistryContract):
    @pytest.fixture
    async def registry(self, make_registry):
        return await make_registry()

    @pytest.fixture
    async def peer(self, make_registry):
        return await make_registry()  # another connection: another process of the cluster


async def test_an_unreachable_etcd_is_unavailable_at_once():
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await EtcdRegistry.connect(url, SystemClock())
    registry = EtcdRegistry(EtcdConnection(url), SystemClock())  # not checked at start
    for call in (
        registry.ping(),
        registry.instances("gateway"),
        registry.register("gateway", "gw", "h:1"),
        registry.get_config("flags/x"),
        registry.watch_config(),
        registry.campaign("sweep", "me"),
    ):
        with pytest.raises(Unavailable):
            await call
    await registry.close()
    assert time.monotonic() - started < 2.0


async def test_the_key_layout(make_registry, etcd, root):
    registry = await make_registry()
    reg = await registry.register("gateway", "gw-1", "10.0.0.1:8000", {"zone": "a"})
    await registry.set_config("flags/new_ui", "on")
    leadership = await registry.campaign("sweep", "node-1")
    kvs, _ = await etcd.get_prefix(root.encode() + b"/")
    layout = {kv.key.decode()[len(root) :]: (kv.value, kv.lease != 0) for kv in kvs}
    assert layout == {
        "/services/gateway/gw-1": (
            b'{"address": "10.0.0.1:8000", "metadata": {"zone": "a"}}',
            True,
        ),
        "/config/flags/new_ui": (b"on", False),
        f"/election/sweep/{leadership._lease.lease_id:x}": (b"node-1", True),
    }
    await reg.close()
    await leadership.resign()


async def test_a_registration_whose_lease_is_revoked_registers_again(make_registry, etcd, root):
    registry = await make_registry()
    await registry.register("gateway", "gw", "h:1", ttl=TTL)
    states = await registry.watch_instances("gateway")
    assert ids(await next_state(states)) == ["gw"]
    kv = await etcd.get(f"{root}/services/gateway/gw".encode())
    assert kv is not None
    await etcd.revoke(kv.lease)  # as an operator would: etcdctl lease revoke
    assert await next_state(states) == []
    assert ids(await next_state(states, TTL + SOON)) == ["gw"]
    await states.close()


@pytest.mark.parametrize("how", ["revoke the lease", "delete the key"])
async def test_a_leader_whose_key_is_taken_away_stops(make_registry, etcd, root, how):
    registry, peer = await make_registry(), await make_registry()
    leadership = await registry.campaign("sweep", "one", ttl=TTL)
    waiting = await campaign_task(peer, "sweep", "two")
    key = f"{root}/election/sweep/{leadership._lease.lease_id:x}".encode()
    if how == "revoke the lease":
        await etcd.revoke(leadership._lease.lease_id)
    else:
        await etcd.delete(key)
    await asyncio.wait_for(leadership.wait_lost(), TTL)  # within TTL/3, plus slack
    assert not leadership.is_leader
    won = await asyncio.wait_for(waiting, SOON)
    assert won.candidate == "two"
    await won.resign()


class PrivateEtcd:
    """An etcd of this test's own, to stop and start: the shared one must stay up."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port, self.peer_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.process = await asyncio.create_subprocess_exec(
            *("etcd", "--name", "private", "--data-dir", str(self.data_dir)),
            *("--listen-client-urls", self.url, "--advertise-client-urls", self.url),
            *("--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer),
            *("--initial-cluster", f"private={peer}"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                probe = await EtcdRegistry.connect(self.url, SystemClock(), timeout=1)
                await probe.close()
                return
            except Unavailable:
                assert time.monotonic() < deadline, "the private etcd did not start"
                await asyncio.sleep(0.1)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def private_etcd(tmp_path):
    if shutil.which("etcd") is None:
        pytest.fail("etcd is not installed; scripts/infra/up.sh etcd installs it")
    server = PrivateEtcd(tmp_path / "etcd")
    await server.start()
    yield server
    await server.kill()


async def registered_again(registry: EtcdRegistry) -> None:
    while True:
        try:
            if ids(await registry.instances("gateway")) == ["gw"]:
                return
        except Unavailable:
            pass
        await asyncio.sleep(0.1)


async def test_while_etcd_is_down_the_job_stops_and_when_it_is_back_everything_returns(
    private_etcd,
):
    root = "/chat4all"
    registry = await EtcdRegistry.connect(private_etcd.url, SystemClock(), root=root, timeout=1)
    await registry.register("gateway", "gw", "h:1", ttl=TTL)
    running = asyncio.Event()
    stopped = asyncio.Event()

    async def job() -> None:
        running.set()
        stopped.clear()
        try:
            await asyncio.Event().wait()
        finally:
            running.clear()
            stopped.set()

    leader = asyncio.create_task(
        run_as_leader(registry, "sweep", job, clock=SystemClock(), ttl=TTL, retry_delay=0.2)
    )
    await asyncio.wait_for(running.wait(), SOON)

    # etcd hangs (as in a network partition): the leader stops before its lease can expire
    private_etcd.signal(signal.SIGSTOP)
    started = time.monotonic()
    await asyncio.wait_for(stopped.wait(), TTL + 1.0)
    assert time.monotonic() - started < TTL + 0.3  # at 0.9 TTL, and a busy CI's loop may lag
    with pytest.raises(Unavailable):
        await registry.ping()

    # etcd answers again: the instance is registered again and the job runs again
    private_etcd.signal(signal.SIGCONT)
    await asyncio.wait_for(running.wait(), EXPIRY + SOON)
    await asyncio.wait_for(registered_again(registry), SOON)

    # etcd dies: watches end with Unavailable, calls fail at once
    states = await registry.watch_instances("gateway")
    assert ids(await next_state(states)) == ["gw"]
    await private_etcd.kill()
    with pytest.raises(Unavailable):
        await asyncio.wait_for(anext(states), SOON)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        await registry.instances("gateway")
    assert time.monotonic() - started < 1.0
    await asyncio.wait_for(stopped.wait(), TTL + 1.0)

    # and comes back on its data: registration and leadership return by themselves
    await private_etcd.start()
    await asyncio.wait_for(running.wait(), EXPIRY + SOON)
    await asyncio.wait_for(registered_again(registry), SOON)

    leader.cancel()
    await asyncio.gather(leader, return_exceptions=True)
    await states.close()
    await registry.close()


async def test_close_removes_what_the_registry_holds(make_registry):
    mine, peer = await make_registry(), await make_registry()
    await mine.register("gateway", "closing", "h:1")
    leadership = await mine.campaign("closing", "me", ttl=TTL)
    states = await mine.watch_config()
    assert await next_state(states) == {}
    await mine.close()
    assert await peer.instances("gateway") == []
    assert not leadership.is_leader
    assert await peer.leader("closing") is None
    with pytest.raises(StopAsyncIteration):
        await anext(states)
    with pytest.raises(Unavailable):
        await mine.instances("gateway")
