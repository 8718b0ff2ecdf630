#!/bin/sh
# Run inside the HIL guest by accessd-test.sh (busybox sh): the real accessd on the gpio-sim chip
# named after Hardware/boards/sim.toml, configured by /data/accessd-hil.toml (unlock 2 s, held-open
# 3 s) with the roster in /data/db/access.db. The script plays the hardware through gpio-sim's
# `pull` files (Wiegand D0/D1 via wiegand-inject, contacts, buttons, fire panel), reads the lock
# lines' `value`, and reads the decisions and alarms back from the event log with accessctl.
#
# Levels (sim.toml): inputs are dry contacts to ground with a pull-up. gate-north.contact is
# normally closed: pull-down = door closed, pull-up = door open. Exit buttons and the fire input
# are normally open: pull-down = pressed / fire. Locks: gate-north.lock is fail-safe (magnet
# energised = 1 while locked), b01..b03.lock fail-secure (strike energised = 1 while released).
# shellcheck source=guest-lib.sh
. /etc/hil/lib.sh

info() { echo "INFO: $*"; }

CFG=/data/accessd-hil.toml
SOCK=/run/accessd.sock
ALOG=/tmp/accessd.log
ctl() { accessctl --config "$CFG" --operator hil "$@"; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# -- the event log, as an operator follows it: `accessctl events --follow --json` runs in the
# background and appends one JSON object a line to $EVENTS (one accessctl start costs ~2 s under
# TCG, so the checks grep this file instead of querying). A check's MARK is the file's line count
# before the action; --since keeps the follower from skipping what is already logged.
EVENTS=/tmp/events.jsonl
: >"$EVENTS"
FOLLOW=""
follow_from() { # follow_from --since DATE | --after SERIAL
    # accessctl itself in the background (not through ctl: $! would be a subshell, and killing it
    # would leave accessctl running).
    accessctl --config "$CFG" events --follow --json "$@" >>"$EVENTS" 2>/tmp/follow.err &
    FOLLOW=$!
}
follow_stop() { [ -n "$FOLLOW" ] && kill "$FOLLOW" 2>/dev/null && wait "$FOLLOW" 2>/dev/null; FOLLOW=""; }
mark() { wc -l <"$EVENTS" | tr -d ' '; }
# events_since MARK: the events logged after MARK.
events_since() { tail -n +$(($1 + 1)) "$EVENTS"; }
# count_events MARK STRING...: events after MARK containing every STRING (fixed, e.g. "reason":"granted").
count_events() {
    _m=$1
    shift
    events_since "$_m" >/tmp/ev.sel
    for _p in "$@"; do
        grep -F -- "$_p" /tmp/ev.sel >/tmp/ev.tmp || true
        mv /tmp/ev.tmp /tmp/ev.sel
    done
    wc -l </tmp/ev.sel | tr -d ' '
}
has_event() { [ "$(count_events "$@")" -ge 1 ]; }
# event_ms MARK STRING...: the time of day (ms) of the first such event, from its "time" field.
event_ms() {
    count_events "$@" >/dev/null
    head -n1 /tmp/ev.sel | sed -n 's/.*"time":"[^"T]*T\([0-9][0-9]\):\([0-9][0-9]\):\([0-9.]*\)[^"]*".*/\1 \2 \3/p' |
        awk '{ printf "%d\n", (($1 * 60 + $2) * 60 + $3) * 1000 }'
}
# ms_between A B: B - A over midnight.
ms_between() { echo $(((${2:-0} - ${1:-0} + 86400000) % 86400000)); }
# A condition for wait_for: re-evaluated at every try because it is a function.
lock_is() { [ "$(sim_value "$1")" = "$2" ]; }

# -- Wiegand: an H10301 26-bit frame for a card number (the 24 data bits, even parity over the
# first 12, odd over the last 12), sent at reader timing: bits 1 ms apart, 50 µs pulses.
frame26() {
    awk -v n="$1" 'BEGIN {
        for (i = 23; i >= 0; i--) { d[i] = n % 2; n = int(n / 2) }   # d[0] is the top data bit
        s = ""; e = 0; o = 1
        for (i = 0; i < 24; i++) { s = s d[i]; if (i < 12) e += d[i]; else o += d[i] }
        printf "%d%s%d\n", e % 2, s, o % 2 }'
}
# One injector for the whole run, fed through a fifo (a fresh process per frame is stalled
# mid-frame far more often under TCG): swipe writes "D0 D1 BITS" and waits for "frame i ns".
mkfifo /tmp/inject.in /tmp/inject.out
wiegand-inject "$GPIO_SIM_DIR" --stdin --bit-gap-us 1000 --pulse-us 50 --frame-gap-ms 30 \
    </tmp/inject.in >/tmp/inject.out 2>/tmp/inject.err &
