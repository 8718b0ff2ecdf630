import AccessConfig
import AccessController
import AccessCore
import AccessStore
import Glibc
import Logging
import ServiceLifecycle
import Synchronization

// MQTT push of the event log (interfaces.md, MQTT), from a durable outbox.
//
// Topics, for PREFIX = `topic_prefix` and ID = the controller id:
// - `PREFIX/ID/events`: every event, QoS 1, the HTTP API's JSON.
// - `PREFIX/ID/alarms`: events of type `alarm`, QoS 1, the same JSON.
// - `PREFIX/ID/status`: retained `online` after each CONNACK; retained `offline` as the will
//   and on an orderly stop (then DISCONNECT, so the broker drops the will). An orderly stop first
//   goes on publishing what is already durable for up to 1 s (in accessd, list this service
//   before the controller so that it stops after it and the controller's last events go out).
//
// Delivery: at least once. The outbox's cursor (table `outbox`, row `mqtt`, made at 0 on the first
// start, so a new outbox owes the whole log) is the serial up to which every message was
// acknowledged (PUBACK) — on `events`, and on `alarms` for alarms. On start everything after it
// is published again; the cursor moves, in memory at each PUBACK and
// in the database at most every 250 ms and at stop, only to the highest serial below which every
// message was acknowledged. A crash resends at most what was in flight or acknowledged in the
// last 250 ms: duplicates, always with the same id and JSON.
//
// Ordering guarantee, exactly:
// - `events`: within one connection, strictly increasing serials with nothing skipped: the
//   events after the cursor, in log order. After a reconnect (or a restart) publishing starts
//   again at the oldest event not yet acknowledged, so a subscriber may see a run it already had
//   once more, then the log continues in order: the first arrival of every event is in serial
//   order, and later arrivals are duplicates of an id already seen. (The broker's own guarantee
//   is needed too: mosquitto keeps a publisher's QoS 1 order per topic.)
// - `alarms`: the same rule on its own, over alarm events only. The alarm lane does not wait for
//   `events`: a live alarm is published on `alarms` as soon as it is durable, even while a
//   backlog drains on `events`, where its copy comes at its place in serial order. So during a
//   drain an alarm is normally seen on `alarms` before it is seen on `events`.
// - Backlog: `events` is paced at `backlog_rate` messages/s (a token bucket with a tenth of a
//   second of burst, which live traffic never exhausts), so a 100,000-event backlog after an
//   outage takes 100,000 / backlog_rate seconds on `events`; strict order there means live
//   non-alarm events queue behind it. `alarms` has its own bucket at the same rate, so backlog
//   alarms go out first, then live ones at once.
// - `status` `online` is published after each CONNACK, before that connection's first event.
//
// Threads: one thread of its own owns the libmosquitto client and its own SQLite connection: it
// polls the broker socket and a wake pipe, runs libmosquitto's read/write/keepalive steps (so
// the callbacks — CONNACK, PUBACK, disconnect — run on it), reads pages of the log and
// publishes. Nothing here runs on Swift's cooperative pool but `start()`'s one-time reads and the task that turns
// `EventFeed` notifications into a byte on the wake pipe. Each connection is a fresh
// libmosquitto client with the same client id and clean_session false (a persistent session);
// a lost connection is dropped whole and the outbox rewinds to its acknowledged cursor, which
// is what gives the exact ordering above. Reconnects back off exponentially from 0.5 s to 30 s
// (reset after a connection that stayed up 10 s).

/// What the publisher has done, for tests, logs and metrics.
public struct MQTTPublisherStatus: Sendable, Equatable {
    /// A CONNACK accepted the current connection.
    public var connected = false
    /// Every event up to this serial is acknowledged by the broker (in memory).
    public var ackedSerial: Int64 = 0
    /// The cursor as stored in the database.
    public var storedSerial: Int64 = 0
    /// Messages handed to the broker (events and alarms, with resends).
    public var publishedMessages = 0
    /// Connections accepted by the broker so far.
    public var connections = 0
    /// The last connection or store failure (no credentials in it).
    public var lastError: String?
}

