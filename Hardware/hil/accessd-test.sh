#!/usr/bin/env bash
# accessd-test.sh: the real accessd, end to end, on a gpio-sim chip in the QEMU guest. The chip's
# lines carry the names of Hardware/boards/sim.toml; accessd drives them through libgpiod
# ([board] simulated = false) with a roster imported here by accessctl, while the guest script
# (accessd-guest.sh) plays readers, door contacts, buttons and the fire panel and records the lock
# lines and the event log (accessctl in the guest); verify.py accessd then checks, on the host,
# over that data (kept in $ACCESS_HIL_CACHE/logs/accessd-test/): start in the safe state, grant /
# unknown / no-right decisions at the lock, forced-open and held-open alarms, exit button, fire
# release, roster changes without a restart, a dry-contact barrier that does not lower while its loop
# input is set, swipe → relay latency, and a graceful SIGTERM stop.
#
#   Hardware/hil/accessd-test.sh [run-guest.sh options]
#   ACCESS_HIL_SCRATCH=.build-hil Hardware/hil/accessd-test.sh     # build in another scratch dir
#   ACCESS_HIL_BUILD=release ACCESS_HIL_ENFORCE_LATENCY=1 Hardware/hil/accessd-test.sh
# ACCESS_HIL_BUILD: debug (default) or release. ACCESS_HIL_SCRATCH: SwiftPM scratch path (default
# .build). ACCESS_HIL_LATENCY_FRAMES: granted swipes timed (200). The latency is always reported;
# ACCESS_HIL_ENFORCE_LATENCY=1 also fails the run when accessd's p99 > 5 ms.
set -euo pipefail

HIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HIL_DIR/../.." && pwd)
BUILD=${ACCESS_HIL_BUILD:-debug}
SCRATCH=${ACCESS_HIL_SCRATCH:-.build}
FRAMES=${ACCESS_HIL_LATENCY_FRAMES:-200}
CACHE=${ACCESS_HIL_CACHE:-$HOME/.cache/communityaccess-hil}
LOG=$CACHE/logs/accessd-test.log
DATA=$CACHE/logs/accessd-test
ZONE=Asia/Shanghai
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# shellcheck source=host-lib.sh
. "$HIL_DIR/host-lib.sh"

build_for_guest "$ROOT" "$BUILD" "$SCRATCH" "$WORK/bin"
ACCESSD=$WORK/bin/accessd
ACCESSCTL=$WORK/bin/accessctl

chip_lines "$ROOT/Hardware/boards/sim.toml" >"$WORK/lines.txt"

# The site: site_config in host-lib.sh.
site_config /data/db/access.db >"$WORK/accessd-hil.toml"
site_config "$WORK/db/access.db" >"$WORK/host.toml"

# A small roster: two residents of building 1 (one without a card: the guest gives him one while
# accessd runs; the other's plate opens the garage barrier), one of building 2 (no right at
# building 1's door).
cat >"$WORK/roster.csv" <<'EOF'
house_id,building,unit,floor,room,person_id,name,role,phone,valid_from,valid_until,cards,plates,groups,status
B01-U1-101,B01,1,1,101,P0001,谭国华,owner,13283904377,,,6553701,京A12345,,active
B01-U1-101,B01,1,1,101,P0002,曹建华,family,,,,,,,active
B02-U1-101,B02,1,1,101,P0050,于志强,owner,13641524712,,,6553763,,,active
EOF
mkdir -p "$WORK/db"
"$ACCESSCTL" --config "$WORK/host.toml" --operator hil import "$WORK/roster.csv" >&2
# The database must be whole in its main file (no WAL left behind) before it is copied.
if compgen -G "$WORK/db/access.db-wal" >/dev/null && [ -s "$WORK/db/access.db-wal" ]; then
    echo "accessd-test: the imported database left a non-empty WAL file" >&2
    exit 1
fi

# The site's zone file: the guest has no tzdata. Swift 6.3's Foundation resolves Asia/Shanghai
# from ICU's built-in data and accessd runs without it (tried), but a Foundation that reads the
# system zone database would not; the host's copy costs 561 bytes.
ZONE_FILE=$(readlink -f "/usr/share/zoneinfo/$ZONE" || true)
[ -f "$ZONE_FILE" ] || { echo "accessd-test: no /usr/share/zoneinfo/$ZONE on this machine (install tzdata)" >&2; exit 1; }

# Emulated timing suffers when the host is busy: say how busy it was.
echo "accessd-test: host load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
status=0
rm -f "$LOG" # a summary below must come from this run
"$HIL_DIR/run-guest.sh" --lines "$WORK/lines.txt" --guest-script "$HIL_DIR/accessd-guest.sh" \
    --payload "$ACCESSD" --payload "$ACCESSCTL" \
    --file "$ROOT/Hardware/boards/sim.toml:/data/sim.toml" \
    --file "$WORK/accessd-hil.toml:/data/accessd-hil.toml" \
    --file "$WORK/db:/data/db" \
    --file "$ZONE_FILE:/usr/share/zoneinfo/$ZONE" \
    --env "FRAMES=$FRAMES" --env "ENFORCE_LATENCY=${ACCESS_HIL_ENFORCE_LATENCY:-0}" \
    --memory 1G --timeout 300 --log "$LOG" --outdir "$DATA" "$@" || status=$?

# 0: the script ran to the end; 1: it stopped early (accessd did not start) and the verifier says why.
if [ "$status" -gt 1 ] || [ ! -s "$DATA/facts.jsonl" ]; then
    echo "hil-accessd: the guest did not finish (run-guest.sh exit $status; log: $LOG)" >&2
    exit $((status > 0 ? status : 1))
fi
exec python3 "$HIL_DIR/verify.py" accessd "$DATA"
