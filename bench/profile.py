"""Summarise a py-spy profile (`--format raw --threads`: collapsed stacks, one root per thread).

    python -m bench.profile bench/results/profile-s1-closed-loop-gil.txt [--top 15]

Profiles come from `python -m bench --profile [threads|gil]`. Prints the samples per thread,
then for the busiest threads: the share of samples per stage of the message's path (HTTP
request, stream, each worker; for a SQLite writer thread, each kind of job), self time by
package and by function (where the interpreter actually is), and the inclusive time of
Chat4All's own functions (which of our code paths cost it). With `--gil` profiles only the
thread holding the GIL is sampled, so the shares are shares of the GIL, the scarce resource.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \((?P<tid>\w+)\): (?P<name>.*)$")

# Stages of the event loop thread, by a marker in the stack; the first that matches wins.
_LOOP_STAGES: tuple[tuple[str, str], ...] = (
    ("chat4all/workers/status.py", "worker: status (receipts, watermarks, message.status)"),
    ("chat4all/workers/delivery.py", "worker: delivery (push to the hub)"),
    ("chat4all/workers/router.py", "worker: router (delivery jobs)"),
    ("chat4all/workers/relay.py", "worker: outbox relay"),
    ("chat4all/workers/base.py", "worker: consume loop (fetch, commit)"),
    ("chat4all/api/ws.py", "stream: WebSocket sessions (push, acks)"),
    ("websockets", "stream: WebSocket protocol"),
    ("chat4all/api/rest/messages.py", "HTTP: POST messages endpoint"),
    ("chat4all/api/rest/deps.py", "HTTP: auth dependency (access token)"),
    ("httptools_impl", "HTTP: uvicorn + FastAPI around the endpoint"),
    ("fastapi/", "HTTP: uvicorn + FastAPI around the endpoint"),
    ("starlette/", "HTTP: uvicorn + FastAPI around the endpoint"),
    # SQLAlchemy runs its sync core in greenlets, whose stacks do not show who called them.
    ("sqlalchemy/", "metadata store: SQLAlchemy Core + aiosqlite"),
    ("aiosqlite/", "metadata store: SQLAlchemy Core + aiosqlite"),
)


@dataclass
class ThreadProfile:
    name: str
    samples: int = 0
    stages: Counter[str] = field(default_factory=Counter)
    self_by_package: Counter[str] = field(default_factory=Counter)
    self_by_function: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)


def package_of(file: str) -> str:
    """`chat4all/services/stream.py` -> `chat4all.services`; `fastapi/routing.py` -> `fastapi`;
    a module of the standard library -> `stdlib:<name>`."""
    if file.startswith("<"):
        return "stdlib"
    parts = file.split("/")
    if parts[0] == "chat4all" and len(parts) > 2:
        return ".".join(parts[:2])
    if parts[0] == "uvicorn" and len(parts) > 2:
        return ".".join(parts[:3]).removesuffix(".py")
    if len(parts) == 1 or parts[0] in ("asyncio", "json", "concurrent", "email", "importlib"):
        return "stdlib:" + parts[0].removesuffix(".py")
    return parts[0]


def stage_of(thread: str, frames: list[str]) -> str:
    if thread.startswith("sqlite-writer"):
        # The job: the frame called by the batch loop (`SQLiteWriter._commit_batch`).
        for i, frame in enumerate(frames[:-1]):
            if frame.startswith("SQLiteWriter._commit_batch "):
                job = frames[i + 1].split(" (", 1)[0]
                return (
                    f"job: {job}"
                    if not job.startswith("SQLiteWriter")
                    else "batch: BEGIN/SAVEPOINT/COMMIT"
                )
        return "waiting for jobs / other"
    if not frames:
        return "no Python frame (C code holding the GIL: GC, uvloop, ...)"
    stack = ";".join(frames)
    for marker, stage in _LOOP_STAGES:
        if marker in stack:
            return stage
    return "other (event loop, timers, ...)"


def parse(lines: Iterable[str]) -> dict[str, ThreadProfile]:
    threads: dict[str, ThreadProfile] = {}
    for raw in lines:
        stack, _, count_text = raw.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack.split(";")
        head = _THREAD.match(parts[0])
        name = head.group("name") if head else "?"
        name = re.sub(r"_\d+$", "", name)  # a pool's threads: one entry per pool
        name = re.sub(r"^Thread-\d+ ", "", name)
        frames = parts[1:] if head else parts
        profile = threads.setdefault(name, ThreadProfile(name))
        profile.samples += count
        profile.stages[stage_of(name, frames)] += count
        if not frames:
            profile.self_by_package["(no Python frame)"] += count
            continue
        leaf = _FRAME.match(frames[-1])
        if leaf:
            profile.self_by_package[package_of(leaf.group("file"))] += count
            profile.self_by_function[f"{leaf.group('func')} ({leaf.group('file')})"] += count
        seen: set[str] = set()
        for frame in frames:
            m = _FRAME.match(frame)
            if m:
                key = f"{m.group('func')} ({m.group('file')})"
                if key not in seen:
                    seen.add(key)
                    profile.inclusive[key] += count
    return threads


def render(threads: dict[str, ThreadProfile], top: int, detail: int = 3) -> str:
    total = sum(t.samples for t in threads.values()) or 1
    ordered = sorted(threads.values(), key=lambda t: -t.samples)
    out = ["samples by thread (share of all samples)"]
    for t in ordered:
        out.append(f"  {t.samples:>7}  {100 * t.samples / total:5.1f} %  {t.name}")
    for t in ordered[:detail]:
        n = t.samples or 1

        def block(
            title: str, items: list[tuple[str, int]], thread: ThreadProfile = t, n: int = n
        ) -> None:
            out.append(f"[{thread.name}] {title}")
            out.extend(f"  {100 * c / n:5.1f} %  {key}" for key, c in items)

        out.append("")
        block("stages", t.stages.most_common())
        block("self time by package", t.self_by_package.most_common(top))
        block("self time by function", t.self_by_function.most_common(top))
        ours = [(k, c) for k, c in t.inclusive.most_common() if "(chat4all/" in k]
        ours = [(k, c) for k, c in ours if not k.startswith(("<module>", "up "))]
        block("inclusive time of chat4all functions", ours[:top])
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--threads", type=int, default=3, help="threads shown in detail [3]")
    args = parser.parse_args()
    with args.profile.open() as f:
        print(render(parse(f), args.top, args.threads))


if __name__ == "__main__":
    main()