/// Pushes the event log to an MQTT broker. `start()` it, `stop()` it; run it in accessd through
/// `MQTTPublisherService`.
public final class MQTTPublisher: Sendable {
    /// Timings and limits; tests shorten them.
    struct Tuning: Sendable {
        var initialBackoff: Duration = .milliseconds(500)
        var maxBackoff: Duration = .seconds(30)
        /// A connection that stayed up this long resets the backoff.
        var stableConnection: Duration = .seconds(10)
        /// From starting to connect to CONNACK.
        var connectTimeout: Duration = .seconds(10)
        /// How often the acknowledged cursor is written to the database (at most).
        var flushInterval: Duration = .milliseconds(250)
        /// How often the log is read without a wake-up (events written by other processes).
        var pollInterval: Duration = .seconds(1)
        /// How long an orderly stop goes on publishing what is already durable.
        var finalDrain: Duration = .seconds(1)
        /// How long an orderly stop then waits for the broker to acknowledge `offline`.
        var stopTimeout: Duration = .seconds(2)
        var maxInflight = 100
        var maxAlarmInflight = 20
        var pageSize = 256
        var alarmPageSize = 64
    }

    /// The row of table `outbox` this publisher keeps its cursor in.
    public static let outboxName = "mqtt"

    let config: SiteConfig.MQTT
    let controllerID: String
    let databasePath: String
    let feed: EventFeed
    let logger: Logger
    let tuning: Tuning
    let shared: MQTTShared
    private let forwarder = Mutex<Task<Void, Never>?>(nil)

    /// - Parameters:
    ///   - config: `[upstream.mqtt]` of the site config.
    ///   - controllerID: the controller id (topics, event ids, default client id).
    ///   - databasePath: the database the controller writes (it must exist).
    ///   - feed: the controller's `feed`; wakes the publisher when events are durable.
    public convenience init(config: SiteConfig.MQTT, controllerID: String, databasePath: String, feed: EventFeed, logger: Logger) {
        self.init(config: config, controllerID: controllerID, databasePath: databasePath, feed: feed, logger: logger, tuning: Tuning())
    }

    init(config: SiteConfig.MQTT, controllerID: String, databasePath: String, feed: EventFeed, logger: Logger, tuning: Tuning) {
        self.config = config
        self.controllerID = controllerID
        self.databasePath = databasePath
        self.feed = feed
        self.logger = logger
        self.tuning = tuning
        self.shared = MQTTShared()
    }

    public var topicPrefix: String { "\(config.topicPrefix)/\(controllerID)" }
    public var status: MQTTPublisherStatus { shared.status.withLock { $0 } }

    /// Reads the password file and the cursor, checks the client settings, and starts the
    /// publisher's thread (once: a stopped publisher is not started again). Throws `MQTTError`
    /// for an unreadable password or CA file or a setting libmosquitto refuses, `StoreError` for
    /// the database; a broker that cannot be reached never fails it: that is retried for ever.
    public func start() throws {
        guard shared.begin() else { return }
        do {
            var password: String?
            if let path = config.passwordFile { password = try readPasswordFile(path) }
            if let ca = config.tlsCAFile, access(ca, R_OK) != 0 {
                throw MQTTError.system("read tls_ca_file \(ca)", errno: errno)
            }
            let db = try AccessDatabase(path: databasePath, create: false)
            // The row exists from the first start, so event retention knows what this outbox
            // still owes even before the broker has acknowledged anything.
            try db.connection.run("INSERT INTO outbox (name, acked_serial) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                                  [.text(Self.outboxName)])
            try db.connection.execute("PRAGMA busy_timeout = 200")  // a long import must not stall the network loop
            let cursor = try db.connection.scalarInt("SELECT acked_serial FROM outbox WHERE name = ?", [.text(Self.outboxName)]) ?? 0
            let head = try db.lastEventSerial()
            let engine = MQTTEngine(publisher: self, password: password, db: db, cursor: cursor)
            _ = try engine.makeConnection()  // client id, will, credentials and TLS settings accepted
            logger.info("MQTT publisher starting", metadata: [
                "broker": "\(config.host):\(config.port)", "topics": "\(topicPrefix)/{events,alarms,status}",
                "tls": "\(config.tlsCAFile != nil)", "acked_serial": "\(cursor)", "backlog": "\(max(0, head - cursor))",
            ])
            if cursor > head {
                logger.warning("MQTT outbox cursor is ahead of the event log; events up to it will not be sent",
                               metadata: ["acked_serial": "\(cursor)", "last_serial": "\(head)"])
            }
            try startThread(name: "accessd-mqtt") { engine.run() }
        } catch {
            shared.finish()
            throw error
        }
        let task = Task { [feed, shared] in
            var seen = feed.lastSerial
            while !Task.isCancelled {
                await feed.wait(after: seen, timeout: .seconds(5))
                let last = feed.lastSerial
                if last > seen {
                    seen = last
                    shared.wake()
                }
            }
        }
        forwarder.withLock { $0 = task }
    }

    /// When connected: publishes what is already durable (up to 1 s), then `offline`
    /// (retained), waiting up to 2 s for the broker's acknowledgement, and disconnects. Writes the
    /// cursor and ends the thread. Returns within about 3 s, or a little more when stuck in a
    /// name lookup.
    public func stop() async {
        forwarder.withLock { $0?.cancel() }
        shared.requestStop()
        await shared.waitUntilFinished()
    }

    /// Tests: drops the TCP connection without DISCONNECT, as a network failure would (the broker
    /// then publishes the will).
    func dropConnectionForTesting() { shared.requestDrop() }

    /// Tests: ends the thread as if the process had been killed (no `offline`, no DISCONNECT, no
    /// final write of the cursor).
    func crashForTesting() async {
        forwarder.withLock { $0?.cancel() }
        shared.requestCrash()
        await shared.waitUntilFinished()
    }
}

/// accessd's MQTT service: runs the publisher until graceful shutdown (SIGTERM/SIGINT) or
/// cancellation, then stops it in order (`offline`, cursor written, DISCONNECT).
public struct MQTTPublisherService: Service {
    public let publisher: MQTTPublisher