INJECTOR=$!
# Read-write opens of the fifos never block, whether or not the injector came up; reads are bounded.
exec 5<>/tmp/inject.in 6<>/tmp/inject.out
inject() { # D0_OFFSET D1_OFFSET BITS: sends one frame, returns once it is sent (10 s at most)
    echo "$1 $2 $3" >&5
    # shellcheck disable=SC3045 # busybox ash has read -t
    read -r -t 10 _word _i _ns <&6 && [ "$_word" = frame ] || { bad "wiegand-inject: no frame sent $(cat /tmp/inject.err)"; return 1; }
}
swipe() { # READER CARD
    inject "$(sim_offset "$1.d0")" "$(sim_offset "$1.d1")" "$(frame26 "$2")"
}
# swipe_until TENTHS READER CARD COND...: swipe, then wait for COND. A frame that accessd reported
# garbled instead (the emulated machine stalled inside it, see the latency part) is sent again, as
# a user swipes again, at most twice; anything else that keeps COND from coming true fails.
swipe_until() {
    _t=$1 _r=$2 _c=$3
    shift 3
    _try=0
    while :; do
        _sm=$(mark)
        swipe "$_r" "$_c" || return 1
        wait_for "$_t" "$@" && return 0
        has_event "$_sm" '"reason":"garbled_frame"' "\"reader\":\"$_r\"" || return 1
        _try=$((_try + 1))
        [ "$_try" -le 2 ] || return 1
        info "frame at $_r reported garbled; sending it again"
    done
}

dump_log() { echo "---- accessd log (last 30 lines)"; tail -n 30 "$ALOG"; echo "----"; }

CARD_OWNER=6553701      # P0001, resident of B01: every portal without a building, and b01-door
CARD_OTHER=6553763      # P0050, resident of B02: no right at b01-door
CARD_UNKNOWN=1234567    # not in the roster
CARD_NEW=7000001        # given to P0002 while accessd runs

# ======================================================================== 1. start
# The outputs' pulls model the relay driver's input with nothing driving it: pull-down, i.e. relay
# unpowered (magnet off, strike locked). A value that differs from the pull is driven by accessd.
for line in gate-north.lock b01.lock b02.lock b03.lock siren strobe; do sim_pull "$line" down; done
# Doors closed, buttons up, no fire. accessd's request of the inputs with bias = "pull-up" sets
# the pulls again (gpio-sim applies a requester's bias), so the contacts read open at start.
sim_pull gate-north.contact down
sim_pull b01.contact down

t0=$(now_ms)
accessd --config "$CFG" >"$ALOG" 2>&1 &
PID=$!
running() { grep -q 'running' "$ALOG" && [ -S "$SOCK" ]; }
if wait_for 200 running; then
    ok "accessd running with its control socket after $(($(now_ms) - t0)) ms"
else
    bad "accessd did not start"
    dump_log
    echo "hil-accessd: $PASS passed, $FAIL failed"
    exit 1
