#!/usr/bin/env python3
"""verify_package.py DIR: judges what package-guest.sh recorded in the systemd guest.

DIR holds boot1/ and boot2/ (facts.jsonl, journal-N.json, freeze.txt, security.txt, *.out) and
roster.csv. Each check prints PASS or FAIL with what was expected and found; the figures (boot →
ready, restart after a freeze, exposure) are printed as FIGURE lines. Exit 0 when every check passed.

The journal scan: every field of every entry `journalctl -u accessd -o json` printed (accessd's own
lines and systemd's about the unit) must hold none of the roster's card numbers, names, phone
numbers or plates, the PIN added in the guest, or the API token printed in the guest.
"""
import csv
import json
import os
import re
import sys

PASSED = 0
FAILED = 0


def check(ok, what, found=None):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"PASS: {what}")
    else:
        FAILED += 1
        print(f"FAIL: {what}" + (f" (found: {found!r})" if found is not None else ""))


def facts(path):
    out = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    d = json.loads(line)
                    out[d["key"]] = d["value"]
    return out


def journal(path):
    entries = []
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    entries.append(json.loads(line))
    return entries


def text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def events(raw):
    """`accessctl events --json`: one array (or an object holding "events"), or JSON lines."""
    raw = raw.strip()
    try:
        data = json.loads(raw) if raw else []
        if isinstance(data, dict):
            data = data.get("events", [data])
        return [json.dumps(e, sort_keys=True) for e in data]
    except json.JSONDecodeError:
        return [l for l in raw.splitlines() if l.startswith("{")]


