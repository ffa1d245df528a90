"""S4 (`python -m bench.files`, part of `make bench`): one large file uploaded through the API
with a real tus client (tuspy), next to a plain `dd` write of the same size to the same disk.

Prints the upload's MB/s, dd's MB/s and the share, and the server's resident memory before the
upload and at its peak (VmHWM), so the growth shows whether memory stayed flat. Measured,
never asserted; targets printed alongside. `--size` makes it small for a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
from tusclient import client as tus_client

from bench.server import chat4all_server

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_SHARE_OF_DD = 50.0  # %
TARGET_RSS_GROWTH_MIB = 64.0
MIB = 1 << 20


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([KMG]i?B?)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 2GiB or 64MiB")
    unit = (match.group(2) or "").upper()[:1]
    return int(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak since the process started), in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def make_source(path: Path, size: int) -> None:
    """Random bytes (incompressible), written once; not measured."""
    block = os.urandom(8 * MIB)
    with path.open("wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


def dd_rate(folder: Path, size: int) -> float:
    """MB/s of `dd` writing `size` bytes to `folder` and syncing them, as the server does."""
    target = folder / "dd.bin"
    blocks = max(1, size // (8 * MIB))
    started = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=8M", f"count={blocks}", "conv=fdatasync"],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    target.unlink()
    return blocks * 8 * MIB / seconds / 1e6


async def prepare(url: str) -> tuple[str, str]:
    """A user with a conversation: (token, conversation_id)."""
    async with aiohttp.ClientSession(url) as http:
        tokens = []
        for _ in range(2):
            name = f"bench{uuid4().hex[:10]}"
            body = {"username": name, "email": f"{name}@example.com", "password": "password-1"}
            async with http.post("/v1/auth/register", json=body) as r:
                assert r.status == 201, await r.text()
                user_id = (await r.json())["user_id"]
            login = {"username": name, "password": body["password"]}
            async with http.post("/v1/auth/token", json=login) as r:
                tokens.append(((await r.json())["access_token"], user_id))
        headers = {"Authorization": f"Bearer {tokens[0][0]}"}
        members = {"type": "private", "members": [tokens[1][1]]}
        async with http.post("/v1/conversations", json=members, headers=headers) as r:
            conversation = (await r.json())["conversation_id"]
    return tokens[0][0], conversation


def upload(url: str, token: str, conversation: str, path: Path, chunk: int, checksum: bool) -> str:
    client = tus_client.TusClient(f"{url}/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    uploader = client.uploader(
        str(path),
        chunk_size=chunk,
        metadata={"filename": path.name, "conversation_id": conversation},
        upload_checksum=checksum,
    )
    uploader.upload()
    return str(uploader.url)


async def run(size: int, chunk: int, checksum: bool) -> dict[str, Any]:
    async with chat4all_server() as server:
        folder = server.data_dir  # the disk the server writes to
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
            source = Path(tmp) / "s4.bin"
            make_source(source, size)
            dd = dd_rate(Path(tmp), size)
            token, conversation = await prepare(server.url)
            before = memory_kib(server.pid)
            started = time.perf_counter()
            location = await asyncio.to_thread(
                upload, server.url, token, conversation, source, chunk, checksum
            )
            seconds = time.perf_counter() - started
            after = memory_kib(server.pid)
            async with (
                aiohttp.ClientSession(server.url) as http,
                http.get(
                    f"/v1/files/{location.rsplit('/', 1)[1]}",
                    headers={"Authorization": f"Bearer {token}"},
                ) as r,
            ):
                described = await r.json()
    rate = size / seconds / 1e6
    report = {
        "scenario": "s4",
        "at": datetime.now(UTC).isoformat(),
        "size_bytes": size,
        "chunk_bytes": chunk,
        "checksum_per_chunk": checksum,
        "upload_seconds": round(seconds, 2),
        "upload_mb_s": round(rate, 1),
        "dd_mb_s": round(dd, 1),
        "share_of_dd_percent": round(100 * rate / dd, 1),
        "server_rss_before_mib": round(before["VmRSS"] / 1024, 1),
        "server_rss_peak_mib": round(after["VmHWM"] / 1024, 1),
        "server_rss_growth_mib": round((after["VmHWM"] - before["VmRSS"]) / 1024, 1),
        "upload_status": described["upload_status"],
        "checksum": described["checksum"],
    }
    print(f"S4 upload of {size / MIB:.0f} MiB through tus (tuspy, {chunk // MIB} MiB chunks)")
    print(f"  upload      {report['upload_mb_s']:>8} MB/s   ({seconds:.1f} s)")
    print(f"  dd          {report['dd_mb_s']:>8} MB/s   (same size, same disk, fdatasync)")
    print(
        f"  share of dd {report['share_of_dd_percent']:>8} %      (target >= {TARGET_SHARE_OF_DD:.0f} %)"
    )
    print(
        f"  server RSS  {report['server_rss_before_mib']} MiB before, "
        f"{report['server_rss_peak_mib']} MiB peak: +{report['server_rss_growth_mib']} MiB "
        f"(target < {TARGET_RSS_GROWTH_MIB:.0f} MiB)"
    )
    print(f"  stored      {report['upload_status']}, {report['checksum']}")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.files", description=__doc__)
    parser.add_argument("--size", type=parse_size, default=2 << 30, help="file size [2GiB]")
    parser.add_argument("--chunk", type=parse_size, default=64 * MIB, help="tus chunk [64MiB]")
    parser.add_argument("--checksum", action="store_true", help="sha1 Upload-Checksum per chunk")
    parser.add_argument("--output", type=Path, help="JSON report [bench/results/s4-<time>.json]")
    args = parser.parse_args(argv)
    output = args.output or RESULTS_DIR / f"s4-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    report = asyncio.run(run(args.size, args.chunk, args.checksum))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
