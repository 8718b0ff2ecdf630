#!/usr/bin/env bash
# run-guest.sh: boot Debian's own kernel under QEMU with one gpio-sim chip and run a
# script inside it. This machine's kernel has no GPIO support; the guest's has, plus a
# gpio-sim module built here out of tree (Debian does not ship one). See README.md.
#
#   run-guest.sh --lines FILE --guest-script FILE [--payload EXE]... [--file SRC[:DEST]]...
#                [--env NAME=VALUE]... [--module NAME]... [--label LABEL]
#                [--timeout SECONDS] [--log FILE] [--memory SIZE]
#                [--disk IMAGE] [--pidfile FILE] [--outdir DIR]
#   run-guest.sh --prepare-only
#
# --prepare-only: only fetch the kernel and build gpio-sim.ko into the cache, then print the
# kernel's cache directory (KDIR: KDIR/root is the unpacked linux-image with modules.dep and
# extra/gpio-sim.ko, KDIR/vmlinux the PVH-bootable kernel when it could be extracted) and the
# kernel ABI, "KDIR KABI" on one line. The systemd guest (systemd-guest.sh) boots the same kernel.
#
# --outdir DIR: what the guest script leaves in $HIL_OUT (data for the host's verifier) is
# copied into DIR once the script ends (a tar written to a second virtio disk; the console is
# too slow for megabytes), also when the script failed.
#
# Exit status: the guest script's; 124 on timeout; 125 when the guest never reported a
# result (boot or setup failure); 137 when QEMU was killed from outside before the timeout
# (SIGKILL, e.g. by the power-cut test through --pidfile); 2 on bad usage; 3 when the environment cannot run the
# HIL at all (packages, downloads, QEMU), or 0 with "HIL SKIPPED" if ACCESS_HIL_OPTIONAL=1.
#
# Environment: ACCESS_HIL_CACHE (cache dir), ACCESS_HIL_TIMEOUT (default 120 s),
# ACCESS_HIL_OPTIONAL=1, ACCESS_HIL_KERNEL (e.g. 6.1.0-56-amd64; default: what
# linux-image-amd64 points at), ACCESS_HIL_ACCEL (default tcg), ACCESS_HIL_KEEP=1 (keep
# the work dir with the initramfs), ACCESS_HIL_DISK_CACHE (QEMU cache mode of --disk,
# default writethrough).
set -euo pipefail

HIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ACCESS_HIL_CACHE:-$HOME/.cache/communityaccess-hil}
TIMEOUT=${ACCESS_HIL_TIMEOUT:-120}
OPTIONAL=${ACCESS_HIL_OPTIONAL:-0}
ACCEL=${ACCESS_HIL_ACCEL:-tcg}
# Bump when the way gpio-sim.ko is built changes, so cached modules are rebuilt.
MODULE_RECIPE=1

LINES_FILE="" GUEST_SCRIPT="" LABEL=accessd-sim LOG="" MEMORY=512M DISK="" PIDFILE="" OUTDIR=""
DISK_CACHE=${ACCESS_HIL_DISK_CACHE:-writethrough}
PAYLOADS=() FILES=() ENVS=() EXTRA_MODULES=() PREPARE_ONLY=0

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --lines) LINES_FILE=${2:?}; shift 2 ;;
    --guest-script) GUEST_SCRIPT=${2:?}; shift 2 ;;
    --payload) PAYLOADS+=("${2:?}"); shift 2 ;;
    --file) FILES+=("${2:?}"); shift 2 ;;
    --env) ENVS+=("${2:?}"); shift 2 ;;
    --module) EXTRA_MODULES+=("${2:?}"); shift 2 ;;
    --label) LABEL=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --log) LOG=${2:?}; shift 2 ;;
    --memory) MEMORY=${2:?}; shift 2 ;;
    --disk) DISK=${2:?}; shift 2 ;;
    --pidfile) PIDFILE=${2:?}; shift 2 ;;
    --outdir) OUTDIR=${2:?}; shift 2 ;;
    --prepare-only) PREPARE_ONLY=1; shift ;;
    -h | --help) usage ;;
    *) echo "run-guest.sh: unknown argument '$1'" >&2; usage ;;
    esac
