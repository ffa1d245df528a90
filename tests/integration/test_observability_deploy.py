"""deploy/: the Prometheus config and alert rules pass promtool; the dashboard and the rules
only query metrics this code defines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric

import chat4all.observability.metrics  # noqa: F401  (registers every metric)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
METRIC_NAME = re.compile(r"\bchat4all_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing; install it with scripts/infra/promtool.sh"
    return found


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=" ".join,
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def exposed_names() -> set[str]:
    families: list[Metric] = list(REGISTRY.collect())
    return {
        family.name + suffix
        for family in families
        if family.name.startswith("chat4all_")
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def dashboard_queries() -> list[str]:
    queries = []
    for path in sorted((DEPLOY / "grafana").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [target["expr"] for target in panel["targets"]]
    return queries


def alert_queries() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("source", [dashboard_queries, alert_queries], ids=lambda f: f.__name__)
def test_queries_name_only_metrics_that_exist(source) -> None:
    queries = source()
    used = {name for query in queries for name in METRIC_NAME.findall(query)}
    assert used, "no chat4all metric queried"
    assert used <= exposed_names(), sorted(used - exposed_names())


def test_every_metric_appears_on_the_dashboard() -> None:
    used = {name for query in dashboard_queries() for name in METRIC_NAME.findall(query)}
    families = {f.name for f in REGISTRY.collect() if f.name.startswith("chat4all_")}
    shown = {f for f in families if any(name.startswith(f) for name in used)}
    assert shown == families, sorted(families - shown)
