#!/usr/bin/env bash
# The MongoDB the tests use (`mongo` in tests/servers.py) is FerretDB: see ferretdb.sh.
exec "$(dirname "$0")/ferretdb.sh" "$@"
