#!/usr/bin/env bash
# power-cut-test.sh: accessd loses power while it writes events. In the QEMU guest accessd runs on
# the gpio-sim chip with its SQLite database on a virtio disk (ext4), Wiegand frames arrive without
# pause, and a client in the guest prints every event the HTTP API hands it (those are
# acknowledged). At a random moment the host kills QEMU with SIGKILL and boots the guest again on
# the same disk, which lists what survived. This script only drives (boots, cuts, records each boot
# in $LOGDIR/runs.jsonl); verify.py power-cut then checks every boot's console log: `accessctl db
# check` (PRAGMA integrity_check) passes, every acknowledged event is in the log with the same
# serial, id, time, type and reason, serials strictly increase, every event listed after an earlier
# cut is still there, and accessd starts again. Guest script: power-cut-guest.sh. Last line:
# "power-cut: N cycles, X events acknowledged, L lost, F failures (seed S, T s)".
#
#   Hardware/hil/power-cut-test.sh [CYCLES]        # default 3 (CI); ACCESS_HIL_POWER_CUTS=50 too
#
# Environment: ACCESS_HIL_POWER_CUT_SEED (random cut moments; printed), ACCESS_HIL_POWER_CUT_MIN_MS
# / _MAX_MS (cut this long after swipes begin: 2000-10000), ACCESS_HIL_POWER_CUT_SELFTEST=1 (the
# last boot deletes one acknowledged event with sqlite3 first: the run passes only if it fails on
# exactly that event, reported lost), ACCESS_HIL_BUILD (debug), ACCESS_HIL_SCRATCH (.build),
# ACCESS_HIL_DISK_CACHE (run-guest.sh: QEMU cache mode of the disk, writethrough),
# ACCESS_HIL_POWER_CUT_LOGS (console logs, default $ACCESS_HIL_CACHE/logs/power-cut, emptied first).
set -euo pipefail

HIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HIL_DIR/../.." && pwd)
CYCLES=${1:-${ACCESS_HIL_POWER_CUTS:-3}}
SEED=${ACCESS_HIL_POWER_CUT_SEED:-$(( $(date +%s) % 100000 ))}
MIN_MS=${ACCESS_HIL_POWER_CUT_MIN_MS:-2000}
MAX_MS=${ACCESS_HIL_POWER_CUT_MAX_MS:-10000}
SELFTEST=${ACCESS_HIL_POWER_CUT_SELFTEST:-0}
BUILD=${ACCESS_HIL_BUILD:-debug}
SCRATCH=${ACCESS_HIL_SCRATCH:-.build}
CACHE=${ACCESS_HIL_CACHE:-$HOME/.cache/communityaccess-hil}
LOGDIR=${ACCESS_HIL_POWER_CUT_LOGS:-$CACHE/logs/power-cut}
ZONE=Asia/Shanghai
[[ $CYCLES =~ ^[1-9][0-9]*$ ]] || { echo "power-cut: CYCLES must be a positive number, not '$CYCLES'" >&2; exit 2; }
[[ $SEED =~ ^[0-9]+$ ]] || { echo "power-cut: ACCESS_HIL_POWER_CUT_SEED must be a number" >&2; exit 2; }
[ "$MIN_MS" -le "$MAX_MS" ] || { echo "power-cut: MIN_MS > MAX_MS" >&2; exit 2; }
WORK=$(mktemp -d)
RG_PID=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    # A guest still booting when the script stops (Ctrl-C, failure): stop exactly that QEMU.
    if [ -n "$RG_PID" ] && kill -0 "$RG_PID" 2>/dev/null; then
        [ -s "$WORK/qemu.pid" ] && kill -KILL "$(cat "$WORK/qemu.pid")" 2>/dev/null
        wait "$RG_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=host-lib.sh
. "$HIL_DIR/host-lib.sh"
START=$(date +%s)
say() { echo "power-cut: $*"; }

build_for_guest "$ROOT" "$BUILD" "$SCRATCH" "$WORK/bin"
ACCESSCTL=$WORK/bin/accessctl

# The chip's lines and the site are accessd-test.sh's (host-lib.sh: the doors of
# Hardware/boards/sim.toml); the database lives on the disk and the HTTP API listens on the
# guest's loopback.
chip_lines "$ROOT/Hardware/boards/sim.toml" >"$WORK/lines.txt"
with_api() { site_config "$1"; printf '\n[upstream.http]\nlisten = "127.0.0.1:8380"\n'; }
with_api /mnt/disk/db/access.db >"$WORK/power-cut.toml"
with_api "$WORK/db/access.db" >"$WORK/host.toml"

