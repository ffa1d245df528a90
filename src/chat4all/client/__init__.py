"""Clients of a Chat4All server's HTTP API (used by the CLI)."""
