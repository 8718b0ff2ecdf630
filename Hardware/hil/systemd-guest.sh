#!/usr/bin/env bash
# systemd-guest.sh: a Debian 12 guest with systemd as PID 1, booted under QEMU (TCG) with Debian's
# kernel and the gpio-sim module of the busybox tier (run-guest.sh builds both into its cache).
#
#   systemd-guest.sh image                     # build (or find) the cached base image; prints its path
#   systemd-guest.sh boot --root IMG --payload DIR [--outdir DIR] [--log FILE] [--timeout S]
#
# image: `mmdebstrap --variant=minbase` of bookworm from Debian's mirror with systemd-sysv, udev,
# kmod, gpiod, the libraries the package depends on and tzdata; the guest kernel's modules that
# the tests need (gpio-sim, configfs, binfmt_misc, autofs4) copied in with depmod; a machine id; no
# first-boot prompts; and one unit, hil-test.service, that mounts the payload disk and runs its
# `run` script once the system is up. Written as an ext4 image (mkfs.ext4 -d, no loop mount) with
# a small busybox initramfs that loads virtio and ext4 and switch_roots to /sbin/init (Debian's own
# initrd would need initramfs-tools and a kernel inside the image). Cached under
# $ACCESS_HIL_CACHE/systemd/ by a hash of this script, the kernel ABI and gpio-sim.ko: about a
# minute to build, then reused.
#
# boot: IMG is booted read-write (pass a copy: two boots of one copy keep what the first wrote);
# DIR is packed onto a second disk and mounted read-only at /hil in the guest, where `run` is
# started by hil-test.service with HIL_OUT=/tmp/hil-out; what it leaves there is copied to
# --outdir afterwards (a tar on a third disk). The guest prints "HIL-RESULT: N" on the console and
# powers off; the exit status is N (124 on timeout, 125 when no result was printed).
set -euo pipefail

HIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ACCESS_HIL_CACHE:-$HOME/.cache/communityaccess-hil}
MIRROR=${ACCESS_HIL_MIRROR:-http://deb.debian.org/debian}
# What the guest holds besides minbase. The package's Depends must all be here: the guest has no
# network, so `dpkg -i` succeeds only if the image satisfies them (a real check of Depends:).
GUEST_PACKAGES=(systemd-sysv udev kmod gpiod procps tzdata
    libgpiod2 libmodbus5 libsqlite3-0 libmosquitto1 libqrencode4 libnats3.4 libssl3 libstdc++6 libgcc-s1 zlib1g)
# Bump when the image recipe changes in a way the hash below cannot see.
IMAGE_RECIPE=1

say() { printf '[systemd-guest] %s\n' "$*" >&2; }
die() { printf '\n### SYSTEMD GUEST ERROR: %s\n' "$*" >&2; exit 125; }

read -r KDIR KABI < <("$HIL_DIR/run-guest.sh" --prepare-only) || die "run-guest.sh --prepare-only failed"
KROOT=$KDIR/root
BOOT_KERNEL=$KROOT/boot/vmlinuz-$KABI
[ -f "$KDIR/vmlinux" ] && BOOT_KERNEL=$KDIR/vmlinux
GPIO_SIM_KO=$KROOT/lib/modules/$KABI/extra/gpio-sim.ko
[ -f "$GPIO_SIM_KO" ] || die "no $GPIO_SIM_KO (run-guest.sh builds it)"


# modules_for DESTROOT DECOMPRESS MODULE...: copies each module with its dependencies.
modules_for() {
    local dest=$1 decompress=$2 mod deps kind path _
    shift 2
    for mod in "$@"; do
        deps=$(modprobe -d "$KROOT" -S "$KABI" --show-depends "$mod") || die "module $mod not found for $KABI"
        while read -r kind path _; do
            [ "$kind" = insmod ] || continue
            if [ "$decompress" = 1 ]; then
                local base
                base=$(basename "$path")
                base=${base%.xz}
                case $path in
                *.xz) xz -dc "$path" ;;
                *) cat "$path" ;;
                esac >"$dest/$base"
                echo "$base"
            else
                install -D -m644 "$path" "$dest${path#"$KROOT"}"
            fi
        done <<<"$deps"
    done
}

