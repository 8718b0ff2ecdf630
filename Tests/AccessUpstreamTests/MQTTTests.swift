import AccessConfig
import AccessController
import AccessCore
import AccessRuntime
import AccessStore
import AccessTestSupport
@testable import AccessUpstream
import Glibc
import Logging
import ServiceLifecycle
import Synchronization
import Testing

// The MQTT publisher against a real mosquitto on 127.0.0.1 (a free port, a generated config,
// persistence in a temporary directory so a restarted broker keeps sessions and retained
// messages), watched by mosquitto_sub. Brokers and subscribers are started with posix_spawn and
// stopped with SIGKILL. Every wait is bounded; nothing asserts on speed.

// MARK: - Peers

/// A mosquitto broker for one test, restartable on the same port and persistence directory.
private final class TestBroker: @unchecked Sendable {
    let dir: TemporaryDirectory
    private(set) var port: Int
    private(set) var process: PeerProcess?
    private var starts = 0
    /// Lines for the listener (TLS, authentication).
    let listenerConfig: String
    /// What mosquitto_sub/mosquitto_pub need to reach it (`--cafile`, `-u`/`-P`).
    let clientArgs: [String]

    init(dir: TemporaryDirectory, listenerConfig: String = "allow_anonymous true", clientArgs: [String] = []) throws {
        self.dir = dir
        self.listenerConfig = listenerConfig
        self.clientArgs = clientArgs
        port = try ModbusTestEnvironment.freePort()
    }

    var clientCommand: [String] { ["-h", "127.0.0.1", "-p", String(port)] + clientArgs }

    var persistenceFile: String { dir.file("broker/mosquitto.db") }

    private func writeConfig() -> String {
        mkdir(dir.file("broker"), 0o700)
        // As root, mosquitto would switch to user `mosquitto`, who cannot write our directory.
        let user = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "root"
        return dir.write("mosquitto-\(port).conf", """
            listener \(port) 127.0.0.1
            \(listenerConfig)
            user \(user)
            persistence true
            persistence_location \(dir.file("broker"))/
            autosave_interval 1
            max_inflight_messages 0
            max_queued_messages 0
            log_dest stdout
            log_type error
            log_type warning
            log_type notice
            """)
    }

