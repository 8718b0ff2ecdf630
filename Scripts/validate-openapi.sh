#!/bin/sh
# Validates API/openapi.yaml (and the event schema it refers to) against the OpenAPI 3.1
# specification with openapi-spec-validator, in a Python venv of its own with a pinned version.
# Idempotent: when the venv already has the pinned version it only validates.
# Usage: Scripts/validate-openapi.sh   (venv at ${ACCESS_API_PYENV:-<repo>/.build-pyenv-api})
set -eu

OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${ACCESS_API_PYENV:-$repo/.build-pyenv-api}
stamp="$venv/.access-pins"
want="openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"

if ! { [ -x "$venv/bin/openapi-spec-validator" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$want"
    echo "$want" > "$stamp"
fi

# The check checks itself first: a copy with the mistake it once missed (an unquoted description
# holding a comma) must be refused.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$repo/API/event.schema.json" "$tmp/"
sed 's|description: "No such portal, or the command does not apply to it"|description: No such portal, or the command does not apply to it|' \
    "$repo/API/openapi.yaml" > "$tmp/openapi.yaml"
if cmp -s "$repo/API/openapi.yaml" "$tmp/openapi.yaml"; then
    echo "validate-openapi: the self-test's mistake could not be planted (the 404 description of /api/v1/portals/{portal}/{command} changed); update this script" >&2
    exit 1
fi
if "$venv/bin/openapi-spec-validator" "$tmp/openapi.yaml" >/dev/null 2>&1; then
    echo "validate-openapi: the validator accepted a spec with a known mistake; it checks nothing" >&2
    exit 1
fi

"$venv/bin/openapi-spec-validator" "$repo/API/openapi.yaml"