build_image() {
    command -v mmdebstrap >/dev/null || "$HIL_DIR/../../Scripts/setup.sh" --tests
    command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (Scripts/setup.sh --tests installs it)"
    local work root
    rm -rf "$IMGDIR" && mkdir -p "$IMGDIR"
    work=$(mktemp -d "$CACHE/systemd/work.XXXXXX")
    root=$work/root
    say "mmdebstrap bookworm (${#GUEST_PACKAGES[@]} packages over minbase) from $MIRROR"
    local t0=$SECONDS
    mmdebstrap --quiet --variant=minbase --mode=root --include="$(
        IFS=,
        echo "${GUEST_PACKAGES[*]}"
    )" \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        bookworm "$root" "$MIRROR" >&2 || die "mmdebstrap failed"
    say "root filesystem in $((SECONDS - t0)) s, $(du -sh "$root" | cut -f1)"

    # The guest kernel's modules the tests and systemd want, compressed as Debian ships them.
    modules_for "$root" 0 gpio-sim configfs binfmt_misc autofs4 >/dev/null
    install -D -m644 "$GPIO_SIM_KO" "$root/lib/modules/$KABI/extra/gpio-sim.ko"
    cp "$KROOT/lib/modules/$KABI"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$KABI/"
    depmod -b "$root" "$KABI"

    systemd-machine-id-setup --root="$root" >/dev/null 2>&1 || echo 0123456789abcdef0123456789abcdef >"$root/etc/machine-id"
    echo hil-guest >"$root/etc/hostname"
    printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
    # No login prompt on the console: the test owns it.
    ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
    ln -sf /dev/null "$root/etc/systemd/system/getty@tty1.service"
    # The journal is kept on disk, so the second boot of a test still has the first one's.
    mkdir -p "$root/var/log/journal"

    cat >"$root/etc/systemd/system/hil-test.service" <<'EOF'
[Unit]
Description=HIL test from the payload disk
After=multi-user.target
ConditionPathExists=/dev/vdb
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=exec
ExecStart=/usr/local/sbin/hil-run
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
EOF
    ln -s ../hil-test.service "$root/etc/systemd/system/multi-user.target.wants/hil-test.service"
    cat >"$root/usr/local/sbin/hil-run" <<'EOF'
#!/bin/sh
# Runs the payload disk's `run` script; its data goes to the output disk as a tar.
echo
echo "HIL-INIT: systemd up after $(cut -d' ' -f1 /proc/uptime) s"
mkdir -p /hil && mount -o ro /dev/vdb /hil || { echo "HIL-ERROR: no payload disk"; echo "HIL-RESULT: 125"; exit 125; }
export HIL_OUT=/tmp/hil-out
mkdir -p "$HIL_OUT"
cd /tmp && /hil/run
rc=$?
[ -b /dev/vdc ] && tar -cf /dev/vdc -C "$HIL_OUT" .
echo
echo "HIL-RESULT: $rc"
sync
exit "$rc"
EOF
    chmod 755 "$root/usr/local/sbin/hil-run"
    rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*_Packages

    say "ext4 image"
    mkfs.ext4 -q -L hil-root -d "$root" "$IMAGE.tmp" 1G >&2 || die "mkfs.ext4 failed"
    mv "$IMAGE.tmp" "$IMAGE"

    # The initramfs: busybox, virtio + ext4, then switch_root to systemd.
    local ir=$work/initrd mods
    mkdir -p "$ir"/{bin,dev,proc,sys,newroot,lib/modules}
    install -m755 /bin/busybox "$ir/bin/busybox"
    ln -s busybox "$ir/bin/sh"
    mods=$(modules_for "$ir/lib/modules" 1 virtio_pci virtio_blk crc32c_generic ext4 | awk '!seen[$0]++' | paste -sd' ')
    cat >"$ir/init" <<EOF