    /// Starts the broker and waits until its port accepts connections.
    func start() async throws {
        for attempt in 0..<3 {
            starts += 1
            let child = try PeerProcess(["/usr/sbin/mosquitto", "-c", writeConfig()], log: dir.file("broker-\(starts).log"))
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, !child.hasExited {
                if portAccepts(port) {
                    process = child
                    return
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            child.kill()
            // The port may have been taken between choosing and binding: another one, unless a
            // restart must keep this one.
            if starts > attempt + 1 { break }
            port = try ModbusTestEnvironment.freePort()
        }
        throw PeerError(description: "mosquitto did not start on port \(port): \(readTextFile(dir.file("broker-\(starts).log")) ?? "")")
    }

    func kill() {
        process?.kill()
        process = nil
    }

    /// Waits until the broker has saved its state after `since` (CLOCK_REALTIME seconds), so a
    /// subscriber's persistent session survives a SIGKILL.
    func waitForSave(after since: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            var info = stat()
            if stat(persistenceFile, &info) == 0 && info.st_mtim.tv_sec > since { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw PeerError(description: "mosquitto saved no state in 10 s")
    }
}

private func portAccepts(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

private func wallSeconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts.tv_sec
}

/// One message as mosquitto_sub printed it.
private struct Received: Equatable {
    var retained: Bool
    var topic: String
    var payload: String
    /// The event's serial, when the payload is an event.
    var serial: Int64?

    init(retained: Bool, topic: String, payload: String) {
        self.retained = retained
        self.topic = topic
        self.payload = payload
        serial = payload.hasPrefix("{") ? JSON.parse(payload)?["serial"]?.intValue : nil
    }
}

/// `mosquitto_sub -q 1 -c -i ID` (a persistent QoS 1 session) on `TOPIC/#`, line-buffered into a
/// log that is read incrementally.
private final class TestSubscriber: @unchecked Sendable {
    let process: PeerProcess
    private var offset: off_t = 0
    private var partial: [UInt8] = []
    private(set) var messages: [Received] = []
    private var byTopic: [String: [Received]] = [:]
    private var distinct: [String: Set<Int64>] = [:]

    init(broker: TestBroker, topic: String, id: String) throws {
        process = try PeerProcess(["stdbuf", "-oL", "mosquitto_sub"] + broker.clientCommand + ["-q", "1", "-c",
                                   "-i", id, "-t", "\(topic)/#", "-F", "%r %t %p"],
                                  log: broker.dir.file("sub-\(id).log"))
    }

    deinit { process.kill() }

    /// Starts a subscriber and waits until its subscription is in place (a probe it publishes
    /// itself comes back), so that nothing published afterwards can miss it.
    static func subscribed(broker: TestBroker, topic: String, id: String) async throws -> TestSubscriber {
        let sub = try TestSubscriber(broker: broker, topic: topic, id: id)
        for attempt in 0..<25 {
            let probe = try PeerProcess(["mosquitto_pub"] + broker.clientCommand + ["-q", "1", "-t", "\(topic)/probe",
                                         "-m", "probe \(attempt)"], log: broker.dir.file("probe.log"))
            _ = probe.wait()
            let deadline = ContinuousClock.now + .milliseconds(200)
            while ContinuousClock.now < deadline {
                if !sub.on("\(topic)/probe").isEmpty { return sub }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        throw PeerError(description: "mosquitto_sub did not subscribe within 5 s: \(sub.process.output)")
    }

    /// Reads what was printed since the last call.
    func refresh() {
        let fd = open(process.log, O_RDONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = pread(fd, &chunk, chunk.count, offset)
            guard n > 0 else { break }
            offset += off_t(n)
            partial += chunk[0..<n]
        }
        while let newline = partial.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: partial[..<newline], as: UTF8.self)
            partial.removeSubrange(...newline)
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let m = Received(retained: parts[0] == "1", topic: String(parts[1]), payload: String(parts[2]))
            messages.append(m)
            byTopic[m.topic, default: []].append(m)
            if let serial = m.serial { distinct[m.topic, default: []].insert(serial) }
        }
    }

    func on(_ topic: String) -> [Received] {
        refresh()
        return byTopic[topic] ?? []
    }

    /// Waits (bounded) until `done` holds for the messages so far.
    func wait(timeout: Duration, _ what: String, _ done: (TestSubscriber) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            refresh()
            if done(self) { return }
            if process.hasExited { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        refresh()
        if done(self) { return }
        throw PeerError(description: "subscriber: \(what) not seen within \(timeout)\(process.hasExited ? " (mosquitto_sub ended)" : ""); "
                        + "\(messages.count) messages, last: \(messages.last.map { "\($0.topic) \($0.payload.prefix(80))" } ?? "none")")
    }

    /// The distinct serials seen on `topic`.
    func serials(on topic: String) -> Set<Int64> {
        refresh()
        return distinct[topic] ?? []
    }
}

/// A one-shot `mosquitto_sub -C 1` on a topic: what a newcomer sees (the retained message).
private func retainedMessage(broker: TestBroker, topic: String) async throws -> String {
    let child = try PeerProcess(["mosquitto_sub"] + broker.clientCommand + ["-t", topic, "-C", "1", "-W", "5",
                                 "-F", "%r %p"], log: broker.dir.file("retained-\(UInt32.random(in: 0...UInt32.max)).log"))
    _ = try await child.waitForOutput(timeout: .seconds(8)) { $0.contains("\n") ? true : nil }
    return child.output.withoutTrailingNewline
}

private extension String {
    var withoutTrailingNewline: String {
        var s = Substring(self)
        while let c = s.last, c == "\n" || c == " " { s = s.dropLast() }
        return String(s)
    }
}

// MARK: - A site: a real database file and its feed

private final class MQTTSite: @unchecked Sendable {
    static let controllerID = "mqtt-test-1"
    let dir: TemporaryDirectory
    let db: AccessDatabase
    let feed: EventFeed
    private var made = 0

    init(dir: TemporaryDirectory) throws {
        self.dir = dir
        db = try AccessDatabase(path: dir.file("access.db"))
        feed = EventFeed(lastSerial: try db.lastEventSerial())
    }

    var prefix: String { "community/\(Self.controllerID)" }
    var eventsTopic: String { "\(prefix)/events" }
    var alarmsTopic: String { "\(prefix)/alarms" }
    var statusTopic: String { "\(prefix)/status" }

    /// Appends `count` events (every `alarmEvery`-th an alarm) as the store worker would, and
    /// tells the feed.
    @discardableResult
    func append(_ count: Int, alarmEvery: Int = 10) throws -> [AccessEvent] {
        var events: [AccessEvent] = []
        for _ in 0..<count {
            made += 1
            let t = 1_790_000_000_000_000 + Int64(made) * 1_000
            if made % alarmEvery == 0 {
                events.append(AccessEvent(timeMicros: t, utcOffset: 28_800, type: .alarm, portal: "fence-zone-1", reason: .fenceBroken,
                                          detail: [("alarm", .bool(true)), ("zone", .int(1))]))
            } else {
                events.append(AccessEvent(timeMicros: t, utcOffset: 28_800, type: .access, portal: "gate-in", direction: .in,
                                          credentialKind: .card, credential: String(6_553_700 + made), personID: "P\(made)",
                                          houseID: "B01-U1-101", role: .owner, granted: true, reason: .granted))
            }
        }
        let stored = try db.appendEvents(events)
        if let last = stored.last?.serial { feed.publish(last) }
        return stored
    }

    /// The JSON each serial must arrive with (the HTTP API's), by serial.
    func expectedPayloads() throws -> [Int64: String] {
        var out: [Int64: String] = [:]
        for e in try db.events(EventQuery(after: 0, limit: 1_000_000)) {
            out[e.serial] = e.json(controllerID: Self.controllerID).rendered()
        }
        return out
    }

    func alarmSerials() throws -> [Int64] {
        var q = EventQuery(after: 0, limit: 1_000_000)
        q.type = .alarm
        return try db.events(q).map(\.serial)
    }

    func storedCursor() throws -> Int64? {
        try db.outboxCursor(MQTTPublisher.outboxName)
    }

    func publisher(broker: TestBroker, rate: Int = 100_000, extra: (inout SiteConfig.MQTT) -> Void = { _ in }) -> MQTTPublisher {
        var config = SiteConfig.MQTT(host: "127.0.0.1", port: broker.port, topicPrefix: "community", backlogRate: rate)
        extra(&config)
        var tuning = MQTTPublisher.Tuning()
        tuning.maxBackoff = .seconds(2)
        return MQTTPublisher(config: config, controllerID: Self.controllerID, databasePath: db.path, feed: feed,
                             logger: Logger(label: "test.mqtt"), tuning: tuning)
    }
}

/// What a subscriber saw on one topic, judged against the ordering guarantee.
private struct Delivery {
    /// Serials in order of their first arrival.
    var firstArrivals: [Int64] = []
    var duplicates = 0
    /// Messages whose JSON differs from the log's for that serial.
    var wrongPayloads: [Int64] = []
    var unparsable = 0

    init(_ messages: [Received], expected: [Int64: String]) {
        var seen = Set<Int64>()
        for m in messages {
            guard let serial = m.serial else {
                unparsable += 1
                continue
            }
            if expected[serial] != m.payload { wrongPayloads.append(serial) }
            if seen.insert(serial).inserted { firstArrivals.append(serial) } else { duplicates += 1 }
        }
    }

    var inOrder: Bool { zip(firstArrivals, firstArrivals.dropFirst()).allSatisfy { $0 < $1 } }
}

// MARK: - Tests

@Suite("MQTT publisher (libmosquitto, real broker)", .serialized)
struct MQTTTests {
    @Test func eventsAndAlarmsArriveInOrderWithRetainedStatus() async throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        let publisher = site.publisher(broker: broker)
        try publisher.start()
        try await sub.wait(timeout: .seconds(10), "status online") { $0.on(site.statusTopic).map(\.payload) == ["online"] }
        #expect(try await retainedMessage(broker: broker, topic: site.statusTopic) == "1 online")

        for _ in 0..<6 {
            try site.append(50)
            try await Task.sleep(for: .milliseconds(20))
        }
        try await sub.wait(timeout: .seconds(20), "300 events and 30 alarms") {
            $0.serials(on: site.eventsTopic).count == 300 && $0.serials(on: site.alarmsTopic).count == 30
        }
        let expected = try site.expectedPayloads()
        // Exactly the log, in order, once (no reconnection happened), with the HTTP API's JSON.
        #expect(sub.on(site.eventsTopic).map(\.payload) == (1...300).map { expected[Int64($0)]! })
        #expect(sub.on(site.alarmsTopic).map(\.payload) == (try site.alarmSerials()).map { expected[$0]! })
        #expect(sub.on(site.eventsTopic).first?.payload.hasPrefix("{\"id\":\"\(MQTTSite.controllerID):1\",\"serial\":1,") == true)
        // Each pushed event carries its link in the log's hash chain.
        let pushed = sub.on(site.eventsTopic).compactMap { JSON.parse($0.payload) }
        #expect(pushed.first?["prev_hash"] == .string(String(repeating: "0", count: 64)))
        for (earlier, later) in zip(pushed, pushed.dropFirst()) {
            #expect(earlier["hash"]?.stringValue?.count == 64 && later["prev_hash"] == earlier["hash"])
        }

        await publisher.stop()
        try await sub.wait(timeout: .seconds(5), "status offline") { $0.on(site.statusTopic).map(\.payload) == ["online", "offline"] }
        #expect(try await retainedMessage(broker: broker, topic: site.statusTopic) == "1 offline")
        #expect(try site.storedCursor() == 300)
        #expect(publisher.status.storedSerial == 300 && publisher.status.connections == 1 && !publisher.status.connected)
    }

    @Test func theWillSaysOfflineWhenTheConnectionDropsAndPublishingResumes() async throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        let publisher = site.publisher(broker: broker)
        try publisher.start()
        try site.append(20)
        try await sub.wait(timeout: .seconds(10), "20 events") { $0.serials(on: site.eventsTopic).count == 20 }

        publisher.dropConnectionForTesting()  // no DISCONNECT: the broker publishes the will
        try await sub.wait(timeout: .seconds(10), "will, then online again") {
            $0.on(site.statusTopic).map(\.payload) == ["online", "offline", "online"]
        }
        try site.append(20)
        try await sub.wait(timeout: .seconds(10), "40 events") { $0.serials(on: site.eventsTopic).count == 40 }
        let delivery = Delivery(sub.on(site.eventsTopic), expected: try site.expectedPayloads())
        #expect(delivery.firstArrivals == Array(1...40) && delivery.wrongPayloads.isEmpty)
        #expect(publisher.status.connections == 2)
        await publisher.stop()
        #expect(try site.storedCursor() == 40)
    }

    @Test func brokerKilledAndRestartedMidStreamLosesNothing() async throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        let publisher = site.publisher(broker: broker, rate: 1_000)  // 2,000 events take about 2 s
        try publisher.start()
        try await sub.wait(timeout: .seconds(10), "status online") { $0.on(site.statusTopic).map(\.payload).contains("online") }
        try await broker.waitForSave(after: wallSeconds())  // the subscriber's session survives the kill

        let writer = Task {
            for _ in 0..<40 {
                try site.append(50)
                try await Task.sleep(for: .milliseconds(25))
            }
        }
        try await sub.wait(timeout: .seconds(20), "500 events before the kill") { $0.serials(on: site.eventsTopic).count >= 500 }
        broker.kill()
        let atKill = sub.serials(on: site.eventsTopic).count
        try await Task.sleep(for: .seconds(1))
        try await broker.start()
        try await writer.value
        try await sub.wait(timeout: .seconds(60), "all 2,000 events and 200 alarms") {
            $0.serials(on: site.eventsTopic).count == 2_000 && $0.serials(on: site.alarmsTopic).count == 200
        }
        let expected = try site.expectedPayloads()
        let events = Delivery(sub.on(site.eventsTopic), expected: expected)
        let alarms = Delivery(sub.on(site.alarmsTopic), expected: expected)
        #expect(atKill < 2_000, "the kill came mid-stream")
        #expect(events.firstArrivals == Array(1...2_000), "every event, first arrivals in serial order")
        #expect(events.wrongPayloads.isEmpty && events.unparsable == 0, "duplicates only of the same id and JSON")
        #expect(alarms.firstArrivals == (try site.alarmSerials()) && alarms.wrongPayloads.isEmpty)
        #expect(publisher.status.connections >= 2)
        print("broker killed after \(atKill) events; \(events.duplicates) duplicate events, \(alarms.duplicates) duplicate alarms after the restart")
        await publisher.stop()
        #expect(try site.storedCursor() == 2_000)
    }

    @Test func aRestartedPublisherResumesFromTheStoredCursor() async throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")

        // A: publishes 1…200, stops in order: the cursor is stored.
        let a = site.publisher(broker: broker)
        try a.start()
        try site.append(200)
        try await sub.wait(timeout: .seconds(10), "200 events") { $0.serials(on: site.eventsTopic).count == 200 }
        await a.stop()
        #expect(try site.storedCursor() == 200)

        // B: 201…300 were written while nothing published; B sends those and nothing acknowledged.
        try site.append(100)
        let b = site.publisher(broker: broker)
        try b.start()
        try await sub.wait(timeout: .seconds(10), "300 events") { $0.serials(on: site.eventsTopic).count == 300 }
        try await Task.sleep(for: .milliseconds(300))  // room for any resend to show
        let serials = sub.on(site.eventsTopic).compactMap(\.serial)
        #expect(serials == Array(1...300), "nothing acknowledged was sent again")
        await b.stop()
        #expect(try site.storedCursor() == 300)

        // C: runs while the broker is down: nothing is acknowledged, the cursor stays.
        try await broker.waitForSave(after: wallSeconds())
        broker.kill()
        try site.append(50)
        let c = site.publisher(broker: broker)
        try c.start()
        try await Task.sleep(for: .milliseconds(1_200))
        #expect(c.status.lastError != nil && !c.status.connected)
        await c.stop()
        #expect(try site.storedCursor() == 300)

        // D: the broker is back: 301…350 arrive, once each.
        try await broker.start()
        let d = site.publisher(broker: broker)
        try d.start()
        try await sub.wait(timeout: .seconds(20), "350 events") { $0.serials(on: site.eventsTopic).count == 350 }
        await d.stop()
        let delivery = Delivery(sub.on(site.eventsTopic), expected: try site.expectedPayloads())
        #expect(delivery.firstArrivals == Array(1...350) && delivery.wrongPayloads.isEmpty)
        #expect(sub.on(site.eventsTopic).compactMap(\.serial).filter { $0 <= 300 }.count == 300, "1…300 never resent")
        #expect(try site.storedCursor() == 350)
    }