fi
# accessd's own CPU use while nothing happens (clock ticks of 10 ms, over 2 s): the guest has one
# emulated CPU, which the injector and accessd's swipe path share with whatever else accessd does.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
c0=$(cpu_ticks)
sleep 2
info "accessd idle CPU: $(($(cpu_ticks) - c0)) ticks of 10 ms in 2 s, $(find "/proc/$PID/task" -mindepth 1 -maxdepth 1 | wc -l) threads"
follow_from --since 2020-01-01
held=$(gpioinfo "$GPIO_CHIP" | grep -c '"accessd"' || true)
expect_eq "lines requested by accessd (every line of the map)" "$held" "$(wc -l <"$GPIO_LINES_FILE" | tr -d ' ')"
expect_eq "gate-north.lock energised at start (fail-safe magnet locked; pull is down)" "$(sim_value gate-north.lock)" 1
expect_eq "b01.lock at start (fail-secure strike locked)" "$(sim_value b01.lock)" 0
# 0 is also b01.lock's pull: flip the pull up while accessd holds the line; it must stay 0.
sim_pull b01.lock up
expect_eq "b01.lock driven low, not floating (pull flipped up)" "$(sim_value b01.lock)" 0
sim_pull b01.lock down
started() { has_event 0 '"type":"system"' '"reason":"started"'; }
wait_for 100 started && ok "started event logged" || bad "no started event: $(head -c 300 /tmp/follow.err)"

# The doors read open at start (see above): close them and clear the alarm that raised.
if has_event 0 '"reason":"forced_open"' '"door":"gate-north"'; then
    info "the gate read open at start (gpio-sim took accessd's pull-up) and accessd raised forced_open"
fi
sim_pull gate-north.contact down
sim_pull b01.contact down
sim_pull reader-north-in.tamper down
closed_at_start() { has_event 0 '"reason":"closed"' '"door":"gate-north"' && has_event 0 '"reason":"closed"' '"door":"b01"'; }
wait_for 50 closed_at_start && ok "doors reported closed" || bad "doors not reported closed"
ctl door reset-alarm gate-north-in >/dev/null || bad "door reset-alarm gate-north-in failed"
ctl door reset-alarm b01-door >/dev/null || bad "door reset-alarm b01-door failed"
expect_eq "gate-north.lock still locked after alarm reset" "$(sim_value gate-north.lock)" 1

# ======================================================================== 2. decisions at the lock
m=$(mark)
if swipe_until 20 reader-north-in $CARD_OWNER lock_is gate-north.lock 0; then
    t_rel=$(now_ms)
    ok "granted card releases gate-north.lock (0)"
    if wait_for 50 lock_is gate-north.lock 1; then
        dt=$(($(now_ms) - t_rel))
        if [ "$dt" -ge 1500 ] && [ "$dt" -le 4000 ]; then ok "relocked after ${dt} ms (unlock_seconds 2)"; else
            bad "relocked after ${dt} ms, want about 2000"; fi
    else
        bad "gate-north.lock did not relock"
    fi
else
    bad "granted card did not release gate-north.lock"
fi
granted_logged() { has_event "$m" '"type":"access"' '"portal":"gate-north-in"' '"reason":"granted"' '"person_id":"P0001"'; }
wait_for 30 granted_logged && ok "access event: granted at gate-north-in for P0001" ||
    bad "no granted event: $(events_since "$m" | head -3)"
relocked_logged() { has_event "$m" '"reason":"relocked"' '"door":"gate-north"'; }
if wait_for 30 relocked_logged; then
    dt=$(ms_between "$(event_ms "$m" '"reason":"released"' '"door":"gate-north"')" "$(event_ms "$m" '"reason":"relocked"' '"door":"gate-north"')")
    # The timer starts when the frame is handled, the released event is stamped after the relay.
    if [ "$dt" -ge 1900 ] && [ "$dt" -le 2500 ]; then ok "log: released → relocked ${dt} ms"; else bad "log: released → relocked ${dt} ms, want 1900-2500"; fi
else
    bad "no relocked event"
fi

m=$(mark)
unknown_logged() { has_event "$m" '"type":"access"' '"portal":"gate-north-in"' '"reason":"unknown_credential"'; }
swipe_until 30 reader-north-in $CARD_UNKNOWN unknown_logged && ok "access event: unknown_credential at gate-north-in" ||
    bad "no unknown_credential event: $(events_since "$m" | head -3)"
untouched=1
for _ in 1 2 3 4 5; do [ "$(sim_value gate-north.lock)" = 1 ] || untouched=0; sleep 0.1; done
[ "$untouched" = 1 ] && ok "unknown card: gate-north.lock untouched" || bad "unknown card moved gate-north.lock"
expect_eq "no door event for the unknown card" "$(count_events "$m" '"type":"door"')" 0

