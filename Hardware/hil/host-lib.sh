# host-lib.sh: what the host side of the accessd HIL tests share (accessd-test.sh,
# power-cut-test.sh; gpio-driver-test.sh uses chip_lines). Sourced, not run.

# chip_lines MAP: every line a board map names, in order (outputs, inputs, reader D0/D1): the
# gpio-sim chip's line names.
chip_lines() {
    # The board map's own reader (access-gpio-probe --list-lines), built on the host in the
    # caller's configuration and scratch path (BUILD, SCRATCH; debug and .build by default).
    local root build=${BUILD:-debug} scratch=${SCRATCH:-.build} bin
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    (cd "$root" && swift build -c "$build" --scratch-path "$scratch" --product access-gpio-probe >&2) || return
    bin=$(cd "$root" && swift build -c "$build" --scratch-path "$scratch" --show-bin-path) || return
    "$bin/access-gpio-probe" --list-lines "$1"
}

# build_for_guest ROOT BUILD SCRATCH DEST: builds accessd and accessctl and puts stripped copies in
# DEST. The initramfs lives in the guest's memory, and a debug build's symbols would double it
# (the copies keep their RUNPATH, so ldd finds the same libraries).
build_for_guest() {
    local root=$1 build=$2 scratch=$3 dest=$4 bin exe
    (cd "$root" && swift build -c "$build" --scratch-path "$scratch" --product accessd >&2 &&
        swift build -c "$build" --scratch-path "$scratch" --product accessctl >&2)
    bin=$(cd "$root" && swift build -c "$build" --scratch-path "$scratch" --show-bin-path)
    mkdir -p "$dest"
    for exe in accessd accessctl; do strip -o "$dest/$exe" "$bin/$exe"; done
}

# The site: the simulated board's portals and doors (Config/accessd-sim.toml) on real GPIO, with
# short timers so the alarms and relocks happen within the test. Absolute paths: the guest script
# runs in /tmp. The same file serves the host import, with the database path swapped.
# Uses $ZONE (an IANA time zone name).
site_config() { # DB_PATH
    cat <<EOF
# Written by Hardware/hil/host-lib.sh (site_config) for the HIL guest.
[controller]
id = "hil-north-1"
community = "幸福里小区"
time_zone = "$ZONE"

[database]
path = "$1"

[anti_passback]
mode = "off"

# The tests swipe the same cards and unknown cards back to back and time every decision: repeat-
# read suppression and the wrong-attempt lockout (tested on their own elsewhere) are off here.
[gate]
repeat_read_seconds = 0
wrong_attempts = 0

[[portal]]
id = "gate-north-in"
kind = "door"
direction = "in"
from_area = "outside"
to_area = "community"
readers = ["reader-north-in"]

[[portal]]
id = "gate-north-out"
kind = "door"
direction = "out"
from_area = "community"
to_area = "outside"
readers = ["reader-north-out"]

[[portal]]
id = "b01-door"
kind = "door"
direction = "in"
from_area = "community"
to_area = "b01"
building = "B01"
readers = ["reader-b01"]

[[portal]]
id = "b02-door"
kind = "door"
direction = "in"
from_area = "community"
to_area = "b02"
building = "B02"
readers = ["reader-b02"]
verify = "card_and_pin"         # the keypad part of the test: a card, then the person's own PIN

[[portal]]
id = "b03-door"
kind = "door"
direction = "in"
from_area = "community"
to_area = "b03"
building = "B03"
readers = ["reader-b03"]

[[portal]]
id = "garage-out"
kind = "barrier"
direction = "out"
from_area = "community"
to_area = "outside"
readers = ["lpr-garage-out"]

[board]
map = "/data/sim.toml"
simulated = false

[control]
socket = "/run/accessd.sock"

[[door]]
id = "gate-north"
portals = ["gate-north-in", "gate-north-out"]
lock = "gate-north.lock"
fail_safe = true
contact = "gate-north.contact"
exit = "gate-north.exit"
unlock_seconds = 2
held_open_seconds = 3

[[door]]
id = "b01"
portals = ["b01-door"]
lock = "b01.lock"
contact = "b01.contact"
exit = "b01.exit"
unlock_seconds = 2
held_open_seconds = 3

[[door]]
id = "b02"
portals = ["b02-door"]
lock = "b02.lock"

[[door]]
id = "b03"
portals = ["b03-door"]
lock = "b03.lock"

[linkage]
fire = ["fire.alarm"]
call = ["call.gate-north"]

# The garage exit's barrier controller on dry contacts; pulses of 3 s, long enough for the guest
# script (a shell under TCG) to see a relay pressed.
[[barrier]]
portal = "garage-out"
open = "garage-out.open"
close = "garage-out.close"
stop = "garage-out.stop"
loop = "garage-out.loop"
infrared = "garage-out.infrared"
raised = "garage-out.raised"
lowered = "garage-out.lowered"
close_delay_seconds = 1
pulse_ms = 3000
EOF
}
