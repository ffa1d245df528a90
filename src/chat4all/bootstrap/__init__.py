"""The composition root: settings + profile -> a wired platform. Nothing is built at import.

The profile is chosen here, and only here: `embedded` runs everything in one process on SQLite;
`cluster` runs the roles a process is given on PostgreSQL, MongoDB, Kafka, Redis and etcd.
"""

from chat4all.bootstrap.embedded import build_embedded, build_embedded_accounts
from chat4all.bootstrap.platform import Platform, Worker, auth_policy, wire

__all__ = ["Platform", "Worker", "auth_policy", "build_embedded", "build_embedded_accounts", "wire"]
