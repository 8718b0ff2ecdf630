#!/usr/bin/env bash
# measure-accessd.sh: accessd's start-up time and resident memory, by roster size. For each size it
# builds a fresh database under a temporary directory (accessctl import of a synthetic roster),
# then ACCESS_MEASURE_RUNS times: starts `accessd --config CFG` with NOTIFY_SOCKET pointing at a
# datagram socket this script listens on, and measures
#   start-up   exec → READY=1 (sd_notify), in ms;
#   memory     VmRSS and VmHWM from /proc/PID/status at READY=1; VmRSS, VmHWM, RssAnon, RssFile once
#              settled (VmRSS unchanged for 1 s: accessd goes on loading after READY=1), and again after
#              ACCESS_MEASURE_SWIPES card swipes through the control socket ({"op":"sim.swipe"}, the
#              simulated board's real Wiegand path: the same request `accessctl sim swipe` sends);
#   stop       SIGTERM, then accessd must exit 0.
# The table at the end gives every run with the 1-minute load average at its start, then the
# medians (memory in MiB). The target (product.md) is ≤ 64 MB resident with 100,000 people.
#
#   Scripts/measure-accessd.sh                  # rosters of 0 and 100,000 people
#   Scripts/measure-accessd.sh 0 100000 1000000 # any sizes
#   ACCESS_MEASURE_SCRATCH=.build-figures Scripts/measure-accessd.sh
#
# ACCESS_MEASURE_SCRATCH: SwiftPM scratch path (default .build); the build is always release.
# ACCESS_MEASURE_BUILD_FLAGS: more `swift build` arguments, e.g. "-Xswiftc -disable-cmo" (set, the
# build products differ from a plain release build's and are rebuilt).
# ACCESS_MEASURE_DEB: a package (Scripts/package.sh) whose accessd and accessctl are measured instead
# of a build (the static runtime, one program under both names).
# ACCESS_MEASURE_RUNS: runs per size (5). ACCESS_MEASURE_SWIPES: swipes per run (1000).
# ACCESS_MEASURE_KEEP=1 keeps the temporary directory (databases, configs, accessd logs).
#
# The site is Config/accessd-sim.toml with the database and control socket moved to the temporary
# directory, the board and device maps by absolute path, the HTTP listener on a free port, and the
# three building doors renamed B01-B03 → B001-B003, the buildings of the synthetic roster. The roster is SyntheticRoster.csv's (Sources/AccessTestSupport,
# the benchmarks' roster) written by the same rule: person i (P0000000…) has card 1000000+i,
# lives in house i/3 of building i/600+1 (200 houses a building) as owner, family or tenant by
# i%3, every tenth person has a plate. Swipes cycle over the door readers with cards of owners and
# family members granted there (unknown cards with an empty roster).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=${ACCESS_MEASURE_SCRATCH:-.build}
RUNS=${ACCESS_MEASURE_RUNS:-5}
SWIPES=${ACCESS_MEASURE_SWIPES:-1000}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(0 100000)
for n in "${SIZES[@]}"; do
    [[ $n =~ ^[0-9]+$ ]] || { echo "measure-accessd.sh: roster size must be a number: $n" >&2; exit 64; }
done

WORK=$(mktemp -d /tmp/measure-accessd.XXXXXX)
if [ "${ACCESS_MEASURE_KEEP:-0}" = 1 ]; then
    trap 'echo "kept $WORK" >&2' EXIT
else
    trap 'rm -rf "$WORK"' EXIT
fi

if [ -n "${ACCESS_MEASURE_DEB:-}" ]; then
    echo "== the packaged accessd and accessctl of $ACCESS_MEASURE_DEB" >&2
    dpkg-deb -x "$ACCESS_MEASURE_DEB" "$WORK/package"
    ACCESSD=$WORK/package/usr/bin/accessd
    ACCESSCTL=$WORK/package/usr/bin/accessctl