    public init(config: SiteConfig.MQTT, controllerID: String, databasePath: String, feed: EventFeed, logger: Logger) {
        publisher = MQTTPublisher(config: config, controllerID: controllerID, databasePath: databasePath, feed: feed, logger: logger)
    }

    public func run() async throws {
        try publisher.start()
        try? await gracefulShutdown()
        await publisher.stop()
    }
}

// MARK: - Bookkeeping as values

/// Which messages are out and which are acknowledged, per lane, and so how far the durable
/// cursor may move. A value: the engine feeds it what it published and what was acknowledged.
struct MQTTOutbox: Equatable, Sendable {
    enum Lane: Equatable, Sendable { case events, alarms }

    struct InFlight: Equatable, Sendable {
        var mid: Int32
        var serial: Int64
    }

    struct LaneState: Equatable, Sendable {
        /// Every message of the lane up to this serial has been published on the current
        /// connection, or acknowledged before it.
        var published: Int64
        /// Published, not yet acknowledged, in increasing serial order.
        var inflight: [InFlight] = []
        /// Every message of the lane up to this serial is acknowledged.
        var acked: Int64 { inflight.first.map { $0.serial - 1 } ?? published }
    }

    private(set) var events: LaneState
    private(set) var alarms: LaneState

    init(cursor: Int64) {
        events = LaneState(published: cursor)
        alarms = LaneState(published: cursor)
    }

    /// Every event up to here is acknowledged on `events`, and on `alarms` if it is an alarm.
    var cursor: Int64 { min(events.acked, alarms.acked) }

    subscript(lane: Lane) -> LaneState { lane == .events ? events : alarms }

    /// `serial` was published in `lane` as message `mid`; serials rise within a lane.
    mutating func published(_ lane: Lane, serial: Int64, mid: Int32) {
        modify(lane) { state in
            assert(serial > state.published, "lane \(lane) published \(serial) after \(state.published)")
            state.inflight.append(InFlight(mid: mid, serial: serial))
            state.published = serial
        }
    }

    /// The lane holds nothing more up to `serial` (the log was read through it).
    mutating func scanned(_ lane: Lane, through serial: Int64) {
        modify(lane) { $0.published = max($0.published, serial) }
    }

    /// A PUBACK; returns the lane of the message, nil when it is not an event message.
    @discardableResult
    mutating func acknowledged(mid: Int32) -> Lane? {
        if let i = events.inflight.firstIndex(where: { $0.mid == mid }) {
            events.inflight.remove(at: i)
            return .events
        }
        if let i = alarms.inflight.firstIndex(where: { $0.mid == mid }) {
            alarms.inflight.remove(at: i)
            return .alarms
        }
        return nil
    }