def secrets(directory):
    """What must never reach the journal: the roster's personal data and credentials."""
    found = set()
    with open(os.path.join(directory, "roster.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for key in ("name", "phone", "cards", "plates"):
                for value in (row.get(key) or "").split(";"):
                    if value.strip():
                        found.add(value.strip())
    found.add("482913")  # the PIN package-guest.sh adds
    token = text(os.path.join(directory, "boot1", "token_add.out"))
    m = re.search(r'"token"\s*:\s*"([^"]+)"', token)
    if m:
        found.add(m.group(1))
    return found


def main(directory):
    b1 = facts(os.path.join(directory, "boot1", "facts.jsonl"))
    b2 = facts(os.path.join(directory, "boot2", "facts.jsonl"))
    out1 = lambda name: text(os.path.join(directory, "boot1", name))
    out2 = lambda name: text(os.path.join(directory, "boot2", name))
    check(bool(b1), "boot 1 recorded its facts", None if b1 else "nothing")

    print("-- install")
    check(b1.get("dpkg_install") == "0", "dpkg -i installs the package (its Depends are Debian's)", out1("dpkg_install.out")[-400:])
    check("accessd" in b1.get("user", ""), "the accessd system user exists", b1.get("user"))
    check(b1.get("operators_group", "").startswith("accessd-operators:"), "the operators' group exists", b1.get("operators_group"))
    check(b1.get("state_dir") == "accessd:accessd-operators 2770", "/var/lib/accessd: accessd:accessd-operators 2770", b1.get("state_dir"))
    check(b1.get("config_perm") == "root:accessd-operators 640", "the config is readable by operators only", b1.get("config_perm"))
    check(b1.get("chip_perm", "").startswith("gpio 660"), "the GPIO chip belongs to group gpio (udev rule)", b1.get("chip_perm"))
    check(b1.get("enabled_after_install") == "disabled" and b1.get("active_after_install") == "inactive",
          "not enabled nor started before the installer describes the site",
          f'{b1.get("enabled_after_install")}/{b1.get("active_after_install")}')
    ldd = b1.get("ldd_accessd", "")
    check(ldd and "swift" not in ldd.lower() and "Foundation" not in ldd, "accessd links no toolchain library", ldd)
    check(b1.get("check_default") == "0", "--check-config accepts the documented default config", out1("check_default.out"))
    check(b1.get("check_bad") == "1" and "b01.lokc" in out1("check_bad.out"),
          "--check-config exits 1 naming a line the board does not have", out1("check_bad.out"))

    print("-- start by systemd (Type=notify)")
    check(b1.get("check_site") == "0", "--check-config accepts the installer's config", out1("check_site.out"))
    check(b1.get("enable_now") == "0" and b1.get("active") == "active/running",
          "systemctl enable --now: active (running) once READY=1 arrived", f'{b1.get("enable_now")} {b1.get("active")}')
    check(b1.get("lines_at_start") == "gate-north.lock=1 b01.lock=0", "doors start locked (magnet energised, strike not)", b1.get("lines_at_start"))
    check(b1.get("db_perm", "").startswith("accessd:accessd-operators 66"), "the database belongs to the operators' group", b1.get("db_perm"))
    check(b1.get("import") == "0", "accessctl import finds /etc/accessd/accessd.toml without --config", out1("import.out")[-300:])
    check(b1.get("token_add") == "0", "accessctl token add", None)
    check(b1.get("swipe_owner") == "ok", "a Wiegand frame on gpio-sim opens b01's lock", b1.get("swipe_owner"))
    check(b1.get("relocked") == "ok", "the lock closes again after unlock_seconds", b1.get("relocked"))
    check(b1.get("unknown_card_lock") == "0", "an unknown card leaves the lock closed", b1.get("unknown_card_lock"))

    print("-- watchdog")
    # systemctl show prints WatchdogUSec as a time span ("10s", "500ms", "1min 30s").
    wd = 0.0
    for number, unit in re.findall(r"([0-9.]+)\s*(min|ms|us|s)", b1.get("watchdog_usec", "")):
        wd += float(number) * {"min": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    restart = int(b1.get("restart_ms", "0") or 0) / 1000
    check(b1.get("swipe_before_freeze") == "ok", "b01 released just before the freeze", b1.get("swipe_before_freeze"))
    check(int(b1.get("restarts", "0") or 0) >= 1 and b1.get("new_pid") not in ("", "0", b1.get("frozen_pid")),
          "systemd restarted the frozen accessd", f'restarts={b1.get("restarts")} pid {b1.get("frozen_pid")} -> {b1.get("new_pid")}')
    j1 = journal(os.path.join(directory, "boot1", "journal-1.json"))
    timeouts = [e for e in j1 if "Watchdog timeout" in str(e.get("MESSAGE", ""))]
    check(bool(timeouts), "the journal says \"Watchdog timeout\"", None)
    frozen_at = int(b1.get("freeze_realtime_us", "0") or 0)
    if timeouts and frozen_at:
        killed = (int(timeouts[0]["__REALTIME_TIMESTAMP"]) - frozen_at) / 1e6
        # The last ping came at most half a WatchdogSec before the freeze.
        check(0 < killed <= wd + 0.5, f"systemd killed the frozen accessd {killed:.1f} s after SIGSTOP (WatchdogSec {wd:.0f} s)", killed)
        print(f"FIGURE: watchdog: killed {killed:.1f} s after SIGSTOP, a new accessd ready {restart:.1f} s after the freeze "
              f"(ExecStartPre --check-config and start of the build under test included)")
    check(b1.get("lines_after_restart") == "gate-north.lock=1 b01.lock=0", "the new accessd starts every door in its safe state",
          b1.get("lines_after_restart"))
    check(b1.get("swipe_after_restart") == "ok", "and opens for a card again", b1.get("swipe_after_restart"))
    freeze = [l.split() for l in out1("freeze.txt").splitlines() if l.strip()]
    if freeze:
        held = [l for l in freeze if "state=active/running" in " ".join(l) and f"pid={b1.get('frozen_pid')}" in " ".join(l)]
        print(f"FIGURE: frozen accessd: lines while frozen {sorted(set(' '.join(l[1:3]) for l in held))}, "
              f"first sample after it was killed {next((' '.join(l[1:4]) for l in freeze if l not in held), '-')}")

    print("-- stop, exposure")
    check(b1.get("stop") == "0" and b1.get("stop_result") == "success status=0", "systemctl stop: accessd exits 0 (doors to safe state first)",
          b1.get("stop_result"))
    check(b1.get("lines_after_stop") == "gate-north.lock=0 b01.lock=0",
          "after the stop the fail-safe magnet is released (escape route) and the strike locked", b1.get("lines_after_stop"))
    check(any(str(e.get("MESSAGE", "")).startswith("stopped: doors in their safe state") for e in j1),
          "accessd logged its stop with the doors in their safe state", None)
    exposure = b1.get("exposure", "")
    check(bool(exposure), "systemd-analyze security accessd ran", out1("security.txt")[-300:])
    if exposure:
        print(f"FIGURE: systemd-analyze security accessd: exposure {exposure}")

    print("-- boot 2: started at boot, upgrade, remove, purge")
    check(bool(b2), "boot 2 recorded its facts", None if b2 else "nothing")
    check(b2.get("ready_at_boot") == "active/running" and b2.get("restarts_at_boot") == "0",
          "systemd started accessd at boot, no restart", f'{b2.get("ready_at_boot")} restarts={b2.get("restarts_at_boot")}')
    if b2.get("ready_usec"):
        ready = int(b2["ready_usec"]) / 1e6
        userspace = int(b2.get("userspace_usec", "0") or 0) / 1e6
        start = int(b2.get("exec_start_usec", "0") or 0) / 1e6
        print(f"FIGURE: boot to ready: kernel start -> accessd READY=1 {ready:.1f} s "
              f"(systemd started at {userspace:.1f} s, accessd exec at {start:.1f} s, exec -> ready {ready - start:.2f} s)")
    check(b2.get("lines_at_boot") == "gate-north.lock=1 b01.lock=0", "doors safe after boot", b2.get("lines_at_boot"))
    check(b2.get("swipe_boot2") == "ok", "the roster from boot 1 opens the door after a reboot", b2.get("swipe_boot2"))
    check(b2.get("upgrade") == "0" and b2.get("version_after_upgrade", "").endswith("+upgrade1"), "dpkg -i of a newer build upgrades",
          out2("upgrade.out")[-300:])
    check(b2.get("pid_changed") == "yes" and b2.get("active_after_upgrade") == "active/running", "the upgrade restarts the running accessd",
          f'{b2.get("pid_changed")} {b2.get("active_after_upgrade")}')
    check(b2.get("config_marker") == "1", "the installer's config edits survive the upgrade", b2.get("config_marker"))
    check(b2.get("person_after_upgrade") == "0", "the roster survives the upgrade", out2("person_after_upgrade.out")[-200:])
    before = events(out2("events-before.jsonl"))
    after = events(out2("events-after.jsonl"))
    check(len(before) > 0 and after[: len(before)] == before, f"the event log survives the upgrade ({len(before)} events, all unchanged)",
          f"{len(before)} before, {len(after)} after")
    check(b2.get("swipe_after_upgrade") == "ok", "the upgraded accessd opens the door", b2.get("swipe_after_upgrade"))
    check(b2.get("remove") == "0" and "access.db" in b2.get("db_after_remove", ""), "apt-get remove keeps /var/lib/accessd",
          b2.get("db_after_remove"))
    check(b2.get("config_after_remove") == "kept" and b2.get("binary_after_remove") == "gone", "remove keeps the config, removes the programs",
          f'{b2.get("config_after_remove")} {b2.get("binary_after_remove")}')
    check(b2.get("active_after_remove") != "active", "remove stopped accessd", b2.get("active_after_remove"))
    check(b2.get("status_after_remove", "").startswith("rc"), "dpkg keeps the package's config files (rc)", b2.get("status_after_remove"))
    check(b2.get("purge") == "0" and b2.get("state_after_purge") == "gone" and b2.get("config_after_purge") == "gone",
          "apt-get purge removes /var/lib/accessd and /etc/accessd", f'{b2.get("state_after_purge")} {b2.get("config_after_purge")}')

    print("-- the journal")
    entries = j1 + journal(os.path.join(directory, "boot2", "journal-2.json"))
    own = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "accessd"]
    check(len(own) > 0, f"accessd's entries are in the journal ({len(own)})", len(own))
    granted = [e for e in own if e.get("PORTAL") == "b01-door" and e.get("REASON") == "granted"]
    check(bool(granted) and granted[0].get("GRANTED") == "true" and granted[0].get("PRIORITY") == "6",
          "a grant is an entry with PORTAL=b01-door REASON=granted GRANTED=true PRIORITY=6", granted[:1])
    check(any(e.get("REASON") == "unknown_credential" for e in own), "an unknown card is an entry with REASON=unknown_credential", None)
    native = [e for e in own if e.get("_TRANSPORT") == "journal"]
    check(len(native) > 0 and all("LOGGER" in e and "CODE_FILE" in e for e in native),
          f"accessd's log lines arrive over the native protocol with LOGGER= and CODE_FILE= ({len(native)})", len(native))
    stream = [str(e.get("MESSAGE", "")) for e in own if e.get("_TRANSPORT") == "stdout"]
    check(all(m.endswith(" problem") or ": ok (" in m or "problem" in m or "thread priority" in m for m in stream),
          "only --check-config's report (and no log line) comes through the stdout stream", stream[:5])
    check(not any(str(e.get("MESSAGE", "")).lstrip().startswith("{") for e in own), "no JSON text in MESSAGE (native fields, not a stream)", None)
    leaked = []
    for secret in sorted(secrets(directory)):
        for e in entries:
            for key, value in e.items():
                if secret in str(value):
                    leaked.append((secret, key, str(value)[:120]))
    check(not leaked, f"no card number, name, phone, plate, PIN or token in {len(entries)} journal entries", leaked[:5])

    print(f"package-test: {PASSED} passed, {FAILED} failed")
    return 0 if FAILED == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
