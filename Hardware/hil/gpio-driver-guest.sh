#!/bin/sh
# Run inside the HIL guest by gpio-driver-test.sh (busybox sh): the real GPIO driver
# (access-gpio-probe) against the gpio-sim chip. The script plays the hardware through gpio-sim's
# `pull` (inputs, Wiegand D0/D1 via wiegand-inject) and reads `value` (outputs). It only drives
# and records: the verdicts are verify.py gpio-driver's, on the host, over what lands in $HIL_OUT:
#   probe.out    everything access-gpio-probe printed
#   frames.txt   the injector's frames ("frame i ns bits"), edges.txt every edge it wrote, stamped
#   facts.jsonl  what the script saw at given moments (line levels, waits that timed out)
#   busy.out, missing.out   the probe's start-up errors
# shellcheck source=guest-lib.sh
. /etc/hil/lib.sh

OUT=$HIL_OUT/probe.out
seen() { grep -qs "$1" "$OUT"; }
count() { grep -c "$1" "$OUT" 2>/dev/null || true; }
fact frames "$FRAMES"
fact enforce_latency "${ENFORCE_LATENCY:-0}"

mkfifo /tmp/cmd
access-gpio-probe --board /data/sim.toml --lock gate-north.lock --pulse-ms 3 </tmp/cmd >"$OUT" 2>&1 &
PROBE=$!
exec 3>/tmp/cmd
await probe_ready 150 seen '^ready$'

# wait_for expands its arguments once: conditions that must be re-evaluated are functions.

# -- 1. outputs are requested at their safe value and driven by role
fact lock_at_start "$(sim_value gate-north.lock)"
fact siren_at_start "$(sim_value siren)"
echo "set siren 1" >&3
await set_siren_1 30 seen '^set siren 1'
fact siren_driven_on "$(sim_value siren)"
echo "set siren 0" >&3
await set_siren_0 30 seen '^set siren 0'
fact siren_driven_off "$(sim_value siren)"

# -- 2. inputs: initial levels, then debounced changes. The door contact is normally closed
# (contact = "nc"): with nothing holding the line low (the pull-up alone) the door reads open.
await contact_open_at_start 30 seen '^input gate-north.contact 1 '
sim_pull gate-north.contact down
await contact_closed 30 seen '^input gate-north.contact 0 '
sim_pull gate-north.contact up
door_open_again() { [ "$(count '^input gate-north.contact 1 ')" -ge 2 ]; }
await contact_open_again 30 door_open_again
sim_pull fire.alarm down
await fire_reported 30 seen '^input fire.alarm 1 '
# A 2 ms glitch, shorter than the 20 ms debounce time: never to be reported. wiegand-inject plays it
# (one 0 bit on the button's line; its other line is the spare) and stamps both edges, so the
# verifier can tell a glitch the host stretched past the debounce time.
wiegand-inject "$GPIO_SIM_DIR" "$(sim_offset call.gate-north)" "$(sim_offset spare.line)" 0 \
    --bit-gap-us 3000 --pulse-us 2000 --edges "$HIL_OUT/glitch-edges.txt" >/dev/null
sleep 0.3

# -- 3. Wiegand: FRAMES random 26-bit frames at reader timing (bits 1 ms apart, frames 40 ms apart:
#    more than the reader's 25 ms silence, as real traffic always is). Every edge is stamped.
#    The injector stands in for a reader, which takes no CPU from the controller; here each write
#    to `pull` costs ~0.5 ms of the guest's one emulated CPU, so at its own priority it could keep
#    the driver from reading until the kernel's 16-edge queue overflows. At nice 19 it yields.
d0=$(sim_offset reader-north-in.d0)
d1=$(sim_offset reader-north-in.d1)
at_low_priority wiegand-inject "$GPIO_SIM_DIR" "$d0" "$d1" --random-frames "$FRAMES" --seed 11 \
    --bit-gap-us 1000 --frame-gap-ms 40 --pulse-us 50 --edges "$HIL_OUT/edges.txt" \
    >"$HIL_OUT/frames.txt" 2>"$HIL_OUT/inject.err"
fact inject_exit $?
# Frames the host stretched are refused by the decoder: wait for the decodes, not for all FRAMES.
settled() { [ $(($(count '^card reader-north-in ') + $(count '^garbled reader-north-in '))) -ge "$FRAMES" ]; }
wait_for 50 settled
sleep 0.5
fact lock_after_pulses "$(sim_value gate-north.lock)"

# -- 4. a keypad key on the auto-format reader, and a frame with bad parity
d0=$(sim_offset reader-b01.d0)
d1=$(sim_offset reader-b01.d1)
wiegand-inject "$GPIO_SIM_DIR" "$d0" "$d1" 10100101 --bit-gap-us 1000 >/dev/null   # key 5 (8-bit)
await keypad_key 20 seen '^key reader-b01 digit(5)'
wiegand-inject "$GPIO_SIM_DIR" "$d0" "$d1" 00000000100000000000000010 --bit-gap-us 1000 >/dev/null
await parity_reported 20 seen '^garbled reader-b01 parity'

# -- 5. start-up errors name the line
access-gpio-probe --board /data/sim.toml </dev/null >"$HIL_OUT/busy.out" 2>&1
echo quit >&3
wait "$PROBE"
fact probe_exit $?
access-gpio-probe --board /data/missing.toml </dev/null >"$HIL_OUT/missing.out" 2>&1
echo "hil-gpio: data recorded ($(wc -l <"$HIL_OUT/frames.txt") frames sent, $(wc -l <"$OUT") probe lines)"