m=$(mark)
no_right_logged() { has_event "$m" '"type":"access"' '"portal":"b01-door"' '"reason":"no_right"' '"person_id":"P0050"'; }
swipe_until 30 reader-b01 $CARD_OTHER no_right_logged && ok "access event: no_right at b01-door for a resident of B02" ||
    bad "no no_right event: $(events_since "$m" | head -3)"
expect_eq "b01.lock untouched by no_right" "$(sim_value b01.lock)" 0

m=$(mark)
swipe_until 20 reader-b01 $CARD_OWNER lock_is b01.lock 1 && ok "resident of B01 releases b01.lock (fail-secure strike energised)" ||
    bad "b01.lock not released for a resident"
wait_for 50 lock_is b01.lock 0 && ok "b01.lock relocked" || bad "b01.lock did not relock"

# ======================================================================== 3. door alarms
# Forced open: the door opens while locked.
m=$(mark)
sim_pull gate-north.contact up
forced() { has_event "$m" '"type":"alarm"' '"reason":"forced_open"' '"door":"gate-north"'; }
wait_for 30 forced && ok "door opened without a grant: forced_open alarm" ||
    bad "no forced_open alarm: $(events_since "$m" | head -5)"
expect_eq "forced open: lock stays locked" "$(sim_value gate-north.lock)" 1
sim_pull gate-north.contact down
closed() { has_event "$m" '"reason":"closed"' '"door":"gate-north"'; }
wait_for 30 closed || bad "door closing not logged"
ctl door reset-alarm gate-north-in >/dev/null || bad "door reset-alarm failed"

# Held open: a granted opening left open beyond held_open_seconds (3 s).
m=$(mark)
swipe_until 20 reader-north-in $CARD_OWNER lock_is gate-north.lock 0 || bad "grant before held-open did not release"
sim_pull gate-north.contact up
opened() { has_event "$m" '"reason":"opened"' '"door":"gate-north"'; }
wait_for 30 opened || bad "door opening not logged"
held_open() { has_event "$m" '"type":"alarm"' '"reason":"held_open"' '"door":"gate-north"'; }
if wait_for 80 held_open; then
    dt=$(ms_between "$(event_ms "$m" '"reason":"opened"' '"door":"gate-north"')" "$(event_ms "$m" '"reason":"held_open"' '"door":"gate-north"')")
    if [ "$dt" -ge 2990 ] && [ "$dt" -le 3500 ]; then ok "door left open: held_open alarm ${dt} ms after opened (held_open_seconds 3)"; else
        bad "held_open ${dt} ms after opened, want 3000-3500"; fi
else
    bad "no held_open alarm: $(events_since "$m" | tr '\n' ' ' | head -c 600)"
fi
expect_eq "granted opening raises no forced_open" "$(count_events "$m" '"reason":"forced_open"')" 0
expect_eq "lock relocked while held open (unlock time over)" "$(sim_value gate-north.lock)" 1
sim_pull gate-north.contact down
cleared() { has_event "$m" '"reason":"held_open_cleared"' '"door":"gate-north"'; }
wait_for 30 cleared && ok "closing clears held_open (held_open_cleared)" || bad "no held_open_cleared"

# ======================================================================== 4. exit button
m=$(mark)
sim_pull gate-north.exit down
wait_for 20 lock_is gate-north.lock 0 && ok "exit button releases gate-north.lock" || bad "exit button did not release the lock"
sim_pull gate-north.exit up
exit_logged() { has_event "$m" '"type":"door"' '"reason":"released"' '"door":"gate-north"'; }
wait_for 30 exit_logged && ok "exit release logged" || bad "exit release not logged"
wait_for 50 lock_is gate-north.lock 1 && ok "relocked after the exit release" || bad "no relock after exit"
expect_eq "exit button makes no access decision" "$(count_events "$m" '"type":"access"')" 0

