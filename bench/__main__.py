"""`python -m bench` (`make bench`): Chat4All's load scenarios, measured, never asserted.

    S1       N senders over HTTP keep-alive into 1:1 conversations, every recipient on the
             stream and acking: (a) closed loop at the maximum rate, (b) open loop at 50 msgs/s
             and at half the maximum found in (a).
    ceiling  a bare FastAPI app doing one durable SQLite insert per request, on the same stack,
             driven by the same closed loop: S1's rate as a share of it.
    S2       the same into one 20-member group, every member on the stream and acking: open loop
             at 50 msgs/s, and a closed loop at the maximum rate.

Each run prints the accepted rate and latency percentiles; the whole is saved as JSON under
bench/results/. `--quick` makes every run short, for a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import load
from bench.load import Meter, RunResult
from bench.server import ServerProcess, ceiling_server, chat4all_server, py_spy_path

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The targets of the issue: printed next to the figures, never asserted.
TARGET_S1_RATE = 2000.0  # accepted msgs/s, closed loop
TARGET_S1_P99_AT_50 = 25.0  # ms, delivery p99 at 50 msgs/s
TARGET_S1_P99_AT_HALF = 100.0  # ms (strictly below), delivery p99 at half the max rate
TARGET_CEILING_SHARE = 50.0  # % of the ceiling's rate
TARGET_S2_P99_AT_50 = 100.0  # ms, delivery p99 over every member's receipt at 50 msgs/s


@dataclass(frozen=True)
class Options:
    scenario: str
    duration: float
    warmup: float
    drain: float
    senders: int
    rate: float
    group_size: int
    group_senders: int
    profile: str | None  # None, "threads" or "gil"
    ack: bool
    quick: bool
    output: Path


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", choices=["s1", "s2", "ceiling", "all"], default="all")
    parser.add_argument("--duration", type=float, help="measured seconds per run [15; quick: 3]")
    parser.add_argument(
        "--warmup", type=float, help="unmeasured seconds before each run [3; quick: 1]"
    )
    parser.add_argument(
        "--drain", type=float,
        help="at most this many seconds, after a run, for the last deliveries [60; quick: 10]",
    )  # fmt: skip
    parser.add_argument(
        "--senders", type=int,
        help="S1 senders (and concurrent requests of the closed loops) [32; quick: 16]",
    )  # fmt: skip
    parser.add_argument("--rate", type=float, default=50.0, help="the fixed open-loop rate [50]")
    parser.add_argument("--group-size", type=int, default=20, help="S2 members [20]")
    parser.add_argument("--group-senders", type=int, default=4, help="S2 members who send [4]")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test (< 60 s)")
    parser.add_argument(
        "--no-ack", action="store_true",
        help="diagnostic: receivers do not ack (shows what the receipts cost the server)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", nargs="?", const="threads", choices=["threads", "gil"],
        help="attach py-spy (if installed) to the server over each Chat4All run's window, "
        "sampling every busy thread (threads, the default) or only the GIL holder (gil)",
    )  # fmt: skip
    parser.add_argument(
        "--output", type=Path, help="the JSON file [bench/results/bench-<time>.json]"
    )
    a = parser.parse_args(argv)
    quick = bool(a.quick)

    def pick(value: float | None, full: float, short: float) -> float:
        return float(value) if value is not None else (short if quick else full)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    output = a.output or RESULTS_DIR / f"bench-{stamp}{'-quick' if quick else ''}.json"
    options = Options(
        scenario=a.scenario,
        duration=pick(a.duration, 15.0, 3.0),
        warmup=pick(a.warmup, 3.0, 1.0),
        drain=pick(a.drain, 60.0, 10.0),
        senders=int(pick(a.senders, 32, 16)),
        rate=a.rate,
        group_size=a.group_size,
        group_senders=a.group_senders,
        profile=a.profile,
        quick=quick,
        ack=not a.no_ack,
        output=output,
    )
    if options.senders < 1 or options.group_senders < 1 or options.group_size < 2:
        parser.error("--senders and --group-senders must be >= 1, --group-size >= 2")
    if options.group_senders > options.group_size:
        parser.error("--group-senders cannot exceed --group-size")
    return options


# --- printing ----------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def report(run: RunResult) -> None:
    how = (
        f"{run.concurrency} concurrent"
        if run.mode == "closed"
        else f"open loop at {run.target_rate:,.0f}/s"
    )
    say(f"  {run.name}  ({how}, {run.duration_s:.0f} s measured)")
    say(f"    accepted           {run.accepted_per_s:>9,.0f} msgs/s   ({run.accepted:,} in all)")
    if run.errors:
        say(f"    errors             {run.errors}")
    say(
        f"    accept latency     p50/p95/p99 {run.accept_ms.brief()} ms   max {run.accept_ms.max:.1f} ms"
    )
    if run.delivery_ms is not None:
        d = run.delivery_ms
        say(
            f"    delivery latency   p50/p95/p99 {d.brief()} ms   max {d.max:.1f} ms   ({d.count:,} receipts)"
        )
        fraction = run.delivered_fraction
        share = f"{100 * fraction:.3f} %" if fraction is not None else "-"
        say(
            f"    delivered          {run.delivered:,}/{run.expected_deliveries:,} = {share}, "
            f"{run.missing:,} missing after {run.drain_s:.1f} s of drain"
            + (f"; {run.duplicates} duplicates" if run.duplicates else "")
            + (f"; {run.reconnects} stream reconnects" if run.reconnects else "")
        )
        if run.deliveries_per_s is not None:
            say(
                f"    receipts           {run.deliveries_per_s:>9,.0f} /s (first send to last receipt)"
            )
    if run.schedule_lag_ms is not None and run.schedule_lag_ms.count:
        lag = run.schedule_lag_ms
        say(
            f"    generator lag      p99 {lag.p99:.1f} ms  max {lag.max:.1f} ms (late starts count in latencies)"
        )
    server = f"{run.server_cpu_pct:.0f} %" if run.server_cpu_pct is not None else "-"
    if run.server_loop_cpu_pct is not None:
        server += f" (event-loop thread {run.server_loop_cpu_pct:.0f} %)"
    others = ""
    if run.other_cpu_pct is not None:
        others = f", other processes {run.other_cpu_pct:.0f} %"
        if run.other_cpu_pct > 20:
            others += " (the machine was not quiet: figures disturbed)"
    say(
        f"    CPU (of one core)  server {server}, load generator {run.loadgen_cpu_pct:.0f} %{others}"
    )
    per_message = run.server_cpu_ms_per_message
    if per_message is not None and run.mode == "closed":
        say(f"    server CPU         {per_message:.2f} ms per accepted message (all its work)")


@dataclass(frozen=True)
class Check:
    what: str
    value: str
    target: str
    met: bool | None  # None: not measured in this run

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def checks(runs: dict[str, RunResult]) -> list[Check]:
    out: list[Check] = []

    def add(key: str, what: str, target: str, get: Callable[[RunResult], float | None],
            ok: Callable[[float], bool], fmt: Callable[[float], str]) -> None:  # fmt: skip
        run = runs.get(key)
        value = get(run) if run is not None else None
        if value is None:
            out.append(Check(what, "not run", target, None))
        else:
            out.append(Check(what, fmt(value), target, ok(value)))

    def p99(run: RunResult) -> float | None:
        return (
            run.delivery_ms.p99 if run.delivery_ms is not None and run.delivery_ms.count else None
        )

    add(
        "s1_closed",
        "S1 accepted msgs/s (closed loop)",
        f">= {TARGET_S1_RATE:,.0f}",
        lambda r: r.accepted_per_s,
        lambda v: v >= TARGET_S1_RATE,
        lambda v: f"{v:,.0f}",
    )
    add(
        "s1_open_fixed",
        "S1 delivery p99 at the fixed rate",
        f"<= {TARGET_S1_P99_AT_50:.0f} ms",
        p99,
        lambda v: v <= TARGET_S1_P99_AT_50,
        lambda v: f"{v:.1f} ms",
    )
    half = runs.get("s1_open_half")
    at = f" ({half.target_rate:,.0f}/s)" if half and half.target_rate else ""
    add(
        "s1_open_half",
        f"S1 delivery p99 at half the max rate{at}",
        f"< {TARGET_S1_P99_AT_HALF:.0f} ms",
        p99,
        lambda v: v < TARGET_S1_P99_AT_HALF,
        lambda v: f"{v:.1f} ms",
    )
    s1, ceiling = runs.get("s1_closed"), runs.get("ceiling")
    if s1 is not None and ceiling is not None and ceiling.accepted_per_s > 0:
        share = 100 * s1.accepted_per_s / ceiling.accepted_per_s
        out.append(Check(
            f"S1 share of the ceiling ({ceiling.accepted_per_s:,.0f}/s)",
            f"{share:.0f} %", f">= {TARGET_CEILING_SHARE:.0f} %", share >= TARGET_CEILING_SHARE,
        ))  # fmt: skip
    else:
        out.append(
            Check("S1 share of the ceiling", "not run", f">= {TARGET_CEILING_SHARE:.0f} %", None)
        )
    add(
        "s2_open_fixed",
        "S2 delivery p99 at the fixed rate (every member)",
        f"<= {TARGET_S2_P99_AT_50:.0f} ms",
        p99,
        lambda v: v <= TARGET_S2_P99_AT_50,
        lambda v: f"{v:.1f} ms",
    )
    delivering = [r for r in runs.values() if r.delivery_ms is not None]
    if delivering:
        missing = sum(r.missing for r in delivering)
        expected = sum(r.expected_deliveries for r in delivering)
        out.append(Check("every accepted message delivered", f"{expected - missing:,}/{expected:,}",
                         "all", missing == 0))  # fmt: skip
    return out


def report_checks(found: list[Check]) -> None:
    say("Targets (reported, not asserted)")
    width = max(len(c.what) for c in found)
    for c in found:
        verdict = "-" if c.met is None else ("met" if c.met else "NOT MET")
        say(f"  {c.what:<{width}}  {c.value:>14}   target {c.target:<10} {verdict}")


# --- running -----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory_gib = round(int(first.split()[1]) / 2**20, 1)
    versions = {}
    for package in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "websockets",
                    "aiohttp", "aiosqlite", "pydantic", "orjson"):  # fmt: skip
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "sqlite": __import__("sqlite3").sqlite_version,
        "packages": versions,
    }


def source() -> dict[str, Any]:
    """The commit measured, and whether src/ had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--", "src")
    return {
        "commit": git("rev-parse", "HEAD"),
        "src_dirty": bool(status) if status is not None else None,
    }


