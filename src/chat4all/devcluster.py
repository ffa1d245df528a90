"""A whole cluster on one machine, for trying it and for the multi-node tests: gateways and
workers as separate processes on the real servers, nginx in front of the gateways.

The servers themselves (PostgreSQL, MongoDB, Kafka, Redis, etcd) are started by
scripts/infra/up.sh; this starts Chat4All's own processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from chat4all.roles import ServiceRole, WorkerRole

NGINX_CONF = """\
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/logs/nginx.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/nginx-body;
    proxy_temp_path {dir}/nginx-proxy;
    fastcgi_temp_path {dir}/nginx-fastcgi;
    uwsgi_temp_path {dir}/nginx-uwsgi;
    scgi_temp_path {dir}/nginx-scgi;
    client_max_body_size 2m;
    upstream gateways {{
{servers}
        keepalive 64;
    }}
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


@dataclass
class DevCluster:
    """A gateway on each of `gateway_ports`, `replicas` of each worker, all with `env`
    (CHAT4ALL_* settings) on top of this process's environment; nginx in front if given a port."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    gateway_ports: tuple[int, ...] = (8081, 8082)
    replicas: int = 2
    nginx_port: int | None = 8080
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Processes without HTTP serve /metrics on a port of their own: process name -> port.
    metrics_ports: dict[str, int] = field(default_factory=dict)

    @property
    def gateway_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.gateway_ports]

    def start(self) -> None:
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.run_command("migrate", "--cluster")
        services = [r for r in ServiceRole if r is not ServiceRole.GATEWAY]
        for i in range(1, self.replicas + 1):  # gRPC on free ports, announced in etcd
            name = f"services-{i}"
            self.spawn(
                name, "serve", *services, env={"CHAT4ALL_GRPC_PORT": "0"} | self._metrics(name)
            )
        for i, port in enumerate(self.gateway_ports, 1):
            self.spawn(f"gateway-{i}", "serve", ServiceRole.GATEWAY, "--port", str(port))
        for role in WorkerRole:
            for i in range(1, self.replicas + 1):
                self.spawn(f"{role}-{i}", "worker", role, env=self._metrics(f"{role}-{i}"))
        for port in self.gateway_ports:
            # Generous: ~18 processes import and connect at once on a small, busy CI machine.
            wait_for_port(port, 180, self.log_tail)
        if self.nginx_port is not None:
            self.start_nginx()

    def _metrics(self, name: str) -> dict[str, str]:
        port = self.metrics_ports[name] = free_port()
        return {"CHAT4ALL_METRICS_PORT": str(port)}

    def spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.workdir / "logs" / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [_executable(), *args],
            env={**self._environment(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = process
        return process

    def run_command(self, *args: str) -> None:
        subprocess.run([_executable(), *args], env=self._environment(), check=True)

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        process.wait(30)

    def start_nginx(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        servers = "\n".join(f"        server {url[7:]};" for url in self.gateway_urls)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(user=user, dir=self.workdir, servers=servers, port=self.nginx_port)
        )
        self.processes["nginx"] = subprocess.Popen(
            [nginx, "-c", str(conf), "-p", str(self.workdir), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "logs" / "nginx.log").open("ab"),
        )
        assert self.nginx_port is not None
        wait_for_port(self.nginx_port, 10, self.log_tail)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 15
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def log_tail(self) -> str:
        tails = []
        for path in sorted((self.workdir / "logs").glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-5:]
            tails.append(f"--- {path.name}\n" + "\n".join(lines))
        return "\n".join(tails)

    def _environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}


def _executable() -> str:
    """The `chat4all` command of the running interpreter's environment."""
    installed = Path(sys.executable).parent / "chat4all"
    return str(installed) if installed.exists() else "chat4all"


def free_port() -> int:
    """A port nothing listens on now (the OS's pick); free until someone binds it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, explain: object = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    detail = explain() if callable(explain) else ""
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s\n{detail}")