#!/bin/sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t proc proc /proc
for m in $mods; do /bin/busybox insmod /lib/modules/\$m || echo "initrd: insmod \$m failed"; done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 50 ]; do /bin/busybox sleep 0.1; i=\$((i + 1)); done
/bin/busybox mount -t ext4 -o rw /dev/vda /newroot || { echo "HIL-ERROR: cannot mount the root disk"; echo "HIL-RESULT: 125"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/init
EOF
    chmod 755 "$ir/init"
    (cd "$ir" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$INITRD"
    rm -rf "$work"
    touch "$IMGDIR/.ok"
    say "image $IMAGE ($(du -h "$IMAGE" | cut -f1) used), built in $((SECONDS - t0)) s"
    # Older images of this cache are of no use any more.
    find "$CACHE/systemd" -mindepth 1 -maxdepth 1 -name 'debian12-*' ! -name "debian12-$KEY" -exec rm -rf {} +
}

# The cache key: what the image is made of (the recipe below, the package list, the kernel and its
# gpio-sim.ko), not how it is booted.
KEY=$( (declare -f build_image modules_for; echo "$IMAGE_RECIPE $KABI ${GUEST_PACKAGES[*]}"; sha256sum "$GPIO_SIM_KO") |
    sha256sum | cut -c1-16)
IMGDIR=$CACHE/systemd/debian12-$KEY
IMAGE=$IMGDIR/root.img
INITRD=$IMGDIR/initrd.cpio

ensure_image() {
    mkdir -p "$CACHE/systemd"
    exec 8>"$CACHE/systemd/.lock"
    flock 8
    [ -e "$IMGDIR/.ok" ] || build_image
    flock -u 8
}

cmd=${1:-}
shift || true
case $cmd in
image)
    ensure_image
    echo "$IMAGE"
    ;;
boot)
    ROOT_IMG="" PAYLOAD="" OUTDIR="" LOG="" TIMEOUT=${ACCESS_HIL_TIMEOUT:-300}
    while [ $# -gt 0 ]; do
        case $1 in
        --root) ROOT_IMG=${2:?}; shift 2 ;;
        --payload) PAYLOAD=${2:?}; shift 2 ;;
        --outdir) OUTDIR=${2:?}; shift 2 ;;
        --log) LOG=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        *) echo "systemd-guest.sh boot: unknown argument '$1'" >&2; exit 2 ;;
        esac
    done
    [ -f "$ROOT_IMG" ] && [ -d "$PAYLOAD" ] && [ -n "$LOG" ] || { echo "systemd-guest.sh boot: --root IMG --payload DIR --log FILE" >&2; exit 2; }
    ensure_image
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    mkfs.ext4 -q -L hil-payload -d "$PAYLOAD" "$WORK/payload.img" 512M >&2 || die "payload image"
    truncate -s 512M "$WORK/out.img"
    mkdir -p "$(dirname "$LOG")"
    QEMU=(qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1G -nographic -no-reboot -nic none
        -kernel "$BOOT_KERNEL" -initrd "$INITRD"
        -append "console=ttyS0 loglevel=4 mitigations=off panic=-1 systemd.firstboot=off systemd.show_status=false"
        -drive "file=$ROOT_IMG,format=raw,if=virtio,cache=unsafe"
        -drive "file=$WORK/payload.img,format=raw,if=virtio,readonly=on"
        -drive "file=$WORK/out.img,format=raw,if=virtio,cache=writeback")
    say "booting (TCG, timeout ${TIMEOUT}s), log $LOG"
    t0=$(date +%s.%N)
    echo "HOST-BOOT-START: $t0" >"$LOG"
    set +e
    timeout --kill-after=5 "$TIMEOUT" "${QEMU[@]}" </dev/null 2>&1 |
        sed -u 's/\r$//; s/\x1bc//g; s/\x1b\[[0-9;?]*[A-Za-z]//g' | tee -a "$LOG" >&2
    status=${PIPESTATUS[0]}
    set -e
    say "guest ran $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
    if [ -n "$OUTDIR" ]; then
        rm -rf "$OUTDIR" && mkdir -p "$OUTDIR"
        if [ "$(head -c 512 "$WORK/out.img" | tr -d '\0' | wc -c)" -gt 0 ]; then
            tar -xf "$WORK/out.img" -C "$OUTDIR" || say "cannot unpack the guest's data"
        fi
    fi
    result=$(sed -n 's/^HIL-RESULT: \([0-9]\{1,3\}\)$/\1/p' "$LOG" | tail -n1)
    if [ -z "$result" ]; then
        [ "$status" -eq 124 ] && { echo "### SYSTEMD GUEST TIMEOUT after ${TIMEOUT}s (log $LOG)" >&2; exit 124; }
        echo "### SYSTEMD GUEST: no HIL-RESULT (qemu exit $status, log $LOG)" >&2
        exit 125
    fi
    exit "$result"
    ;;
*)
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