@contextlib.contextmanager
def section(title: str) -> Iterator[None]:
    say(f"== {title}")
    start = time.perf_counter()
    yield
    say(f"   ({time.perf_counter() - start:.0f} s)")


async def settle(server: ServerProcess) -> None:
    """Let the server finish what the previous run queued (receipts, status updates)."""
    await server.wait_idle(limit=30.0)


async def run_s1(o: Options, runs: dict[str, RunResult], profile_dir: Path | None) -> None:
    async with chat4all_server() as server:
        population = await load.private_pairs(server.url, o.senders, o.ack)
        meter = Meter(server, profile_dir, o.profile == "gil")
        try:
            common = {"warmup": o.warmup, "duration": o.duration, "drain": o.drain}
            closed = await load.closed_loop("S1 closed-loop", population.targets,
                                            concurrency=o.senders, meter=meter, **common)  # fmt: skip
            runs["s1_closed"] = closed
            report(closed)
            await settle(server)
            fixed = await load.open_loop(f"S1 open-loop {o.rate:g}/s", population.targets,
                                         rate=o.rate, meter=meter, **common)  # fmt: skip
            runs["s1_open_fixed"] = fixed
            report(fixed)
            half_rate = max(1.0, closed.accepted_per_s / 2)
            await settle(server)
            half = await load.open_loop(f"S1 open-loop {half_rate:,.0f}/s (half max)",
                                        population.targets, rate=half_rate, meter=meter,
                                        **common)  # fmt: skip
            runs["s1_open_half"] = half
            report(half)
        finally:
            await population.close()


