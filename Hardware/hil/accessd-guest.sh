#!/bin/sh
# Run inside the HIL guest by accessd-test.sh (busybox sh): the real accessd on the gpio-sim chip
# named after Hardware/boards/sim.toml, configured by /data/accessd-hil.toml (unlock 2 s, held-open
# 3 s) with the roster in /data/db/access.db. The script plays the hardware through gpio-sim's
# `pull` files (Wiegand D0/D1 via wiegand-inject, contacts, buttons, fire panel), reads the lock
# lines' `value`, and follows the event log with accessctl. It only drives and records; every
# verdict is verify.py accessd's, on the host, over what lands in $HIL_OUT:
#   events.jsonl   the event log as `accessctl events --follow --json` printed it
#   facts.jsonl    what the script saw: line levels, exit statuses, timings, waits that timed out,
#                  and windows "FROM TO" of events.jsonl lines (FROM a mark taken before an action,
#                  TO the line count when the script looked), so a check sees what the script saw
#   status.json (accessctl status --json after the timed swipes), accessd.log, edges.txt, inject.err
#
# Levels (sim.toml): inputs are dry contacts to ground with a pull-up. gate-north.contact is
# normally closed: pull-down = door closed, pull-up = door open. Exit buttons and the fire input
# are normally open: pull-down = pressed / fire. Locks: gate-north.lock is fail-safe (magnet
# energised = 1 while locked), b01..b03.lock fail-secure (strike energised = 1 while released).
# shellcheck source=guest-lib.sh
. /etc/hil/lib.sh

info() { echo "INFO: $*"; }
fact frames "$FRAMES"
fact enforce_latency "${ENFORCE_LATENCY:-0}"

