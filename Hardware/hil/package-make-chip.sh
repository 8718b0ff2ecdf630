#!/bin/sh
# package-make-chip.sh LINES: in the systemd guest, one gpio-sim chip ("hil", label accessd-sim)
# whose line N is named after line N+1 of LINES, as guest-init.sh makes it in the busybox guest.
# Run at every boot by hil-gpio-sim.service, before accessd, as a board's GPIO is there at power-on.
set -e
modprobe gpio-sim
dev=/sys/kernel/config/gpio-sim/hil
bank=$dev/gpio-bank0
[ -e "$dev/live" ] && [ "$(cat "$dev/live")" = 1 ] && exit 0
mkdir -p "$dev" "$bank"
n=0
while IFS= read -r name; do
    mkdir -p "$bank/line$n"
    printf '%s' "$name" >"$bank/line$n/name"
    n=$((n + 1))
done <"$1"
echo "$n" >"$bank/num_lines"
printf 'accessd-sim' >"$bank/label"
echo 1 >"$dev/live"
chip=$(cat "$bank/chip_name")
i=0
while [ ! -c "/dev/$chip" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
# udev applies the package's rule (group gpio) once the device exists.
udevadm settle 2>/dev/null || true
[ -c "/dev/$chip" ]
