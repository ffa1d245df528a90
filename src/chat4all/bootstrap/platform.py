"""The platform every profile wires: services and workers on top of the given adapters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

from chat4all.domain.delivery import RetryPolicy
from chat4all.domain.errors import Chat4AllError
from chat4all.domain.ratelimit import Rule
from chat4all.observability import metrics
from chat4all.ports.blobs import BlobStore
from chat4all.ports.bus import EventBus
from chat4all.ports.channels import ChannelDirectory
from chat4all.ports.clock import Clock
from chat4all.ports.connectors import Connector
from chat4all.ports.files import FileStore
from chat4all.ports.messages import MessageStore
from chat4all.ports.metadata import MetadataStore
from chat4all.ports.ratelimit import RateLimiter
from chat4all.ports.realtime import KeyValueCache, PresenceStore, RealtimeHub
from chat4all.ports.webhooks import WebhookStore
from chat4all.services.auth import AuthPolicy, AuthService
from chat4all.services.channels import ChannelService
from chat4all.services.conversations import ConversationService
from chat4all.services.files import FilePolicy, FileService
from chat4all.services.interfaces import Auth, Conversations, Messages
from chat4all.services.messages import MessagePolicy, MessageService
from chat4all.services.stream import TYPING_SECONDS, Send, StreamSession
from chat4all.services.webhooks import WebhookPolicy, WebhookService
from chat4all.settings import Settings
from chat4all.workers.channel_sender import ChannelSender, DeliveryListener, SenderPolicy

log = logging.getLogger(__name__)

Worker = Callable[[], Awaitable[None]]
Probe = Callable[[], Awaitable[None]]
CHECK_TIMEOUT_SECONDS = 2.0  # a dependency slower than this to answer counts as down


@dataclass
class Platform:
    """Every service and adapter of one running Chat4All, and its background workers."""

    clock: Clock
    metadata: MetadataStore
    store: MessageStore
    bus: EventBus
    hub: RealtimeHub
    presence: PresenceStore
    cache: KeyValueCache
    auth: Auth
    conversations: Conversations
    messages: Messages
    files: FileService
    webhooks: WebhookService
    channels: ChannelService | None = None  # None: a profile without external channels
    workers: dict[str, Worker] = field(default_factory=dict)
    # What else the profile opened (hub connections, the registry), closed last by stop().
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    typing_seconds: int = TYPING_SECONDS
    # Dependencies beyond the three stores that the profile adds to `check` (Redis, etcd).
    probes: dict[str, Probe] = field(default_factory=dict)

    async def start(self) -> None:
        for name, worker in self.workers.items():
            self._tasks[name] = asyncio.create_task(self._supervise(name, worker), name=name)

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        await self.bus.close()
        await self.store.close()
        await self.metadata.close()
        for close in self.closers:
            await close()

    async def check(self) -> dict[str, str | None]:
        """Each dependency's problem, or None when it answers (all asked at once, each given
        CHECK_TIMEOUT_SECONDS)."""
        probes = {
            "metadata": self.metadata.ping,
            "messages": self.store.ping,
            "bus": self.bus.ping,
            "files": self.files.ping,
        } | self.probes
        answers = await asyncio.gather(*(_probe(ping) for ping in probes.values()))
        results: dict[str, str | None] = dict(zip(probes, answers, strict=True))
        for name, task in self._tasks.items():
            results[f"worker:{name}"] = "stopped" if task.done() else None
        return results

    def stream_session(self, user_id: UUID, send: Send) -> StreamSession:
        return StreamSession(
            user_id,
            send,
            store=self.store,
            messages=self.messages,
            conversations=self.conversations,
            hub=self.hub,
            presence=self.presence,
            clock=self.clock,
            typing_seconds=self.typing_seconds,
        )

    async def _supervise(self, name: str, worker: Worker) -> None:
        """Run a worker forever; restart it after a failure (it resumes from committed offsets)."""
        delay = 0.1
        while True:
            try:
                await worker()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s failed; restarting in %.1fs", name, delay)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 10.0)


async def _probe(ping: Probe) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await ping()
    except Chat4AllError as e:
        return e.detail
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    return None


def auth_policy(settings: Settings) -> AuthPolicy:
    return AuthPolicy(
        secret=settings.resolved_jwt_secret(),
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        hash_time_cost=settings.password_hash_time_cost,
        hash_memory_kib=settings.password_hash_memory_kib,
    )


def file_policy(settings: Settings) -> FilePolicy:
    return FilePolicy(
        signing_secret=settings.resolved_files_signing_secret(),
        max_size=settings.files_max_size_bytes,
        quota_bytes=settings.files_quota_bytes,
        expiry=timedelta(hours=settings.files_upload_expiry_hours),
        link_ttl=timedelta(seconds=settings.files_link_ttl_seconds),
        create_rate=(
            Rule(settings.upload_rate_per_second, settings.upload_burst)
            if settings.upload_rate_per_second
            else None
        ),
        public_base_url=settings.public_base_url.rstrip("/"),
    )


def wire(
    settings: Settings,
    *,
    clock: Clock,
    metadata: MetadataStore,
    store: MessageStore,
    bus: EventBus,
    hub: RealtimeHub,
    presence: PresenceStore,
    cache: KeyValueCache,
    limiter: RateLimiter,
    file_store: FileStore,
    blobs: BlobStore,
    webhook_store: WebhookStore,
    directory: ChannelDirectory | None = None,
    connectors: Mapping[str, Connector] | None = None,
    delivery_listener: DeliveryListener | None = None,
) -> Platform:
    """Services and workers on top of the given adapters (any profile). External channels
    need a `directory` and the `connectors` (`chat4all.connectors.registry`)."""
    from chat4all.workers.delivery import DeliveryWorker
    from chat4all.workers.inbound import InboundWorker
    from chat4all.workers.relay import OutboxRelay
    from chat4all.workers.router import Router
    from chat4all.workers.status import StatusWorker

    auth = AuthService(metadata, cache, clock, auth_policy(settings))
    conversations = ConversationService(metadata, store, cache, clock, settings.max_group_size)
    ttl = timedelta(days=settings.message_ttl_days) if settings.message_ttl_days else None
    send_rate = (
        Rule(settings.send_rate_per_second, settings.send_burst)
        if settings.send_rate_per_second
        else None
    )
    files = FileService(
        file_store, blobs, store, conversations, clock, file_policy(settings), limiter
    )
    messages = MessageService(
        store,
        conversations,
        clock,
        MessagePolicy(settings.max_text_length, ttl, send_rate),
        limiter,
        files,
        on_accepted=metrics.count_accepted,
    )
    connectors = dict(connectors or {})
    channels = sender = None
    if directory is not None:
        channels = ChannelService(directory, connectors, store, clock, settings.max_text_length)
        sender = ChannelSender(
            directory,
            connectors,
            clock,
            sender_policy(settings),
            delivery_listener or metrics.ChannelMetrics(),
            files=files,
        )
    workers: dict[str, Worker] = {
        "relay": OutboxRelay(store, bus).run,
        "router": Router(bus, clock, directory, connectors).run,
        "delivery": DeliveryWorker(bus, clock, hub, sender, settings.delivery_max_in_flight).run,
        "status": StatusWorker(bus, clock, store, metadata, hub).run,
    }
    if channels is not None:
        workers["inbound"] = InboundWorker(
            bus, clock, channels, settings.inbound_reorder_seconds
        ).run
    webhooks, workers["webhooks"], close_webhooks = _webhooks(
        settings, clock, webhook_store, metadata, store, bus
    )
    platform = Platform(
        clock,
        metadata,
        store,
        bus,
        hub,
        presence,
        cache,
        auth,
        conversations,
        messages,
        files,
        webhooks,
        channels,
        workers=workers,
    )
    platform.closers += [file_store.close, blobs.close, close_webhooks]
    platform.typing_seconds = settings.typing_seconds
    return platform


def sender_policy(settings: Settings) -> SenderPolicy:
    return SenderPolicy(
        RetryPolicy(
            settings.delivery_attempts,
            settings.delivery_first_retry_seconds,
            settings.delivery_max_retry_seconds,
        ),
        settings.breaker_failures,
        settings.breaker_reset_seconds,
    )


def _webhooks(
    settings: Settings,
    clock: Clock,
    webhook_store: WebhookStore,
    metadata: MetadataStore,
    store: MessageStore,
    bus: EventBus,
) -> tuple[WebhookService, Worker, Callable[[], Awaitable[None]]]:
    """The webhook service, and the worker that fans bus events out to deliveries and sends
    them (both halves in one role, so a process that runs it does the whole job)."""
    from chat4all.adapters.webhooks.dns import SystemResolver
    from chat4all.adapters.webhooks.http import HttpxWebhookSender
    from chat4all.workers.webhook_dispatcher import DispatchPolicy, WebhookDispatcher
    from chat4all.workers.webhook_fanout import WebhookFanout

    resolver = SystemResolver()
    sender = HttpxWebhookSender(settings.webhook_timeout_seconds)
    allow_private = settings.webhook_allow_private_urls
    overlap = timedelta(hours=settings.webhook_secret_overlap_hours)
    service = WebhookService(webhook_store, resolver, clock, WebhookPolicy(allow_private, overlap))
    schedule = tuple(settings.webhook_retry_schedule_seconds)
    policy = DispatchPolicy(
        retry_schedule=schedule,
        per_webhook=settings.webhook_max_concurrency_per_endpoint,
        lease=timedelta(seconds=settings.webhook_timeout_seconds + 30),
        # Polls as often as the shortest retry step, so short schedules (tests) stay short.
        poll_seconds=min(1.0, max(0.05, min(schedule))),
        allow_private_urls=allow_private,
    )
    fanout = WebhookFanout(bus, clock, webhook_store, metadata, store)
    dispatcher = WebhookDispatcher(webhook_store, sender, resolver, clock, policy)

    async def run() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(fanout.run())
            group.create_task(dispatcher.run())

    return service, run, sender.close
