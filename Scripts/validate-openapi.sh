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

"$venv/bin/openapi-spec-validator" "$repo/API/openapi.yaml"