# ======================================================================== 5. roster change without restart
m=$(mark)
new_unknown() { has_event "$m" '"reason":"unknown_credential"' "\"credential\":\"$CARD_NEW\""; }
swipe_until 30 reader-north-in $CARD_NEW new_unknown && ok "new card unknown before it is issued" || bad "new card not refused before issue: $(events_since "$m" | head -2)"
ctl card add $CARD_NEW --person P0002 >/dev/null || bad "accessctl card add failed"
sleep 1
m=$(mark)
new_granted() { has_event "$m" '"reason":"granted"' '"person_id":"P0002"'; }
if swipe_until 30 reader-north-in $CARD_NEW new_granted; then ok "card added while accessd runs: granted 1 s later"; else
    bad "card added 1 s earlier not granted: $(events_since "$m" | head -2)"; fi
wait_for 20 lock_is gate-north.lock 0 || bad "new card: lock not released"
wait_for 50 lock_is gate-north.lock 1 || bad "no relock after the new card"
ctl person suspend P0002 >/dev/null || bad "accessctl person suspend failed"
sleep 1
m=$(mark)
suspended() { has_event "$m" '"reason":"suspended"' '"person_id":"P0002"'; }
if swipe_until 30 reader-north-in $CARD_NEW suspended; then ok "person suspended while accessd runs: suspended 1 s later"; else
    bad "suspension not in effect after 1 s: $(events_since "$m" | head -2)"; fi
expect_eq "suspended person: lock stays locked" "$(sim_value gate-north.lock)" 1

# ======================================================================== 6. latency (door cycles)
# Each granted frame drives the lock at once; the door then opens and closes (relock on close), so
# every frame finds the door locked and sets the relay. accessd measures from the kernel timestamp
# of the frame's last edge to the relay set (`status --json`: swipe_to_relay_micros). The follower
# is stopped meanwhile so that only accessd and the injector share the guest's one CPU.
json_int() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
last_seen=$(tail -n1 "$EVENTS" | json_int serial)
follow_stop
m=$(mark)
d0=$(sim_offset reader-north-in.d0)
d1=$(sim_offset reader-north-in.d1)
bits=$(frame26 $CARD_OWNER)
# The loop reads and writes the sim files with shell builtins (no process per poll), and leaves
# accessd alone for 60 ms after each frame, so as not to compete with what it measures. Frames come
# 100 ms after the relock, when accessd has written the door cycle's events.
lock_v=$GPIO_SIM_DIR/sim_gpio$(sim_offset gate-north.lock)/value
contact_p=$GPIO_SIM_DIR/sim_gpio$(sim_offset gate-north.contact)/pull
# lock_wait VALUE TENTHS: poll the gate's lock line every 20 ms until it reads VALUE.
lock_wait() {
    _n=$(($2 * 5))
    while read -r _v <"$lock_v" && [ "$_v" != "$1" ]; do
        [ "$_n" -gt 0 ] || return 1
        _n=$((_n - 1))
        sleep 0.02
    done
}
# thread_ticks: "tid:name ticks" for each of accessd's threads (CPU in clock ticks of 10 ms).
thread_ticks() {
    for t in /proc/"$PID"/task/*; do
        awk '{ n = $2; sub(/.*\(/, "", n); sub(/\).*/, "", n); print $1 ":" n, $14 + $15 }' "$t/stat" 2>/dev/null
    done
}
thread_ticks >/tmp/ticks.before
t_lat=$(now_ms)
# A frame the injector could not send at reader timing (the emulated machine stalled for more than
# half the reader's silence inside it: on a busy host, or behind accessd's own background work in
# a debug build) is reported garbled by accessd and sent again, as a user swipes again. Up to a
# tenth are tolerated (0-4 % seen at host load 2-3); none may be misread, fail parity, or go
# unreported, and each one shows in the FRAMES line.
max_misses=$((FRAMES / 10))
misses=0
i=0
while [ "$i" -lt "$FRAMES" ] && [ "$misses" -le "$max_misses" ]; do
    inject "$d0" "$d1" "$bits" || break
    sleep 0.06
    if ! lock_wait 0 10; then
        misses=$((misses + 1))
        info "frame $i: lock not released; sending it again"
        continue
    fi
    printf pull-up >"$contact_p"     # the door opens ...
    sleep 0.05
    printf pull-down >"$contact_p"   # ... and closes: relock on close
    sleep 0.05
    lock_wait 1 30 || info "frame $i: no relock within 3 s"
    sleep 0.1                        # the next person: accessd has logged this door cycle
    i=$((i + 1))