else
    echo "== release build of accessd and accessctl (scratch path $SCRATCH)" >&2
    read -r -a FLAGS <<<"${ACCESS_MEASURE_BUILD_FLAGS:-}"
    (cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" ${FLAGS[@]+"${FLAGS[@]}"} --product accessd >&2 &&
        swift build -c release --scratch-path "$SCRATCH" ${FLAGS[@]+"${FLAGS[@]}"} --product accessctl >&2)
    BIN=$(cd "$ROOT" && swift build -c release --scratch-path "$SCRATCH" ${FLAGS[@]+"${FLAGS[@]}"} --show-bin-path)
    ACCESSD=$BIN/accessd
    ACCESSCTL=$BIN/accessctl
fi

# The roster: SyntheticRoster.csv(people:) line for line.
roster_csv() { # PEOPLE
    awk -v n="$1" 'BEGIN {
        print "house_id,building,unit,floor,room,person_id,name,role,phone,valid_from,valid_until,cards,plates,groups,status"
        split("A B C D E F G H J K L M N P Q R S T U V W X Y Z", letters, " ")
        for (i = 0; i < n; i++) {
            house = int(i / 3); b = sprintf("B%03d", int(house / 200) + 1); room = sprintf("%04d", house % 200)
            role = (i % 3 == 0) ? "owner" : ((i % 3 == 1) ? "family" : "tenant")
            until = (role == "tenant") ? "2027-06-30" : ""
            plate = (i % 10 == 0) ? sprintf("京%s%05d", letters[int(i / 100000) % 24 + 1], i % 100000) : ""
            printf "%s-%s,%s,1,%d,%s,P%07d,住户%d,%s,,,%s,%d,%s,,active\n", b, room, b, house % 30 + 1, room, i, i, role, until, 1000000 + i, plate
        }
    }'
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

site_config() { # DIR
    local dir=$1 text
    text=$(sed -e "s|^path = \"var/sim/access.db\"|path = \"$dir/access.db\"|" \
        -e "s|^socket = \"var/sim/accessd.sock\"|socket = \"$dir/accessd.sock\"|" \
        -e "s|^map = \"Hardware/|map = \"$ROOT/Hardware/|" \
        -e "s|^listen = \"127.0.0.1:[0-9]*\"|listen = \"127.0.0.1:$(free_port)\"|" \
        -e 's|^building = "B0\([1-3]\)"|building = "B00\1"|' \
        -e 's|^repeat_read_seconds = [0-9]*|repeat_read_seconds = 0|' -e 's|^wrong_attempts = [0-9]*|wrong_attempts = 0|' \
        -e 's|^verify = "card_and_pin"|# verify = "card_and_pin" (measured: cards decide alone)|' "$ROOT/Config/accessd-sim.toml")
    for want in "path = \"$dir/access.db\"" "socket = \"$dir/accessd.sock\"" "map = \"$ROOT/Hardware/boards/sim.toml\"" \
        'building = "B001"' 'building = "B002"' 'building = "B003"'; do
        grep -qF "$want" <<<"$text" || { echo "measure-accessd.sh: Config/accessd-sim.toml changed: cannot set $want" >&2; exit 1; }
    done
    printf '# Written by Scripts/measure-accessd.sh from Config/accessd-sim.toml\n%s\n' "$text"
}

# One size, RUNS runs: start, ready, memory, settled memory, swipes, memory, SIGTERM. One line per
# run on stdout (memory in kB): people run startup_ms ready_rss ready_hwm settle_ms rss hwm anon
# file rss2 hwm2 anon2 file2 ms_per_swipe exit_code stop_ms load1
cat >"$WORK/run.py" <<'PY'
import os, signal, socket, subprocess, sys, time, tomllib, random, json

accessd, config, people, runs, swipes, workdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
site = tomllib.load(open(config, "rb"))
control = site["control"]["socket"]
door_portals = {p for d in site["door"] for p in d["portals"]}
# Swipes are Wiegand frames: only the board's [[reader]]s (a portal may also name a QR reader).
wiegand_readers = {r["name"] for r in tomllib.load(open(site["board"]["map"], "rb")).get("reader", [])}