async def run_ceiling(o: Options, runs: dict[str, RunResult]) -> None:
    async with ceiling_server() as server:
        targets = load.ceiling_targets(server.url, o.senders)
        run = await load.closed_loop("ceiling closed-loop", targets, concurrency=o.senders,
                                     warmup=o.warmup, duration=o.duration, drain=0,
                                     meter=Meter(server))  # fmt: skip
        runs["ceiling"] = run
        report(run)


async def run_s2(o: Options, runs: dict[str, RunResult], profile_dir: Path | None) -> None:
    async with chat4all_server() as server:
        population = await load.group(server.url, o.group_size, o.group_senders, o.ack)
        meter = Meter(server, profile_dir, o.profile == "gil")
        try:
            common = {"warmup": o.warmup, "duration": o.duration, "drain": o.drain}
            fixed = await load.open_loop(
                f"S2 open-loop {o.rate:g}/s ({o.group_size} members)", population.targets,
                rate=o.rate, meter=meter, **common,
            )  # fmt: skip
            runs["s2_open_fixed"] = fixed
            report(fixed)
            await settle(server)
            closed = await load.closed_loop(
                f"S2 closed-loop ({o.group_size} members)", population.targets,
                concurrency=o.group_senders, meter=meter, **common,
            )  # fmt: skip
            runs["s2_closed"] = closed
            report(closed)
        finally:
            await population.close()


