#!/usr/bin/env bash
# outage-test.sh: the upstream outage, end to end with the real accessd. A real mosquitto on
# 127.0.0.1 (free port, persistence on) and a subscriber with a persistent QoS 1 session; accessd on
# the simulated board with MQTT and the HTTP API. The broker is stopped, EVENTS events accumulate in
# accessd's log (card swipes through the control socket, the simulated board's real Wiegand path),
# the broker returns, and the check is:
#   - the subscriber receives every event, first arrivals in serial order with none missing, and
#     any repeat carrying the same id (QoS 1's at-least-once);
#   - an HTTP poller paging /api/v1/events by cursor sees the same sequence (serial, id);
#   - the drain rate after the outage, and how long the broker was away.
#
#   Scripts/outage-test.sh                 # 100,000 events (a few minutes)
#   Scripts/outage-test.sh 10000           # any count
# ACCESS_OUTAGE_BUILD: debug (default) or release. ACCESS_OUTAGE_RATE: accessd's backlog_rate
# (default 5000 events/s; the shipped default is 500). ACCESS_OUTAGE_KEEP=1 keeps the directory.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EVENTS=${1:-100000}
BUILD=${ACCESS_OUTAGE_BUILD:-debug}
RATE=${ACCESS_OUTAGE_RATE:-5000}
[[ $EVENTS =~ ^[0-9]+$ ]] || { echo "outage-test.sh: the event count must be a number: $EVENTS" >&2; exit 64; }
command -v mosquitto_sub >/dev/null && [ -x /usr/sbin/mosquitto ] || {
    echo "outage-test.sh: needs mosquitto and mosquitto-clients (Scripts/setup.sh --tests installs them)" >&2; exit 1; }

(cd "$ROOT" && swift build -c "$BUILD" --product accessd >&2 && swift build -c "$BUILD" --product accessctl >&2)
BIN=$(cd "$ROOT" && swift build -c "$BUILD" --show-bin-path)

