#!/bin/sh
# /init of the HIL guest (busybox sh). run-guest.sh puts it in the initramfs.
#
# Sets up one gpio-sim chip from /etc/hil/lines, runs /hil/guest-script with
# GPIO_CHIP / GPIO_SIM_DIR in its environment, prints "HIL-RESULT: <exit code>" and
# powers off. The host reads that marker line; nothing after it matters.

/bin/busybox mkdir -p /proc /sys /dev /tmp /run /root
/bin/busybox mount -t devtmpfs devtmpfs /dev
# If the initramfs had no /dev/console the kernel started us without stdio; reopen it.
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s
export PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
export HOME=/root TMPDIR=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run

# The firmware's last line ("Booting from ROM..") has no newline: start a fresh line.
echo
echo "HIL-INIT: guest kernel $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"

finish() {
    # The guest script's last line may lack a newline; the host wants the marker alone.
    echo
    echo "HIL-RESULT: $1"
    sync
    poweroff -f
    # poweroff needs ACPI; if that ever fails, the sysrq path still ends QEMU.
    echo o >/proc/sysrq-trigger
    sleep 10
}

setup_failed() {
    echo "HIL-ERROR: $*"
    finish 125
}

# shellcheck source=/dev/null
. /etc/hil/config

# Modules in dependency order (resolved on the host with modprobe --show-depends).
for m in $HIL_MODULES; do
    insmod "/lib/modules/hil/$m" || setup_failed "insmod $m failed"
done

mount -t configfs configfs /sys/kernel/config || setup_failed "cannot mount configfs"

# One simulated chip: device "hil", bank "gpio-bank0", line N named after line N+1 of
# /etc/hil/lines.
dev=/sys/kernel/config/gpio-sim/hil
bank=$dev/gpio-bank0
mkdir "$dev" "$bank" || setup_failed "cannot create gpio-sim device in configfs"
n=0
while IFS= read -r name; do
    if ! mkdir "$bank/line$n" || ! printf '%s' "$name" >"$bank/line$n/name"; then
        setup_failed "cannot name line $n '$name'"
    fi
    n=$((n + 1))
done </etc/hil/lines
echo "$n" >"$bank/num_lines" || setup_failed "cannot set num_lines=$n"
printf '%s' "$HIL_LABEL" >"$bank/label" || setup_failed "cannot set label"
echo 1 >"$dev/live" || setup_failed "gpio-sim refused to go live"

GPIO_CHIP=$(cat "$bank/chip_name")
GPIO_SIM_DEV=$(cat "$dev/dev_name")
export GPIO_CHIP GPIO_SIM_DEV
export GPIO_SIM_DIR="/sys/devices/platform/$GPIO_SIM_DEV/$GPIO_CHIP"
export GPIO_SIM_CONFIGFS="$dev" GPIO_SIM_LABEL="$HIL_LABEL" GPIO_LINES_FILE=/etc/hil/lines
export GPIO_NUM_LINES=$n

# devtmpfs creates the node synchronously, but be tolerant of a slow guest.
i=0
while [ ! -c "/dev/$GPIO_CHIP" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -c "/dev/$GPIO_CHIP" ] || setup_failed "/dev/$GPIO_CHIP did not appear"
[ -d "$GPIO_SIM_DIR" ] || setup_failed "$GPIO_SIM_DIR missing"

echo "HIL-CHIP: $GPIO_CHIP label=$HIL_LABEL lines=$n sim=$GPIO_SIM_DIR"

# Extra variables from run-guest.sh --env.
# shellcheck source=/dev/null
[ -f /etc/hil/env ] && . /etc/hil/env

cd /tmp || setup_failed "no /tmp"
# Data for the host's verifier (run-guest.sh --outdir): a tar on the output disk afterwards.
export HIL_OUT=/tmp/hil-out
mkdir -p "$HIL_OUT"
/hil/guest-script
rc=$?
if [ -n "${HIL_OUT_DEV:-}" ]; then
    tar -cf "$HIL_OUT_DEV" -C "$HIL_OUT" . || echo "HIL-ERROR: cannot write the data to $HIL_OUT_DEV"
fi
finish $rc