done
info "$i door cycles in $(($(now_ms) - t_lat)) ms"
thread_ticks >/tmp/ticks.after
info "accessd CPU during the loop by thread (ticks of 10 ms): $(awk 'NR == FNR { b[$1] = $2; next } { printf "%s=%d ", $1, $2 - b[$1] }' /tmp/ticks.before /tmp/ticks.after)"
st=$(ctl status --json | tr -d '\n')
follow_from --after "${last_seen:-0}"
expect_eq "door cycles completed" "$i" "$FRAMES"
[ "$misses" -le "$max_misses" ] && ok "frames resent after an injector stall: $misses (at most $max_misses)" ||
    bad "frames resent after an injector stall: $misses (more than $max_misses)"
lat_granted() { [ "$(count_events "$m" '"type":"access"' '"reason":"granted"' '"portal":"gate-north-in"')" -ge "$i" ]; }
wait_for 100 lat_granted
expect_eq "timed frames granted" "$(count_events "$m" '"type":"access"' '"reason":"granted"' '"portal":"gate-north-in"')" "$i"
expect_eq "timed frames: other decisions (a misread card would show here)" "$(count_events "$m" '"type":"access"' '"granted":false')" 0
expect_eq "timed frames: forced_open alarms" "$(count_events "$m" '"reason":"forced_open"')" 0
garbled=$(count_events "$m" '"reason":"garbled_frame"')
if [ "$misses" -eq 0 ]; then expect_eq "timed frames: garbled_frame events" "$garbled" 0; else
    [ "$garbled" -ge "$misses" ] && ok "every frame not granted was reported garbled ($garbled garbled_frame events)" ||
        bad "$misses frames not granted, only $garbled reported garbled"
fi
expect_eq "timed frames: parity errors (a bit read wrong)" "$(count_events "$m" '"reason":"garbled_frame"' 'parity')" 0
if [ -z "$st" ]; then
    bad "accessctl status --json gave nothing"
else
    expect_eq "garbled frames (status) = garbled_frame events in the log" "$(echo "$st" | json_int garbled_frames)" \
        "$(count_events 0 '"reason":"garbled_frame"')"
    overruns=$(echo "$st" | json_int gpio_overruns)
    echo "FRAMES: $i granted door cycles, $misses frames sent again, $garbled garbled_frame events, ${overruns:-?} GPIO overruns"
    # An overrun (the driver thread fell 16 edges behind) spoils the frame it hits: reported garbled.
    [ "${overruns:-1}" -le "$garbled" ] && ok "GPIO overruns ($overruns) all within garbled frames" ||
        bad "GPIO overruns $overruns > garbled frames $garbled"
    lat=$(echo "$st" | sed -n 's/.*"swipe_to_relay_micros":{\([^}]*\)}.*/\1/p')
    if [ -n "$lat" ]; then
        count=$(echo "$lat" | json_int count)
        p50=$(echo "$lat" | json_int p50)
        p99=$(echo "$lat" | json_int p99)
        max=$(echo "$lat" | json_int max)
        echo "LATENCY: swipe→relay via accessd p50 $p50 µs p99 $p99 µs max $max µs ($count frames)"
        [ "${count:-0}" -ge "$FRAMES" ] && ok "accessd timed every grant ($count >= $FRAMES)" ||
            bad "accessd timed ${count:-?} grants, want >= $FRAMES"
        [ "${p50:-0}" -gt 0 ] && [ "$p50" -le "$p99" ] && [ "$p99" -le "$max" ] && ok "latency figures ordered" ||
            bad "latency figures out of order: $lat"
        if [ "${ENFORCE_LATENCY:-0}" = 1 ]; then
            [ "$p99" -le 5000 ] && ok "p99 latency ${p99} µs <= 5000 µs" || bad "p99 latency ${p99} µs > 5000 µs"
        fi
    else
        bad "status --json has no swipe_to_relay_micros: $st"
    fi
fi

