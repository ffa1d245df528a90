"""The load generator: API clients, stream receivers, and closed- and open-loop senders.

Everything runs on one event loop (uvloop when available) in the bench process, apart from the
server under test. Times are `time.perf_counter()` readings of this one process, so a message's
delivery latency is simply its receipt time minus its send's start time.

- Senders use aiohttp over HTTP/1.1 keep-alive; bodies are serialised once with orjson.
- A `Receiver` is one user's `/v1/stream` WebSocket: it records when each `message.new` first
  arrives and acks it (`{"type": "ack", ...}`) as a real client does; a connection the server
  closes is reconnected (the server's catch-up then sends what was not acked).
- Closed loop: `concurrency` workers, each sending its next message as soon as the previous one
  is accepted: the maximum rate. Open loop: sends start on a fixed schedule whatever the
  server's answers, and latencies are measured from the *scheduled* start, so a late load
  generator or a stalled server cannot hide latency (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import orjson

from bench.server import ServerProcess, machine_busy_seconds
from bench.stats import Summary, summarize

TEXT = "Hello! This is a benchmark message, about as long as a short chat line."
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=60)
# Below uvicorn's 5 s keep-alive, so an idle pooled connection is never reused after the
# server closed it.
KEEPALIVE_SECONDS = 3.0
ACK_HEAD, ACK_TAIL = '{"type":"ack","data":{"message_id":"', '"}}'


def http_session(limit: int = 256) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=KEEPALIVE_SECONDS)
    return aiohttp.ClientSession(
        connector=connector, timeout=HTTP_TIMEOUT, cookie_jar=aiohttp.DummyCookieJar()
    )


# --- the API, for the set-up ------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    user_id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}


class Api:
    """The few calls the scenarios' set-up needs."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url

    async def _post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        async with self.http.post(self.base_url + path, json=body, headers=headers) as r:
            if r.status not in (200, 201):
                raise RuntimeError(f"POST {path}: {r.status} {await r.text()}")
            return await r.json(loads=orjson.loads)

    async def register(self) -> Account:
        username = f"bench{uuid4().hex[:12]}"
        password = "password-" + username
        user = await self._post(
            "/v1/auth/register",
            {"username": username, "email": f"{username}@example.com", "password": password},
        )
        token = await self._post("/v1/auth/token", {"username": username, "password": password})
        return Account(str(user["user_id"]), username, str(token["access_token"]))

    async def register_many(self, count: int, parallel: int = 8) -> list[Account]:
        limit = asyncio.Semaphore(parallel)

        async def one() -> Account:
            async with limit:
                return await self.register()

        return list(await asyncio.gather(*(one() for _ in range(count))))

    async def conversation(self, owner: Account, kind: str, members: Sequence[Account]) -> str:
        body = {"type": kind, "members": [m.user_id for m in members]}
        created = await self._post("/v1/conversations", body, owner.headers)
        return str(created["conversation_id"])

    def stream_url(self, account: Account) -> str:
        return self.base_url.replace("http", "ws", 1) + f"/v1/stream?access_token={account.token}"


# --- receivers ---------------------------------------------------------------------------------