done
if [ "$PREPARE_ONLY" = 0 ] && { [ -z "$LINES_FILE" ] || [ -z "$GUEST_SCRIPT" ]; }; then usage; fi
[ "$PREPARE_ONLY" = 1 ] || [ -f "$LINES_FILE" ] || { echo "run-guest.sh: no such lines file: $LINES_FILE" >&2; exit 2; }
[ "$PREPARE_ONLY" = 1 ] || [ -f "$GUEST_SCRIPT" ] || { echo "run-guest.sh: no such guest script: $GUEST_SCRIPT" >&2; exit 2; }
for p in "${PAYLOADS[@]}"; do
    if [ ! -f "$p" ] || [ ! -x "$p" ]; then
        echo "run-guest.sh: payload not an executable file: $p" >&2
        exit 2
    fi
done
if [ -n "$DISK" ] && [ ! -f "$DISK" ]; then
    echo "run-guest.sh: --disk wants an existing image file: $DISK" >&2
    exit 2
fi
case $DISK_CACHE in
writethrough | directsync | none | writeback | unsafe) ;;
*) echo "run-guest.sh: ACCESS_HIL_DISK_CACHE: unknown cache mode '$DISK_CACHE'" >&2; exit 2 ;;
esac
for e in "${ENVS[@]}"; do
    [[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || { echo "run-guest.sh: --env wants NAME=VALUE: $e" >&2; exit 2; }
done

START=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[hil %6ss] %s\n' "$(elapsed "$START")" "$*" >&2; }
banner() {
    printf '\n%s\n### %s\n%s\n' "##########################################################" \
        "$*" "##########################################################" >&2
}
# The environment cannot run the HIL: loud failure, or a loud skip when it is optional.
env_fail() {
    if [ "$OPTIONAL" = 1 ]; then
        banner "HIL SKIPPED: $* (ACCESS_HIL_OPTIONAL=1)"
        exit 0
    fi
    banner "HIL CANNOT RUN: $*"
    exit 3
}
die() { banner "HIL ERROR: $*"; exit 125; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
SETUP_LOG=$WORK/setup.log
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [ "${ACCESS_HIL_KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Run a noisy setup command; show its output only when it fails.
quiet() {
    if ! "$@" >>"$SETUP_LOG" 2>&1; then
        tail -n 30 "$SETUP_LOG" >&2
        return 1
    fi
}

# ---------------------------------------------------------------- host packages

APT_UPDATED=0
apt_update_once() {
    [ "$APT_UPDATED" = 1 ] && return 0
    say "apt-get update"
    quiet $SUDO apt-get update || env_fail "apt-get update failed"
    APT_UPDATED=1
}

ensure_packages() {
    local missing=() p
    # One dpkg-query for all: it is slow to start. Unknown packages print nothing.
    local installed
    installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@" 2>/dev/null |
        awk '$1 == "ii" { print $2 }' || true)
    for p in "$@"; do grep -qx "$p" <<<"$installed" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_update_once
    say "apt-get install ${missing[*]}"
    quiet $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" || env_fail "cannot install ${missing[*]}"
}

ensure_packages qemu-system-x86 busybox-static gpiod libgpiod-dev cpio kmod gcc make \
    libc6-dev xz-utils zstd binutils

# ---------------------------------------------------------------- which kernel
# Debian's linux-image-amd64 points at the current ABI package, e.g.
# "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)". linux-source-6.1 and the headers
# must be of exactly that version, or the module will not load.
resolve_kernel() {
    if [ -n "${ACCESS_HIL_KERNEL:-}" ]; then
        KABI=$ACCESS_HIL_KERNEL
        KVER=$(apt-cache show --no-all-versions "linux-image-$KABI" 2>/dev/null |
            sed -n 's/^Version: //p' | head -n1)
    else
        read -r KABI KVER < <(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
            sed -n 's/^Depends:.*linux-image-\([0-9][^ ,]*-amd64\) (= \([^)]*\)).*/\1 \2/p' |
            head -n1) || true
    fi
    [ -n "${KABI:-}" ] && [ -n "${KVER:-}" ]
}
KABI="" KVER=""
if ! resolve_kernel; then
    apt_update_once
    resolve_kernel || env_fail "apt knows no linux-image ${ACCESS_HIL_KERNEL:-amd64} package"
fi
KDIR=$CACHE/kernel-${KABI}_$KVER   # everything derived from this kernel lives here
KROOT=$KDIR/root                    # the unpacked linux-image package
mkdir -p "$KDIR"
say "guest kernel $KABI ($KVER), cache $KDIR"

# Two runs sharing the cache must not build into it at the same time.
exec 9>"$CACHE/.lock"
flock 9

# Download one exact package version into $WORK/deb/; sets DEB to its path.
download_deb() {
    local pkg=$1 dir=$WORK/deb
    mkdir -p "$dir"
    # As root apt warns that user _apt cannot write here; that is harmless.
    (cd "$dir" && quiet apt-get download "$pkg=$KVER") ||
        env_fail "cannot download $pkg=$KVER"
    DEB=$(ls "$dir"/"${pkg}"_*.deb)
}

# ---------------------------------------------------------------- kernel image + modules
if [ ! -e "$KDIR/.image-ok" ]; then
    say "fetching linux-image-$KABI $KVER"
    download_deb "linux-image-$KABI"
    rm -rf "$KROOT"
    dpkg-deb -x "$DEB" "$KROOT"
    rm -rf "${KROOT:?}/usr/share" "$DEB"
    # The package ships no modules.dep (the postinst makes it); the guest needs it only
    # here, to resolve module dependencies.
    depmod -b "$KROOT" "$KABI"
    touch "$KDIR/.image-ok"
fi
BZIMAGE=$KROOT/boot/vmlinuz-$KABI
[ -f "$BZIMAGE" ] || die "no $BZIMAGE in the kernel package"

# Uncompressed vmlinux: QEMU boots it through its PVH ELF note, skipping the in-guest
# decompression that costs seconds under TCG. The compressed payload's place is in the
# bzImage setup header (boot protocol >= 2.08): setup_sects at 0x1f1, payload_offset at
# 0x248 and payload_length at 0x24c (relative to the end of the setup sectors). The
# payload ends with 4 bytes of uncompressed size, which decompressors would call garbage.
extract_vmlinux() {
    local img=$1 out=$2 sects off len start magic
    sects=$(od -An -tu1 -j $((0x1f1)) -N1 "$img" | tr -d ' ')
    [ "$sects" -eq 0 ] && sects=4
    off=$(od -An -tu4 -j $((0x248)) -N4 "$img" | tr -d ' ')
    len=$(od -An -tu4 -j $((0x24c)) -N4 "$img" | tr -d ' ')
    start=$(((sects + 1) * 512 + off))
    magic=$(od -An -tx1 -j "$start" -N4 "$img" | tr -d ' ')
    local dec
    case $magic in
    fd377a58) dec="xz -dc" ;;
    28b52ffd) dec="zstd -dcq" ;;
    1f8b*) dec="gzip -dc" ;;
    *) return 1 ;;
    esac
    dd if="$img" iflag=skip_bytes,count_bytes skip="$start" count=$((len - 4)) bs=1M \
        status=none | $dec >"$out.tmp" || return 1
    # Must be an ELF with a PVH entry note (Xen owner, type 0x12), else QEMU cannot boot it.
    [ "$(head -c4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || return 1
    readelf -n "$out.tmp" 2>/dev/null | grep -A0 -i '^ *Xen' | grep -q '0x00000012' || return 1
    mv "$out.tmp" "$out"
}
if [ ! -e "$KDIR/.vmlinux-tried" ]; then
    say "extracting vmlinux from bzImage"
    extract_vmlinux "$BZIMAGE" "$KDIR/vmlinux" ||
        { rm -f "$KDIR/vmlinux.tmp"; say "cannot extract a PVH-bootable vmlinux; will boot the bzImage"; }
    touch "$KDIR/.vmlinux-tried"
