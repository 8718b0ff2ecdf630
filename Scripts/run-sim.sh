#!/usr/bin/env bash
# Builds CommunityAccess and runs accessd on the simulated board (Config/accessd-sim.toml) with
# the sample community 幸福里小区 (Config/sample-roster.csv) in an embedded SQLite database under
# var/sim/, after a short tour with accessctl. accessd stays in the foreground until Ctrl-C;
# with --tour-only it is stopped after the tour. Safe to run again: the import is an upsert.
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/setup.sh
swift build --product accessctl
swift build --product accessd

config=Config/accessd-sim.toml
ctl() { .build/debug/accessctl --config "$config" --operator setup "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Access groups and schedules"
ctl schedule show workdays >/dev/null 2>&1 ||
    ctl schedule add workdays --segment "mon-fri 07:00-19:00" --segment "sat 08:00-12:00"
ctl group show property-staff >/dev/null 2>&1 ||
    ctl group add property-staff --portal gate-north-in --portal gate-north-out --portal lane-in --portal lane-out \
        --portal b01-door --portal b02-door --portal b03-door
ctl group show cleaners >/dev/null 2>&1 ||
    ctl group add cleaners --portal gate-north-in --portal gate-north-out --portal b01-door --portal b02-door \
        --portal b03-door --schedule workdays
ctl group list

say "Roster: import Config/sample-roster.csv (dry run, then for real)"
ctl import Config/sample-roster.csv --dry-run | sed -n 1,3p
ctl import Config/sample-roster.csv

say "Portals"
ctl portal list

say "Decisions (accessctl check), at a fixed Monday morning and evening"
check() {
    local note=$1; shift
    printf '%-44s' "$note"
    ctl check "$@" | sed -n 1p
}
check "owner at own building door"        --portal b01-door      --card 6553701 --at 2026-11-23T08:00
check "owner at another building's door"   --portal b02-door      --card 6553701 --at 2026-11-23T08:00
check "owner's car at the barrier"         --portal lane-in       --plate "冀N 12293" --at 2026-11-23T08:00
check "tenant whose lease ended 2026-06-30" --portal gate-north-in --card 6553705 --at 2026-11-23T08:00
check "new owner moving in 2027-01-01"     --portal gate-north-in --card 6553711 --at 2026-11-23T08:00
check "suspended family member"            --portal gate-north-in --card 6553714 --at 2026-11-23T08:00
check "blacklisted tenant (alarm)"         --portal gate-north-in --card 6553724 --at 2026-11-23T08:00
check "cleaner on Monday 08:00"            --portal b02-door      --card 6553876 --at 2026-11-23T08:00
check "cleaner on Monday 21:00"            --portal b02-door      --card 6553876 --at 2026-11-23T21:00
check "unknown card"                       --portal gate-north-in --card 424242  --at 2026-11-23T08:00

say "A visitor pass for house B01-U1-101 (4 hours, 1 entry)"
ctl visitor issue --house B01-U1-101 --name 访客王芳 --plate 京B67890 --hours 4 --uses 1

say "accessd on the simulated board"
.build/debug/accessd --config "$config" &
accessd_pid=$!
trap 'kill -TERM $accessd_pid 2>/dev/null || true; wait $accessd_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -S var/sim/accessd.sock ] && break; sleep 0.1; done
[ -S var/sim/accessd.sock ] || { echo "accessd did not start" >&2; exit 1; }

say "A resident swipes at building 1; the lock releases"
ctl sim swipe reader-b01 6553701
ctl sim outputs | grep b01.lock
say "An unknown card at the north gate"
ctl sim swipe reader-north-in 424242
say "A resident types her PIN at building 1 (added while accessd runs: effective within 1 s)"
ctl pin show 482913 >/dev/null 2>&1 || ctl pin add 482913 --person P0001
sleep 0.5
ctl sim keys reader-b01 '482913#'
say "A resident's car at the barrier, then the visitor's; the arm never comes down on a car"
ctl sim plate lpr-lane-in "冀N 12293"
ctl sim plate lpr-lane-in 京B67890
sleep 1.5                                  # the arm takes 1 s to rise
ctl sim loop lane-in 1
ctl door close lane-in
ctl sim loop lane-in 0
sleep 1.5
say "Someone cuts the fence in zone 3: the alarm latches and sounds until reset"
ctl sim fence fence-host-1 3 broken 1
sleep 0.5
ctl sim outputs | grep -E "siren|strobe"
ctl sim fence fence-host-1 3 broken 0
ctl fence reset fence-zone-3
sleep 0.5
ctl fence disarm fence-zone-4 || true
ctl status
say "The door of building 1 is held open; the guard locks the building down"
ctl sim input b01.contact 1
ctl door always-closed b01-door
ctl sim swipe reader-b01 6553701
ctl door normal b01-door
ctl sim input b01.contact 0
say "The fire panel asserts: every escape door releases (latched until reset)"
ctl sim input fire.alarm 1
ctl sim outputs
ctl sim input fire.alarm 0
for portal in gate-north-in b01-door b02-door b03-door lane-in lane-out; do ctl door reset-alarm "$portal"; done
say "The event log"
ctl events --limit 1000 | tail -n 24

say "Audit log (last entries)"
ctl audit --limit 100000 | tail -n 5

if [ "${1:-}" = "--tour-only" ]; then
    say "Done: stopping accessd"
    exit 0
fi
say "accessd is running (pid $accessd_pid). In another terminal, for example:"
cat <<MSG
  .build/debug/accessctl --config $config sim swipe reader-north-in 6553701
  .build/debug/accessctl --config $config sim input gate-north.exit 1
  .build/debug/accessctl --config $config events --follow
  .build/debug/accessctl --config $config person show P0001
Ctrl-C stops it; the doors return to their safe state.
MSG
wait $accessd_pid