class Receiver:
    """One user's stream connection, recording the first arrival of every `message.new`."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, account: Account, ack: bool = True
    ) -> None:
        self.http = http
        self.url = url
        self.account = account
        self.ack = ack
        self.received: dict[str, float] = {}  # message_id -> perf_counter at receipt
        self.duplicates = 0
        self.other_frames = 0
        self.reconnects = 0
        self.close_codes: Counter[int | None] = Counter()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._read_forever())

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _connect(self) -> None:
        ws = await self.http.ws_connect(self.url, max_msg_size=0)
        first = await ws.receive(timeout=30)
        if first.type is not aiohttp.WSMsgType.TEXT or orjson.loads(first.data)["type"] != "ready":
            raise RuntimeError(f"stream of {self.account.username}: expected ready, got {first}")
        self._ws = ws

    async def _read_forever(self) -> None:
        # With acks off (a diagnostic), one's own id makes every message look like an echo.
        user_id = self.account.user_id if self.ack else None
        received = self.received
        clock = time.perf_counter
        while True:
            ws = self._ws
            assert ws is not None
            try:
                async for msg in ws:
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    now = clock()
                    frame = orjson.loads(msg.data)
                    if frame["type"] != "message.new":
                        self.other_frames += 1
                        continue
                    data = frame["data"]
                    message_id: str = data["message_id"]
                    if message_id in received:
                        self.duplicates += 1
                    else:
                        received[message_id] = now
                    if user_id is not None and data["from_user_id"] != user_id:  # echo: no ack
                        await ws.send_str(ACK_HEAD + message_id + ACK_TAIL)
            except (aiohttp.ClientError, ConnectionError):
                pass
            if self._stopping:
                return
            self.close_codes[ws.close_code] += 1
            self.reconnects += 1
            while not self._stopping:
                try:
                    await self._connect()
                    break
                except (aiohttp.ClientError, ConnectionError, TimeoutError):
                    await asyncio.sleep(0.2)


async def start_receivers(
    http: aiohttp.ClientSession, api: Api, accounts: Sequence[Account], ack: bool = True
) -> list[Receiver]:
    receivers = [Receiver(http, api.stream_url(a), a, ack) for a in accounts]
    await asyncio.gather(*(r.start() for r in receivers))
    return receivers


# --- senders -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where one sender sends, and whose streams should receive it."""

    url: str
    headers: dict[str, str]
    recipients: tuple[Receiver, ...] = ()


class Recorder:
    """Sends messages and remembers, per message_id, when the send started and was accepted."""

    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http
        self.started: dict[str, float] = {}
        self.accepted: dict[str, float] = {}
        self.target_of: dict[str, Target] = {}
        self.errors: Counter[str] = Counter()

    async def send(self, target: Target, t0: float) -> None:
        message_id = str(uuid4())
        body = orjson.dumps({"message_id": message_id, "payload": {"type": "text", "text": TEXT}})
        self.started[message_id] = t0
        self.target_of[message_id] = target
        try:
            async with self.http.post(target.url, data=body, headers=target.headers) as r:
                await r.read()
                if r.status == 202:
                    self.accepted[message_id] = time.perf_counter()
                else:
                    self.errors[f"HTTP {r.status}"] += 1
        except (aiohttp.ClientError, TimeoutError) as e:
            self.errors[type(e).__name__] += 1

    def pending_deliveries(self) -> list[tuple[str, Receiver]]:
        return [
            (mid, r)
            for mid in self.accepted
            for r in self.target_of[mid].recipients
            if mid not in r.received
        ]


# --- measurement -------------------------------------------------------------------------------


@dataclass
class Meter:
    """CPU use of the server and of this process over a run's measurement window, and an
    optional py-spy profile of the server over the same window."""

    server: ServerProcess | None
    profile_dir: Path | None = None
    profile_gil: bool = False
    profiles: list[str] = field(default_factory=list)

    async def watch(self, label: str, start: float, end: float) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        if self.server is not None and self.profile_dir is not None:
            kind = "gil" if self.profile_gil else "threads"
            out = self.profile_dir / f"profile-{_slug(label)}-{kind}.txt"
            if self.server.start_profile(end - start, out, gil=self.profile_gil):
                self.profiles.append(str(out))
        wall0, own0, all0 = time.perf_counter(), time.process_time(), machine_busy_seconds()
        srv0 = self.server.cpu_seconds() if self.server else None
        loop0 = self.server.loop_cpu_seconds() if self.server else None
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        wall = time.perf_counter() - wall0
        srv1 = self.server.cpu_seconds() if self.server else None
        loop1 = self.server.loop_cpu_seconds() if self.server else None
        own1, all1 = time.process_time(), machine_busy_seconds()

        def pct(a: float | None, b: float | None) -> float | None:
            return 100 * (b - a) / wall if a is not None and b is not None else None

        loadgen = 100 * (own1 - own0) / wall
        server, everything = pct(srv0, srv1), pct(all0, all1)
        others = None
        if everything is not None and server is not None:
            others = max(0.0, everything - server - loadgen)
        return {
            "loadgen_cpu_pct": loadgen,
            "server_cpu_pct": server,
            "server_loop_cpu_pct": pct(loop0, loop1),
            "other_cpu_pct": others,
        }


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


