#!/usr/bin/env bash
# promtool from Debian's `prometheus` package: the tests check deploy/prometheus/ with it.
# Only the tool is needed; no Prometheus server is started.
source "$(dirname "$0")/lib.sh"
apt_install promtool prometheus
say "promtool: $(command -v promtool)"
