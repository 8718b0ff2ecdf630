#!/bin/sh
# Run inside the HIL guest by power-cut-test.sh (busybox sh), once per boot, on the same virtio
# disk (/dev/vda, ext4) every time. BOOT=0 copies the host-imported database onto the disk; every
# later boot first reports what survived the previous power cut: `accessctl db check` and the
# whole event log (LOG lines). Then, unless LAST=1, it starts accessd on the gpio-sim chip with
# its database on the disk, plays Wiegand frames at three readers without pause, and prints every
# event the HTTP API hands out (ACK lines) until the host kills QEMU.
#
# Console protocol (the host parses it; a line counts only if complete, hence the END word):
#   POWERCUT-BOOT <n>                     INTEGRITY <accessctl db check --json output>
#   LOG <serial> <id> <time> <type> <reason> END    LOG-END <count>
#   POWERCUT-SWIPING                      swipes are arriving; the host may cut from now on
#   ACK <serial> <id> <time> <type> <reason> END    the API served this event (it was committed)
#   POWERCUT-ERROR <why>                  the guest cannot go on (exit 1)
# shellcheck source=guest-lib.sh
. /etc/hil/lib.sh

CFG=/data/power-cut.toml
DISK=/mnt/disk
DB=$DISK/db/access.db
SOCK=/run/accessd.sock
ALOG=/tmp/accessd.log
API=http://127.0.0.1:8380

fail() {
    echo "POWERCUT-ERROR $*"
    [ -f "$ALOG" ] && { echo "---- accessd log (last 20 lines)"; tail -n 20 "$ALOG"; echo "----"; }
    exit 1
}

# Nothing but this script on the console: a kernel message inside a LOG or ACK line would spoil it.
echo 1 >/proc/sys/kernel/printk
echo "POWERCUT-BOOT ${BOOT:?}"

# event_lines WORD <JSON: "WORD serial id time type reason END" for each event of an events page
# (the API's and `accessctl events --json`'s are the same objects; the fields come in this order,
# reason after granted; "-" when an event has no reason).
event_lines() {
    tr '{' '\n' | sed -n \
        -e 's/^"id":"\([^"]*\)","serial":\([0-9]*\),"time":"\([^"]*\)","type":"\([^"]*\)".*"granted":[^,]*,"reason":"\([^"]*\)".*/'"$1"' \2 \1 \3 \4 \5 END/p' -e t \
        -e 's/^"id":"\([^"]*\)","serial":\([0-9]*\),"time":"\([^"]*\)","type":"\([^"]*\)".*/'"$1"' \2 \1 \3 \4 - END/p'
}
mkdir -p "$DISK"
# ext4 in the default data=ordered mode; the journal is replayed here after a cut.
mount -t ext4 /dev/vda "$DISK" || fail "cannot mount /dev/vda (ext4)"

if [ "$BOOT" = 0 ]; then
    [ -e "$DB" ] && fail "boot 0 found a database on the disk: the image is not fresh"
    mkdir -p "$DISK/db"
    cp /data/db/access.db "$DB" || fail "cannot copy the database to the disk"
    sync
else
    # Self-test of the harness: remove one event the API had served before the cut, as a lost
    # commit would. The host must then report it lost.
    if [ -n "${DELETE_SERIAL:-}" ]; then
        echo "SELFTEST deleting serial $DELETE_SERIAL: $(sqlite3 "$DB" "DELETE FROM events WHERE serial = $DELETE_SERIAL; SELECT changes();" 2>&1)"
    fi
    # The first program to open the database after the cut: SQLite recovers the WAL here.
    echo "INTEGRITY $(accessctl --config "$CFG" db check --json 2>&1 | tr '\n' ' ')"
    # The whole log, a page of 10,000 at a time, one line per event.
    after=0 count=0 last=0
    while :; do
        accessctl --config "$CFG" events --after "$after" --limit 10000 --json >/tmp/page.json 2>/tmp/events.err ||
            fail "accessctl events --after $after: $(cat /tmp/events.err)"
        event_lines LOG </tmp/page.json >/tmp/page.txt
        cat /tmp/page.txt
        count=$((count + $(wc -l </tmp/page.txt)))
        l=$(tail -n1 /tmp/page.txt | cut -d' ' -f2)
        [ -n "$l" ] && last=$l
        next=$(sed -n 's/.*"next_after":\([0-9]*\).*/\1/p' /tmp/page.json)
        [ -n "$next" ] || fail "no next_after in the events page"
        grep -q '"more":true' /tmp/page.json || break
        [ "$next" -gt "$after" ] || fail "events paging stuck at $after"
        after=$next
    done
    echo "LOG-END $count"
