#!/usr/bin/env bash
# package.sh: builds dist/communityaccess_VERSION_amd64.deb, a Debian package of accessd, accessctl
# and access-gpio-probe with the Swift runtime (and FoundationEssentials) linked statically, so it
# depends only on Debian's own libraries (dpkg-shlibdeps computes Depends: from the program).
#
#   Scripts/package.sh                       # release build, version 0.1.N (N: commits on HEAD)
#   Scripts/package.sh --debug               # the debug build (the CI guest test: no release build)
#   Scripts/package.sh --version 0.1.7+test  # another version of the same build (upgrade tests)
#   Scripts/package.sh --out DIR             # where the .deb goes (default dist/)
#
# Layout (Debian policy, bookworm): /usr/bin/accessd, with accessctl and access-gpio-probe links to it;
# /etc/accessd/accessd.toml (conffile, the documented default: Config/accessd.toml);
# /lib/systemd/system/accessd.service; /usr/lib/sysusers.d/communityaccess.conf (user accessd,
# groups accessd-operators and gpio); /lib/udev/rules.d/60-communityaccess-gpio.rules;
# /usr/share/communityaccess/{boards,devices}/*.toml; /usr/share/doc/communityaccess/. The
# maintainer scripts are Packaging/debian/{postinst,prerm,postrm}; /var/lib/accessd is made by
# postinst (and by systemd's StateDirectory=), kept on remove, removed on purge.
#
# One program, the Swift runtime static: the three products are built as usual (shared runtime,
# the same .build as the tests use, so CI compiles the sources once), then their objects are linked
# here into one program with `-static-stdlib` and Packaging/multicall.c, which picks the program by
# the name it was run as; accessctl and access-gpio-probe are links to accessd. The link map is
# checked: nothing may pull corelibs Foundation or ICU (34 MB of data) in (Package.swift keeps
# Foundation's members out of Sources; ZoneRules reads tzdata's TZif files itself).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD=release
VERSION=""
OUT=$ROOT/dist
while [ $# -gt 0 ]; do
    case $1 in
    --debug) BUILD=debug; shift ;;
    --version) VERSION=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    *) echo "package.sh: unknown argument '$1'" >&2; exit 64 ;;
    esac
