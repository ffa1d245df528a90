"""`chat4all channels ...`: channel accounts (in the metadata database) and dead letters (through
a running server's admin API, so that replays go through its bus)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from chat4all.settings import Settings

channels_app = typer.Typer(help="External channel accounts and dead letters.", no_args_is_help=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Where the embedded stores live [./data]")
]
ServerUrl = Annotated[str, typer.Option("--url", help="A running server")]
AdminToken = Annotated[
    str, typer.Option("--token", envvar="CHAT4ALL_ADMIN_TOKEN", help="The admin token")
]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir else Settings()  # type: ignore[call-arg]


async def _directory(settings: Settings) -> Any:
    from chat4all.adapters.sql.channels import SqlChannelDirectory
    from chat4all.bootstrap.embedded import build_embedded_accounts

    _, metadata = await build_embedded_accounts(settings)
    return SqlChannelDirectory(metadata.engine), metadata  # type: ignore[attr-defined]


@channels_app.command("add")
def add(
    channel_type: Annotated[str, typer.Argument(help="whatsapp, telegram, messenger, instagram")],
    account_id: Annotated[str, typer.Argument(help="The name in the webhook URL")],
    config: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="key=value (repeatable): base_url, access_token, app_secret, verify_token, "
            "phone_number_id, page_id, ig_user_id, bot_token, secret_token; "
            "inbox_user_ids=<id>,<id>",
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """Add a channel account (its webhook: /v1/channels/<type>/<account>/webhook)."""
    from chat4all.connectors.registry import discover
    from chat4all.domain.errors import Chat4AllError
    from chat4all.ports.connectors import ChannelAccount

    if channel_type not in discover():
        typer.echo(f"error: no connector for {channel_type!r} is installed", err=True)
        raise typer.Exit(1)
    values: dict[str, Any] = {}
    for item in config:
        key, sep, value = item.partition("=")
        if not sep:
            typer.echo(f"error: --set {item!r} is not key=value", err=True)
            raise typer.Exit(1)
        values[key] = [v for v in value.split(",") if v] if key == "inbox_user_ids" else value

    async def run() -> None:
        directory, metadata = await _directory(_settings(data_dir))
        try:
            await directory.add_account(ChannelAccount(account_id, channel_type, values))
        finally:
            await metadata.close()

    try:
        asyncio.run(run())
    except Chat4AllError as e:
        typer.echo(f"error: {e.detail}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"/v1/channels/{channel_type}/{account_id}/webhook")


@channels_app.command("list")
def list_accounts(data_dir: DataDir = None) -> None:
    """The channel accounts (credentials left out)."""

    async def run() -> list[Any]:
        directory, metadata = await _directory(_settings(data_dir))
        try:
            return list(await directory.list_accounts())
        finally:
            await metadata.close()

    for account in asyncio.run(run()):
        inbox = ",".join(account.config.get("inbox_user_ids") or []) or "-"
        state = "enabled" if account.enabled else "disabled"
        typer.echo(f"{account.channel_type}\t{account.account_id}\t{state}\tinbox={inbox}")


@channels_app.command("dead-letters")
def dead_letters(
    token: AdminToken,
    url: ServerUrl = "http://127.0.0.1:8080",
    include_replayed: bool = False,
) -> None:
    """Deliveries that ran out of tries, newest first (JSON lines)."""
    import httpx

    r = httpx.get(
        f"{url}/v1/admin/dead-letters",
        params={"include_replayed": include_replayed, "limit": 100},
        headers={"authorization": f"Bearer {token}"},
    )
    if r.status_code != 200:
        typer.echo(f"error: {r.status_code} {r.text}", err=True)
        raise typer.Exit(1)
    for letter in r.json():
        typer.echo(json.dumps(letter))


@channels_app.command("replay")
def replay(
    letter_id: Annotated[str, typer.Argument()],
    token: AdminToken,
    url: ServerUrl = "http://127.0.0.1:8080",
) -> None:
    """Deliver a dead letter again."""
    import httpx

    r = httpx.post(
        f"{url}/v1/admin/dead-letters/{letter_id}/replay",
        headers={"authorization": f"Bearer {token}"},
    )
    if r.status_code != 202:
        typer.echo(f"error: {r.status_code} {r.text}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(r.json()))
