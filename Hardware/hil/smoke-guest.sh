#!/bin/sh
# Smoke test run inside the HIL guest by smoke-test.sh (busybox sh).
# Proves with the libgpiod 1.6 tools (and edge-count, a libgpiod C consumer) that the
# simulated chip behaves like hardware for the daemon: outputs drive the line, input
# pulls are read back, Wiegand falling edges from wiegand-inject all arrive, in order.
# "set -- $(gpiofind NAME)" splits "gpiochipN OFFSET" into $1 $2 on purpose.
# shellcheck disable=SC2046,SC2086
# shellcheck source=guest-lib.sh
. /etc/hil/lib.sh

value_is() { [ "$(sim_value "$1")" = "$2" ]; }
# line_used NAME CONSUMER: gpioinfo shows the line requested by CONSUMER.
line_used() { gpioinfo "$GPIO_CHIP" | grep "\"$1\"" | grep -q "\"$2\".*\[used\]"; }
# wait_exit PID SECONDS: wait for a background job to end by itself, killing it after
# SECONDS; returns its exit status (143 when it had to be killed).
wait_exit() {
    (sleep "$2" && kill "$1" 2>/dev/null) &
    _watchdog=$!
    wait "$1"
    _rc=$?
    kill "$_watchdog" 2>/dev/null
    wait "$_watchdog" 2>/dev/null
    return $_rc
}

echo "== chip $GPIO_CHIP, sim $GPIO_SIM_DIR"

# -- 1. every line is found by name, at its offset
n=0
while IFS= read -r name; do
    expect_eq "gpiofind $name" "$(gpiofind "$name")" "$GPIO_CHIP $n"
    n=$((n + 1))
done <"$GPIO_LINES_FILE"

# -- 2. an output held by gpioset drives the line (read while held: gpio-sim returns a
#       released line to its pull)
set -- $(gpiofind door1.lock)
lock_chip=$1 lock=$2
sim_pull door1.lock down
gpioset --mode=signal "$lock_chip" "$lock=1" &
pid=$!
if wait_for 50 value_is door1.lock 1; then ok "gpioset door1.lock=1 drives value 1 against pull-down"
else bad "gpioset door1.lock=1: sim value stayed $(sim_value door1.lock)"; fi
if line_used door1.lock gpioset; then ok "gpioinfo shows door1.lock held by gpioset"
else bad "gpioinfo does not show door1.lock held by gpioset"; fi
kill "$pid"; wait "$pid" 2>/dev/null
if wait_for 20 value_is door1.lock 0; then ok "released door1.lock falls back to its pull (0)"
else bad "released door1.lock: value $(sim_value door1.lock), want pull-down 0"; fi

sim_pull door1.lock up
gpioset --mode=signal "$lock_chip" "$lock=0" &
pid=$!
if wait_for 50 value_is door1.lock 0; then ok "gpioset door1.lock=0 drives value 0 against pull-up"
else bad "gpioset door1.lock=0: sim value stayed $(sim_value door1.lock)"; fi
kill "$pid"; wait "$pid" 2>/dev/null

# gpioset --mode=time holds the line for the given time, then releases it.
sim_pull door1.lock down
gpioset --mode=time --sec=1 "$lock_chip" "$lock=1" &
pid=$!
if wait_for 15 value_is door1.lock 1; then ok "gpioset --mode=time holds door1.lock=1"
else bad "gpioset --mode=time: sim value stayed $(sim_value door1.lock)"; fi
wait_exit "$pid" 5 || bad "gpioset --mode=time did not end"

# -- 3. inputs: the pull set on the sim side is what gpioget reads
for name in door1.contact door1.exit; do
    set -- $(gpiofind "$name")
    sim_pull "$name" up
    expect_eq "gpioget $name after pull-up" "$(gpioget "$1" "$2")" 1
    sim_pull "$name" down
    expect_eq "gpioget $name after pull-down" "$(gpioget "$1" "$2")" 0
done

# -- 4. Wiegand falling edges
set -- $(gpiofind reader1.d0)
rchip=$1 d0=$2
set -- $(gpiofind reader1.d1)
d1=$2
[ "$1" = "$rchip" ] || bad "reader1.d0 and reader1.d1 on different chips"
sim_pull reader1.d0 up
sim_pull reader1.d1 up

# valid26 BITS: 26 bits, even parity over bits 0..12, odd over bits 13..25
valid26() {
    echo "$1" | awk '{
        if (length($0) != 26 || $0 !~ /^[01]+$/) exit 1
        a = 0; b = 0
        for (i = 1; i <= 13; i++) a += substr($0, i, 1)
        for (i = 14; i <= 26; i++) b += substr($0, i, 1)
        exit !(a % 2 == 0 && b % 2 == 1)
    }'
}