CFG=/data/accessd-hil.toml
SOCK=/run/accessd.sock
ALOG=$HIL_OUT/accessd.log
ctl() { accessctl --config "$CFG" --operator hil "$@"; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# -- the event log, as an operator follows it: `accessctl events --follow --json` runs in the
# background and appends one JSON object a line to $EVENTS (one accessctl start costs ~2 s under
# TCG, so the script greps this file instead of querying). MARK is the file's line count before
# an action; --since keeps the follower from skipping what is already logged.
EVENTS=$HIL_OUT/events.jsonl
: >"$EVENTS"
FOLLOW=""
follow_from() { # follow_from --since DATE | --after SERIAL
    # accessctl itself in the background (not through ctl: $! would be a subshell, and killing it
    # would leave accessctl running).
    accessctl --config "$CFG" events --follow --json "$@" >>"$EVENTS" 2>>"$HIL_OUT/follow.err" &
    FOLLOW=$!
}
follow_stop() { [ -n "$FOLLOW" ] && kill "$FOLLOW" 2>/dev/null && wait "$FOLLOW" 2>/dev/null; FOLLOW=""; }
mark() { wc -l <"$EVENTS" | tr -d ' '; }
# win KEY MARK: the events logged from MARK up to now, for a check over exactly those.
win() { fact "$1" "$2 $(mark)"; }
# has_event MARK STRING...: an event after MARK contains every STRING (pacing only).
has_event() {
    _m=$1
    shift
    tail -n +$((_m + 1)) "$EVENTS" >/tmp/ev.sel
    for _p in "$@"; do
        grep -F -- "$_p" /tmp/ev.sel >/tmp/ev.tmp || return 1
        mv /tmp/ev.tmp /tmp/ev.sel
    done
}
count_events() { # MARK STRING...: how many (pacing only)
    has_event "$@" && wc -l </tmp/ev.sel | tr -d ' ' || echo 0
}
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
# mid-frame far more often under TCG): swipe writes "D0 D1 BITS" and waits for "frame i ns". At
# nice 19: it stands in for a reader, which takes no CPU from accessd (see gpio-driver-guest.sh).
mkfifo /tmp/inject.in /tmp/inject.out
at_low_priority wiegand-inject "$GPIO_SIM_DIR" --stdin --bit-gap-us 1000 --pulse-us 50 --frame-gap-ms 30 \
    --edges "$HIL_OUT/edges.txt" </tmp/inject.in >/tmp/inject.out 2>"$HIL_OUT/inject.err" &
INJECTOR=$!
# Read-write opens of the fifos never block, whether or not the injector came up; reads are bounded.
exec 5<>/tmp/inject.in 6<>/tmp/inject.out
inject() { # D0_OFFSET D1_OFFSET BITS: sends one frame, returns once it is sent (10 s at most)
    echo "$1 $2 $3" >&5
    # shellcheck disable=SC3045 # busybox ash has read -t
    read -r -t 10 _word _i _ns <&6 && [ "$_word" = frame ] || { fact inject_stuck "$(cat "$HIL_OUT/inject.err")"; return 1; }
}
swipe() { # READER CARD
    inject "$(sim_offset "$1.d0")" "$(sim_offset "$1.d1")" "$(frame26 "$2")"
}
# swipe_until KEY TENTHS READER CARD COND...: swipe, then wait for COND. A frame that accessd
# reported garbled instead (the emulated machine stalled inside it, see the latency part) is sent
# again, as a user swipes again, at most twice. The outcome is fact KEY, the resends KEY.resent.
swipe_until() {
    _key=$1 _t=$2 _r=$3 _c=$4
    shift 4
    _try=0
    while :; do
        _sm=$(mark)
        swipe "$_r" "$_c" || { fact "$_key" "inject failed"; return 1; }
        if wait_for "$_t" "$@"; then fact "$_key" ok; fact "$_key.resent" "$_try"; return 0; fi
        if ! has_event "$_sm" '"reason":"garbled_frame"' "\"reader\":\"$_r\"" || [ "$_try" -ge 2 ]; then
            fact "$_key" timeout
            fact "$_key.resent" "$_try"
            return 1
        fi
        _try=$((_try + 1))
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
for line in gate-north.lock b01.lock b02.lock b03.lock siren strobe garage-out.open garage-out.close garage-out.stop; do
    sim_pull "$line" down
done
# Doors closed, buttons up, no fire. accessd's request of the inputs with bias = "pull-up" sets
# the pulls again (gpio-sim applies a requester's bias), so the contacts read open at start.
sim_pull gate-north.contact down
sim_pull b01.contact down

t0=$(now_ms)
accessd --config "$CFG" >"$ALOG" 2>&1 &
PID=$!
running() { grep -q 'running' "$ALOG" && [ -S "$SOCK" ]; }
if ! await running 200 running; then
    dump_log
    exit 1
fi
fact start_ms $(($(now_ms) - t0))
# accessd's own CPU use while nothing happens (clock ticks of 10 ms, over 2 s): the guest has one
# emulated CPU, which the injector and accessd's swipe path share with whatever else accessd does.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
c0=$(cpu_ticks)
sleep 2
info "accessd idle CPU: $(($(cpu_ticks) - c0)) ticks of 10 ms in 2 s, $(find "/proc/$PID/task" -mindepth 1 -maxdepth 1 | wc -l) threads"
follow_from --since 2020-01-01
fact lines_held "$(gpioinfo "$GPIO_CHIP" | grep -c '"accessd"' || true)"
fact lines_total "$(wc -l <"$GPIO_LINES_FILE" | tr -d ' ')"
fact gate_lock_at_start "$(sim_value gate-north.lock)"
fact b01_lock_at_start "$(sim_value b01.lock)"
# 0 is also b01.lock's pull: flip the pull up while accessd holds the line; it must stay 0.
sim_pull b01.lock up
fact b01_lock_pull_up "$(sim_value b01.lock)"
sim_pull b01.lock down
started() { has_event 0 '"type":"system"' '"reason":"started"'; }
wait_for 100 started
win started 0

# The doors read open at start (see above): close them and clear the alarm that raised.
if has_event 0 '"reason":"forced_open"' '"door":"gate-north"'; then
    info "the gate read open at start (gpio-sim took accessd's pull-up) and accessd raised forced_open"
fi
sim_pull gate-north.contact down
sim_pull b01.contact down
sim_pull reader-north-in.tamper down
closed_at_start() { has_event 0 '"reason":"closed"' '"door":"gate-north"' && has_event 0 '"reason":"closed"' '"door":"b01"'; }
wait_for 50 closed_at_start
win closed_at_start 0
ctl door reset-alarm gate-north-in >/dev/null; fact rc.reset.gate-north-in $?
ctl door reset-alarm b01-door >/dev/null; fact rc.reset.b01-door $?
fact gate_lock_after_reset "$(sim_value gate-north.lock)"

# ======================================================================== 2. decisions at the lock
m=$(mark)
if swipe_until grant_release 20 reader-north-in $CARD_OWNER lock_is gate-north.lock 0; then
    t_rel=$(now_ms)
    await grant_relock 50 lock_is gate-north.lock 1 && fact grant_relock_ms $(($(now_ms) - t_rel))
fi
granted_logged() { has_event "$m" '"type":"access"' '"portal":"gate-north-in"' '"reason":"granted"' '"person_id":"P0001"'; }
wait_for 30 granted_logged
relocked_logged() { has_event "$m" '"reason":"relocked"' '"door":"gate-north"'; }
wait_for 30 relocked_logged
win grant "$m"

m=$(mark)
unknown_logged() { has_event "$m" '"type":"access"' '"portal":"gate-north-in"' '"reason":"unknown_credential"'; }
swipe_until unknown 30 reader-north-in $CARD_UNKNOWN unknown_logged
samples=""
for _ in 1 2 3 4 5; do samples="$samples$(sim_value gate-north.lock)"; sleep 0.1; done
fact unknown_lock_samples "$samples"
win unknown "$m"

m=$(mark)
no_right_logged() { has_event "$m" '"type":"access"' '"portal":"b01-door"' '"reason":"no_right"' '"person_id":"P0050"'; }
swipe_until no_right 30 reader-b01 $CARD_OTHER no_right_logged
fact b01_lock_after_no_right "$(sim_value b01.lock)"
win no_right "$m"

swipe_until b01_release 20 reader-b01 $CARD_OWNER lock_is b01.lock 1
await b01_relock 50 lock_is b01.lock 0

# ======================================================================== 2b. the reader's LED and beeper
# reader-north-in's LED and BEEP wires (sim.toml): a grant lights the LED for the release time with
# one 150 ms beep; a refusal beeps three times (150 ms on, 150 ms off) with the LED off. The lines
# are sampled every 10 ms or so from the moment the frame is sent (read builtins: no process per
# sample); a sample loop stalled by the emulator can miss a beep, so the verifier wants 2-3 of 3.
# watch SAMPLES: "RISES LIT LAST LED": the beeper's rising edges, its samples at 1 and its last
# level, and the LED's samples at 1.
watch() {
    _b=$GPIO_SIM_DIR/sim_gpio$(sim_offset reader-north-in.beeper)/value
    _l=$GPIO_SIM_DIR/sim_gpio$(sim_offset reader-north-in.led)/value
    _n=$1 _rises=0 _lit=0 _led=0 _prev=0
    while [ "$_n" -gt 0 ]; do
        read -r _v <"$_b"
        read -r _w <"$_l"
        [ "$_v" = 1 ] && _lit=$((_lit + 1))
        [ "$_v" = 1 ] && [ "$_prev" = 0 ] && _rises=$((_rises + 1))
        [ "$_w" = 1 ] && _led=$((_led + 1))
        _prev=$_v
        _n=$((_n - 1))
        sleep 0.01
    done
    echo "$_rises $_lit $_prev $_led"
}
# signals KEY CARD SAMPLES COND: swipe at reader-north-in and sample its lines at once; again (at
# most twice) when accessd reported the frame garbled instead of deciding it.
signals() {
    _key=$1 _card=$2 _samples=$3 _cond=$4 _try=0
    while :; do
        _sm=$(mark)
        swipe reader-north-in "$_card" || return 1
        fact "$_key" "$(watch "$_samples")"
        wait_for 30 "$_cond" && return 0
        { has_event "$_sm" '"reason":"garbled_frame"' && [ "$_try" -lt 2 ]; } || return 1
        _try=$((_try + 1))
    done
}
await signals_idle 30 lock_is reader-north-in.led 0
m=$(mark)
signals deny_signal $CARD_UNKNOWN 120 unknown_logged
win deny_signals "$m"
await relock_before_grant 50 lock_is gate-north.lock 1
m=$(mark)
signals grant_signal $CARD_OWNER 40 granted_logged
await grant_led_off 60 lock_is reader-north-in.led 0
await grant_signal_relock 50 lock_is gate-north.lock 1
win grant_signals "$m"

# ======================================================================== 3. door alarms
# Forced open: the door opens while locked.
m=$(mark)
sim_pull gate-north.contact up
forced() { has_event "$m" '"type":"alarm"' '"reason":"forced_open"' '"door":"gate-north"'; }
wait_for 30 forced
fact gate_lock_forced "$(sim_value gate-north.lock)"
sim_pull gate-north.contact down
closed() { has_event "$m" '"reason":"closed"' '"door":"gate-north"'; }
wait_for 30 closed
win forced "$m"
ctl door reset-alarm gate-north-in >/dev/null; fact rc.reset.after-forced $?

# Held open: a granted opening left open beyond held_open_seconds (3 s).
m=$(mark)
swipe_until held_grant 20 reader-north-in $CARD_OWNER lock_is gate-north.lock 0
sim_pull gate-north.contact up
opened() { has_event "$m" '"reason":"opened"' '"door":"gate-north"'; }
wait_for 30 opened
held_open() { has_event "$m" '"type":"alarm"' '"reason":"held_open"' '"door":"gate-north"'; }
wait_for 80 held_open
fact gate_lock_held_open "$(sim_value gate-north.lock)"
sim_pull gate-north.contact down
cleared() { has_event "$m" '"reason":"held_open_cleared"' '"door":"gate-north"'; }
wait_for 30 cleared
win held_open "$m"

# ======================================================================== 4. exit button
m=$(mark)
sim_pull gate-north.exit down
await exit_release 20 lock_is gate-north.lock 0
sim_pull gate-north.exit up
exit_logged() { has_event "$m" '"type":"door"' '"reason":"released"' '"door":"gate-north"'; }
wait_for 30 exit_logged
await exit_relock 50 lock_is gate-north.lock 1
win exit "$m"

# ======================================================================== 5. roster change without restart
m=$(mark)
new_unknown() { has_event "$m" '"reason":"unknown_credential"' "\"credential\":\"$CARD_NEW\""; }
swipe_until new_unknown 30 reader-north-in $CARD_NEW new_unknown
win new_unknown "$m"
ctl card add $CARD_NEW --person P0002 >/dev/null; fact rc.card-add $?
sleep 1
m=$(mark)
new_granted() { has_event "$m" '"reason":"granted"' '"person_id":"P0002"'; }
swipe_until new_granted 30 reader-north-in $CARD_NEW new_granted
await new_release 20 lock_is gate-north.lock 0
await new_relock 50 lock_is gate-north.lock 1
win new_granted "$m"
ctl person suspend P0002 >/dev/null; fact rc.person-suspend $?
sleep 1
m=$(mark)
suspended() { has_event "$m" '"reason":"suspended"' '"person_id":"P0002"'; }
swipe_until suspended 30 reader-north-in $CARD_NEW suspended
fact gate_lock_suspended "$(sim_value gate-north.lock)"
win suspended "$m"

# ======================================================================== 5b. card then PIN at a keypad reader
# b02-door is card_and_pin (host-lib.sh): a card is accepted as pin_required and the reader waits
# for that person's own PIN, typed on the reader's keypad as 4-bit Wiegand bursts, one per key
# (10 = *, 11 = # submits). A burst the injector could not send at reader timing (see swipe_until)
# spoils the PIN, so the whole card + PIN is tried again then, at most twice.
key() { # READER CODE: one key
    inject "$(sim_offset "$1.d0")" "$(sim_offset "$1.d1")" \
        "$(awk -v k="$2" 'BEGIN { s = ""; for (i = 0; i < 4; i++) { s = (k % 2) s; k = int(k / 2) } print s }')"
}
# card_then_pin KEY PIN COND...: the card, then PIN and #, then wait for COND.
card_then_pin() {
    _pkey=$1 _pin=$2
    shift 2
    _ptry=0
    while :; do
        _cm=$(mark)
        pin_wanted() { has_event "$_cm" '"reason":"pin_required"' '"portal":"b02-door"'; }
        swipe_until "$_pkey.card" 30 reader-b02 $CARD_OTHER pin_wanted || return 1
        fact "$_pkey.lock_awaiting_pin" "$(sim_value b02.lock)"
        _d=$_pin
        while [ -n "$_d" ]; do
            key reader-b02 "${_d%"${_d#?}"}" || return 1
            _d=${_d#?}
        done
        key reader-b02 11 || return 1
        if wait_for 30 "$@"; then fact "$_pkey" ok; fact "$_pkey.resent" "$_ptry"; return 0; fi
        if ! has_event "$_cm" '"reason":"garbled_frame"' '"reader":"reader-b02"' || [ "$_ptry" -ge 2 ]; then
            fact "$_pkey" timeout
            fact "$_pkey.resent" "$_ptry"
            return 1
        fi
        _ptry=$((_ptry + 1))
        info "a key at reader-b02 was reported garbled; card and PIN again"
    done
}
ctl pin add 2468 --person P0050 >/dev/null; fact rc.pin-add $?
sleep 1
m=$(mark)
wrong_pin() { has_event "$_cm" '"reason":"wrong_pin"' '"portal":"b02-door"'; }
card_then_pin wrong_pin_typed 1357 wrong_pin
fact b02_lock_wrong_pin "$(sim_value b02.lock)"
win wrong_pin "$m"
m=$(mark)
pin_granted() { has_event "$_cm" '"reason":"granted"' '"portal":"b02-door"' '"person_id":"P0050"'; }
if card_then_pin card_pin_typed 2468 pin_granted; then
    await pin_release 30 lock_is b02.lock 1
    await pin_relock 50 lock_is b02.lock 0
fi
win card_pin "$m"

# ======================================================================== 5c. a barrier on dry contacts
# The garage exit's barrier controller: OPEN/CLOSE relays pressed for 3 s; the loop detector's
# relay and the arm's limit switches are normally open (pull-down: a vehicle on the loop, a switch
# made), the beam's receiver normally closed (pull-down: the beam is received).
sim_pull garage-out.infrared down
sim_pull garage-out.lowered down
sleep 0.5
m=$(mark)
ctl sim plate lpr-garage-out 京A12345 >/dev/null; fact rc.garage-plate $?
await garage_open 30 lock_is garage-out.open 1
sim_pull garage-out.lowered up
sim_pull garage-out.raised down
garage_raised() { has_event "$m" '"reason":"raised"' '"portal":"garage-out"'; }
wait_for 50 garage_raised
sim_pull garage-out.loop down
garage_on_loop() { has_event "$m" '"reason":"vehicle_on_loop"' '"portal":"garage-out"'; }
wait_for 30 garage_on_loop
ctl door close garage-out >/dev/null; fact rc.garage-close $?
garage_held() { has_event "$m" '"reason":"close_held"' '"portal":"garage-out"'; }
wait_for 30 garage_held
samples=""
for _ in 1 2 3 4 5 6 7 8 9 10; do samples="$samples$(sim_value garage-out.close)"; sleep 0.3; done
fact garage_close_on_loop "$samples"
sim_pull garage-out.loop up
await garage_close 50 lock_is garage-out.close 1
sim_pull garage-out.raised up
sim_pull garage-out.lowered down
garage_lowered() { has_event "$m" '"reason":"lowered"' '"portal":"garage-out"'; }
wait_for 50 garage_lowered
win garage "$m"

# ======================================================================== 6. latency (door cycles)
# Each granted frame drives the lock at once; the door then opens and closes (relock on close), so
# every frame finds the door locked and sets the relay. accessd measures from the kernel timestamp
# of the frame's last edge to the relay set (`status --json`: swipe_to_relay_micros). The follower
# is stopped meanwhile so that only accessd and the injector share the guest's one CPU.
last_seen=$(tail -n1 "$EVENTS" | sed -n 's/.*"serial":\([0-9]*\).*/\1/p')
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
# A frame the injector could not send at reader timing (the emulated machine stalled inside it: on
# a busy host, or behind accessd's own background work in a debug build) is reported garbled by
# accessd and sent again, as a user swipes again. The verifier decides from the injector's edge
# stamps which frames were at reader timing; the script gives up after FRAMES/10 resends.
max_misses=$((FRAMES / 10))
misses=0
i=0
: >"$HIL_OUT/latency-frames.txt"
while [ "$i" -lt "$FRAMES" ] && [ "$misses" -le "$max_misses" ]; do
    inject "$d0" "$d1" "$bits" || break
    echo "$_i" >>"$HIL_OUT/latency-frames.txt"   # the injector's frame number: its edges are stamped
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
fact door_cycles "$i"
fact misses "$misses"
ctl status --json >"$HIL_OUT/status.json" 2>&1
follow_from --after "${last_seen:-0}"
lat_granted() { [ "$(count_events "$m" '"type":"access"' '"reason":"granted"' '"portal":"gate-north-in"')" -ge "$i" ]; }
wait_for 100 lat_granted
win latency "$m"
win all_before_fire 0

# ======================================================================== 7. fire linkage
m=$(mark)
sim_pull fire.alarm down
all_released() {
    lock_is gate-north.lock 0 && lock_is b01.lock 1 && lock_is b02.lock 1 && lock_is b03.lock 1
}
locks() { echo "gate=$(sim_value gate-north.lock) b01=$(sim_value b01.lock) b02=$(sim_value b02.lock) b03=$(sim_value b03.lock)"; }
wait_for 20 all_released
fact locks_fire "$(locks)"
fire_logged() { has_event "$m" '"type":"alarm"' '"reason":"fire_alarm"'; }
wait_for 30 fire_logged
fire_doors() { [ "$(count_events "$m" '"reason":"fire_release"')" -ge 4 ]; }
wait_for 30 fire_doors
sleep 2.5
fact locks_fire_latched "$(locks)"
sim_pull fire.alarm up
fire_cleared() { has_event "$m" '"reason":"fire_alarm_cleared"'; }
wait_for 30 fire_cleared
fact locks_fire_cleared "$(locks)"
for p in gate-north-in b01-door b02-door b03-door; do ctl door reset-alarm "$p" >/dev/null; fact "rc.reset.fire.$p" $?; done
all_locked() { lock_is gate-north.lock 1 && lock_is b01.lock 0 && lock_is b02.lock 0 && lock_is b03.lock 0; }
wait_for 20 all_locked
fact locks_fire_reset "$(locks)"
fire_reset() { [ "$(count_events "$m" '"reason":"fire_reset"')" -ge 4 ]; }
wait_for 30 fire_reset
win fire "$m"

# ======================================================================== 8. graceful stop
# accessd's stop drives each lock to its unpowered state, then frees the lines. The driven stop
# value lasts only until the line is freed (microseconds), after which gpio-sim shows the line's
# pull, here down: a relay driver's input with nothing driving it. So what is checked is that every
# line is free (gpioinfo: no "accessd" consumer) and every lock reads 0: magnet unpowered (the
# fail-safe gate is free), strikes unpowered (fail-secure doors locked). The gate's magnet read 1
# (driven, against the pull) just before: the change shows accessd let it go.
fact gate_lock_before_stop "$(sim_value gate-north.lock)"
m=$(mark)
t_stop=$(now_ms)
kill -TERM "$PID"
gone() { [ ! -e "/proc/$PID" ] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$PID/stat" 2>/dev/null; }
if await stop 100 gone; then
    fact stop_ms $(($(now_ms) - t_stop))
    wait "$PID"
    fact rc.accessd $?
else
    kill -KILL "$PID"
fi
stopped() { has_event "$m" '"type":"system"' '"reason":"stopped"'; }
wait_for 30 stopped
win stopped "$m"
follow_stop
fact lines_held_after_exit "$(gpioinfo "$GPIO_CHIP" | grep -c '"accessd"' || true)"
for line in gate-north.lock b01.lock b02.lock b03.lock; do
    fact "after_stop.$line" "$(sim_value "$line")"
done
exec 5>&-
wait "$INJECTOR"
fact rc.wiegand-inject $?
echo "hil-accessd: data recorded ($(mark) events)"
