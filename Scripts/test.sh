#!/usr/bin/env bash
# Validates the OpenAPI spec, builds CommunityAccess and runs every test tier:
#   1. the Swift tests (core logic, SQLite store on real files, accessctl in-process and as a binary);
#   2. the real accessd with its upstream: a broker outage of 10,000 events (Scripts/outage-test.sh)
#      and a 2-minute soak at 50 swipes/s (Scripts/soak-test.sh);
#   3. the hardware-in-the-loop tier: Debian's kernel in QEMU with a gpio-sim chip, first the
#      harness's smoke test, then the real GPIO driver (outputs, inputs, 1000 Wiegand frames), then
#      the real accessd end to end (Hardware/hil/accessd-test.sh), then three power cuts of the
#      guest while accessd writes its log to a virtio disk (Hardware/hil/power-cut-test.sh).
#   4. the package tier: Scripts/package.sh links the debug build's objects into the package's one
#      static program (no second compile), and Hardware/hil/package-test.sh installs it with dpkg -i
#      in a Debian 12 guest with systemd as PID 1 and checks start, Wiegand → lock, watchdog, stop,
#      start at boot, upgrade, remove and purge, and the journal.
# Set ACCESS_HIL_OPTIONAL=1 only on a machine that cannot run QEMU; the skip is announced loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each tier's heading says how long the run has taken so far (CI's budget is about 30 minutes).
stage() { printf '== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

Scripts/setup.sh --tests

stage "API/openapi.yaml against the OpenAPI 3.1 specification (openapi-spec-validator)"
Scripts/validate-openapi.sh

stage "swift build and swift test"
swift build --build-tests
# Every event any test makes durable (in-process or in a child accessd) is also written here, then
# validated against API/event.schema.json with a real JSON Schema validator.
pyenv=$(Hardware/sim/setup-python.sh)
export ACCESS_EVENT_SAMPLES="$PWD/.build/event-samples.jsonl"
# Every roster change set any test applies, validated against API/changeset.schema.json the same way.
export ACCESS_CHANGESET_SAMPLES="$PWD/.build/changeset-samples.jsonl"
rm -f "$ACCESS_EVENT_SAMPLES" "$ACCESS_CHANGESET_SAMPLES"
# In parallel: tests move the controller's time by hand, and the in-process HTTP server runs on a
# thread of its own, so a test blocked on a child process starves nothing.
swift test --skip-build 2>&1 | tee .build/swift-test.log
# `swift test` must have run tests and passed them: read its summary line.
grep -Eq "Test run with [1-9][0-9]* tests? .*passed" .build/swift-test.log

stage "upstream outage: 10,000 events while the broker is away (Scripts/outage-test.sh 100000 for the full run)"
Scripts/outage-test.sh 10000
stage "soak: 50 swipes/s with a poller and a subscriber for 2 minutes (Scripts/soak-test.sh 3600 for the hour)"
Scripts/soak-test.sh 120
stage "the HTTP API from outside: schemathesis against a real accessd (every response conforms to API/openapi.yaml)"
Scripts/api-schemathesis.sh
stage "every event the Swift tests, the outage and the soak logged, against API/event.schema.json"
"$pyenv/bin/python" Scripts/check-events.py API/event.schema.json "$ACCESS_EVENT_SAMPLES"
"$pyenv/bin/python" Scripts/check-events.py API/changeset.schema.json "$ACCESS_CHANGESET_SAMPLES"
"$pyenv/bin/python" Scripts/check-events.py API/changeset.schema.json <(tr -d '\n' <API/examples/changeset.json; echo)

stage "hardware-in-the-loop (QEMU + gpio-sim)"
python3 Hardware/hil/verify_test.py   # the HIL verifiers fail on damaged data
Hardware/hil/smoke-test.sh
stage "hardware-in-the-loop: the GPIO driver (outputs, inputs, 1000 Wiegand frames)"
Hardware/hil/gpio-driver-test.sh
stage "hardware-in-the-loop: the real accessd end to end"
Hardware/hil/accessd-test.sh
stage "hardware-in-the-loop: three power cuts while accessd writes"
Hardware/hil/power-cut-test.sh 3

stage "the Debian package under systemd (Scripts/package.sh --debug, then dpkg -i in a Debian 12 guest)"
Hardware/hil/package-test.sh
stage "every tier passed"