FRAMES=10
EDGES=$((FRAMES * 26))

# 4a. gpiomon counts every falling edge, and their order by kernel timestamp spells the injected
#     bits (D0 and D1 are separate queues: on a busy host gpiomon may read them out of order).
gpiomon --num-events="$EDGES" --falling-edge --line-buffered --format='%s %n %o' \
    "$rchip" "$d0" "$d1" >/tmp/mon.out &
mon=$!
wait_for 50 line_used reader1.d1 gpiomon || bad "gpiomon did not request the reader lines"
wiegand-inject "$GPIO_SIM_DIR" "$d0" "$d1" --random-frames "$FRAMES" --seed 42 --frame-gap-ms 60 >/tmp/inj1.out ||
    bad "wiegand-inject --random-frames failed"
if wait_exit "$mon" 10; then ok "gpiomon --num-events=$EDGES finished"
else bad "gpiomon saw only $(wc -l </tmp/mon.out) of $EDGES edges"; fi
expect_eq "falling edges counted by gpiomon" "$(wc -l </tmp/mon.out)" "$EDGES"
expect_eq "frames reported by wiegand-inject" "$(wc -l </tmp/inj1.out)" "$FRAMES"
bad_frames=0
for bits in $(awk '{ print $4 }' /tmp/inj1.out); do
    valid26 "$bits" || bad_frames=$((bad_frames + 1))
done
expect_eq "injected frames with bad 26-bit parity" "$bad_frames" 0
sent=$(awk '{ printf "%s", $4 }' /tmp/inj1.out)
seen=$(sort -k1,1n -k2,2n /tmp/mon.out | awk -v d0="$d0" -v d1="$d1" '$3 == d0 { printf "0" } $3 == d1 { printf "1" }')
expect_eq "bit stream seen by gpiomon equals the one sent" "$seen" "$sent"

# 4b. edge-count (libgpiod C API, gpiod_line_event_read_multiple) splits frames by the
#     inter-frame gap: each frame must arrive whole, and its last edge must carry a
#     CLOCK_MONOTONIC timestamp after wiegand-inject's (it stamps just before the write).
#     The split is at 100 ms, frames 250 ms apart: on a busy host the emulated machine can stall
#     for more than a reader's 25 ms inside a frame, which is not what this checks.
edge-count --events "$EDGES" --frame-gap-ms 100 reader1.d0 reader1.d1 >/tmp/ec.out &
ec=$!
wait_for 50 grep -qs '^ready$' /tmp/ec.out || bad "edge-count did not get ready"
wiegand-inject "$GPIO_SIM_DIR" "$d0" "$d1" --random-frames "$FRAMES" --seed 7 --frame-gap-ms 250 >/tmp/inj2.out ||
    bad "wiegand-inject --random-frames failed"
if wait_exit "$ec" 10; then ok "edge-count got $EDGES edges"
else bad "edge-count: $(grep '^count' /tmp/ec.out)"; fi
grep '^frame' /tmp/ec.out >/tmp/ec.frames
expect_eq "frames seen by edge-count" "$(wc -l </tmp/ec.frames)" "$FRAMES"
expect_eq "frame bits seen by edge-count equal those sent" \
    "$(awk '{ print $4 }' /tmp/ec.frames | paste -sd,)" "$(awk '{ print $4 }' /tmp/inj2.out | paste -sd,)"
# Delay from wiegand-inject's stamp to the kernel's event stamp, per frame, in us.
lat=$(paste /tmp/inj2.out /tmp/ec.frames | awk '
    { d = ($7 - $3) / 1000; if (d < 0) neg++; if (d > max) max = d; sum += d }
    END { printf "%d %.0f %.0f", neg, max, sum / NR }')
set -- $lat
expect_eq "frames whose event stamp precedes the injection stamp" "$1" 0
echo "INFO: inject-to-event stamp delay: max $2 us, mean $3 us"

# 4c. fixed BITS mode, repeated
edge-count --events 15 --frame-gap-ms 100 reader1.d0 reader1.d1 >/tmp/ec3.out &
ec=$!
wait_for 50 grep -q '^ready$' /tmp/ec3.out || bad "edge-count did not get ready"
wiegand-inject "$GPIO_SIM_DIR" "$d0" "$d1" 10110 --count 3 --frame-gap-ms 250 >/tmp/inj3.out ||
    bad "wiegand-inject BITS --count failed"
wait_exit "$ec" 10 || bad "edge-count: $(grep '^count' /tmp/ec3.out)"
expect_eq "fixed frames seen" "$(awk '/^frame/ { print $4 }' /tmp/ec3.out | paste -sd,)" \
    "10110,10110,10110"

echo "hil-smoke: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
