#!/bin/sh
# Creates the Python venv the Modbus test peers run in and installs pinned pymodbus and pyserial.
# Idempotent: when the venv already has the pinned versions it returns at once.
# Usage: Hardware/sim/setup-python.sh   (venv at ${ACCESS_PYENV:-<repo>/.build-pyenv})
set -eu

PYMODBUS_VERSION=3.16.1
PYSERIAL_VERSION=3.5

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${ACCESS_PYENV:-$repo/.build-pyenv}
stamp="$venv/.access-pins"
want="pymodbus==$PYMODBUS_VERSION pyserial==$PYSERIAL_VERSION"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$venv"
    exit 0
fi

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want
# Proves the install imports before recording it as done.
"$venv/bin/python" -c 'import pymodbus, serial; print("pymodbus", pymodbus.__version__)' >&2
echo "$want" > "$stamp"
echo "$venv"