@dataclass
class RunResult:
    name: str
    mode: str  # "closed" or "open"
    concurrency: int | None
    target_rate: float | None
    duration_s: float
    accepted: int
    accepted_per_s: float
    errors: dict[str, int]
    accept_ms: Summary
    delivery_ms: Summary | None
    expected_deliveries: int
    delivered: int
    missing: int
    deliveries_per_s: float | None
    drain_s: float
    schedule_lag_ms: Summary | None
    duplicates: int
    reconnects: int
    server_cpu_pct: float | None
    server_loop_cpu_pct: float | None
    loadgen_cpu_pct: float
    other_cpu_pct: float | None  # the rest of the machine: other processes disturbing the run

    @property
    def server_cpu_ms_per_message(self) -> float | None:
        """Server CPU time per accepted message over the window: the whole cost of a message,
        its delivery and receipts included."""
        if self.server_cpu_pct is None or not self.accepted_per_s:
            return None
        return 10 * self.server_cpu_pct / self.accepted_per_s

    @property
    def delivered_fraction(self) -> float | None:
        if not self.expected_deliveries:
            return None
        return self.delivered / self.expected_deliveries

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.to_dict() if isinstance(value, Summary) else value
        out["delivered_fraction"] = self.delivered_fraction
        out["server_cpu_ms_per_message"] = self.server_cpu_ms_per_message
        return out


async def _drain(recorder: Recorder, limit: float) -> tuple[int, float]:
    """Wait until every accepted message reached every recipient's stream, or `limit` seconds;
    the deliveries still missing and the seconds waited."""
    start = time.perf_counter()
    pending = recorder.pending_deliveries()
    while pending and time.perf_counter() - start < limit:
        await asyncio.sleep(0.05)
        pending = [(mid, r) for mid, r in pending if mid not in r.received]
    return len(pending), time.perf_counter() - start


def _result(
    name: str,
    mode: str,
    recorder: Recorder,
    window: tuple[float, float],
    *,
    concurrency: int | None,
    rate: float | None,
    missing: int,
    drain_s: float,
    lags: list[float] | None,
    meter: dict[str, Any],
    counters_before: tuple[int, int],
) -> RunResult:
    w0, w1 = window
    duration = w1 - w0
    started, accepted = recorder.started, recorder.accepted
    # Closed loop: what was accepted within the window. Open loop: what was scheduled in it.
    if mode == "closed":
        in_window = [m for m, t in accepted.items() if w0 <= t < w1]
    else:
        in_window = [m for m in accepted if w0 <= started[m] < w1]
    measured = [m for m in accepted if w0 <= started[m] < w1]
    accept = summarize(accepted[m] - started[m] for m in measured)

    receivers: set[Receiver] = {r for t in recorder.target_of.values() for r in t.recipients}
    delivery: Summary | None = None
    deliveries_per_s: float | None = None
    expected = sum(len(recorder.target_of[m].recipients) for m in accepted)
    if receivers:
        delivery = summarize(
            r.received[m] - started[m]
            for m in measured
            for r in recorder.target_of[m].recipients
            if m in r.received
        )
        receipts = [
            r.received[m]
            for m in accepted
            for r in recorder.target_of[m].recipients
            if m in r.received
        ]
        if receipts and started:
            span = max(receipts) - min(started.values())
            deliveries_per_s = len(receipts) / span if span > 0 else None
    dup0, rec0 = counters_before
    return RunResult(
        name=name,
        mode=mode,
        concurrency=concurrency,
        target_rate=rate,
        duration_s=duration,
        accepted=len(accepted),
        accepted_per_s=len(in_window) / duration,
        errors=dict(recorder.errors),
        accept_ms=accept,
        delivery_ms=delivery,
        expected_deliveries=expected,
        delivered=expected - missing,
        missing=missing,
        deliveries_per_s=deliveries_per_s,
        drain_s=drain_s,
        schedule_lag_ms=summarize(lags) if lags is not None else None,
        duplicates=sum(r.duplicates for r in receivers) - dup0,
        reconnects=sum(r.reconnects for r in receivers) - rec0,
        server_cpu_pct=meter["server_cpu_pct"],
        server_loop_cpu_pct=meter["server_loop_cpu_pct"],
        other_cpu_pct=meter["other_cpu_pct"],
        loadgen_cpu_pct=meter["loadgen_cpu_pct"],
    )


def _counters(targets: Sequence[Target]) -> tuple[int, int]:
    receivers = {r for t in targets for r in t.recipients}
    return sum(r.duplicates for r in receivers), sum(r.reconnects for r in receivers)