fi
BOOT_KERNEL=$BZIMAGE
[ -f "$KDIR/vmlinux" ] && BOOT_KERNEL=$KDIR/vmlinux

# ---------------------------------------------------------------- gpio-sim.ko
GPIO_SIM_KO=$KROOT/lib/modules/$KABI/extra/gpio-sim.ko
if [ "$(cat "$KDIR/.gpio-sim-ok" 2>/dev/null)" != "$MODULE_RECIPE" ]; then
    SRC=$KDIR/gpio-sim-src
    if [ ! -e "$SRC/.src-ok" ]; then
        say "fetching linux-source-6.1 $KVER (for gpio-sim.c, gpiolib.h, irq_sim.c)"
        download_deb linux-source-6.1
        rm -rf "$SRC" && mkdir -p "$SRC"
        # Stream the three files out of the tarball inside the .deb without unpacking the
        # rest. --occurrence lets tar stop early, so the upstream pipe may die of SIGPIPE:
        # judge by the files, not by the pipeline's status.
        files=(drivers/gpio/gpio-sim.c drivers/gpio/gpiolib.h kernel/irq/irq_sim.c)
        dpkg-deb --fsys-tarfile "$DEB" 2>>"$SETUP_LOG" |
            tar -xO ./usr/src/linux-source-6.1.tar.xz 2>>"$SETUP_LOG" |
            tar -xJ -C "$SRC" --strip-components=1 --occurrence "${files[@]/#/linux-source-6.1/}" \
            2>>"$SETUP_LOG" || true
        for f in "${files[@]}"; do
            [ -s "$SRC/$f" ] || die "$f not found in linux-source-6.1 $KVER"
        done
        rm -f "$DEB"
        touch "$SRC/.src-ok"
    fi
    # Headers only matter for this build, so only install them when building.
    ensure_packages "linux-headers-$KABI"
    say "building gpio-sim.ko"
    B=$KDIR/gpio-sim-build
    rm -rf "$B" && mkdir -p "$B"
    # gpio-sim.c is renamed so the object it becomes is not itself called gpio-sim.o,
    # which is the name of the composite module.
    cp "$SRC/drivers/gpio/gpio-sim.c" "$B/gpio-sim-main.c"
    cp "$SRC/drivers/gpio/gpiolib.h" "$B/"
    # irq_to_desc() is not exported to modules; generic_handle_irq(irq) looks the
    # descriptor up itself and calls the same handler (handle_simple_irq).
    sed 's/handle_simple_irq(irq_to_desc(\([a-z_]*\)))/generic_handle_irq(\1)/' \
        "$SRC/kernel/irq/irq_sim.c" >"$B/irq_sim.c"
    if ! grep -q 'generic_handle_irq(' "$B/irq_sim.c" || grep -q 'irq_to_desc' "$B/irq_sim.c"; then
        die "irq_sim.c of $KVER does not look as expected (irq_to_desc change failed)"
    fi
    cat >"$B/Kbuild" <<'EOF'