cat >"$WORK/roster.csv" <<'EOF'
house_id,building,unit,floor,room,person_id,name,role,phone,valid_from,valid_until,cards,plates,groups,status
B01-U1-101,B01,1,1,101,P0001,谭国华,owner,13283904377,,,6553701,,,active
B02-U1-101,B02,1,1,101,P0050,于志强,owner,13641524712,,,6553763,,,active
EOF
mkdir -p "$WORK/db"
"$ACCESSCTL" --config "$WORK/host.toml" --operator hil import "$WORK/roster.csv" >/dev/null
TOKEN=$("$ACCESSCTL" --config "$WORK/host.toml" --operator hil token add power-cut --json |
    sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$TOKEN" ] || { echo "power-cut: accessctl token add printed no token" >&2; exit 1; }
if [ -s "$WORK/db/access.db-wal" ]; then echo "power-cut: the host database left a non-empty WAL" >&2; exit 1; fi
ZONE_FILE=$(readlink -f "/usr/share/zoneinfo/$ZONE" || true)
[ -f "$ZONE_FILE" ] || { echo "power-cut: no /usr/share/zoneinfo/$ZONE (install tzdata)" >&2; exit 1; }

# The disk: a raw image with ext4 made here (mkfs.ext4 writes a plain file, no root needed). Inode
# tables and journal are initialised now, so no lazy-init thread writes in the background.
command -v mkfs.ext4 >/dev/null || { echo "power-cut: mkfs.ext4 not found (install e2fsprogs: Scripts/setup.sh --tests)" >&2; exit 1; }
DISK=$WORK/disk.img
truncate -s 256M "$DISK"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$DISK"

SELFTEST_ARGS=()
if [ "$SELFTEST" = 1 ]; then
    SQLITE3=$(command -v sqlite3 || true)
    [ -n "$SQLITE3" ] || { echo "power-cut: the self-test needs sqlite3 (Scripts/setup.sh --tests)" >&2; exit 1; }
    SELFTEST_ARGS=(--payload "$SQLITE3")
fi

rm -rf "$LOGDIR" && mkdir -p "$LOGDIR"
RANDOM=$SEED
say "$CYCLES cycles, seed $SEED, cut $MIN_MS-$MAX_MS ms after swipes begin, disk cache ${ACCESS_HIL_DISK_CACHE:-writethrough}, logs $LOGDIR"
echo "power-cut: host load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

# boot N LAST [ENV...]: runs run-guest.sh in the background (RG_PID), console in $LOGDIR/boot-N.log.
boot() {
    local n=$1 last=$2; shift 2
    "$HIL_DIR/run-guest.sh" --lines "$WORK/lines.txt" --guest-script "$HIL_DIR/power-cut-guest.sh" \
        --payload "$WORK/bin/accessd" --payload "$ACCESSCTL" "${SELFTEST_ARGS[@]}" \
        --file "$ROOT/Hardware/boards/sim.toml:/data/sim.toml" \
        --file "$WORK/power-cut.toml:/data/power-cut.toml" \
        --file "$WORK/db:/data/db" \
        --file "$ZONE_FILE:/usr/share/zoneinfo/$ZONE" \
        --module crc32c_generic --module ext4 \
        --disk "$DISK" --pidfile "$WORK/qemu.pid" \
        --env "BOOT=$n" --env "LAST=$last" --env "TOKEN=$TOKEN" "$@" \
        --memory 1G --timeout 300 --log "$LOGDIR/boot-$n.log" >"$LOGDIR/boot-$n.out" 2>&1 &
    RG_PID=$!
}
# One JSON record per boot for the verifier: what the host did and saw while driving.
RUNS=$LOGDIR/runs.jsonl
printf '{"run":{"cycles":%d,"seed":%d,"selftest":%s,"min_ms":%d,"max_ms":%d}}\n' \
    "$CYCLES" "$SEED" "$([ "$SELFTEST" = 1 ] && echo true || echo false)" "$MIN_MS" "$MAX_MS" >"$RUNS"
DRIVE_FAILED=0
show_tail() { echo "---- $1 (last 25 lines)"; tail -n 25 "$1"; echo "----"; }
for ((n = 0; n <= CYCLES; n++)); do
    last=0
    [ "$n" -eq "$CYCLES" ] && last=1
    envs=() extra=""
    if [ "$last" = 1 ] && [ "$SELFTEST" = 1 ]; then
        # The newest event acknowledged (a complete ACK line) before the last cut.
        DELETE_SERIAL=$(grep -ahE '^ACK [0-9]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ END$' "$LOGDIR/boot-$((n - 1)).log" |
            tail -n 1 | cut -d' ' -f2)
        if [ -z "$DELETE_SERIAL" ]; then say "self-test: nothing acknowledged to delete"; DRIVE_FAILED=1; break; fi
        envs=(--env "DELETE_SERIAL=$DELETE_SERIAL")
        extra=",\"delete_serial\":$DELETE_SERIAL"
        say "self-test: the last boot deletes acknowledged serial $DELETE_SERIAL before the check"
    fi
    # The host's own dirty pages (a build, the tiers before) are flushed first: the guest's disk is
    # written O_DSYNC, and on ext4 such a write can wait for the whole backlog; once (CI, stop 17)
    # a killed QEMU took 260 s to exit, stuck in one.
    sync
    t0=$(date +%s.%N)
    boot "$n" "$last" "${envs[@]}"
    LOG=$LOGDIR/boot-$n.log
    delay_ms=0 swiping=true
    if [ "$last" = 0 ]; then
        # Swipes begin: wait for the marker (bounded), then cut at a random moment.
        waited=0
        while ! grep -q '^POWERCUT-SWIPING' "$LOG" 2>/dev/null; do
            if ! kill -0 "$RG_PID" 2>/dev/null || [ "$waited" -ge 1800 ]; then break; fi
            sleep 0.1
            waited=$((waited + 1))
        done
        if ! grep -q '^POWERCUT-SWIPING' "$LOG" 2>/dev/null; then
            swiping=false
            [ -s "$WORK/qemu.pid" ] && kill -KILL "$(cat "$WORK/qemu.pid")" 2>/dev/null
            rc=0
            wait "$RG_PID" || rc=$?
            RG_PID=""
            show_tail "$LOG" 2>/dev/null || show_tail "$LOGDIR/boot-$n.out"
        else
            delay_ms=$((MIN_MS + (RANDOM * 32768 + RANDOM) % (MAX_MS - MIN_MS + 1)))
            sleep "$(awk -v m="$delay_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
            kill -KILL "$(cat "$WORK/qemu.pid")" 2>/dev/null || say "boot $n: QEMU had already stopped before the cut"
            rc=0
            wait "$RG_PID" || rc=$?
            RG_PID=""
        fi
    else
        rc=0
        wait "$RG_PID" || rc=$?
        RG_PID=""
        [ "$rc" -eq 0 ] || show_tail "$LOG"
    fi
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    printf '{"boot":%d,"last":%s,"rc":%d,"cut_ms":%d,"secs":%s,"swiping":%s%s}\n' "$n" \
        "$([ "$last" = 1 ] && echo true || echo false)" "$rc" "$delay_ms" "$secs" "$swiping" "$extra" >>"$RUNS"
    if grep -aq '^POWERCUT-ERROR' "$LOG"; then show_tail "$LOG"; fi
    [ "$swiping" = true ] || break
    [ "$last" = 1 ] || say "boot $n: cut ${delay_ms} ms after swipes began, ${secs} s, exit $rc"
done

elapsed=$(($(date +%s) - START))
# Patch the run record with the wall time, then let the verifier judge every boot.
sed -i "1s/}}\$/,\"elapsed\":$elapsed}}/" "$RUNS"
status=0
python3 "$HIL_DIR/verify.py" power-cut "$LOGDIR" || status=$?
[ "$DRIVE_FAILED" = 0 ] || status=1
# The disk as the last boot left it, for a post-mortem (sparse: a few MB).
if { [ "$status" -ne 0 ] && [ "$SELFTEST" != 1 ]; } || [ "${ACCESS_HIL_KEEP:-0}" = 1 ]; then
    cp --sparse=always "$DISK" "$LOGDIR/disk.img" && say "disk image kept: $LOGDIR/disk.img"
fi
exit "$status"
