#!/usr/bin/env bash
# soak-test.sh [SECONDS]: the real accessd under steady load (Scripts/upstream-tests.py): card
# swipes at ACCESS_SOAK_RATE (default 50/s) over five readers with the sample roster's cards and
# unknown ones, an HTTP poller long-polling by cursor, and an MQTT subscriber, for SECONDS (default
# 3600). Sampled every twelfth of the run (at least 10 s): request latency, swipe → relay, resident
# memory, file descriptors, threads. Passes when memory stays flat (≤ 2 MiB + 5 % growth after the
# first window), no file descriptor is leaked, latency holds, and the poller and the subscriber got
# every event in order.
set -euo pipefail
exec python3 "$(dirname "$0")/upstream-tests.py" soak "${1:-3600}" "${ACCESS_SOAK_RATE:-50}"
