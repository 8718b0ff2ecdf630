#!/usr/bin/env bash
# gpio-driver-test.sh: the real GPIO driver (access-gpio-probe, built from this package) on a
# gpio-sim chip whose lines carry the simulated board's names (Hardware/boards/sim.toml), in
# the QEMU guest. Checks outputs, inputs, Wiegand frames at reader timing (FRAMES of them:
# 1000 by default, ACCESS_HIL_FRAMES=10000 on demand) and measures last edge → lock line. The
# guest (gpio-driver-guest.sh) drives and records; verify.py gpio-driver judges what it recorded
# (kept in $ACCESS_HIL_CACHE/logs/gpio-driver-test/ until the next run).
#
#   Hardware/hil/gpio-driver-test.sh [run-guest.sh options]
#   ACCESS_HIL_BUILD=release ACCESS_HIL_FRAMES=10000 ACCESS_HIL_ENFORCE_LATENCY=1 Hardware/hil/gpio-driver-test.sh
# Latency is always reported; ACCESS_HIL_ENFORCE_LATENCY=1 also fails the run when p99 > 5 ms
# (off by default: emulated timing depends on what else the host is doing).
set -euo pipefail

HIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HIL_DIR/../.." && pwd)
BUILD=${ACCESS_HIL_BUILD:-debug}
FRAMES=${ACCESS_HIL_FRAMES:-1000}
CACHE=${ACCESS_HIL_CACHE:-$HOME/.cache/communityaccess-hil}
LOG=$CACHE/logs/gpio-driver-test.log
DATA=$CACHE/logs/gpio-driver-test
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=host-lib.sh
. "$HIL_DIR/host-lib.sh"

(cd "$ROOT" && swift build -c "$BUILD" --product access-gpio-probe >&2)
PROBE=$ROOT/.build/$BUILD/access-gpio-probe

# The chip's lines: every line the board map names, in order (outputs, inputs, reader D0/D1),
# plus one the map does not know, for the "missing line" check on a second map.
chip_lines "$ROOT/Hardware/boards/sim.toml" >"$WORK/lines.txt"
echo "spare.line" >>"$WORK/lines.txt"
# A map naming a line that is not on the chip.
sed 's/name = "siren"/name = "siren.missing"/' "$ROOT/Hardware/boards/sim.toml" >"$WORK/missing.toml"

status=0
timeout_s=$((120 + FRAMES / 10))
"$HIL_DIR/run-guest.sh" --lines "$WORK/lines.txt" --guest-script "$HIL_DIR/gpio-driver-guest.sh" \
    --payload "$PROBE" --file "$ROOT/Hardware/boards/sim.toml:/data/sim.toml" \
    --file "$WORK/missing.toml:/data/missing.toml" --env "FRAMES=$FRAMES" \
    --env "ENFORCE_LATENCY=${ACCESS_HIL_ENFORCE_LATENCY:-0}" \
    --timeout "$timeout_s" --log "$LOG" --outdir "$DATA" "$@" || status=$?

if [ "$status" -ne 0 ] || [ ! -s "$DATA/facts.jsonl" ]; then
    echo "hil-gpio: the guest did not finish (run-guest.sh exit $status; log: $LOG)" >&2
    exit $((status > 0 ? status : 1))
fi
exec python3 "$HIL_DIR/verify.py" gpio-driver "$DATA"