# Cards granted at each door reader: owners and family (tenants' leases end) of the portal's
# building, or of any building for a portal without one.
targets = []
for portal in site["portal"]:
    if portal["id"] not in door_portals:
        continue
    building = portal.get("building")
    if building is None:
        people_there = range(0, people)
    else:
        b = int(building[1:])
        people_there = range((b - 1) * 600, min(people, b * 600))
    cards = [1_000_000 + i for i in people_there if i % 3 != 2]
    if people == 0:
        cards = [1_000_000 + i for i in range(0, 600)]  # unknown: refused, logged
    for reader in portal.get("readers", []) if cards else []:  # a building the roster does not reach
        if reader in wiegand_readers:
            targets.append((reader, cards))
if not targets:
    sys.exit("no door reader with people granted there")
rng = random.Random(20261123)

def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0])  # kB
    return fields

def request(obj):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(control)
    s.sendall((json.dumps(obj) + "\n").encode())
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    return json.loads(reply)

notify_path = os.path.join(workdir, "notify.sock")
for run in range(1, runs + 1):
    load1 = open("/proc/loadavg").read().split()[0]
    if os.path.exists(notify_path):
        os.unlink(notify_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path, ACCESSD_LOG_LEVEL="warning")
    env.pop("WATCHDOG_USEC", None)
    log = open(os.path.join(workdir, f"accessd-{run}.log"), "wb")
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen([accessd, "--config", config], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    notify.settimeout(0.05)
    ready = None
    while ready is None:
        try:
            message = notify.recv(4096)
        except socket.timeout:
            if proc.poll() is not None:
                sys.exit(f"accessd exited {proc.returncode} before READY=1: {open(log.name).read().strip()}")
            if time.perf_counter_ns() - t0 > 120e9:
                proc.kill()
                sys.exit(f"accessd sent no READY=1 within 120 s (log: {log.name})")
            continue
        if b"READY=1" in message.split(b"\n"):
            ready = time.perf_counter_ns()
    startup_ms = (ready - t0) / 1e6
    ready_status = status(proc.pid)
    # Settled: what accessd holds once whatever it does after READY=1 is done (VmRSS unchanged
    # for 1 s, sampled every 50 ms; at most 30 s).
    last, since = ready_status["VmRSS"], time.perf_counter_ns()
    while time.perf_counter_ns() - since < 1e9 and time.perf_counter_ns() - ready < 30e9:
        time.sleep(0.05)
        now = status(proc.pid)["VmRSS"]
        if now != last:
            last, since = now, time.perf_counter_ns()
    settle_ms = (since - ready) / 1e6
    before = status(proc.pid)

    t1 = time.perf_counter_ns()
    granted = 0
    for i in range(swipes):
        reader, cards = targets[i % len(targets)]
        reply = request({"op": "sim.swipe", "reader": reader, "card": rng.choice(cards)})
        if not reply.get("ok"):
            proc.kill()
            sys.exit(f"sim.swipe failed: {reply}")
        decision = reply.get("decision") or {}
        granted += bool(decision.get("granted"))
    swipe_ms = (time.perf_counter_ns() - t1) / 1e6
    if people > 0 and granted != swipes:
        proc.kill()
        sys.exit(f"only {granted} of {swipes} swipes granted with {people} people")
    if people == 0 and granted != 0:
        proc.kill()
        sys.exit(f"{granted} swipes granted with an empty roster")
    after = status(proc.pid)

    t2 = time.perf_counter_ns()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = "timeout"
    stop_ms = (time.perf_counter_ns() - t2) / 1e6
    notify.close()
    print(people, run, f"{startup_ms:.1f}", ready_status["VmRSS"], ready_status["VmHWM"], f"{settle_ms:.0f}",
          before["VmRSS"], before["VmHWM"], before["RssAnon"], before["RssFile"],
          after["VmRSS"], after["VmHWM"], after["RssAnon"], after["RssFile"], f"{swipe_ms / swipes:.3f}", code, f"{stop_ms:.0f}", load1,
          flush=True)
    if code != 0:
        sys.exit(f"accessd exited {code} after SIGTERM (log: {log.name})")
PY

RESULTS=$WORK/results.txt
: >"$RESULTS"
for people in "${SIZES[@]}"; do
    dir=$WORK/p$people
    mkdir -p "$dir"
    site_config "$dir" >"$dir/accessd.toml"
    echo "== $people people: roster, import" >&2
    roster_csv "$people" >"$dir/roster.csv"
    start=$(date +%s%N)
    "$ACCESSCTL" --config "$dir/accessd.toml" --operator measure import "$dir/roster.csv" >"$dir/import.log"
    echo "   import: $(( ($(date +%s%N) - start) / 1000000 )) ms, $(tail -n 1 "$dir/import.log")" >&2
    # For comparison: one index load in a short-lived process (accessctl check loads the roster).
    python3 - "$ACCESSCTL" "$dir/accessd.toml" >&2 <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run([sys.argv[1], "--config", sys.argv[2], "check", "--portal", "gate-north-in", "--card", "1000000"], stdout=subprocess.DEVNULL)
print(f"   accessctl check (loads the index once): {(time.perf_counter() - t) * 1000:.0f} ms, peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.1f} MiB")
PY
    echo "== $people people: $RUNS runs of accessd, $SWIPES swipes each" >&2
    python3 "$WORK/run.py" "$ACCESSD" "$dir/accessd.toml" "$people" "$RUNS" "$SWIPES" "$dir" | tee -a "$RESULTS" >&2
done

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "accessd on the simulated board ($(uname -m), $(nproc) cores, release build); memory in MiB"
echo "ready: at READY=1; settled: RSS unchanged for 1 s (settle: ms after READY=1); after: $SWIPES swipes"
printf '%8s %3s %8s | %6s %6s | %6s %6s %6s %6s %6s | %6s %6s %6s %6s | %8s %4s %6s %5s\n' \
    people run start_ms rdyRSS rdyHWM settle RSS HWM anon file RSS HWM anon file ms/swipe exit stopms load1
printf '%8s %3s %8s | %-13s | %-34s | %-27s |\n' "" "" "" " ready" " settled" " after swipes"
while read -r people run startup rrss rhwm settle rss hwm anon file rss2 hwm2 anon2 file2 swipe code stop load; do
    printf '%8s %3s %8s | %6s %6s | %6s %6s %6s %6s %6s | %6s %6s %6s %6s | %8s %4s %6s %5s\n' "$people" "$run" "$startup" \
        "$(mb "$rrss")" "$(mb "$rhwm")" "$settle" "$(mb "$rss")" "$(mb "$hwm")" "$(mb "$anon")" "$(mb "$file")" \
        "$(mb "$rss2")" "$(mb "$hwm2")" "$(mb "$anon2")" "$(mb "$file2")" "$swipe" "$code" "$stop" "$load"
done <"$RESULTS"
echo
echo "medians over $RUNS runs (target: ≤ 64 MiB resident with 100,000 people):"
for people in "${SIZES[@]}"; do
    awk -v p="$people" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        $1 == p { n++; s[n] = $3; rr[n] = $4; rh[n] = $5; r[n] = $7; h[n] = $8; r2[n] = $11; h2[n] = $12; l[n] = $18 }
        END {
            if (!n) exit
            printf "  %d people: start-up %.0f ms; RSS/HWM ready %.1f/%.1f MiB, settled %.1f/%.1f MiB, after swipes %.1f/%.1f MiB (load1 %.2f)\n",
                p, median(s, n), median(rr, n) / 1024, median(rh, n) / 1024, median(r, n) / 1024, median(h, n) / 1024,
                median(r2, n) / 1024, median(h2, n) / 1024, median(l, n)
        }' "$RESULTS"
done