# gpio-sim with its own copy of the interrupt simulator (CONFIG_IRQ_SIM is off in Debian).
obj-m := gpio-sim.o
gpio-sim-y := gpio-sim-main.o irq_sim.o
EOF
    quiet make -C "/usr/src/linux-headers-$KABI" M="$B" -j"$(nproc)" modules ||
        die "gpio-sim.ko build failed (log: $SETUP_LOG)"
    install -D -m644 "$B/gpio-sim.ko" "$GPIO_SIM_KO"
    depmod -b "$KROOT" "$KABI"
    echo "$MODULE_RECIPE" >"$KDIR/.gpio-sim-ok"
fi

if [ "$PREPARE_ONLY" = 1 ]; then
    echo "$KDIR $KABI"
    exit 0
fi

# ---------------------------------------------------------------- host-built helpers
# Cached by a hash of source and compiler command, so edits rebuild them.
build_helper() {
    local name=$1 src=$2; shift 2
    local key out
    key=$( (cat "$src"; echo "$*"; gcc --version | head -n1) | sha256sum | cut -c1-16)
    out=$CACHE/tools/$name-$key
    if [ ! -x "$out" ]; then
        say "compiling $name"
        mkdir -p "$CACHE/tools"
        quiet gcc -O2 -Wall -Wextra -Werror -o "$out.tmp" "$src" "$@" ||
            die "cannot compile $src"
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}
# Static: it must run even if something is off with the guest's copy of libc.
WIEGAND_INJECT=$(build_helper wiegand-inject "$HIL_DIR/wiegand-inject.c" -static)
EDGE_COUNT=$(build_helper edge-count "$HIL_DIR/edge-count.c" -lgpiod)

# ---------------------------------------------------------------- initramfs
say "building initramfs"
R=$WORK/root
# The bin/sbin dirs must exist for "busybox --install -s" in /init.
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,etc/hil,hil,lib/modules/hil,proc,sys,tmp,run,root,usr/local/bin}

install -m755 /bin/busybox "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
# The kernel opens /dev/console before running /init; creating the node needs root.
# Without it /init still works: it reopens the console after mounting devtmpfs.
mknod -m600 "$R/dev/console" c 5 1 2>/dev/null || true

