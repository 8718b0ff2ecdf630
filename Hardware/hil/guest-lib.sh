# Helpers for HIL guest scripts (busybox sh):  . /etc/hil/lib.sh
# They talk to the gpio-sim side of a line (what the "hardware" does), by line name.

# sim_offset NAME: offset of the line called NAME in the simulated chip.
sim_offset() {
    awk -v n="$1" '$0 == n { print NR - 1; found = 1; exit } END { exit !found }' \
        "$GPIO_LINES_FILE"
}

# sim_pull NAME up|down: what a program reading the line as an input will see.
sim_pull() {
    printf 'pull-%s' "$2" >"$GPIO_SIM_DIR/sim_gpio$(sim_offset "$1")/pull"
}

# sim_value NAME: the level on the line (driven by the program, or its pull when not driven).
sim_value() {
    cat "$GPIO_SIM_DIR/sim_gpio$(sim_offset "$1")/value"
}

# at_low_priority CMD...: CMD at nice 19 (busybox has renice, not nice), with the same pid.
at_low_priority() {
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    sh -c 'renice -n 19 -p $$ >/dev/null && exec "$@"' sh "$@"
}

# wait_for TIMEOUT_TENTHS CMD...: retry CMD every 0.1 s until it succeeds.
wait_for() {
    _n=$1
    shift
    while ! "$@"; do
        [ "$_n" -gt 0 ] || return 1
        _n=$((_n - 1))
        sleep 0.1
    done
}

# Records for a verifier on the host (run-guest.sh --outdir): $HIL_OUT/facts.jsonl, one
# {"key": …, "value": …} a line. A script that records instead of judging leaves the verdicts to it.
# fact KEY VALUE: what the script saw (quotes, backslashes and newlines are dropped from VALUE).
fact() {
    printf '{"key":"%s","value":"%s"}\n' "$1" "$(printf '%s' "$2" | tr -d '"\\\n')" >>"$HIL_OUT/facts.jsonl"
}
# await KEY TENTHS CMD...: wait_for CMD to pace the next step; records KEY ok or timeout.
await() {
    _k=$1
    shift
    if wait_for "$@"; then fact "$_k" ok; else fact "$_k" timeout; return 1; fi
}

# Checks in the guest (the smoke test): counted in PASS and FAIL, each printed as "PASS: …" or "FAIL: …".
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*"; }
expect_eq() { # DESCRIPTION GOT WANT
    if [ "$2" = "$3" ]; then ok "$1 ($2)"; else bad "$1: got '$2', want '$3'"; fi
}