# ======================================================================== 7. fire linkage
m=$(mark)
sim_pull fire.alarm down
all_released() {
    lock_is gate-north.lock 0 && lock_is b01.lock 1 && lock_is b02.lock 1 && lock_is b03.lock 1
}
locks() { echo "gate=$(sim_value gate-north.lock) b01=$(sim_value b01.lock) b02=$(sim_value b02.lock) b03=$(sim_value b03.lock)"; }
wait_for 20 all_released && ok "fire releases every escape door ($(locks))" || bad "fire: $(locks)"
fire_logged() { has_event "$m" '"type":"alarm"' '"reason":"fire_alarm"'; }
wait_for 30 fire_logged && ok "fire_alarm logged" || bad "no fire_alarm event"
fire_doors() { [ "$(count_events "$m" '"reason":"fire_release"')" -ge 4 ]; }
wait_for 30 fire_doors && ok "fire_release logged for each of the 4 doors" ||
    bad "fire_release events: $(count_events "$m" '"reason":"fire_release"')"
sleep 2.5
all_released && ok "still released after the unlock time (fire latch)" || bad "fire release did not hold: $(locks)"
sim_pull fire.alarm up
fire_cleared() { has_event "$m" '"reason":"fire_alarm_cleared"'; }
wait_for 30 fire_cleared && ok "fire_alarm_cleared logged" || bad "no fire_alarm_cleared"
all_released && ok "still released once the fire input clears (latched until reset)" || bad "relocked without a reset: $(locks)"
for p in gate-north-in b01-door b02-door b03-door; do ctl door reset-alarm "$p" >/dev/null || bad "reset-alarm $p failed"; done
all_locked() { lock_is gate-north.lock 1 && lock_is b01.lock 0 && lock_is b02.lock 0 && lock_is b03.lock 0; }
wait_for 20 all_locked && ok "reset-alarm relocks every door" || bad "after reset: $(locks)"
fire_reset() { [ "$(count_events "$m" '"reason":"fire_reset"')" -ge 4 ]; }
wait_for 30 fire_reset && ok "fire_reset logged for each door" || bad "fire_reset events: $(count_events "$m" '"reason":"fire_reset"')"

# ======================================================================== 8. graceful stop
# accessd's stop drives each lock to its unpowered state, then frees the lines. The driven stop
# value lasts only until the line is freed (microseconds), after which gpio-sim shows the line's
# pull, here down: a relay driver's input with nothing driving it. So what is checked is that every
# line is free (gpioinfo: no "accessd" consumer) and every lock reads 0: magnet unpowered (the
# fail-safe gate is free), strikes unpowered (fail-secure doors locked). The gate's magnet read 1
# (driven, against the pull) just before: the change shows accessd let it go.
expect_eq "gate-north.lock energised before the stop" "$(sim_value gate-north.lock)" 1
m=$(mark)
t_stop=$(now_ms)
kill -TERM "$PID"
gone() { [ ! -e "/proc/$PID" ] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$PID/stat" 2>/dev/null; }
if wait_for 100 gone; then
    dt=$(($(now_ms) - t_stop))
    wait "$PID"
    rc=$?
    expect_eq "accessd exit status after SIGTERM" "$rc" 0
    [ "$dt" -le 5000 ] && ok "stopped ${dt} ms after SIGTERM" || bad "stop took ${dt} ms"
else
    bad "accessd still running 10 s after SIGTERM"
    kill -KILL "$PID"
fi
stopped() { has_event "$m" '"type":"system"' '"reason":"stopped"'; }
wait_for 30 stopped && ok "stopped event logged" || bad "no stopped event"
follow_stop
expect_eq "lines held after exit" "$(gpioinfo "$GPIO_CHIP" | grep -c '"accessd"' || true)" 0
for line in gate-north.lock b01.lock b02.lock b03.lock; do
    expect_eq "$line unpowered after the stop" "$(sim_value "$line")" 0
done
grep -q 'stopped: doors in their safe state' "$ALOG" && ok "accessd logged its orderly stop" || bad "no orderly stop in the log"
expect_eq "error lines in accessd's log" "$(grep -c ' error ' "$ALOG" || true)" 0
exec 5>&-
wait "$INJECTOR" || bad "wiegand-inject: $(cat /tmp/inject.err)"
[ "$FAIL" -eq 0 ] || dump_log

echo "hil-accessd: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