# Copy an executable to DEST in the guest with every library ldd names, at the same
# path, so its loader finds them exactly where the host's does.
LIBDIRS=()
copy_exe() {
    local src=$1 dest=$2 lib
    install -D -m755 "$src" "$R$dest"
    # ldd prints "name => /path (addr)" or "/path (addr)"; vdso and statics have no path.
    while read -r lib; do
        [ -e "$R$lib" ] && continue
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
        LIBDIRS+=("$(dirname "$lib")")
    done < <(ldd "$src" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p')
}

for t in gpioset gpioget gpiomon gpioinfo gpiofind gpiodetect; do
    copy_exe "$(command -v "$t")" "/usr/bin/$t"
done
copy_exe "$WIEGAND_INJECT" /usr/local/bin/wiegand-inject
copy_exe "$EDGE_COUNT" /usr/local/bin/edge-count
for p in "${PAYLOADS[@]}"; do
    copy_exe "$p" "/usr/local/bin/$(basename "$p")"
done
for f in "${FILES[@]}"; do
    src=${f%%:*} dest=/data/$(basename "${f%%:*}")
    [[ $f == *:* ]] && dest=${f#*:}
    [ -e "$src" ] || die "--file: no such file: $src"
    mkdir -p "$R$(dirname "$dest")"
    cp -a "$src" "$R$dest"
done

# Modules in load order, decompressed: busybox insmod cannot read .ko.xz.
HIL_MODULES=""
declare -A SEEN_MODULE=()
# The disk is a virtio-blk PCI device; both drivers are modules in Debian's kernel.
DISK_MODULES=()
[ -n "$DISK$OUTDIR" ] && DISK_MODULES=(virtio_pci virtio_blk)
for mod in gpio-sim "${DISK_MODULES[@]}" "${EXTRA_MODULES[@]}"; do
    deps=$(modprobe -d "$KROOT" -S "$KABI" --show-depends "$mod" 2>>"$SETUP_LOG") ||
        die "module $mod not found for $KABI"
    while read -r kind path _; do
        [ "$kind" = insmod ] || continue # "builtin ..." needs nothing
        base=$(basename "$path")
        base=${base%.xz} base=${base%.zst} base=${base%.gz}
        [ -n "${SEEN_MODULE[$base]:-}" ] && continue
        SEEN_MODULE[$base]=1
        case $path in
        *.xz) xz -dc "$path" ;;
        *.zst) zstd -dcq "$path" ;;
        *.gz) gzip -dc "$path" ;;
        *) cat "$path" ;;
        esac >"$R/lib/modules/hil/$base"
        HIL_MODULES+="$base "
    done <<<"$deps"
done

install -m755 "$HIL_DIR/guest-init.sh" "$R/init"
install -m644 "$HIL_DIR/guest-lib.sh" "$R/etc/hil/lib.sh"
install -m755 "$GUEST_SCRIPT" "$R/hil/guest-script"
# Line names: blank lines and "#" comments skipped, CR (from Windows editors) and
# surrounding blanks stripped; line N of the chip gets the N-th remaining name.
sed 's/\r$//; s/^[[:space:]]*//; s/[[:space:]]*$//; /^#/d; /^$/d' "$LINES_FILE" >"$R/etc/hil/lines"
[ -s "$R/etc/hil/lines" ] || die "no line names in $LINES_FILE"

sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; } # shell single-quote
{
    echo "HIL_MODULES=$(sq "$HIL_MODULES")"
    echo "HIL_LABEL=$(sq "$LABEL")"
    # The output disk comes after --disk (/dev/vda) when both are given.
    if [ -n "$OUTDIR" ]; then
        if [ -n "$DISK" ]; then echo "HIL_OUT_DEV=/dev/vdb"; else echo "HIL_OUT_DEV=/dev/vda"; fi
    fi
} >"$R/etc/hil/config"
{
    if [ ${#LIBDIRS[@]} -gt 0 ]; then
        # Libraries that ldd found through LD_LIBRARY_PATH or RUNPATH are found again.
        dirs=$(printf '%s\n' "${LIBDIRS[@]}" | sort -u | paste -sd:)
        echo "export LD_LIBRARY_PATH=$(sq "$dirs")"
    fi
    for e in "${ENVS[@]}"; do echo "export ${e%%=*}=$(sq "${e#*=}")"; done
} >"$R/etc/hil/env"

INITRAMFS=$WORK/initramfs.cpio
(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) >"$INITRAMFS"
say "initramfs $(du -h "$INITRAMFS" | cut -f1), modules: $HIL_MODULES"

# ---------------------------------------------------------------- boot
if [ -z "$LOG" ]; then
    mkdir -p "$CACHE/logs"
    LOG=$CACHE/logs/guest-$(date +%Y%m%d-%H%M%S).log
    # Keep the last 20 logs.
    find "$CACHE/logs" -name 'guest-*.log' -printf '%T@ %p\n' | sort -rn | tail -n +20 |
        cut -d' ' -f2- | xargs -r rm -f
fi
mkdir -p "$(dirname "$LOG")"
flock -u 9 # the cache is complete; parallel runs may boot together

command -v qemu-system-x86_64 >/dev/null || env_fail "qemu-system-x86_64 not installed"
QEMU=(qemu-system-x86_64 -accel "$ACCEL" -cpu max -m "$MEMORY" -smp 1 -nographic -no-reboot
    -nic none -kernel "$BOOT_KERNEL" -initrd "$INITRAMFS"
    -append "console=ttyS0 loglevel=4 mitigations=off panic=-1")
# The disk is /dev/vda in the guest. writethrough (default): every write the guest sees
# completed has reached the image file (O_DSYNC), and the guest is told there is no volatile
# write cache, so what survives SIGKILL to QEMU is exactly what the guest saw completed.
if [ -n "$DISK" ]; then
    QEMU+=(-drive "file=$DISK,format=raw,if=virtio,cache=$DISK_CACHE")
fi
if [ -n "$OUTDIR" ]; then
    OUT_IMG=$WORK/out.img
    truncate -s 1G "$OUT_IMG" # sparse: only what the guest writes takes space
    QEMU+=(-drive "file=$OUT_IMG,format=raw,if=virtio,cache=writeback")
fi
[ -n "$PIDFILE" ] && rm -f "$PIDFILE" && QEMU+=(-pidfile "$PIDFILE")
say "booting $(basename "$BOOT_KERNEL") with $ACCEL, timeout ${TIMEOUT}s, log $LOG"
BOOT_START=$(date +%s.%N)
# stdin from /dev/null: -nographic would otherwise put the terminal in raw mode and feed
# keystrokes to the guest. sed -u strips the console's \r without buffering, and the
# escape sequences SeaBIOS prints first (one of them, ESC c, resets the terminal).
set +e
timeout --kill-after=5 "$TIMEOUT" "${QEMU[@]}" </dev/null 2>&1 |
    sed -u 's/\r$//; s/\x1bc//g; s/\x1b\[[0-9;?]*[A-Za-z]//g' | tee "$LOG"
QEMU_STATUS=${PIPESTATUS[0]}
set -e
BOOT_SECS=$(elapsed "$BOOT_START")
# The guest's data, whatever happened to the script: a tar at the start of the output disk (all
# zeros when the guest never wrote it).
if [ -n "$OUTDIR" ]; then
    rm -rf "$OUTDIR" && mkdir -p "$OUTDIR"
    if [ "$(head -c 512 "$OUT_IMG" | tr -d '\0' | wc -c)" -gt 0 ]; then
        tar -xf "$OUT_IMG" -C "$OUTDIR" || say "cannot unpack the guest's data into $OUTDIR"
    else
        say "the guest wrote no data for $OUTDIR"
    fi
fi

RESULT=$(sed -n 's/^HIL-RESULT: \([0-9]\{1,3\}\)$/\1/p' "$LOG" | tail -n1)
# SIGKILL well before the timeout came from outside (timeout's own KILL comes 5 s after it).
if [ "$QEMU_STATUS" -eq 137 ] && [ -z "$RESULT" ] &&
    awk -v s="$BOOT_SECS" -v t="$TIMEOUT" 'BEGIN { exit !(s < t) }'; then
    say "qemu was killed from outside after ${BOOT_SECS}s (SIGKILL)"
    exit 137
fi
if [ "$QEMU_STATUS" -eq 124 ] || [ "$QEMU_STATUS" -eq 137 ]; then
    if [ -n "$RESULT" ]; then
        say "guest reported a result but did not power off; killed after ${TIMEOUT}s"
    else
        banner "HIL TIMEOUT: guest did not finish within ${TIMEOUT}s (log: $LOG)"
        exit 124
    fi
fi
if [ -z "$RESULT" ]; then
    if [ "$QEMU_STATUS" -ne 0 ] && ! grep -q '^HIL-INIT:' "$LOG"; then
        env_fail "qemu could not start (exit $QEMU_STATUS; log: $LOG)"
    fi
    banner "HIL BOOT FAILURE: guest ended without a HIL-RESULT line (qemu exit $QEMU_STATUS; log: $LOG)"
    exit 125
fi
say "guest finished in ${BOOT_SECS}s with exit code $RESULT"
if [ "$RESULT" -ne 0 ]; then
    banner "HIL FAILED: guest script exit code $RESULT (log: $LOG)"
fi
exit "$RESULT"