done
[ -n "$VERSION" ] || VERSION=0.1.$(git rev-list --count HEAD 2>/dev/null || echo 0)
[[ $VERSION =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "package.sh: not a Debian version: $VERSION" >&2; exit 64; }

Scripts/setup.sh --package

PRODUCTS=(accessd accessctl access-gpio-probe)
echo "== swift build -c $BUILD (${PRODUCTS[*]})" >&2
for product in "${PRODUCTS[@]}"; do
    swift build -c "$BUILD" --product "$product" 2>&1 | grep -v "^warning: 'swift-distributed-tracing'\|CMakeLists.txt$" >&2
done
BIN=$(swift build -c "$BUILD" --show-bin-path)

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
P=$STAGE/communityaccess
install -d "$P/DEBIAN" "$P/usr/bin" "$P/etc/accessd" "$P/lib/systemd/system" "$P/usr/lib/sysusers.d" \
    "$P/lib/udev/rules.d" "$P/usr/share/communityaccess/boards" "$P/usr/share/communityaccess/devices" \
    "$P/usr/share/doc/communityaccess"
# The link: every object of the three products once, the dispatcher, the static runtime. The
# static Foundation's archives are named again in one group so the link does not depend on the
# order of the autolinked libraries.
LINK=$STAGE/link
mkdir -p "$LINK"
for product in "${PRODUCTS[@]}"; do
    list=$BIN/$product.product/Objects.LinkFileList
    [ -f "$list" ] || { echo "package.sh: $list is missing (did swift build change its layout?)" >&2; exit 1; }
    cat "$list"
done | LC_ALL=C sort -u >"$LINK/objects"
gcc -O2 -Wall -Wextra -Werror -c Packaging/multicall.c -o "$LINK/multicall.o"
echo "'$LINK/multicall.o'" >>"$LINK/objects"
GROUP=(-Xlinker --start-group)
for lib in Foundation CoreFoundation FoundationEssentials FoundationInternationalization _FoundationICU \
    _FoundationCollections _FoundationCShims swiftSynchronization swift_RegexParser swift_StringProcessing \
    swift_Concurrency swiftDispatch dispatch BlocksRuntime swiftCore stdc++ m; do
    GROUP+=(-Xlinker "-l$lib")
done
GROUP+=(-Xlinker --end-group)
swiftc -static-stdlib -emit-executable -target "$(uname -m)-unknown-linux-gnu" -module-name communityaccess \
    -L "$BIN" -lstdc++ "${GROUP[@]}" -Xlinker "-Map=$LINK/map" -o "$LINK/accessd" "@$LINK/objects" 2>&1 |
    grep -v "the use of \`mktemp' is dangerous" >&2 || true
[ -x "$LINK/accessd" ] || { echo "package.sh: the static link failed" >&2; exit 1; }
# What pulled corelibs Foundation or ICU in, if anything did: the map names each archive member
# and, on the next line, the object and symbol that needed it.
if grep -q "^/.*/lib\(Foundation\|FoundationInternationalization\|_FoundationICU\)\.a(" "$LINK/map"; then
    echo "package.sh: corelibs Foundation or ICU is linked in; first pulled by:" >&2
    grep -A1 "^/.*/lib\(Foundation\|FoundationInternationalization\|_FoundationICU\)\.a(" "$LINK/map" | head -20 >&2
    exit 1
fi
# Debian policy's strip for executables; the Swift metadata sections the runtime reads stay (.swift_ast
# is only the debugger's).
strip --remove-section=.comment --remove-section=.note --remove-section=.swift_ast --strip-unneeded -o "$P/usr/bin/accessd" "$LINK/accessd"
chmod 755 "$P/usr/bin/accessd"
ln -s accessd "$P/usr/bin/accessctl"
ln -s accessd "$P/usr/bin/access-gpio-probe"
# Only Debian's libraries: nothing from the toolchain's directory.
if ldd "$P/usr/bin/accessd" | grep -q "/opt/\|swift"; then
    echo "package.sh: accessd still links the toolchain's libraries:" >&2
    ldd "$P/usr/bin/accessd" >&2
    exit 1
fi
install -m644 Config/accessd.toml "$P/etc/accessd/accessd.toml"
install -m644 Config/accessd.service "$P/lib/systemd/system/accessd.service"
install -m644 Packaging/debian/sysusers.conf "$P/usr/lib/sysusers.d/communityaccess.conf"
install -m644 Packaging/debian/udev.rules "$P/lib/udev/rules.d/60-communityaccess-gpio.rules"
install -m644 Hardware/boards/*.toml "$P/usr/share/communityaccess/boards/"
install -m644 Hardware/devices/*.toml "$P/usr/share/communityaccess/devices/"
install -m644 README.md "$P/usr/share/doc/communityaccess/README.md"
install -m644 Packaging/debian/copyright "$P/usr/share/doc/communityaccess/copyright"
{
    echo "communityaccess ($VERSION) unstable; urgency=medium"
    echo
    echo "  * Built from $(git rev-parse --short HEAD 2>/dev/null || echo 'an unknown commit') ($BUILD build)."
    echo
    echo " -- CommunityAccess <ops@communityaccess.invalid>  $(date -R)"
} | gzip -9n >"$P/usr/share/doc/communityaccess/changelog.Debian.gz"
for s in postinst prerm postrm; do install -m755 "Packaging/debian/$s" "$P/DEBIAN/$s"; done
echo /etc/accessd/accessd.toml >"$P/DEBIAN/conffiles"

# Depends: what the binaries link, by Debian's own tool, plus what the maintainer scripts use.
mkdir -p "$STAGE/shlibs/debian"
printf 'Source: communityaccess\n\nPackage: communityaccess\nArchitecture: amd64\n' >"$STAGE/shlibs/debian/control"
DEPENDS=$(cd "$STAGE/shlibs" && dpkg-shlibdeps -O "$P/usr/bin/accessd" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$DEPENDS" ] || { echo "package.sh: dpkg-shlibdeps computed no dependencies" >&2; exit 1; }
DEPENDS="$DEPENDS, adduser | systemd, tzdata"
(cd "$P" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum >DEBIAN/md5sums)
SIZE=$(du -sk --exclude=DEBIAN "$P" | cut -f1)
cat >"$P/DEBIAN/control" <<EOF
Package: communityaccess
Version: $VERSION
Architecture: amd64
Maintainer: CommunityAccess <ops@communityaccess.invalid>
Installed-Size: $SIZE
Depends: $DEPENDS
Section: admin
Priority: optional
Homepage: https://communityaccess.invalid/
Description: access controller for residential communities (doors, barriers, fences)
 accessd decides locally and offline who may pass each door, barrier and fence zone of a
 residential community, from a SQLite roster in which every person belongs to a dwelling, drives
 the locks on GPIO and the barrier gates and fence hosts on Modbus, and keeps a durable event log
 served to the upstream platform over HTTP and MQTT. accessctl is the operators' command line.
 .
 The service is not enabled at install: edit /etc/accessd/accessd.toml, then
 \`systemctl enable --now accessd\`.
EOF
mkdir -p "$OUT"
DEB=$OUT/communityaccess_${VERSION}_amd64.deb
# xz for the release package (smallest download); a debug build's 250 MB would take minutes to
# compress, so its (test-only) package is gzip -1.
COMPRESS=(-Zxz)
[ "$BUILD" = debug ] && COMPRESS=(-Zgzip -z1)
dpkg-deb --root-owner-group "${COMPRESS[@]}" --build "$P" "$DEB" >&2
echo "== $DEB: $(du -h "$DEB" | cut -f1) packed, Installed-Size $SIZE KiB" >&2
echo "   Depends: $DEPENDS" >&2
echo "$DEB"