WORK=$(mktemp -d /tmp/outage-test.XXXXXX)
cleanup() {
    jobs -p | xargs -r kill 2>/dev/null || true
    if [ "${ACCESS_OUTAGE_KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

python3 - "$ROOT" "$BIN" "$WORK" "$EVENTS" "$RATE" <<'PY'
import json, os, random, signal, socket, subprocess, sys, time, urllib.request

root, bin_dir, work, events_wanted, rate = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
accessd, accessctl = os.path.join(bin_dir, "accessd"), os.path.join(bin_dir, "accessctl")
children = []

def fail(message):
    print(f"outage-test: FAIL: {message} (logs in {work}; ACCESS_OUTAGE_KEEP=1 keeps them)", file=sys.stderr)
    for child in children:
        if child.poll() is None: child.kill()
    sys.exit(1)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def wait_for(what, condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition(): return
        time.sleep(0.05)
    fail(f"timed out after {timeout} s waiting for {what}")

mqtt_port, http_port = free_port(), free_port()
prefix, controller = "outage", "xfl-north-1"

# The site: Config/accessd-sim.toml, moved into the work directory, with MQTT and HTTP on loopback.
text = open(os.path.join(root, "Config/accessd-sim.toml")).read()
edits = [('path = "var/sim/access.db"', f'path = "{work}/access.db"'),
         ('socket = "var/sim/accessd.sock"', f'socket = "{work}/accessd.sock"'),
         ('map = "Hardware/', f'map = "{root}/Hardware/')]
for old, new in edits:
    if old not in text: fail(f"Config/accessd-sim.toml changed: cannot find {old}")
    text = text.replace(old, new)
import re
text, n = re.subn(r'listen = "127\.0\.0\.1:[0-9]+"', f'listen = "127.0.0.1:{http_port}"', text)
if n != 1: fail("Config/accessd-sim.toml changed: cannot set [upstream.http] listen")
text = re.sub(r'(?m)^id = "[^"]*"', f'id = "{controller}"', text, count=1)
text += f"""
[upstream.mqtt]
host = "127.0.0.1"
port = {mqtt_port}
topic_prefix = "{prefix}"
client_id = "outage-accessd"
backlog_rate = {rate}
"""
config = os.path.join(work, "accessd.toml")
open(config, "w").write(text)
token = subprocess.run([accessctl, "--config", config, "--operator", "outage", "token", "add", "poller"],
                       check=True, capture_output=True, text=True).stdout.strip()

# The broker: persistence on, so the subscriber's session and queue survive its stop.
os.makedirs(f"{work}/broker", exist_ok=True)
user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
open(f"{work}/mosquitto.conf", "w").write(f"""listener {mqtt_port} 127.0.0.1
allow_anonymous true
user {user}
persistence true
persistence_location {work}/broker/
autosave_interval 1
max_inflight_messages 0
max_queued_messages 0
""")
broker_starts = 0
def start_broker():
    global broker_starts
    broker_starts += 1
    child = subprocess.Popen(["/usr/sbin/mosquitto", "-c", f"{work}/mosquitto.conf"],
                             stdout=open(f"{work}/broker-{broker_starts}.log", "w"), stderr=subprocess.STDOUT)
    children.append(child)
    def accepts():
        try: socket.create_connection(("127.0.0.1", mqtt_port), timeout=0.2).close(); return True
        except OSError: return False
    wait_for("the broker's port", accepts, 10)
    return child

broker = start_broker()
sub_out = open(f"{work}/subscriber.txt", "w")
subscriber = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1", "-c", "-i", "outage-sub",
                               "-v", "-t", f"{prefix}/{controller}/events", "-t", f"{prefix}/{controller}/status"],
                              stdout=sub_out, stderr=subprocess.STDOUT)
children.append(subscriber)

daemon = subprocess.Popen([accessd, "--config", config], cwd=work, env=dict(os.environ, ACCESSD_LOG_LEVEL="warning"),
                          stdout=open(f"{work}/accessd.log", "w"), stderr=subprocess.STDOUT)
children.append(daemon)
wait_for("accessd's control socket", lambda: os.path.exists(f"{work}/accessd.sock"), 60)

def received():
    serials, ids = [], {}
    with open(f"{work}/subscriber.txt", "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"): break  # still being written
            topic, _, payload = raw.decode("utf-8", "replace").rstrip("\n").partition(" ")
            if not topic.endswith("/events"): continue
            try: event = json.loads(payload)
            except ValueError: fail(f"not JSON on the events topic: {payload[:200]}")
            serials.append(event["serial"])
            if ids.setdefault(event["serial"], event["id"]) != event["id"]:
                fail(f"serial {event['serial']} arrived twice with different ids")
    return serials, ids

def status_online():
    return any(line.startswith(f"{prefix}/{controller}/status online") for line in open(f"{work}/subscriber.txt"))
wait_for("accessd's retained status online", status_online, 60)

def swipe(card):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(f"{work}/accessd.sock")
    s.sendall((json.dumps({"op": "sim.swipe", "reader": "reader-north-in", "card": card}) + "\n").encode())
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk: break
        reply += chunk
    s.close()
    if not json.loads(reply).get("ok"): fail(f"sim.swipe refused: {reply[:200]}")

def http_page(after):
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/v1/events?after={after}&limit=1000",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())

def last_serial():
    page = http_page(0)
    while page["more"]: page = http_page(page["next_after"])
    return page["next_after"]

# Connected: a few swipes go straight through.
rng = random.Random(20261122)
for _ in range(100): swipe(rng.randint(1, 16_000_000))
before = last_serial()
wait_for("the first events at the subscriber", lambda: len(set(received()[0])) >= before, 30)

# The outage: the broker stops (orderly, so its persistence file keeps the subscriber's session),
# and EVENTS events accumulate (each unknown card is one access event).
broker.send_signal(signal.SIGTERM); broker.wait(timeout=30)
outage_start = time.monotonic()
t = time.monotonic()
for _ in range(events_wanted): swipe(rng.randint(1, 16_000_000))
generated = time.monotonic() - t
total = last_serial()
if total - before < events_wanted: fail(f"only {total - before} events were logged for {events_wanted} swipes")
print(f"outage-test: {total - before} events logged during the outage in {generated:.1f} s", file=sys.stderr)

broker = start_broker()
outage = time.monotonic() - outage_start
t = time.monotonic()
# accessd's reconnect backoff has grown during the outage (0.5 → 30 s): first the reconnection.
wait_for("accessd's reconnection", lambda: len(set(received()[0])) > before, 60)
reconnected = time.monotonic() - t
t = time.monotonic()
wait_for(f"all {total} events at the subscriber", lambda: len(set(received()[0])) >= total, total / max(rate, 1) * 3 + 120)
drained = time.monotonic() - t
serials, ids = received()

# MQTT: first arrivals 1…total in order, nothing missing; repeats only as QoS 1 allows.
first, seen = [], set()
for s in serials:
    if s not in seen: seen.add(s); first.append(s)
if first != list(range(1, total + 1)):
    wrong = next((i for i, s in enumerate(first) if s != i + 1), len(first))
    fail(f"MQTT first arrivals are not 1…{total} in order (first difference at position {wrong + 1})")
duplicates = len(serials) - len(first)

# HTTP: the same sequence by cursor.
http, after = [], 0
while True:
    page = http_page(after)
    http += [(e["serial"], e["id"]) for e in page["events"]]
    after = page["next_after"]
    if not page["more"]: break
if http != [(s, ids[s]) for s in range(1, total + 1)]:
    fail("the HTTP poller's sequence (serial, id) differs from what the subscriber received")

daemon.send_signal(signal.SIGTERM)
if daemon.wait(timeout=60) != 0: fail(f"accessd exited {daemon.returncode} after SIGTERM")
print(f"outage-test: PASS: {total} events ({total - before} during an outage of {outage:.1f} s); after the broker returned "
      f"accessd reconnected within {reconnected:.1f} s and the backlog arrived in {drained:.1f} s "
      f"({(total - before) / drained:.0f} events/s at backlog_rate {rate}), first arrivals 1…{total} "
      f"in order, {duplicates} duplicates (same ids); the HTTP poller saw the same {len(http)} events")
for child in children:
    if child.poll() is None: child.kill()
PY