async def main(o: Options) -> int:
    profile_dir: Path | None = None
    if o.profile:
        if py_spy_path() is None:
            say("--profile: py-spy is not installed (uv pip install py-spy); no profiles taken")
        else:
            profile_dir = o.output.parent
            say(
                f"--profile: py-spy profiles go to {profile_dir} (summary: python -m bench.profile FILE)"
            )
    started = datetime.now(UTC)
    load_average = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load_average is not None and load_average[0] > 0.5:
        say(
            f"note: the machine is not idle (load average {load_average[0]:.2f}); figures may be disturbed"
        )
    say(f"Chat4All bench: scenario {o.scenario}, {o.duration:g} s measured after {o.warmup:g} s "
        f"of warm-up per run, {o.senders} S1 senders{' (quick)' if o.quick else ''}{', no acks' if not o.ack else ''}")  # fmt: skip
    runs: dict[str, RunResult] = {}
    if o.scenario in ("s1", "all"):
        with section("S1: 1:1 conversations, recipients on the stream"):
            await run_s1(o, runs, profile_dir)
    if o.scenario in ("ceiling", "all"):
        with section("Ceiling: bare FastAPI + one durable SQLite insert per request"):
            await run_ceiling(o, runs)
    if o.scenario in ("s2", "all"):
        with section(f"S2: one {o.group_size}-member group, every member on the stream"):
            await run_s2(o, runs, profile_dir)
    say()
    found = checks(runs)
    report_checks(found)

    document = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in o.__dict__.items()},
        "machine": machine(),
        "source": source(),
        "load_average_before": load_average,
        "runs": {key: run.to_dict() for key, run in runs.items()},
        "targets": [c.to_dict() for c in found],
    }
    o.output.parent.mkdir(parents=True, exist_ok=True)
    o.output.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    say(f"\nresults: {o.output}")
    return 0


def run(argv: list[str] | None = None) -> int:
    options = parse(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(main(options))
    return uvloop.run(main(options))


if __name__ == "__main__":
    sys.exit(run())