    /// The connection is gone with whatever it had in flight: each lane starts again after its
    /// acknowledged cursor on the next one.
    mutating func connectionLost() {
        events = LaneState(published: events.acked)
        alarms = LaneState(published: alarms.acked)
    }

    private mutating func modify(_ lane: Lane, _ body: (inout LaneState) -> Void) {
        switch lane {
        case .events: body(&events)
        case .alarms: body(&alarms)
        }
    }
}

/// A token bucket on the monotonic clock (nanoseconds): `rate` tokens a second, at most `burst`.
struct MQTTTokenBucket: Equatable, Sendable {
    let rate: Double
    let burst: Double
    private(set) var tokens: Double
    private var last: UInt64

    init(rate: Int, now: UInt64) {
        self.rate = Double(max(1, rate))
        burst = max(1, self.rate / 10)
        tokens = burst
        last = now
    }

    mutating func refill(now: UInt64) {
        guard now > last else { return }
        tokens = min(burst, tokens + Double(now - last) / 1e9 * rate)
        last = now
    }

    mutating func take() -> Bool {
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Nanoseconds until a token is available.
    var nanosUntilToken: UInt64 { tokens >= 1 ? 0 : UInt64((1 - tokens) / rate * 1e9) + 1 }
}

// MARK: - The thread

/// State shared between the publisher's API (any thread or task) and its thread.
final class MQTTShared: Sendable {
    struct Control {
        var started = false
        var finished = false
        var stop = false
        var crash = false
        var drop = false
        var woken = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let control = Mutex(Control())
    let status = Mutex(MQTTPublisherStatus())
    /// Written by `wake()`, polled by the thread beside the broker socket.
    let wakeRead: Int32
    let wakeWrite: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        } else {
            fds = [-1, -1]  // then the thread wakes on its timer only
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }

    /// Marks the publisher started; false if it was already.
    func begin() -> Bool {
        control.withLock { c in
            guard !c.started else { return false }
            c.started = true
            return true
        }
    }

    func wake() {
        control.withLock { $0.woken = true }
        poke()
    }

    func requestStop() {
        control.withLock { $0.stop = true }
        poke()
    }

    func requestCrash() {
        control.withLock { $0.crash = true }
        poke()
    }

    func requestDrop() {
        control.withLock { $0.drop = true }
        poke()
    }

    private func poke() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)  // EAGAIN: a wake-up is already pending
    }

    /// The thread's commands since the last call.
    func take() -> (stop: Bool, crash: Bool, drop: Bool, woken: Bool) {
        control.withLock { c in
            defer {
                c.drop = false
                c.woken = false
            }
            return (c.stop, c.crash, c.drop, c.woken)
        }
    }

