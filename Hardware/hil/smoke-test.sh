#!/usr/bin/env bash
# smoke-test.sh: boot the HIL guest and check the simulated GPIO chip with libgpiod's
# tools and wiegand-inject (see smoke-guest.sh). Extra arguments go to run-guest.sh,
# e.g. --timeout 300. Exit status is run-guest.sh's: non-zero if any check failed.
set -euo pipefail

HIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The guest's console log, kept for a look after a failure; overwritten by the next run.
LOG=${ACCESS_HIL_CACHE:-$HOME/.cache/communityaccess-hil}/logs/smoke-test.log

status=0
"$HIL_DIR/run-guest.sh" --lines "$HIL_DIR/smoke-lines.txt" \
    --guest-script "$HIL_DIR/smoke-guest.sh" --log "$LOG" "$@" || status=$?

# Repeat the guest's summary as the last line, where test-report readers look for it.
summary=$(grep -E '^hil-smoke: [0-9]+ passed, [0-9]+ failed$' "$LOG" | tail -n1 || true)
if [ -n "$summary" ]; then
    echo "$summary"
elif [ "$status" -eq 0 ]; then
    : # HIL skipped (ACCESS_HIL_OPTIONAL=1): run-guest.sh said so loudly
else
    echo "hil-smoke: guest gave no summary (exit $status)" >&2
fi
exit "$status"
