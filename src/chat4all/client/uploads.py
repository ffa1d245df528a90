"""A small tus 1.0.0 client for `chat4all upload`: resumable across runs.

Where each unfinished upload lives is kept in a state file, keyed by the server, the file's
absolute path, size and modification time and the conversation: running the same command
again after Ctrl-C (or a lost connection) asks the server for the offset and goes on from
there. A changed file is a new upload. Each chunk carries its SHA-256 (`Upload-Checksum`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from uuid import UUID

import httpx

TUS: Final = {"Tus-Resumable": "1.0.0"}
DEFAULT_CHUNK_SIZE: Final = 8 << 20


class UploadError(Exception):
    """The server refused the upload; the message says why (its problem detail)."""


def default_state_file() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "chat4all" / "uploads.json"


@dataclass
class ResumableUpload:
    server: str
    token: str
    path: Path
    conversation_id: UUID
    state_file: Path
    chunk_size: int = DEFAULT_CHUNK_SIZE
    mime_type: str = "application/octet-stream"

    def run(self, progress: Callable[[int, int], None]) -> str:
        """Upload (or resume) the file; its file_id. `progress(sent, total)` after each chunk."""
        stat = self.path.stat()
        key = "|".join(
            [
                self.server,
                str(self.path.resolve()),
                str(stat.st_size),
                str(stat.st_mtime_ns),
                str(self.conversation_id),
            ]
        )
        headers = {**TUS, "Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.server, headers=headers, timeout=60) as http:
            location = self._state().get(key)
            offset = self._offset(http, location) if location else None
            if location is None or offset is None:
                location = self._create(http, stat.st_size)
                self._remember(key, location)
                offset = 0
            progress(offset, stat.st_size)
            with self.path.open("rb") as f:
                f.seek(offset)
                while offset < stat.st_size:
                    chunk = f.read(self.chunk_size)
                    offset = self._patch(http, location, offset, chunk)
                    progress(offset, stat.st_size)
            if stat.st_size == 0:
                self._patch(http, location, 0, b"")
        self._forget(key)
        return location.rsplit("/", 1)[1]

    def _create(self, http: httpx.Client, size: int) -> str:
        meta = {
            "filename": self.path.name,
            "filetype": self.mime_type,
            "conversation_id": str(self.conversation_id),
        }
        encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
        r = http.post(
            "/v1/uploads", headers={"Upload-Length": str(size), "Upload-Metadata": encoded}
        )
        _check(r, 201)
        return r.headers["Location"]

    def _offset(self, http: httpx.Client, location: str) -> int | None:
        """Where the server stands, or None when the upload is gone (expired, terminated)."""
        r = http.head(location)
        if r.status_code in (404, 410):
            return None
        _check(r, 200)
        return int(r.headers["Upload-Offset"])

    def _patch(self, http: httpx.Client, location: str, offset: int, chunk: bytes) -> int:
        digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        r = http.patch(
            location,
            headers={
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
                "Upload-Checksum": f"sha256 {digest}",
            },
            content=chunk,
        )
        if r.status_code == 409:  # another run moved it on: continue from the server's offset
            moved = self._offset(http, location)
            if moved is None:
                raise UploadError("the upload is gone from the server; run the command again")
            return moved
        _check(r, 204)
        return int(r.headers["Upload-Offset"])

    # the state file

    def _state(self) -> dict[str, str]:
        try:
            state: dict[str, str] = json.loads(self.state_file.read_text())
            return state
        except (FileNotFoundError, ValueError):
            return {}

    def _remember(self, key: str, location: str) -> None:
        self._write({**self._state(), key: location})

    def _forget(self, key: str) -> None:
        state = self._state()
        state.pop(key, None)
        self._write(state)

    def _write(self, state: dict[str, str]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1))
        temporary.replace(self.state_file)


def _check(r: httpx.Response, expected: int) -> None:
    if r.status_code == expected:
        return
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        detail = r.text or r.reason_phrase
    raise UploadError(f"{r.request.method} {r.request.url.path}: {r.status_code} {detail}")


def sign_in(server: str, username: str, password: str) -> str:
    """An access token for the user."""
    r = httpx.post(
        f"{server}/v1/auth/token", json={"username": username, "password": password}, timeout=30
    )
    _check(r, 200)
    return str(r.json()["access_token"])
