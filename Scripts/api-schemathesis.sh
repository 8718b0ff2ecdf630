#!/bin/bash
# The HTTP API checked from outside: schemathesis (pinned, in a venv of its own) generates requests
# from API/openapi.yaml against a real accessd on the simulated board, with the sample roster's
# houses and portals as realistic ids, and checks that every response conforms to the spec (status
# codes, content types, headers, bodies against their schemas) and that no request gets a 5xx.
# The run is bounded (--max-examples per operation, --max-time; a long poll may hold a request up
# to its 25 s `wait`, hence the request timeout); accessd is stopped by PID.
# Usage: Scripts/api-schemathesis.sh   (after `swift build`; venv at ${ACCESS_ST_PYENV:-<repo>/.build-pyenv-st})
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
venv=${ACCESS_ST_PYENV:-$repo/.build-pyenv-st}
want="schemathesis==$SCHEMATHESIS_VERSION"
if ! { [ -x "$venv/bin/schemathesis" ] && [ "$(cat "$venv/.access-pins" 2>/dev/null)" = "$want" ]; }; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$want"
    echo "$want" > "$venv/.access-pins"
fi

bin=$(swift build --show-bin-path)
tmp=$(mktemp -d)
accessd_pid=""
cleanup() {
    [ -n "$accessd_pid" ] && { kill -TERM "$accessd_pid" 2>/dev/null || true; wait "$accessd_pid" 2>/dev/null || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|path = \"var/sim/access.db\"|path = \"$tmp/access.db\"|" \
    -e "s|socket = \"var/sim/accessd.sock\"|socket = \"$tmp/accessd.sock\"|" \
    -e "s|listen = \"127.0.0.1:8380\"|listen = \"127.0.0.1:$port\"|" \
    -e "s|map = \"Hardware/|map = \"$repo/Hardware/|" \
    Config/accessd-sim.toml > "$tmp/accessd.toml"
ctl() { "$bin/accessctl" --config "$tmp/accessd.toml" "$@"; }
ctl schedule add workdays --segment "mon-fri 07:00-19:00" >/dev/null
ctl group add property-staff --portal gate-north-in --portal b01-door >/dev/null
ctl group add cleaners --portal b01-door --schedule workdays >/dev/null
ctl import Config/sample-roster.csv >/dev/null
token=$(ctl token add schemathesis --scope events:read --scope analytics:read --scope plates:write \
    --scope portals:command --scope metrics:read --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

"$bin/accessd" --config "$tmp/accessd.toml" 2>"$tmp/accessd.log" &
accessd_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { echo "api-schemathesis: accessd did not answer" >&2; tail -20 "$tmp/accessd.log" >&2; exit 1; }
# Some events to page through.
for card in 6553701 6553702 424242; do ctl sim swipe reader-b01 "$card" >/dev/null || true; done

# Realistic ids: generated path parameters draw on the sample roster's houses and the site's portals.
cat > "$tmp/schemathesis.toml" <<EOF
[parameters]
"path.house" = "B01-U1-101"
"path.portal" = "b01-door"
EOF

"$venv/bin/schemathesis" --config-file "$tmp/schemathesis.toml" run API/openapi.yaml \
    --url "http://127.0.0.1:$port" -H "Authorization: Bearer $token" \
    --checks all --exclude-checks positive_data_acceptance,use_after_free,ensure_resource_availability \
    --phases examples,coverage,fuzzing --max-examples "${ACCESS_ST_EXAMPLES:-30}" --max-time "${ACCESS_ST_MAX_TIME:-90}" \
    --request-timeout 35 --max-response-time 30 --workers 1 --seed 1 --no-color
