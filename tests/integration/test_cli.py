"""The `chat4all` command, run as a user would (a separate process)."""

import os
import subprocess
import sys
from pathlib import Path

from chat4all import __version__

ENV = os.environ | {
    "CHAT4ALL_PASSWORD_HASH_TIME_COST": "1",
    "CHAT4ALL_PASSWORD_HASH_MEMORY_KIB": "1024",
}


def chat4all(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chat4all", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


def test_version():
    result = chat4all("version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_migrate_is_idempotent(tmp_path: Path):
    for _ in range(2):
        result = chat4all("migrate", "--data-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "metadata.db").exists()


def test_user_create_then_a_clear_error_for_a_taken_name(tmp_path: Path):
    args = (
        "user",
        "create",
        "carol",
        "--email",
        "carol@example.com",
        "--password",
        "long password",
    )
    first = chat4all(*args, "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip()) == 36  # the new user's id
    again = chat4all(*args, "--data-dir", str(tmp_path))
    assert again.returncode == 1
    assert "carol" in again.stderr and "taken" in again.stderr
    bad = chat4all(
        "user",
        "create",
        "x",
        "--email",
        "nope",
        "--password",
        "long password",
        "--data-dir",
        str(tmp_path),
    )
    assert bad.returncode == 1
    assert "error:" in bad.stderr


def test_a_cluster_process_names_the_server_it_cannot_reach(tmp_path: Path):
    env = {
        **os.environ,
        "CHAT4ALL_ETCD_URL": "http://127.0.0.1:1",
        "CHAT4ALL_STARTUP_TIMEOUT_SECONDS": "1",
        "CHAT4ALL_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "chat4all", "worker", "router"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: etcd at http://127.0.0.1:1 is not reachable"), result.stderr
    assert "Traceback" not in result.stderr


def test_channels_add_then_list_then_a_clear_error_for_a_taken_account(tmp_path: Path):
    add = (
        "channels", "add", "telegram", "support-bot", "--set", "bot_token=1:abc",
        "--set", "secret_token=s", "--set", "inbox_user_ids=", "--data-dir", str(tmp_path),
    )  # fmt: skip
    first = chat4all(*add)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "/v1/channels/telegram/support-bot/webhook"
    again = chat4all(*add)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    listed = chat4all("channels", "list", "--data-dir", str(tmp_path))
    assert listed.stdout.split() == ["telegram", "support-bot", "enabled", "inbox=-"]
    unknown = chat4all(
        "channels", "add", "signal", "x", "--set", "a=b", "--data-dir", str(tmp_path)
    )
    assert unknown.returncode == 1 and "no connector" in unknown.stderr
