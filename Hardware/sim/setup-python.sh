#!/bin/sh
# Creates the Python venv the test peers and checkers run in: pinned pymodbus and pyserial (the
# Modbus peers), jsonschema with its RFC 3339 checker (every event the suite logs is validated).
# Idempotent: when the venv already has the pinned versions it returns at once.
# Usage: Hardware/sim/setup-python.sh   (venv at ${ACCESS_PYENV:-<repo>/.build-pyenv})
set -eu

PYMODBUS_VERSION=3.16.1
PYSERIAL_VERSION=3.5
JSONSCHEMA_VERSION=4.26.0
RFC3339_VERSION=0.1.4

repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=${ACCESS_PYENV:-$repo/.build-pyenv}
stamp="$venv/.access-pins"
want="pymodbus==$PYMODBUS_VERSION pyserial==$PYSERIAL_VERSION jsonschema==$JSONSCHEMA_VERSION rfc3339-validator==$RFC3339_VERSION"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$venv"
    exit 0
fi

python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want
# Proves the install imports before recording it as done.
"$venv/bin/python" -c 'import pymodbus, serial, jsonschema, rfc3339_validator; print("pymodbus", pymodbus.__version__)' >&2
echo "$want" > "$stamp"
echo "$venv"