    @Test func afterACrashOnlyWhatWasNotStoredAsAcknowledgedIsSentAgain() async throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        let a = site.publisher(broker: broker, rate: 1_000)
        try a.start()
        try site.append(1_000)
        try await sub.wait(timeout: .seconds(10), "300 events") { $0.serials(on: site.eventsTopic).count >= 300 }
        await a.crashForTesting()
        let stored = try #require(try site.storedCursor())
        let seenAtCrash = sub.serials(on: site.eventsTopic).count
        try await sub.wait(timeout: .seconds(20), "the will") { $0.on(site.statusTopic).map(\.payload) == ["online", "offline"] }  // generous: the broker is still delivering the backlog on a loaded machine

        let b = site.publisher(broker: broker, rate: 1_000)
        try b.start()
        try await sub.wait(timeout: .seconds(20), "all 1,000 events") { $0.serials(on: site.eventsTopic).count == 1_000 }
        await b.stop()
        let received = sub.on(site.eventsTopic).compactMap(\.serial)
        let delivery = Delivery(sub.on(site.eventsTopic), expected: try site.expectedPayloads())
        #expect(delivery.firstArrivals == Array(1...1_000) && delivery.wrongPayloads.isEmpty)
        #expect(stored > 0 && stored <= Int64(seenAtCrash))
        #expect(received.filter { $0 <= stored }.count == Int(stored), "nothing stored as acknowledged was sent again")
        #expect(Set(received.filter { $0 > stored && received.firstIndex(of: $0) != received.lastIndex(of: $0) }).allSatisfy { $0 <= Int64(seenAtCrash) + 100 },
                "only what was not stored (acknowledged in the last 250 ms, or in flight) came twice")
        print("crash: \(seenAtCrash) events seen, cursor stored at \(stored); \(delivery.duplicates) sent again after the restart")
        #expect(try site.storedCursor() == 1_000)
    }

    @Test func aLiveAlarmDoesNotWaitForTheBacklog() async throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        try site.append(600)  // the backlog: 600 events, 60 of them alarms
        let publisher = site.publisher(broker: broker, rate: 100)  // drains in about 6 s
        try publisher.start()
        try await sub.wait(timeout: .seconds(10), "the drain begins") { !$0.on(site.eventsTopic).isEmpty }

        let live = try site.append(1, alarmEvery: 1)[0]  // serial 601, an alarm
        try await sub.wait(timeout: .seconds(10), "the live alarm") { $0.serials(on: site.alarmsTopic).contains(live.serial) }
        let drainedWhenAlarmArrived = sub.serials(on: site.eventsTopic).max() ?? 0
        #expect(drainedWhenAlarmArrived < 600, "the alarm came on alarms before the backlog on events was drained")
        let alarms = Delivery(sub.on(site.alarmsTopic), expected: try site.expectedPayloads())
        #expect(alarms.firstArrivals == (try site.alarmSerials()), "backlog alarms first, then the live one, in serial order")

        try await sub.wait(timeout: .seconds(30), "all 601 events") { $0.serials(on: site.eventsTopic).count == 601 }
        let events = Delivery(sub.on(site.eventsTopic), expected: try site.expectedPayloads())
        #expect(events.firstArrivals == Array(1...601) && events.wrongPayloads.isEmpty, "events strictly in serial order")
        print("live alarm arrived when events had reached serial \(drainedWhenAlarmArrived) of 600")
        await publisher.stop()
    }

    /// The drain rate after an outage: events accumulate while the broker is down, then it starts.
    /// ACCESS_MQTT_DRAIN_EVENTS (20000) and ACCESS_MQTT_DRAIN_RATE (backlog_rate, 5000) set the run.
    @Test func backlogAfterAnOutageDrainsCompletelyInOrder() async throws {
        let count = getenv("ACCESS_MQTT_DRAIN_EVENTS").flatMap { Int(String(cString: $0)) } ?? 20_000
        let rate = getenv("ACCESS_MQTT_DRAIN_RATE").flatMap { Int(String(cString: $0)) } ?? 5_000
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        let publisher = site.publisher(broker: broker, rate: rate)
        try publisher.start()
        try await sub.wait(timeout: .seconds(10), "status online") { $0.on(site.statusTopic).map(\.payload).contains("online") }
        try await broker.waitForSave(after: wallSeconds())
        broker.kill()

        for _ in 0..<(count / 1_000) { try site.append(1_000) }
        try site.append(count % 1_000)
        let t0 = ContinuousClock.now
        try await broker.start()
        // The publisher's side: from its reconnection to the broker's last acknowledgement.
        let watch = Task { () -> (connected: ContinuousClock.Instant, acked: ContinuousClock.Instant)? in
            var connected: ContinuousClock.Instant?
            while !Task.isCancelled {
                let status = publisher.status
                if connected == nil && status.connected { connected = .now }
                if let connected, status.ackedSerial >= Int64(count) { return (connected, .now) }
                try? await Task.sleep(for: .milliseconds(2))
            }
            return nil
        }
        try await sub.wait(timeout: .seconds(Double(count) / Double(rate) * 3 + 60), "all \(count) events") {
            $0.serials(on: site.eventsTopic).count == count
        }
        let t1 = ContinuousClock.now
        let publisherSide = try #require(await watch.value)
        let events = Delivery(sub.on(site.eventsTopic), expected: try site.expectedPayloads())
        #expect(events.firstArrivals == (1...count).map(Int64.init) && events.wrongPayloads.isEmpty)
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        let drain = seconds(publisherSide.acked - publisherSide.connected)
        let total = seconds(t1 - t0)
        print("""
            MQTT drain: \(count) events, backlog_rate \(rate)/s: reconnected \(format2(seconds(publisherSide.connected - t0))) s after the \
            broker started; all acknowledged \(format2(drain)) s later: \(Int(Double(count) / drain)) events/s; the subscriber had all \
            \(format2(total)) s after the broker started (\(Int(Double(count) / total)) events/s end to end); \(events.duplicates) duplicates
            """)
        await publisher.stop()
    }

    @Test func asAServiceItPublishesWhatIsDurableThenOfflineOnGracefulShutdown() async throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        // accessd's way: the initializer it uses, in a ServiceGroup.
        let service = MQTTPublisherService(
            config: SiteConfig.MQTT(host: "127.0.0.1", port: broker.port, topicPrefix: "community", backlogRate: 100),
            controllerID: MQTTSite.controllerID, databasePath: site.db.path, feed: site.feed, logger: Logger(label: "test.mqtt"))
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test.group")))
        let running = Task { try await group.run() }
        try await sub.wait(timeout: .seconds(10), "status online") { $0.on(site.statusTopic).map(\.payload) == ["online"] }
        try site.append(60)  // at 100/s with a burst of 10: still going out when the shutdown comes
        try await Task.sleep(for: .milliseconds(50))
        await group.triggerGracefulShutdown()
        try await running.value
        try await sub.wait(timeout: .seconds(5), "60 events and offline") {
            $0.serials(on: site.eventsTopic).count == 60 && $0.on(site.statusTopic).map(\.payload) == ["online", "offline"]
        }
        #expect(try site.storedCursor() == 60)
        #expect(try await retainedMessage(broker: broker, topic: site.statusTopic) == "1 offline")
    }

    @Test func tlsWithTheConfiguredCA() async throws {
        let dir = TemporaryDirectory("mqtt")
        func openssl(_ args: [String]) throws {
            let run = try PeerProcess(["openssl"] + args, log: dir.file("openssl.log"))
            guard run.wait() == 0 else { throw PeerError(description: "openssl \(args.first ?? ""): \(run.output)") }
        }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test community CA",
                     "-keyout", dir.file("ca.key"), "-out", dir.file("ca.pem")])
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", dir.file("server.key"),
                     "-out", dir.file("server.csr")])
        try openssl(["x509", "-req", "-in", dir.file("server.csr"), "-CA", dir.file("ca.pem"), "-CAkey", dir.file("ca.key"),
                     "-CAcreateserial", "-days", "1", "-out", dir.file("server.pem"),
                     "-extfile", dir.write("san.ext", "subjectAltName=IP:127.0.0.1\n")])
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir, listenerConfig: """
            allow_anonymous true
            cafile \(dir.file("ca.pem"))
            certfile \(dir.file("server.pem"))
            keyfile \(dir.file("server.key"))
            """, clientArgs: ["--cafile", dir.file("ca.pem")])
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        let publisher = site.publisher(broker: broker) { $0.tlsCAFile = dir.file("ca.pem") }
        try publisher.start()
        try site.append(30)
        try await sub.wait(timeout: .seconds(10), "30 events over TLS") { $0.serials(on: site.eventsTopic).count == 30 }
        await publisher.stop()
        #expect(try site.storedCursor() == 30)

        // A CA that did not sign the broker's certificate: no connection, nothing acknowledged.
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=another CA",
                     "-keyout", dir.file("other.key"), "-out", dir.file("other.pem")])
        try site.append(5)
        let wrong = site.publisher(broker: broker) { $0.tlsCAFile = dir.file("other.pem") }
        try wrong.start()
        try await Task.sleep(for: .milliseconds(800))
        #expect(!wrong.status.connected && wrong.status.connections == 0 && wrong.status.lastError != nil)
        await wrong.stop()
        #expect(try site.storedCursor() == 30)
    }

    @Test func aBrokerThatRequiresCertificatesTakesOursAndRefusesAClientWithout() async throws {
        let dir = TemporaryDirectory("mqtt")
        func openssl(_ args: [String]) throws {
            let run = try PeerProcess(["openssl"] + args, log: dir.file("openssl.log"))
            guard run.wait() == 0 else { throw PeerError(description: "openssl \(args.first ?? ""): \(run.output)") }
        }
        func signed(_ name: String, subject: String, extensions: String) throws {
            try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", dir.file("\(name).key"), "-out", dir.file("\(name).csr")])
            try openssl(["x509", "-req", "-in", dir.file("\(name).csr"), "-CA", dir.file("ca.pem"), "-CAkey", dir.file("ca.key"),
                         "-CAcreateserial", "-days", "1", "-out", dir.file("\(name).pem"), "-extfile", dir.write("\(name).ext", extensions)])
        }
        try openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test community CA",
                     "-keyout", dir.file("ca.key"), "-out", dir.file("ca.pem")])
        try signed("server", subject: "/CN=127.0.0.1", extensions: "subjectAltName=IP:127.0.0.1\n")
        try signed("controller", subject: "/CN=\(MQTTSite.controllerID)", extensions: "extendedKeyUsage=clientAuth\n")
        try signed("watcher", subject: "/CN=watcher", extensions: "extendedKeyUsage=clientAuth\n")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir, listenerConfig: """
            allow_anonymous true
            require_certificate true
            cafile \(dir.file("ca.pem"))
            certfile \(dir.file("server.pem"))
            keyfile \(dir.file("server.key"))
            """, clientArgs: ["--cafile", dir.file("ca.pem"), "--cert", dir.file("watcher.pem"), "--key", dir.file("watcher.key")])
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")
        let publisher = site.publisher(broker: broker) {
            $0.tlsCAFile = dir.file("ca.pem")
            $0.tlsCertificate = dir.file("controller.pem")
            $0.tlsKey = dir.file("controller.key")
        }
        try publisher.start()
        try site.append(20)
        try await sub.wait(timeout: .seconds(10), "20 events with a client certificate") { $0.serials(on: site.eventsTopic).count == 20 }
        await publisher.stop()
        #expect(try site.storedCursor() == 20)

        // The same broker, a client with the CA but no certificate of its own: refused, nothing acknowledged.
        try site.append(5)
        let anonymous = site.publisher(broker: broker) { $0.tlsCAFile = dir.file("ca.pem") }
        try anonymous.start()
        try await Task.sleep(for: .milliseconds(800))
        #expect(!anonymous.status.connected && anonymous.status.connections == 0 && anonymous.status.lastError != nil)
        await anonymous.stop()
        #expect(try site.storedCursor() == 20)
        #expect(sub.serials(on: site.eventsTopic).count == 20)
    }

    @Test func credentialsFromThePasswordFile() async throws {
        let dir = TemporaryDirectory("mqtt")
        let made = try PeerProcess(["mosquitto_passwd", "-b", "-c", dir.file("broker.passwd"), "accessd", "s3cret pass"],
                                   log: dir.file("passwd.log"))
        #expect(made.wait() == 0)
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir, listenerConfig: "allow_anonymous false\npassword_file \(dir.file("broker.passwd"))",
                                    clientArgs: ["-u", "accessd", "-P", "s3cret pass"])
        try await broker.start()
        defer { broker.kill() }
        let sub = try await TestSubscriber.subscribed(broker: broker, topic: site.prefix, id: "watcher")

        let wrong = site.publisher(broker: broker) { $0.username = "accessd"; $0.passwordFile = dir.write("wrong.pw", "guess\n") }
        try wrong.start()
        try await Task.sleep(for: .milliseconds(800))
        let refusal = wrong.status.lastError ?? ""
        #expect(!wrong.status.connected && refusal.contains("not authorised") && !refusal.contains("guess"), "\(refusal)")
        await wrong.stop()

        let right = site.publisher(broker: broker) { $0.username = "accessd"; $0.passwordFile = dir.write("mqtt.pw", "s3cret pass\n") }
        try right.start()
        try site.append(10)
        try await sub.wait(timeout: .seconds(10), "10 events") { $0.serials(on: site.eventsTopic).count == 10 }
        await right.stop()
    }

    @Test func aMissingPasswordOrCAFileFailsTheStartWithTheFileAndErrno() async throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let broker = try TestBroker(dir: dir)
        let noPassword = site.publisher(broker: broker) { $0.username = "accessd"; $0.passwordFile = dir.file("missing.pw") }
        #expect(throws: MQTTError.system("read password_file \(dir.file("missing.pw"))", errno: ENOENT)) { try noPassword.start() }
        await noPassword.stop()
        let empty = site.publisher(broker: broker) { $0.username = "accessd"; $0.passwordFile = dir.write("empty.pw", "\n") }
        let error = #expect(throws: MQTTError.self) { try empty.start() }
        #expect(error?.description == "read password_file \(dir.file("empty.pw")): the first line is empty")
        let noCA = site.publisher(broker: broker) { $0.tlsCAFile = dir.file("missing-ca.pem") }
        #expect(throws: MQTTError.system("read tls_ca_file \(dir.file("missing-ca.pem"))", errno: ENOENT)) { try noCA.start() }
        #expect("\(MQTTError.system("connect h:1", errno: ECONNREFUSED))" == "connect h:1: Connection refused (errno 111)")
    }

    // MARK: Configuration

    static let site = """
        [controller]
        id = "xfl-north-1"

        [database]
        path = "/tmp/x.db"

        [[portal]]
        id = "gate-in"

        [upstream.mqtt]
        host = "mqtt.example.net"
        """

    func parse(_ text: String) throws(ConfigError) -> SiteConfig {
        let dir = TemporaryDirectory("mqtt-config")
        return try SiteConfig.load(path: dir.write("site.toml", text))
    }

    @Test func aClientCertificateNeedsItsKeyAndTLS() throws {
        for (lines, message) in [("tls_ca_file = \"ca.pem\"\ntls_certificate = \"c.pem\"", "upstream.mqtt.tls_certificate: a client certificate needs both"),
                                 ("tls_certificate = \"c.pem\"\ntls_key = \"c.key\"", "upstream.mqtt.tls_certificate: a client certificate needs TLS")] {
            #expect { try parse(Self.site + "\n" + lines) } throws: { "\($0)".contains(message) }
        }
        let ok = try #require(try parse(Self.site + "\ntls_ca_file = \"ca.pem\"\ntls_certificate = \"c.pem\"\ntls_key = \"c.key\"").mqtt)
        #expect(ok.tlsCertificate == "c.pem" && ok.tlsKey == "c.key")
    }

    @Test func mqttConfigDefaultsAndEveryKey() throws {
        let defaults = try #require(try parse(Self.site).mqtt)
        #expect(defaults == SiteConfig.MQTT(host: "mqtt.example.net", port: 1883, topicPrefix: "community", clientID: nil,
                                            keepaliveSeconds: 60, backlogRate: 500))
        let full = try #require(try parse(Self.site + """

            port = 8883
            topic_prefix = "xfl/gates"
            client_id = "xfl-north-1-pub"
            username = "accessd"
            password_file = "/etc/accessd/mqtt.pw"
            tls_ca_file = "/etc/ssl/certs/community-ca.pem"
            keepalive_seconds = 30
            backlog_rate = 200
            """).mqtt)
        #expect(full == SiteConfig.MQTT(host: "mqtt.example.net", port: 8883, topicPrefix: "xfl/gates", clientID: "xfl-north-1-pub",
                                        username: "accessd", passwordFile: "/etc/accessd/mqtt.pw",
                                        tlsCAFile: "/etc/ssl/certs/community-ca.pem", keepaliveSeconds: 30, backlogRate: 200))
    }

    @Test(arguments: [
        ("backlog_rate = 0", "12: upstream.mqtt.backlog_rate: 0 is out of range 1…1000000"),
        ("keepalive_seconds = \"60\"", "12: upstream.mqtt.keepalive_seconds: must be an integer, not a string"),
        ("keepalive_seconds = 1", "12: upstream.mqtt.keepalive_seconds: 1 is out of range 5…65535"),
        ("topic_prefix = \"community/#\"",
         "12: upstream.mqtt.topic_prefix: \"community/#\" is not a topic prefix (not empty, no +, # or leading/trailing /)"),
        ("client_id = \"\"", "12: upstream.mqtt.client_id: may not be empty"),
        ("password_file = \"/etc/accessd/mqtt.pw\"",
         "12: upstream.mqtt.password_file: needs upstream.mqtt.username (MQTT 3.1.1 sends no password without a user name)"),
        ("tls_ca = \"/etc/ca.pem\"",
         "12: upstream.mqtt.tls_ca: unknown key (known here: host, port, topic_prefix, client_id, username, password_file, tls_ca_file, tls_certificate, tls_key, keepalive_seconds, backlog_rate)"),
        ("port = 0", "12: upstream.mqtt.port: 0 is out of range 1…65535"),
    ])
    func malformedMQTTValuesAreRefusedWithFileAndLine(_ line: String, _ expected: String) throws {
        let dir = TemporaryDirectory("mqtt-config")
        let path = dir.write("site.toml", Self.site + "\n" + line + "\n")
        do {
            _ = try SiteConfig.load(path: path)
            Issue.record("accepted: \(line)")
        } catch {
            #expect("\(error)" == "\(path):\(expected)")
        }
    }

    // MARK: The outbox as a value

    @Test func theCursorMovesOnlyOverAcknowledgedMessagesOfBothLanes() {
        var o = MQTTOutbox(cursor: 10)
        o.published(.events, serial: 11, mid: 1)
        o.published(.events, serial: 12, mid: 2)
        o.published(.events, serial: 14, mid: 3)  // 13 does not exist (a gap in the log)
        o.published(.alarms, serial: 12, mid: 4)
        #expect(o.cursor == 10)
        o.acknowledged(mid: 2)  // out of order: 11 is still out
        #expect(o.cursor == 10)
        o.acknowledged(mid: 1)
        #expect(o.events.acked == 13 && o.alarms.acked == 11 && o.cursor == 11, "12 waits for its alarm copy")
        o.acknowledged(mid: 4)
        #expect(o.cursor == 12, "the alarm lane has read nothing beyond 12 yet")
        o.scanned(.alarms, through: 20)
        #expect(o.cursor == 13, "14 is still out")
        o.acknowledged(mid: 3)
        #expect(o.cursor == 14)
        #expect(o.acknowledged(mid: 99) == nil)
    }

    @Test func aLostConnectionRewindsEachLaneToItsAcknowledgedCursor() {
        var o = MQTTOutbox(cursor: 0)
        for s in 1...5 { o.published(.events, serial: Int64(s), mid: Int32(s)) }
        o.published(.alarms, serial: 9, mid: 6)
        o.acknowledged(mid: 1)
        o.acknowledged(mid: 2)
        o.acknowledged(mid: 6)
        o.connectionLost()
        #expect(o.events == .init(published: 2) && o.alarms == .init(published: 9))
        #expect(o.cursor == 2)
    }

    @Test func theTokenBucketPacesAtItsRate() {
        var bucket = MQTTTokenBucket(rate: 500, now: 0)
        var taken = 0
        while bucket.take() { taken += 1 }
        #expect(taken == 50, "a tenth of a second of burst")
        bucket.refill(now: 1_000_000_000)  // one second later: capped at the burst
        taken = 0
        while bucket.take() { taken += 1 }
        #expect(taken == 50)
        #expect(bucket.nanosUntilToken > 1_900_000 && bucket.nanosUntilToken < 2_100_000)
        bucket.refill(now: 1_010_000_000)
        #expect(Int(bucket.tokens) == 5)
    }
}

@Suite("MQTT engine timing on a clock moved by hand")
struct MQTTTimingTests {
    @Test func theReconnectWaitDoublesToItsCapAndAStableConnectionResetsIt() {
        var backoff = MQTTReconnectBackoff(initial: .milliseconds(500), max: .seconds(30), stable: .seconds(10))
        var now: UInt64 = 5_000_000_000
        var waits: [UInt64] = []
        for _ in 0..<8 {
            let next = backoff.failed(now: now)
            waits.append(next - now)
            now = next
        }
        #expect(waits == [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000].map { UInt64($0) * 1_000_000 })
        #expect(backoff.failures == 8)
        backoff.connected()
        #expect(backoff.failures == 0, "a CONNACK ends the run of failures")
        backoff.ended(upSince: now, now: now + 9_999_999_999)
        #expect(backoff.delay == 30_000_000_000, "up for less than 10 s: the wait stays")
        backoff.ended(upSince: now, now: now + 10_000_000_000)
        #expect(backoff.delay == 500_000_000, "up for 10 s: the waits start again")
    }

    @Test func theEngineRetriesOnlyWhenItsClockReachesTheBackoff() throws {
        let dir = TemporaryDirectory("mqtt")
        let site = try MQTTSite(dir: dir)
        let clock = ManualClock(monotonicNanos: 1_000_000_000)
        // keepalive 1 is refused by libmosquitto at every connect, with no network involved.
        let config = SiteConfig.MQTT(host: "127.0.0.1", port: 1883, topicPrefix: "community", keepaliveSeconds: 1, backlogRate: 100)
        let publisher = MQTTPublisher(config: config, controllerID: MQTTSite.controllerID, databasePath: site.db.path, feed: site.feed,
                                      logger: Logger(label: "test.mqtt"), tuning: MQTTPublisher.Tuning(), clock: clock)
        let engine = MQTTEngine(publisher: publisher, password: nil, db: site.db, cursor: 0)
        var attempts: [UInt64] = []
        // 70 s of the engine's time in 10 ms passes, in a few milliseconds of real time.
        for _ in 0..<7_000 {
            let before = engine.reconnectFailures
            guard case .wait(let timeout) = engine.step() else { Issue.record("the engine stopped"); return }
            if engine.reconnectFailures > before { attempts.append(clock.monotonicNanos()) }
            #expect(timeout <= 30_000_000_000)
            clock.advance(nanoseconds: 10_000_000)
        }
        let gaps = zip(attempts, attempts.dropFirst()).map { Double($1 - $0) / 1e9 }
        #expect(attempts.first == 1_000_000_000, "the first attempt at once")
        #expect(gaps == [0.5, 1, 2, 4, 8, 16, 30], "\(gaps)")
        #expect(publisher.status.lastError?.contains("connect") == true && !publisher.status.connected)
    }
}

private func format2(_ x: Double) -> String {
    let hundredths = Int((x * 100).rounded())
    let frac = hundredths % 100
    return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
}
