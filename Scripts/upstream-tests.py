#!/usr/bin/env python3
"""The real accessd with its upstream, end to end: Scripts/outage-test.sh and Scripts/soak-test.sh.

A Rig is one site in a work directory: Config/accessd-sim.toml moved there, a real mosquitto on a
free loopback port (persistence on), a subscriber with a persistent QoS 1 session (mosquitto_sub),
accessd on the simulated board with MQTT and the HTTP API, and an API token for the poller. Swipes
go through the control socket to the simulated board's real Wiegand path.

  upstream-tests.py outage EVENTS BACKLOG_RATE
  upstream-tests.py soak SECONDS SWIPES_PER_SECOND

It builds accessd and accessctl first (ACCESS_UPSTREAM_BUILD: debug, the default, or release) and
works in a temporary directory, removed unless ACCESS_UPSTREAM_KEEP=1.
"""
import json, os, random, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

PREFIX, CONTROLLER = "upstream-test", "xfl-north-1"


class Failure(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")


class Rig:
    def __init__(self, root, bin_dir, work, backlog_rate=500, roster=False):
        self.root, self.work = root, work
        self.accessd, self.accessctl = os.path.join(bin_dir, "accessd"), os.path.join(bin_dir, "accessctl")
        self.children = []
        self.mqtt_port, self.http_port = free_port(), free_port()
        self.config = os.path.join(work, "accessd.toml")
        open(self.config, "w").write(self.site_config(backlog_rate))
        if roster:  # the sample community, with the two staff groups its file names (as Scripts/run-sim.sh)
            portals = ["--portal", "gate-north-in", "--portal", "gate-north-out", "--portal", "b01-door"]
            for group in ("property-staff", "cleaners"):
                self.ctl("group", "add", group, *portals)
            self.ctl("import", os.path.join(root, "Config/sample-roster.csv"))
        self.token = self.ctl("token", "add", "poller")
        os.makedirs(f"{work}/broker", exist_ok=True)
        user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        open(f"{work}/mosquitto.conf", "w").write(
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\nuser {user}\npersistence true\n"
            f"persistence_location {work}/broker/\nautosave_interval 1\nmax_inflight_messages 0\nmax_queued_messages 0\n")
        self.broker_starts = 0

    def ctl(self, *args):
        run = subprocess.run([self.accessctl, "--config", self.config, "--operator", "rig", *args], capture_output=True, text=True)
        if run.returncode != 0:
            raise Failure(f"accessctl {' '.join(args)}: {run.stderr.strip()}")
        return run.stdout.strip()

    def site_config(self, backlog_rate):
        text = open(os.path.join(self.root, "Config/accessd-sim.toml")).read()
        for old, new in [('path = "var/sim/access.db"', f'path = "{self.work}/access.db"'),
                         ('socket = "var/sim/accessd.sock"', f'socket = "{self.work}/accessd.sock"'),
                         ('map = "Hardware/', f'map = "{self.root}/Hardware/')]:
            if old not in text:
                raise Failure(f"Config/accessd-sim.toml changed: cannot find {old}")
            text = text.replace(old, new)
        text, n = re.subn(r'listen = "127\.0\.0\.1:[0-9]+"', f'listen = "127.0.0.1:{self.http_port}"', text)
        if n != 1:
            raise Failure("Config/accessd-sim.toml changed: cannot set [upstream.http] listen")
        text = re.sub(r'(?m)^id = "[^"]*"', f'id = "{CONTROLLER}"', text, count=1)
        # Every swipe must be one decision and one event here (random and unknown cards, back to
        # back): repeat-read suppression and the wrong-attempt lockout are off.
        for key in ("repeat_read_seconds", "wrong_attempts"):
            text, n = re.subn(rf'(?m)^{key} = [0-9]+', f'{key} = 0', text)
            if n != 1:
                raise Failure(f"Config/accessd-sim.toml changed: cannot set [gate] {key}")
        return text + (f'\n[upstream.mqtt]\nhost = "127.0.0.1"\nport = {self.mqtt_port}\ntopic_prefix = "{PREFIX}"\n'
                       f'client_id = "rig-accessd"\nbacklog_rate = {backlog_rate}\n')

    def spawn(self, argv, log, **kwargs):
        child = subprocess.Popen(argv, stdout=open(os.path.join(self.work, log), "w"), stderr=subprocess.STDOUT, **kwargs)
        self.children.append(child)
        return child

    def start_broker(self):
        self.broker_starts += 1
        self.broker = self.spawn(["/usr/sbin/mosquitto", "-c", f"{self.work}/mosquitto.conf"], f"broker-{self.broker_starts}.log")

        def accepts():
            try:
                socket.create_connection(("127.0.0.1", self.mqtt_port), timeout=0.2).close()
                return True
            except OSError:
                return False
        wait_for("the broker's port", accepts, 10)

    def stop_broker(self):
        # Orderly, so its persistence file keeps the subscriber's session and queue.
        self.broker.send_signal(signal.SIGTERM)
        self.broker.wait(timeout=30)

    def start(self):
        """Broker, subscriber, then accessd; returns once accessd's status is online at the broker."""
        self.start_broker()
        self.subscriber = self.spawn(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.mqtt_port), "-q", "1", "-c",
                                      "-i", "rig-sub", "-v", "-t", f"{PREFIX}/{CONTROLLER}/events",
                                      "-t", f"{PREFIX}/{CONTROLLER}/status"], "subscriber.txt")
        self.daemon = self.spawn([self.accessd, "--config", self.config], "accessd.log", cwd=self.work,
                                 env=dict(os.environ, ACCESSD_LOG_LEVEL="warning"))
        wait_for("accessd's control socket", lambda: os.path.exists(f"{self.work}/accessd.sock"), 60)

        def online():
            return any(line.startswith(f"{PREFIX}/{CONTROLLER}/status online") for line in open(f"{self.work}/subscriber.txt"))
        wait_for("accessd's retained status online", online, 60)

        # The HTTP API is a service of its own in accessd: it may start listening after the
        # control socket and MQTT are up, so the pollers begin only once it answers.
        def serving():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=2) as reply:
                    return reply.status == 200
            except OSError:
                return False
        wait_for("accessd's HTTP API", serving, 60)

    def stop(self):
        """SIGTERM to accessd (which must exit 0), then everything else."""
        self.daemon.send_signal(signal.SIGTERM)
        code = self.daemon.wait(timeout=60)
        self.kill()
        if code != 0:
            raise Failure(f"accessd exited {code} after SIGTERM")

    def kill(self):
        for child in self.children:
            if child.poll() is None:
                child.kill()

    def control(self, request):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(f"{self.work}/accessd.sock")
        s.sendall((json.dumps(request) + "\n").encode())
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        s.close()
        answer = json.loads(reply)
        if not answer.get("ok"):
            raise Failure(f"{request['op']} refused: {reply[:200]!r}")
        return answer

    def swipe(self, reader, card):
        return self.control({"op": "sim.swipe", "reader": reader, "card": card})

    def http_page(self, after, limit=1000, wait=None):
        query = f"after={after}&limit={limit}" + (f"&wait={wait}" if wait else "")
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/api/v1/events?{query}",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=(wait or 0) + 30) as reply:
            return json.loads(reply.read())

    def last_serial(self):
        page = self.http_page(0)
        while page["more"]:
            page = self.http_page(page["next_after"])
        return page["next_after"]

    def http_sequence(self):
        events, after = [], 0
        while True:
            page = self.http_page(after)
            events += [(e["serial"], e["id"]) for e in page["events"]]
            after = page["next_after"]
            if not page["more"]:
                return events

    def received(self):
        """Serials on the events topic in arrival order, and each serial's id (the same on every repeat)."""
        serials, ids = [], {}
        with open(f"{self.work}/subscriber.txt", "rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # still being written
                topic, _, payload = raw.decode("utf-8", "replace").rstrip("\n").partition(" ")
                if not topic.endswith("/events"):
                    continue
                try:
                    event = json.loads(payload)
                except ValueError:
                    raise Failure(f"not JSON on the events topic: {payload[:200]}")
                serials.append(event["serial"])
                if ids.setdefault(event["serial"], event["id"]) != event["id"]:
                    raise Failure(f"serial {event['serial']} arrived twice with different ids")
        return serials, ids

    def check_delivery(self, total):
        """Every event 1…total at the subscriber, first arrivals in order, and the same (serial, id)
        sequence over HTTP. Returns the number of duplicates (QoS 1 repeats)."""
        serials, ids = self.received()
        first, seen = [], set()
        for s in serials:
            if s not in seen:
                seen.add(s)
                first.append(s)
        if first[:total] != list(range(1, total + 1)):
            wrong = next((i for i, s in enumerate(first) if s != i + 1), len(first))
            raise Failure(f"MQTT first arrivals are not 1…{total} in order (first difference at position {wrong + 1})")
        http = self.http_sequence()[:total]
        if http != [(s, ids[s]) for s in range(1, total + 1)]:
            raise Failure("the HTTP poller's sequence (serial, id) differs from what the subscriber received")
        return len(serials) - len(first)


def outage(rig, events_wanted, rate):
    rig.start()
    rng = random.Random(20261122)
    card = lambda: rng.randint(1, 16_000_000)  # unknown cards: one access event each
    for _ in range(100):
        rig.swipe("reader-north-in", card())
    before = rig.last_serial()
    wait_for("the first events at the subscriber", lambda: len(set(rig.received()[0])) >= before, 30)

    rig.stop_broker()
    outage_start = t = time.monotonic()
    for _ in range(events_wanted):
        rig.swipe("reader-north-in", card())
    generated = time.monotonic() - t
    total = rig.last_serial()
    if total - before < events_wanted:
        raise Failure(f"only {total - before} events were logged for {events_wanted} swipes")
    print(f"outage-test: {total - before} events logged during the outage in {generated:.1f} s", file=sys.stderr)

    rig.start_broker()
    outage_seconds = time.monotonic() - outage_start
    t = time.monotonic()
    # accessd's reconnect backoff has grown during the outage (0.5 → 30 s): first the reconnection.
    wait_for("accessd's reconnection", lambda: len(set(rig.received()[0])) > before, 60)
    reconnected = time.monotonic() - t
    t = time.monotonic()
    wait_for(f"all {total} events at the subscriber", lambda: len(set(rig.received()[0])) >= total, total / max(rate, 1) * 3 + 120)
    drained = time.monotonic() - t
    duplicates = rig.check_delivery(total)
    rig.stop()
    print(f"outage-test: PASS: {total} events ({total - before} during an outage of {outage_seconds:.1f} s); after the broker "
          f"returned accessd reconnected within {reconnected:.1f} s and the rest arrived {drained:.1f} s later "
          f"({(total - before) / (reconnected + drained):.0f} events/s from the broker's return, backlog_rate {rate}), "
          f"first arrivals 1…{total} in order, "
          f"{duplicates} duplicates (same ids); the HTTP poller saw the same {total} events")


def soak(rig, seconds, per_second):
    rig.start()
    pid = rig.daemon.pid
    cards = [int(row.split(",")[11]) for row in open(os.path.join(rig.root, "Config/sample-roster.csv")).read().splitlines()[1:]
             if row.split(",")[11].isdigit()]
    readers = ["reader-north-in", "reader-north-out", "reader-b01", "reader-b02", "reader-b03"]
    rng = random.Random(20261122)

    # The poller: long-polls by cursor the whole time and checks the serials are contiguous.
    polled = {"last": 0, "error": None}
    stop = threading.Event()

    def poller():
        try:
            while not stop.is_set():
                page = rig.http_page(polled["last"], wait=2)
                for e in page["events"]:
                    if e["serial"] != polled["last"] + 1:
                        raise Failure(f"the poller got serial {e['serial']} after {polled['last']}")
                    polled["last"] = e["serial"]
        except Exception as error:  # reported by the main thread
            polled["error"] = error
    thread = threading.Thread(target=poller, daemon=True)
    thread.start()

    def sample():
        fields = {}
        for line in open(f"/proc/{pid}/status"):
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                fields[key] = int(value.split()[0])
        fields["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
        return fields

    interval = 1.0 / per_second
    windows, window = [], {"latencies": [], "granted": 0}
    start = next_swipe = time.monotonic()
    window_end = start + max(10.0, seconds / 12)
    swipes = 0
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now < next_swipe:
            time.sleep(next_swipe - now)
        next_swipe += interval
        card = rng.choice(cards) if rng.random() < 0.8 else rng.randint(1, 16_000_000)
        t = time.perf_counter()
        reply = rig.swipe(rng.choice(readers), card)
        window["latencies"].append(time.perf_counter() - t)
        window["granted"] += bool((reply.get("decision") or {}).get("granted"))
        swipes += 1
        if time.monotonic() >= window_end:
            if polled["error"]:
                raise Failure(f"poller: {polled['error']}")
            lat = sorted(window["latencies"])
            windows.append(dict(sample(), t=time.monotonic() - start, swipes=len(lat), granted=window["granted"],
                                p50=lat[len(lat) // 2] * 1e3, p99=lat[int(len(lat) * 0.99)] * 1e3,
                                relay=rig.control({"op": "status"}).get("swipe_to_relay_micros", {})))
            w = windows[-1]
            print(f"soak: {w['t']:6.0f} s  {w['swipes']:5d} swipes ({w['granted']} granted)  request p50 {w['p50']:.2f} ms "
                  f"p99 {w['p99']:.2f} ms  swipe→relay p99 {w['relay'].get('p99', 0)} µs  RSS {w['VmRSS'] / 1024:.1f} MiB  "
                  f"fds {w['fds']}  threads {w['Threads']}  poller at {polled['last']}", file=sys.stderr)
            window = {"latencies": [], "granted": 0}
            window_end = time.monotonic() + max(10.0, seconds / 12)
    total = rig.last_serial()
    wait_for("the poller to catch up", lambda: polled["last"] >= total or polled["error"], 60)
    stop.set()
    thread.join(timeout=10)
    if polled["error"]:
        raise Failure(f"poller: {polled['error']}")
    wait_for(f"all {total} events at the subscriber", lambda: len(set(rig.received()[0])) >= total, 120)
    duplicates = rig.check_delivery(total)
    rig.stop()

    if len(windows) < 3:
        raise Failure(f"only {len(windows)} sample windows: run longer")
    # Flat: compared after the first window (start-up, page caches, the first door cycles).
    settled, last = windows[1], windows[-1]
    growth = (last["VmRSS"] - settled["VmRSS"]) / 1024
    problems = []
    if growth > 2 + settled["VmRSS"] / 1024 * 0.05:
        problems.append(f"resident memory grew {growth:.1f} MiB ({settled['VmRSS'] / 1024:.1f} → {last['VmRSS'] / 1024:.1f} MiB)")
    if last["fds"] > settled["fds"]:
        problems.append(f"file descriptors grew {settled['fds']} → {last['fds']}")
    if last["p99"] > 2 * settled["p99"] + 5:
        problems.append(f"request p99 grew {settled['p99']:.2f} → {last['p99']:.2f} ms")
    rate = swipes / seconds
    summary = (f"{swipes} swipes in {seconds:.0f} s ({rate:.1f}/s), {total} events, poller and subscriber got all "
               f"({duplicates} MQTT duplicates); RSS {settled['VmRSS'] / 1024:.1f} → {last['VmRSS'] / 1024:.1f} MiB, "
               f"fds {settled['fds']} → {last['fds']}, request p99 {settled['p99']:.2f} → {last['p99']:.2f} ms")
    if rate < per_second * 0.9:
        problems.append(f"only {rate:.1f} swipes/s of {per_second}")
    if problems:
        raise Failure("; ".join(problems) + f" ({summary})")
    print(f"soak-test: PASS: {summary}")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("outage", "soak"):
        sys.exit(__doc__)
    mode, first, second = sys.argv[1], sys.argv[2], sys.argv[3]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = os.environ.get("ACCESS_UPSTREAM_BUILD", "debug")
    for product in ("accessd", "accessctl"):
        subprocess.run(["swift", "build", "-c", build, "--product", product], cwd=root, check=True, stdout=sys.stderr)
    bin_dir = subprocess.run(["swift", "build", "-c", build, "--show-bin-path"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix=f"{mode}-test.")
    rig, passed = None, False
    try:
        if mode == "outage":
            rig = Rig(root, bin_dir, work, backlog_rate=int(second))
            outage(rig, int(first), int(second))
        else:
            rig = Rig(root, bin_dir, work, roster=True)
            soak(rig, float(first), float(second))
        passed = True
    except (Failure, OSError, subprocess.SubprocessError, ValueError) as error:
        print(f"{mode}-test: FAIL: {error} (logs in {work})", file=sys.stderr)
    finally:
        if rig:
            rig.kill()
        if os.environ.get("ACCESS_UPSTREAM_KEEP") == "1" or not passed:
            print(f"{mode}-test: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
