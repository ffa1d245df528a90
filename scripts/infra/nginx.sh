#!/usr/bin/env bash
# nginx from Debian: only installed here; `chat4all cluster` and the cluster bench start their
# own instance in front of the gateways.
source "$(dirname "$0")/lib.sh"
PATH="$PATH:/usr/sbin" apt_install nginx nginx
