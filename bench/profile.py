"""Summarise a py-spy profile (`--format raw --threads`: collapsed stacks, one root per thread).

    python -m bench.profile bench/results/profile-s1-closed-loop-threads.txt [--top 25]

Prints, per thread, the share of samples; then for the event loop thread (MainThread) and
the writer threads: self time by package (where the CPU actually is), and inclusive time of
Chat4All's own functions and of the framework layers (which code paths cost it).
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


@dataclass
class ThreadProfile:
    name: str
    samples: int = 0
    self_by_package: Counter[str] = field(default_factory=Counter)
    self_by_function: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)


def package_of(file: str) -> str:
    """`chat4all/services/stream.py` -> `chat4all.services`; `fastapi/routing.py` -> `fastapi`."""
    if file.startswith("<frozen "):
        return "stdlib"
    parts = file.split("/")
    if parts[0] == "chat4all" and len(parts) > 2:
        return ".".join(parts[:2])
    if parts[0] == "uvicorn" and len(parts) > 2:
        return ".".join(parts[:3]).removesuffix(".py")
    if len(parts) == 1:  # a module of the standard library (`uuid.py`, `json/...` has parts)
        return "stdlib:" + parts[0].removesuffix(".py")
    return parts[0] if parts[0] not in ("asyncio", "json", "concurrent") else "stdlib:" + parts[0]


def parse(lines: Iterable[str]) -> dict[str, ThreadProfile]:
    threads: dict[str, ThreadProfile] = {}
    for raw in lines:
        raw = raw.rstrip("\n")
        if not raw or " " not in raw:
            continue
        stack, _, count_text = raw.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        parts = stack.split(";")
        head = _THREAD.match(parts[0])
        name = head.group("name") if head else "?"
        name = re.sub(r"_\d+$", "", name)  # reader pool threads: one entry per pool
        name = re.sub(r"^Thread-\d+ ", "", name)
        frames = parts[1:] if head else parts
        profile = threads.setdefault(name, ThreadProfile(name))
        profile.samples += count
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
            if not m:
                continue
            key = f"{m.group('func')} ({m.group('file')})"
            if key not in seen:
                seen.add(key)
                profile.inclusive[key] += count
    return threads


def render(threads: dict[str, ThreadProfile], top: int) -> str:
    total = sum(t.samples for t in threads.values()) or 1
    out = ["samples by thread (share of all samples)"]
    for t in sorted(threads.values(), key=lambda t: -t.samples):
        out.append(f"  {t.samples:>7}  {100 * t.samples / total:5.1f} %  {t.name}")
    for t in sorted(threads.values(), key=lambda t: -t.samples)[:3]:
        n = t.samples or 1
        out.append(f"\n[{t.name}] self time by package")
        for package, c in t.self_by_package.most_common(top):
            out.append(f"  {100 * c / n:5.1f} %  {package}")
        out.append(f"[{t.name}] self time by function")
        for function, c in t.self_by_function.most_common(top):
            out.append(f"  {100 * c / n:5.1f} %  {function}")
        out.append(f"[{t.name}] inclusive time: chat4all functions")
        ours = [
            (k, c) for k, c in t.inclusive.most_common() if k.endswith(".py)") and "(chat4all/" in k
        ]
        for function, c in ours[:top]:
            out.append(f"  {100 * c / n:5.1f} %  {function}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    with args.profile.open() as f:
        print(render(parse(f), args.top))


if __name__ == "__main__":
    main()