async def closed_loop(
    name: str,
    targets: Sequence[Target],
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    drain: float,
    meter: Meter,
) -> RunResult:
    """`concurrency` workers (spread over the targets) each send back to back for
    `warmup + duration` seconds; the rate and latencies are taken over the last `duration`."""
    before = _counters(targets)
    async with http_session(limit=concurrency) as http:
        recorder = Recorder(http)
        start = time.perf_counter()
        w0, w1 = start + warmup, start + warmup + duration

        async def worker(i: int) -> None:
            target = targets[i % len(targets)]
            while (now := time.perf_counter()) < w1:
                await recorder.send(target, now)

        watching = asyncio.create_task(meter.watch(name, w0, w1))
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        usage = await watching
        missing, drained = await _drain(recorder, drain)
    return _result(
        name, "closed", recorder, (w0, w1), concurrency=concurrency, rate=None, missing=missing,
        drain_s=drained, lags=None, meter=usage, counters_before=before,
    )  # fmt: skip


async def open_loop(
    name: str,
    targets: Sequence[Target],
    *,
    rate: float,
    warmup: float,
    duration: float,
    drain: float,
    meter: Meter,
) -> RunResult:
    """Sends start every `1/rate` seconds (round robin over the targets), each on its own
    task, whatever the answers; latencies count from the scheduled start."""
    before = _counters(targets)
    async with http_session(limit=256) as http:
        recorder = Recorder(http)
        interval = 1.0 / rate
        total = round(rate * (warmup + duration))
        start = time.perf_counter() + 0.01
        w0, w1 = start + warmup, start + warmup + duration
        watching = asyncio.create_task(meter.watch(name, w0, w1))
        running: set[asyncio.Task[None]] = set()
        lags: list[float] = []
        for i in range(total):
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if due >= w0:
                lags.append(time.perf_counter() - due)
            task = asyncio.create_task(recorder.send(targets[i % len(targets)], due))
            running.add(task)
            task.add_done_callback(running.discard)
        if running:
            await asyncio.gather(*running)
        usage = await watching
        missing, drained = await _drain(recorder, drain)
    return _result(
        name, "open", recorder, (w0, w1), concurrency=None, rate=rate, missing=missing,
        drain_s=drained, lags=lags, meter=usage, counters_before=before,
    )  # fmt: skip


# --- scenario set-ups --------------------------------------------------------------------------


@dataclass
class Population:
    """Users, their conversations and stream connections on one server, reused across runs."""

    targets: list[Target]
    receivers: list[Receiver]
    http: aiohttp.ClientSession

    async def close(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.receivers))
        await self.http.close()


async def private_pairs(base_url: str, pairs: int, ack: bool = True) -> Population:
    """`pairs` senders, each in a private conversation with its own recipient, whose stream
    is connected (S1)."""
    http = http_session(limit=0)
    api = Api(http, base_url)
    senders = await api.register_many(pairs)
    recipients = await api.register_many(pairs)
    conversations = await asyncio.gather(
        *(api.conversation(s, "private", [r]) for s, r in zip(senders, recipients, strict=True))
    )
    receivers = await start_receivers(http, api, recipients, ack)
    targets = [
        Target(f"{base_url}/v1/conversations/{cid}/messages", s.headers, (r,))
        for s, cid, r in zip(senders, conversations, receivers, strict=True)
    ]
    return Population(targets, receivers, http)


async def group(base_url: str, size: int, senders: int, ack: bool = True) -> Population:
    """One group of `size` members, all connected to the stream; the first `senders` send,
    and every other member is a recipient of each message (S2)."""
    http = http_session(limit=0)
    api = Api(http, base_url)
    members = await api.register_many(size)
    cid = await api.conversation(members[0], "group", members[1:])
    receivers = await start_receivers(http, api, members, ack)
    url = f"{base_url}/v1/conversations/{cid}/messages"
    targets = [
        Target(url, members[i].headers, tuple(r for j, r in enumerate(receivers) if j != i))
        for i in range(senders)
    ]
    return Population(targets, receivers, http)


def ceiling_targets(base_url: str, count: int) -> list[Target]:
    headers = {"Content-Type": "application/json"}
    return [Target(f"{base_url}/messages", headers) for _ in range(count)]
