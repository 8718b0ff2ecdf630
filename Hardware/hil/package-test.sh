#!/usr/bin/env bash
# package-test.sh: the Debian package installed and run by real systemd. Builds the package
# (Scripts/package.sh) as version V and repacks it as V+upgrade1, and boots a Debian 12
# guest with systemd as PID 1 (systemd-guest.sh: cached image, Debian's kernel, gpio-sim) twice on
# one disk: package-guest.sh drives and records, verify_package.py judges over what it recorded
# (kept in $ACCESS_HIL_CACHE/logs/package-test/).
#
#   Hardware/hil/package-test.sh                       # debug build (CI)
#   ACCESS_PACKAGE_BUILD=release Hardware/hil/package-test.sh
#   ACCESS_PACKAGE_DEB=dist/communityaccess_0.1.9_amd64.deb Hardware/hil/package-test.sh  # a built .deb
set -euo pipefail

HIL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HIL_DIR/../.." && pwd)
BUILD=${ACCESS_PACKAGE_BUILD:-debug}
CACHE=${ACCESS_HIL_CACHE:-$HOME/.cache/communityaccess-hil}
DATA=$CACHE/logs/package-test
ZONE=Asia/Shanghai
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
START=$SECONDS
# shellcheck source=host-lib.sh
. "$HIL_DIR/host-lib.sh"

# ---- the package, twice: the upgrade installs the same build under a newer version
if [ -n "${ACCESS_PACKAGE_DEB:-}" ]; then
    DEB1=$ACCESS_PACKAGE_DEB
else
    flag=()
    [ "$BUILD" = debug ] && flag=(--debug)
    DEB1=$("$ROOT/Scripts/package.sh" "${flag[@]}" --out "$WORK/dist")
fi
V1=$(dpkg-deb -f "$DEB1" Version)
dpkg-deb -R "$DEB1" "$WORK/repack"
sed -i "s/^Version: .*/Version: $V1+upgrade1/" "$WORK/repack/DEBIAN/control"
DEB2=$WORK/communityaccess_${V1}+upgrade1_amd64.deb
dpkg-deb --root-owner-group -Zgzip -z1 --build "$WORK/repack" "$DEB2" >/dev/null
echo "package-test: $(basename "$DEB1") and $(basename "$DEB2") ($(( SECONDS - START )) s)" >&2

# ---- the payload disk
P=$WORK/payload
mkdir -p "$P"
cp "$DEB1" "$P/deb1"
cp "$DEB2" "$P/deb2"
install -m755 "$HIL_DIR/package-guest.sh" "$P/run"
install -m755 "$HIL_DIR/package-make-chip.sh" "$P/make-chip"
install -m644 "$HIL_DIR/guest-lib.sh" "$P/lib.sh"
gcc -O2 -Wall -Wextra -Werror -static -o "$P/wiegand-inject" "$HIL_DIR/wiegand-inject.c"
# The chip's line names: the packaged access-gpio-probe reads the packaged board map.
dpkg-deb -x "$DEB1" "$WORK/unpacked"
"$WORK/unpacked/usr/bin/access-gpio-probe" --list-lines "$WORK/unpacked/usr/share/communityaccess/boards/sim.toml" >"$P/lines"
# The installer's config: the HIL site (host-lib.sh) on the packaged sim.toml board map.
site_config /var/lib/accessd/access.db |
    sed -e 's|^map = "/data/sim.toml"|map = "/usr/share/communityaccess/boards/sim.toml"|' \
        -e 's|^socket = "/run/accessd.sock"|socket = "/run/accessd/control.sock"|' >"$P/site.toml"
cat >"$P/roster.csv" <<'EOF'
house_id,building,unit,floor,room,person_id,name,role,phone,valid_from,valid_until,cards,plates,groups,status
B01-U1-101,B01,1,1,101,P0001,谭国华,owner,13283904377,,,6553701,,,active
B01-U1-101,B01,1,1,101,P0002,曹建华,family,13511112222,,,,京A12345,,active
B02-U1-101,B02,1,1,101,P0050,于志强,owner,13641524712,,,6553763,,,active
EOF

# ---- two boots of one copy of the cached image
IMAGE=$("$HIL_DIR/systemd-guest.sh" image)
cp --sparse=always "$IMAGE" "$WORK/root.img"
rm -rf "$DATA" && mkdir -p "$DATA"
cp "$P/roster.csv" "$DATA/roster.csv"
status=0
for phase in 1 2; do
    echo "$phase" >"$P/phase"
    "$HIL_DIR/systemd-guest.sh" boot --root "$WORK/root.img" --payload "$P" --outdir "$DATA/boot$phase" \
        --log "$DATA/boot$phase.log" --timeout "${ACCESS_PACKAGE_TIMEOUT:-900}" || status=$?
    [ "$status" -eq 0 ] || { echo "package-test: boot $phase failed (exit $status; log $DATA/boot$phase.log)" >&2; break; }
done
echo "package-test: guest boots done after $((SECONDS - START)) s" >&2
python3 "$HIL_DIR/verify_package.py" "$DATA" || status=1
echo "package-test: $((SECONDS - START)) s in all" >&2
exit "$status"
