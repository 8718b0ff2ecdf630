#!/usr/bin/env bash
# Installs the system packages CommunityAccess builds and tests with, on Debian 12.
# Idempotent: does nothing when everything is present. Needs root (or sudo) only to install.
set -euo pipefail

# Build: C libraries behind the system-library targets (libnats-dev: the NATS JetStream client
# behind CNats, which AccessFleet links).
build_packages=(libsqlite3-dev libqrencode-dev libgpiod-dev libmodbus-dev libmosquitto-dev libnats-dev pkg-config)
# Tests: a real QR scanner to decode what `visitor issue` prints; socat for serial-line pairs
# and Python's venv for the pymodbus peers of the Modbus tests (python3 itself, which also runs
# the HIL verifiers, Hardware/hil/verify.py, comes with it); mkfs.ext4 for the power-cut test's
# disk image and the sqlite3 shell for its self-test (Hardware/hil/power-cut-test.sh); nats-server
# for the fleet tests' real JetStream clusters (the tests start their own servers on free ports and
# never use the systemd unit the package enables; openssl makes their TLS certificates).
test_packages=(zbar-tools socat python3-venv mosquitto mosquitto-clients curl openssl e2fsprogs sqlite3 nats-server)
# The package (Scripts/package.sh): dpkg-shlibdeps computes Depends:. Its test builds a Debian 12
# guest with systemd from Debian's packages (mmdebstrap; Hardware/hil/systemd-guest.sh).
package_packages=(dpkg-dev binutils)
package_test_packages=(mmdebstrap)

want=("${build_packages[@]}")
case "${1:-}" in
--tests) want+=("${test_packages[@]}" "${package_packages[@]}" "${package_test_packages[@]}") ;;
--package) want+=("${package_packages[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    sudo_cmd=()
    if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
        [[ -x "$candidate/swift" ]] && { echo "setup: add $candidate to PATH" >&2; break; }
    done
    echo "setup: Swift 6.1 or newer is required (swift not found on PATH)" >&2
    exit 1
fi
