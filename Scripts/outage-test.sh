#!/usr/bin/env bash
# outage-test.sh [EVENTS]: the upstream outage, end to end with the real accessd
# (Scripts/upstream-tests.py). A real mosquitto on 127.0.0.1 and a subscriber with a persistent
# QoS 1 session; accessd on the simulated board with MQTT and the HTTP API. The broker is stopped,
# EVENTS (default 100,000) events accumulate in accessd's log (card swipes through the control
# socket), the broker returns, and the check is: the subscriber receives every event, first
# arrivals in serial order with none missing, any repeat with the same id (QoS 1); an HTTP poller
# paging by cursor sees the same (serial, id) sequence; and the drain rate.
#
# ACCESS_OUTAGE_RATE: accessd's backlog_rate (default 5000/s; the shipped default is 500).
# ACCESS_UPSTREAM_BUILD=release, ACCESS_UPSTREAM_KEEP=1: see Scripts/upstream-tests.py.
set -euo pipefail
exec python3 "$(dirname "$0")/upstream-tests.py" outage "${1:-100000}" "${ACCESS_OUTAGE_RATE:-5000}"
