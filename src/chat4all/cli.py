"""`chat4all ...`: start the platform, migrate, manage users."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import getpass
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from chat4all import __version__
from chat4all.cli_channels import channels_app
from chat4all.roles import Role, ServiceRole, WorkerRole
from chat4all.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from chat4all.bootstrap import Platform
    from chat4all.ports.registry import Registry

app = typer.Typer(help="Chat4All: one API for every conversation.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")
config_app = typer.Typer(
    help="Cluster settings kept in etcd, read by every process at start.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
app.add_typer(channels_app, name="channels")
fakes_app = typer.Typer(
    help="Fakes of the messaging platforms, for tests and demos.", no_args_is_help=True
)
app.add_typer(fakes_app, name="fakes")

GC_YOUNG_THRESHOLD = 20_000


DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the embedded stores live [./data]")
]


def _settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    return Settings(**values)  # type: ignore[arg-type]


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [8080]")] = None,
    data_dir: DataDir = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Start the embedded platform: API, stream and workers in one process."""
    from chat4all.api.app import create_app
    from chat4all.bootstrap import build_embedded

    settings = _settings(data_dir, host=host, port=port)
    _configure_process(settings, log_level, "embedded")
    application = create_app(
        lambda: build_embedded(settings),
        settings.max_request_body_bytes,
        admin_token=settings.admin_token,
        web_dir=settings.web_dir,
    )
    typer.echo(
        f"Chat4All {__version__} on http://{settings.host}:{settings.port} "
        f"(API docs at /docs, data in {settings.data_dir.resolve()})"
    )
    _run_http(application, settings, log_level)


def _configure_process(settings: Settings, log_level: str, service: str) -> None:
    from chat4all.observability import tracing
    from chat4all.observability.logs import configure_logging

    # A message makes many short-lived objects; with the default threshold (700) young
    # collections run thousands of times a second. Fewer, larger ones cost less in all.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    configure_logging(log_level, settings.log_format)
    provider = tracing.configure_from_environment(f"chat4all-{service}")
    if provider is not None:
        atexit.register(provider.shutdown)  # sends the spans still batched


def _serve_metrics(settings: Settings) -> None:
    """A process without HTTP (workers, gRPC services) serves /metrics on a port of its own."""
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)


def _run_http(application: FastAPI, settings: Settings, log_level: str) -> None:
    import uvicorn

    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,  # the process's logging (JSON lines) applies to uvicorn's loggers too
        access_log=False,
        ws_max_size=1 << 20,
    )


LogLevel = Annotated[str, typer.Option(help="debug, info, warning, error")]


@app.command()
def serve(
    roles: Annotated[list[ServiceRole], typer.Argument(help="What this process serves")],
    host: Annotated[str | None, typer.Option(help="HTTP address of the gateway")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port of the gateway")] = None,
    log_level: LogLevel = "info",
) -> None:
    """Cluster profile: serve the gateway (HTTP and WebSocket) or gRPC services."""
    from chat4all.api.app import create_app
    from chat4all.bootstrap.cluster import build_cluster

    settings = _settings(host=host, port=port)
    _configure_process(settings, log_level, "-".join(sorted(roles)))
    wanted: set[Role] = set(roles)
    if ServiceRole.GATEWAY not in wanted:
        _run_roles(settings, wanted)
        return
    application = create_app(
        lambda: _fail_clearly(build_cluster(settings, wanted)),
        settings.max_request_body_bytes,
        admin_token=settings.admin_token,
        web_dir=settings.web_dir,
    )
    typer.echo(f"Chat4All {__version__} gateway on http://{settings.host}:{settings.port}")
    _run_http(application, settings, log_level)


@app.command()
def worker(
    roles: Annotated[list[WorkerRole], typer.Argument(help="Which workers this process runs")],
    log_level: LogLevel = "info",
) -> None:
    """Cluster profile: run workers (relay and retention are leader-elected singletons)."""
    settings = _settings()
    _configure_process(settings, log_level, "-".join(sorted(roles)))
    _run_roles(settings, set(roles))


def _run_roles(settings: Settings, roles: set[Role]) -> None:
    """Run a process without HTTP until SIGTERM or SIGINT."""
    from chat4all.bootstrap.cluster import build_cluster

    _serve_metrics(settings)

    async def run() -> None:
        platform = await _fail_clearly(build_cluster(settings, roles))
        await platform.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"Chat4All {__version__}: {', '.join(sorted(roles))} running")
        try:
            await stop.wait()
        finally:
            await platform.stop()

    asyncio.run(run())


async def _fail_clearly(building: Awaitable[Platform]) -> Platform:
    """A server that stays down past the start-up timeout (or an invalid setting kept in etcd)
    ends the process with one clear line, not a stack trace."""
    from chat4all.domain.errors import Chat4AllError

    try:
        return await building
    except Chat4AllError as e:
        typer.echo(f"error: {e.detail}", err=True)
        os._exit(3)  # inside uvicorn's lifespan an exception would only print its trace


@app.command()
def cluster(
    gateways: Annotated[int, typer.Option(min=1, help="How many gateways")] = 2,
    replicas: Annotated[int, typer.Option(min=1, help="How many of each worker")] = 2,
    port: Annotated[int, typer.Option(help="nginx's port, in front of the gateways")] = 8080,
    workdir: Annotated[Path, typer.Option(help="Logs and nginx files")] = Path(".cluster"),
) -> None:
    """Start a local cluster (gateways, workers, nginx) on the servers scripts/infra/ runs."""
    from chat4all.devcluster import DevCluster

    ports = tuple(range(port + 1, port + 1 + gateways))
    local = DevCluster(workdir.resolve(), gateway_ports=ports, replicas=replicas, nginx_port=port)
    try:
        local.start()
        typer.echo(
            f"Chat4All cluster on http://127.0.0.1:{port} (nginx) -> "
            f"{', '.join(local.gateway_urls)}; logs in {local.workdir / 'logs'}; Ctrl-C stops it"
        )
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        local.stop()