    func drainWakePipe() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeRead, &buffer, buffer.count) > 0 {}
    }

    /// The thread has ended (or never started).
    func finish() {
        let waiters = control.withLock { c -> [CheckedContinuation<Void, Never>] in
            c.finished = true
            defer { c.waiters = [] }
            return c.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func waitUntilFinished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = control.withLock { c -> Bool in
                if c.finished || !c.started { return true }
                c.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// The publisher's thread: the libmosquitto client, the outbox and a database connection, all
/// confined to that thread once `run()` starts (hence `@unchecked Sendable`: it is handed over
/// once, never shared).
final class MQTTEngine: @unchecked Sendable {
    private let config: SiteConfig.MQTT
    private let controllerID: String
    private let clientID: String
    private let password: String?
    private let db: AccessDatabase
    private let shared: MQTTShared
    private let logger: Logger
    private let tuning: MQTTPublisher.Tuning
    private let eventsTopic: String
    private let alarmsTopic: String
    private let statusTopic: String

    private var outbox: MQTTOutbox
    private var stored: Int64
    private var eventsBucket: MQTTTokenBucket
    private var alarmsBucket: MQTTTokenBucket

    /// Callbacks of the current connection, handled after each libmosquitto step.
    private final class Inbox {
        var events: [MQTTClientEvent] = []
    }

    private let inbox = Inbox()
    private var connection: MQTTConnection?
    private var sessionUp = false
    private var connectDeadline: UInt64 = 0
    private var connectedAt: UInt64 = 0
    private var backoff: UInt64
    private var nextAttempt: UInt64 = 0
    private var failedAttempts = 0
    private var offlineMid: Int32?
    private var offlineAcked = false

    // Pages of the log read ahead, per lane.
    private var eventPage: [AccessEvent] = []
    private var eventIndex = 0
    private var eventsMayHaveMore = true
    private var alarmPage: [AccessEvent] = []
    private var alarmIndex = 0
    private var alarmsMayHaveMore = true
    /// After the alarm page is published: the log was read through here.
    private var alarmsScannedThrough: Int64?

    private var nextPoll: UInt64 = 0
    private var lastFlush: UInt64 = 0
    private var storeRetryAt: UInt64 = 0
    private var lastStoreWarning: UInt64?
    private var publishedMessages = 0
    private var connections = 0
    private var lastError: String?

    init(publisher: MQTTPublisher, password: String?, db: AccessDatabase, cursor: Int64) {
        config = publisher.config
        controllerID = publisher.controllerID
        clientID = publisher.config.clientID ?? publisher.controllerID
        self.password = password
        self.db = db
        shared = publisher.shared
        logger = publisher.logger
        tuning = publisher.tuning
        eventsTopic = "\(publisher.topicPrefix)/events"
        alarmsTopic = "\(publisher.topicPrefix)/alarms"
        statusTopic = "\(publisher.topicPrefix)/status"
        outbox = MQTTOutbox(cursor: cursor)
        stored = cursor
        let now = monotonicNanos()
        eventsBucket = MQTTTokenBucket(rate: publisher.config.backlogRate, now: now)
        alarmsBucket = MQTTTokenBucket(rate: publisher.config.backlogRate, now: now)
        backoff = tuning.initialBackoff.nanoseconds
    }

    /// A new client with the will, credentials and TLS set, not yet connected.
    func makeConnection() throws(MQTTError) -> MQTTConnection {
        let c = try MQTTConnection(clientID: clientID, cleanSession: false) { [inbox] event in inbox.events.append(event) }
        try c.setWill(topic: statusTopic, payload: Array("offline".utf8), qos: 1, retain: true)
        if let username = config.username { try c.setCredentials(username: username, password: password) }
        if let ca = config.tlsCAFile { try c.setTLS(caFile: ca) }
        try c.setMaxInflight(tuning.maxInflight + tuning.maxAlarmInflight + 2)
        return c
    }

    func run() {
        while true {
            let now = monotonicNanos()
            let commands = shared.take()
            if commands.crash {
                connection = nil  // as if the process died: no offline, no DISCONNECT, the cursor as last stored
                sessionUp = false
                publishStatus()
                shared.finish()
                return
            }
            if commands.stop { break }
            if commands.woken || now >= nextPoll {
                eventsMayHaveMore = true
                alarmsMayHaveMore = true
                nextPoll = now + tuning.pollInterval.nanoseconds
            }
            if commands.drop, let c = connection, c.socket >= 0 {
                shutdown(c.socket, Int32(SHUT_RDWR))
            }
            if connection == nil {
                if now >= nextAttempt { connect(now: now) }
            } else if !sessionUp && now >= connectDeadline {
                lost("no CONNACK within \(tuning.connectTimeout)", now: now)
            }
            if sessionUp { pump(now: now) }
            if outbox.cursor > stored && now >= lastFlush + tuning.flushInterval.nanoseconds { flush(now: now) }
            publishStatus()
            service(timeout: timeout(now: monotonicNanos()))
        }
        stop()
        shared.finish()
    }

    // MARK: Connection

    private func connect(now: UInt64) {
        do {
            let c = try makeConnection()
            try c.connect(host: config.host, port: config.port, keepalive: config.keepaliveSeconds)
            connection = c
            connectDeadline = now + tuning.connectTimeout.nanoseconds
        } catch {
            retryLater("cannot connect: \(error)", now: now)
        }
    }

    private func connected(now: UInt64) {
        guard let c = connection else { return }
        sessionUp = true
        connectedAt = now
        connections += 1
        failedAttempts = 0
        lastError = nil
        logger.info("MQTT connected", metadata: [
            "broker": "\(config.host):\(config.port)", "client_id": "\(clientID)", "acked_serial": "\(outbox.cursor)",
        ])
        eventsMayHaveMore = true
        alarmsMayHaveMore = true
        do {
            _ = try c.publish(topic: statusTopic, payload: Array("online".utf8), qos: 1, retain: true)
        } catch {
            lost("publish status: \(error)", now: now)
        }
    }

    /// Drops the connection (without DISCONNECT, so the broker publishes the will) and plans the
    /// next attempt.
    private func lost(_ reason: String, now: UInt64) {
        guard connection != nil else { return }
        connection = nil  // mosquitto_destroy: the socket is closed
        let wasUp = sessionUp
        sessionUp = false
        outbox.connectionLost()
        eventPage = []
        eventIndex = 0
        alarmPage = []
        alarmIndex = 0
        alarmsScannedThrough = nil
        eventsMayHaveMore = true
        alarmsMayHaveMore = true
        if wasUp && now - connectedAt >= tuning.stableConnection.nanoseconds {
            backoff = tuning.initialBackoff.nanoseconds
        }
        retryLater(wasUp ? "connection lost: \(reason)" : reason, now: now)
    }

    private func retryLater(_ reason: String, now: UInt64) {
        failedAttempts += 1
        lastError = reason
        nextAttempt = now + backoff
        // Every failure of a short run, then every tenth: a long outage does not flood the journal.
        if failedAttempts <= 5 || failedAttempts % 10 == 0 {
            logger.warning("MQTT \(reason); retrying", metadata: [
                "broker": "\(config.host):\(config.port)", "in_seconds": "\(Double(backoff) / 1e9)",
                "attempt": "\(failedAttempts)", "acked_serial": "\(outbox.cursor)",
            ])
        }
        backoff = min(backoff * 2, tuning.maxBackoff.nanoseconds)
    }

    /// Waits for the socket, a wake-up or the timeout, then runs libmosquitto's steps and
    /// handles its callbacks.
    private func service(timeout: UInt64) {
        var fds = [pollfd(fd: shared.wakeRead, events: Int16(POLLIN), revents: 0)]
        let socket = connection?.socket ?? -1
        if socket >= 0 {
            let events = Int16(POLLIN) | (connection?.wantsWrite == true ? Int16(POLLOUT) : 0)
            fds.append(pollfd(fd: socket, events: events, revents: 0))
        }
        let millis = Int32(min((timeout + 999_999) / 1_000_000, 1_000))
        let n = poll(&fds, nfds_t(fds.count), millis)
        if n > 0 && fds[0].revents != 0 { shared.drainWakePipe() }
        guard let c = connection else { return }
        do {
            if fds.count > 1 && fds[1].revents != 0 {
                // read() also advances a TLS handshake, which may wait for writability.
                try c.read()
                if c.socket >= 0 && c.wantsWrite { try c.write() }
            }
            if c.socket >= 0 { try c.misc() }
        } catch {
            // Acknowledgements that came before the failure still count; the error (with its
            // errno) says more than the disconnect callback's code.
            handleCallbacks(now: monotonicNanos(), ignoringDisconnect: true)
            lost("\(error)", now: monotonicNanos())
            return
        }
        handleCallbacks(now: monotonicNanos())
        if connection != nil && c.socket < 0 { lost("socket closed", now: monotonicNanos()) }
    }

    private func handleCallbacks(now: UInt64, ignoringDisconnect: Bool = false) {
        let events = inbox.events
        inbox.events.removeAll(keepingCapacity: true)
        for event in events {
            switch event {
            case .connected(0):
                connected(now: now)
            case .connected(let code):
                lost("the broker refused the connection: \(MQTTConnection.describeConnack(code)) (CONNACK \(code))", now: now)
            case .published(let mid):
                if outbox.acknowledged(mid: mid) == nil, mid == offlineMid { offlineAcked = true }
            case .disconnected(let code):
                if !ignoringDisconnect { lost(MQTTConnection.describe(code), now: now) }
            case .subscribed, .message:
                break
            }
        }
    }

    private func timeout(now: UInt64) -> UInt64 {
        func until(_ t: UInt64) -> UInt64 { t > now ? t - now : 0 }
        var t = until(nextPoll)
        if connection == nil {
            t = min(t, until(nextAttempt))
        } else if !sessionUp {
            t = min(t, until(connectDeadline))
        } else {
            let floor: UInt64 = 2_000_000  // a few messages per wake-up at high rates
            if storeRetryAt > now {
                t = min(t, storeRetryAt - now)
            } else {
                if (eventIndex < eventPage.count || eventsMayHaveMore) && outbox.events.inflight.count < tuning.maxInflight {
                    t = min(t, max(eventsBucket.nanosUntilToken, floor))
                }
                if (alarmIndex < alarmPage.count || alarmsMayHaveMore) && outbox.alarms.inflight.count < tuning.maxAlarmInflight {
                    t = min(t, max(alarmsBucket.nanosUntilToken, floor))
                }
            }
        }
        if outbox.cursor > stored { t = min(t, until(lastFlush + tuning.flushInterval.nanoseconds)) }
        return t
    }

    // MARK: Publishing

    /// Publishes what the lanes' in-flight limits and buckets allow: alarms first.
    private func pump(now: UInt64) {
        alarmsBucket.refill(now: now)
        while connection != nil, outbox.alarms.inflight.count < tuning.maxAlarmInflight, alarmsBucket.tokens >= 1,
              let event = nextAlarm(now: now) {
            guard publish(event, on: .alarms, now: now) else { return }
            alarmIndex += 1
            _ = alarmsBucket.take()
            if alarmIndex == alarmPage.count { advanceAlarmScan() }
        }
        eventsBucket.refill(now: now)
        while connection != nil, outbox.events.inflight.count < tuning.maxInflight, eventsBucket.tokens >= 1,
              let event = nextEvent(now: now) {
            guard publish(event, on: .events, now: now) else { return }
            eventIndex += 1
            _ = eventsBucket.take()
        }
    }

    private func publish(_ event: AccessEvent, on lane: MQTTOutbox.Lane, now: UInt64) -> Bool {
        guard let c = connection else { return false }
        let payload = Array(event.json(controllerID: controllerID).rendered().utf8)
        do {
            let mid = try c.publish(topic: lane == .events ? eventsTopic : alarmsTopic, payload: payload, qos: 1, retain: false)
            outbox.published(lane, serial: event.serial, mid: mid)
            publishedMessages += 1
            return true
        } catch {
            lost("\(error)", now: now)
            return false
        }
    }

    /// The next event for `events`, reading a page of the log when the last one is used up.
    private func nextEvent(now: UInt64) -> AccessEvent? {
        if eventIndex < eventPage.count { return eventPage[eventIndex] }
        guard eventsMayHaveMore, now >= storeRetryAt else { return nil }
        do {
            eventPage = try db.events(EventQuery(after: outbox.events.published, limit: tuning.pageSize))
        } catch {
            storeFailed(error, now: now)
            return nil
        }
        eventIndex = 0
        eventsMayHaveMore = eventPage.count == tuning.pageSize
        return eventPage.first
    }

    /// The next alarm for `alarms`. A page shorter than asked for means the log holds no other
    /// alarm up to the serial read before it, so the lane's position moves there once the page
    /// is published.
    private func nextAlarm(now: UInt64) -> AccessEvent? {
        if alarmIndex < alarmPage.count { return alarmPage[alarmIndex] }
        advanceAlarmScan()
        guard alarmsMayHaveMore, now >= storeRetryAt else { return nil }
        do {
            let head = try db.lastEventSerial()
            var query = EventQuery(after: outbox.alarms.published, limit: tuning.alarmPageSize)
            query.type = .alarm
            alarmPage = try db.events(query)
            alarmIndex = 0
            if alarmPage.count < tuning.alarmPageSize {
                alarmsMayHaveMore = false
                alarmsScannedThrough = max(head, alarmPage.last?.serial ?? 0)
            }
        } catch {
            storeFailed(error, now: now)
            return nil
        }
        if alarmPage.isEmpty { advanceAlarmScan() }
        return alarmPage.first
    }

    /// Once the last page of alarms is published, the lane has covered the log through the
    /// serial read before that page.
    private func advanceAlarmScan() {
        guard alarmIndex >= alarmPage.count, let through = alarmsScannedThrough else { return }
        outbox.scanned(.alarms, through: through)
        alarmsScannedThrough = nil
    }

    // MARK: The cursor

    private func flush(now: UInt64) {
        let cursor = outbox.cursor
        guard cursor > stored else { return }
        lastFlush = now
        do {
            try db.connection.run("""
                INSERT INTO outbox (name, acked_serial) VALUES (?1, ?2)
                ON CONFLICT (name) DO UPDATE SET acked_serial = excluded.acked_serial WHERE excluded.acked_serial > outbox.acked_serial
                """, [.text(MQTTPublisher.outboxName), .int(cursor)])
            stored = cursor
        } catch {
            storeWarning("cannot store the MQTT cursor (kept in memory, retried): \(error)", now: now)
        }
    }

    private func storeFailed(_ error: Error, now: UInt64) {
        storeRetryAt = now + 1_000_000_000
        storeWarning("cannot read the event log (retried in 1 s): \(error)", now: now)
    }

    private func storeWarning(_ message: String, now: UInt64) {
        lastError = message
        if let last = lastStoreWarning, now - last < 60_000_000_000 { return }
        lastStoreWarning = now
        logger.warning("\(message)")
    }

    private func publishStatus() {
        let snapshot = MQTTPublisherStatus(
            connected: sessionUp, ackedSerial: outbox.cursor, storedSerial: stored, publishedMessages: publishedMessages,
            connections: connections, lastError: lastError)
        shared.status.withLock { if $0 != snapshot { $0 = snapshot } }
    }

    // MARK: Orderly stop

    private func stop() {
        // What became durable before the stop (the controller's last events, when it stopped
        // first) goes out first, for up to `finalDrain`.
        let drainDeadline = monotonicNanos() + tuning.finalDrain.nanoseconds
        eventsMayHaveMore = true
        alarmsMayHaveMore = true
        while sessionUp {
            let now = monotonicNanos()
            pump(now: now)
            let pending = eventIndex < eventPage.count || eventsMayHaveMore || alarmIndex < alarmPage.count || alarmsMayHaveMore
            if now >= drainDeadline || (!pending && outbox.events.inflight.isEmpty && outbox.alarms.inflight.isEmpty) { break }
            service(timeout: min(drainDeadline - now, timeout(now: now)))
        }
        if sessionUp, let c = connection {
            do {
                offlineMid = try c.publish(topic: statusTopic, payload: Array("offline".utf8), qos: 1, retain: true)
                let deadline = monotonicNanos() + tuning.stopTimeout.nanoseconds
                while connection != nil && !offlineAcked {
                    let now = monotonicNanos()
                    guard now < deadline else { break }
                    service(timeout: min(deadline - now, 100_000_000))
                }
            } catch {
                logger.warning("MQTT cannot publish offline status: \(error)")
            }
            if let c = connection {
                c.disconnect()  // the broker drops the will: `offline` was published in its place
                try? c.write()
            }
        }
        connection = nil
        sessionUp = false
        try? db.connection.execute("PRAGMA busy_timeout = 2000")
        flush(now: monotonicNanos())
        publishStatus()
        logger.info("MQTT publisher stopped", metadata: [
            "acked_serial": "\(outbox.cursor)", "stored_serial": "\(stored)", "published": "\(publishedMessages)",
        ])
    }
}

// MARK: - Helpers

/// The password: the file's first line (never logged).
private func readPasswordFile(_ path: String) throws(MQTTError) -> String {
    let operation = "read password_file \(path)"
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .system(operation, errno: errno) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw .system(operation, errno: errno)
        }
        if n == 0 { break }
        bytes += chunk[0..<n]
        if bytes.count > 65_536 { throw MQTTError(operation: operation, code: 3, detail: "longer than 64 KiB: not a password file") }
    }
    let line = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
    let password = String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
    guard !password.isEmpty else { throw MQTTError(operation: operation, code: 3, detail: "the first line is empty") }
    return password
}

/// CLOCK_MONOTONIC in nanoseconds.
private func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

private extension Duration {
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

/// Starts a detached thread (blocking work stays off the cooperative pool).
private func startThread(name: String, _ body: @escaping @Sendable () -> Void) throws(MQTTError) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, name: String) {
            self.body = body
            self.name = name
        }
    }
    let box = Unmanaged.passRetained(Box(body, name: name))
    var handle = pthread_t()
    let rc = pthread_create(&handle, nil, { raw in
        guard let raw else { return nil }
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
        box.body()
        return nil
    }, box.toOpaque())
    guard rc == 0 else {
        box.release()
        throw .system("start the MQTT thread", errno: rc)
    }
    pthread_detach(handle)
}