fi

if [ "${LAST:-0}" = 1 ]; then
    umount "$DISK" || fail "cannot unmount the disk"
    exit 0
fi

# ------------------------------------------------------------------ accessd on the disk
# The HTTP API listens on loopback, which the guest must bring up itself (QEMU has -nic none).
ip link set lo up || fail "cannot bring up lo"
# Outputs read unpowered (pull-down) when nothing drives them.
for line in gate-north.lock b01.lock b02.lock b03.lock siren strobe; do sim_pull "$line" down; done
accessd --config "$CFG" >"$ALOG" 2>&1 &
PID=$!
running() { grep -q 'running' "$ALOG" && [ -S "$SOCK" ] && wget -q -O /dev/null "$API/healthz" 2>/dev/null; }
wait_for 300 running || fail "accessd did not start (or its API did not answer) within 30 s"
kill -0 "$PID" 2>/dev/null || fail "accessd exited"
echo "ACCESSD-RUNNING pid $PID"
# The doors are closed (accessd's pull-up bias made the contacts read open at start).
sim_pull gate-north.contact down
sim_pull b01.contact down
sim_pull reader-north-in.tamper down

# ------------------------------------------------------------------ the acknowledging client
# From the last serial listed above: long-polls the API and prints each event it is handed.
poll() {
    after=${1:-0}
    while :; do
        if ! timeout 40 wget -q -O /tmp/ack.json --header "Authorization: Bearer $TOKEN" \
            "$API/api/v1/events?after=$after&limit=1000&wait=10" 2>/tmp/ack.err; then
            echo "POLL-ERROR $(head -c 200 /tmp/ack.err)"
            sleep 0.5
            continue
        fi
        event_lines ACK </tmp/ack.json
        : >/tmp/polled
        next=$(sed -n 's/.*"next_after":\([0-9]*\).*/\1/p' /tmp/ack.json)
        [ -n "$next" ] && after=$next
    done
}
poll "${last:-0}" &
# The cut may come as soon as swipes begin: first let the client acknowledge accessd's start.
polled() { [ -e /tmp/polled ]; }
wait_for 300 polled || fail "the API client got no answer within 30 s"

# ------------------------------------------------------------------ swipes, without pause
# H10301 frame for a card number (as in accessd-guest.sh).
frame26() {
    awk -v n="$1" 'BEGIN {
        for (i = 23; i >= 0; i--) { d[i] = n % 2; n = int(n / 2) }
        s = ""; e = 0; o = 1
        for (i = 0; i < 24; i++) { s = s d[i]; if (i < 12) e += d[i]; else o += d[i] }
        printf "%d%s%d\n", e % 2, s, o % 2 }'
}
reader() { echo "$(sim_offset "$1.d0") $(sim_offset "$1.d1")"; }
# A grant (lock released, relocked 2 s later), an unknown card, a resident at another building.
F1="$(reader reader-north-in) $(frame26 6553701)"
F2="$(reader reader-north-out) $(frame26 1234567)"
F3="$(reader reader-b01) $(frame26 6553763)"
mkfifo /tmp/inject.in
# One long-lived injector (see accessd-guest.sh); it paces the frames, the feeder just keeps the
# fifo full.
wiegand-inject "$GPIO_SIM_DIR" --stdin --bit-gap-us 1000 --pulse-us 50 --frame-gap-ms 60 \
    </tmp/inject.in >/dev/null 2>/tmp/inject.err &
exec 5<>/tmp/inject.in
while :; do printf '%s\n%s\n%s\n' "$F1" "$F2" "$F3"; done >&5 &
echo "POWERCUT-SWIPING"

# The host cuts the power within seconds; if it never does, say so rather than hang.
sleep "${MAX_SWIPE_SECONDS:-90}"
fail "still running after ${MAX_SWIPE_SECONDS:-90} s of swipes: the host never cut the power"