@app.command()
def migrate(
    data_dir: DataDir = None,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Migrate the cluster's PostgreSQL")
    ] = False,
) -> None:
    """Create or upgrade the database schemas."""
    from chat4all.adapters.sql.migrate import upgrade

    settings = _settings(data_dir)
    if cluster:
        url = settings.cluster_metadata_url()
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_metadata_url()
    asyncio.run(upgrade(url))
    typer.echo("metadata store is at the latest schema")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument()],
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[
        str | None, typer.Option(help="Asked for when not given", show_default=False)
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user."""
    from chat4all.bootstrap import build_embedded_accounts
    from chat4all.domain.errors import Chat4AllError

    secret = password or getpass.getpass("password: ")

    async def create() -> str:
        auth, metadata = await build_embedded_accounts(_settings(data_dir))
        try:
            user = await auth.register(username, email, secret)
            return str(user.user_id)
        finally:
            await metadata.close()

    try:
        user_id = asyncio.run(create())
    except Chat4AllError as e:
        typer.echo(f"error: {e.detail}", err=True)
        raise typer.Exit(1) from e
    typer.echo(user_id)


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    conversation: Annotated[str, typer.Option("--conversation", help="The conversation's id")],
    server: Annotated[
        str, typer.Option(envvar="CHAT4ALL_SERVER", help="The server's URL")
    ] = "http://127.0.0.1:8080",
    token: Annotated[
        str | None,
        typer.Option(envvar="CHAT4ALL_TOKEN", help="An access token", show_default=False),
    ] = None,
    username: Annotated[str | None, typer.Option(envvar="CHAT4ALL_USERNAME")] = None,
    password: Annotated[
        str | None, typer.Option(envvar="CHAT4ALL_PASSWORD", help="Asked for when not given")
    ] = None,
    mime_type: Annotated[
        str | None, typer.Option(help="Guessed from the name when not given")
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Bytes per request")] = 8 << 20,
    state_file: Annotated[
        Path | None,
        typer.Option(
            help="Where unfinished uploads are remembered [~/.cache/chat4all/uploads.json]"
        ),
    ] = None,
) -> None:
    """Upload a file into a conversation (tus), with a progress bar. Interrupted (Ctrl-C, a lost
    connection)? Run the same command again: it resumes where the server stopped."""
    import mimetypes
    from uuid import UUID

    import httpx
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from chat4all.client.uploads import ResumableUpload, UploadError, default_state_file, sign_in

    try:
        conversation_id = UUID(conversation)
    except ValueError as e:
        raise typer.BadParameter("not a UUID", param_hint="--conversation") from e
    server = server.rstrip("/")
    try:
        if token is None:
            if username is None:
                raise typer.BadParameter("give --token, or --username (and --password)")
            token = sign_in(server, username, password or getpass.getpass("password: "))
        job = ResumableUpload(
            server,
            token,
            file,
            conversation_id,
            state_file or default_state_file(),
            chunk_size,
            mime_type or mimetypes.guess_type(file.name)[0] or "application/octet-stream",
        )
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=False,
        ) as bar:
            task = bar.add_task(file.name, total=file.stat().st_size)
            file_id = job.run(lambda sent, total: bar.update(task, completed=sent, total=total))
    except KeyboardInterrupt:
        typer.echo("interrupted: run the same command again to resume", err=True)
        raise typer.Exit(130) from None
    except (UploadError, OSError, httpx.HTTPError) as e:
        typer.echo(f"error: {e} (run the same command again to resume)", err=True)
        raise typer.Exit(1) from e
    typer.echo(file_id)


def _with_registry(action: Callable[[Registry], Awaitable[object]]) -> object:
    from chat4all.adapters.clock import SystemClock
    from chat4all.adapters.etcd.registry import EtcdRegistry

    settings = _settings()

    async def run() -> object:
        registry = await EtcdRegistry.connect(
            settings.etcd_url, SystemClock(), root=f"/{settings.namespace}"
        )
        try:
            return await action(registry)
        finally:
            await registry.close()

    return asyncio.run(run())


@config_app.command("set")
def config_set(
    name: Annotated[str, typer.Argument(help="A setting's name, e.g. max_text_length")],
    value: Annotated[str, typer.Argument()],
) -> None:
    """Set a cluster setting (checked against the settings' rules first)."""
    if name not in Settings.model_fields:
        typer.echo(f"error: no setting named {name!r}", err=True)
        raise typer.Exit(2)
    try:
        Settings.model_validate({**_settings().model_dump(), name: value})
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    _with_registry(lambda r: r.set_config(name, value))


@config_app.command("list")
def config_list() -> None:
    """The cluster settings kept in etcd."""
    values = _with_registry(lambda r: r.config())
    assert isinstance(values, dict)
    for name, value in sorted(values.items()):
        typer.echo(f"{name}={value}")


@config_app.command("unset")
def config_unset(name: Annotated[str, typer.Argument()]) -> None:
    """Remove a cluster setting (processes fall back to their environment)."""
    _with_registry(lambda r: r.delete_config(name))


@fakes_app.command("up")
def fakes_up(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port_base: Annotated[
        int, typer.Option(help="WhatsApp on this port; Telegram, Messenger, Instagram on the next")
    ] = 8700,
) -> None:
    """Start the WhatsApp, Telegram, Messenger and Instagram fakes (fakes/README.md)."""
    from fakes.serving import serve_all

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        asyncio.run(serve_all(host, port_base, typer.echo))


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)
