import AccessConfig
import AccessCore
import AccessRuntime
import AccessStore
import Logging
import Synchronization

// The event log shipped to the community's JetStream stream (interfaces.md, Fleet).
//
// Subjects: `access.COMMUNITY.events.CONTROLLER.TYPE` (TYPE: access, alarm, door, …), on stream
// `EVENTS_COMMUNITY`, which the property office creates (`accessctl fleet init`, or its first
// roster command). Payload: the event as the HTTP API and MQTT carry it. `Nats-Msg-Id` is the
// event's id (`CONTROLLER:SERIAL`), so a publish repeated after a lost acknowledgement or a crash
// is dropped by the stream within its duplicate window (10 minutes); later than that, the
// platform drops it by the same id.
//
// Delivery: at least once, in serial order. The outbox cursor (table `outbox`, row `fleet`, made
// at 0 on the first start, so a new controller ships its whole log) moves only over events the
// stream acknowledged, in memory at each acknowledgement and in the database at most every
// 250 ms and at stop; retention keeps every event the cursor has not passed. MQTT has its own
// cursor: both run at once, neither waits for the other.
//
// Threads: one thread of its own with its own SQLite connection and NATS connection; each
// publish waits for the stream's acknowledgement (about a millisecond on a LAN), so the gate
// never waits on it and a backlog drains at about a thousand events a second.

/// Ships the durable event log to the community's events stream. `start()`, then `stop()`;
/// `wake()` when new events are durable (it also looks every `pollInterval`).
public final class FleetEventPublisher: Sendable {
    /// What `accessctl status`, `/healthz` and the metrics say of the shipping.
    public struct State: Sendable, Equatable {
        public var connected = false
        /// Every event up to this serial is stored in the stream.
        public var ackedSerial: Int64 = 0
        /// Durable events not yet acknowledged by the stream.
        public var backlog: Int64 = 0
        public var published = 0
        /// Publishes the stream reported as already stored (a repeat after a lost acknowledgement).
        public var duplicates = 0
        public var lastError: String?
    }

    /// Timings; tests shorten them.
    public struct Tuning: Sendable {
        public var pollInterval: Duration = .milliseconds(200)
        public var flushInterval: Duration = .milliseconds(250)
        public var pageSize = 256
        public var publishTimeout: Duration = .seconds(5)
        public var maxBackoff: Duration = .seconds(5)
        public init() {}
    }

    /// The outbox row whose cursor this publisher moves.
    public static let outboxName = "fleet"

    let fleet: SiteConfig.Fleet
    let controllerID: String
    let databasePath: String
    let logger: Logger
    let tuning: Tuning
    private let running = Atomic<Bool>(false)
    private let stateBox = Mutex(State())
    private let threadBox = Mutex<NamedThread?>(nil)
    private let monitor = Monitor()
    private let woken = Atomic<Bool>(false)
    private let drainUntil = Atomic<UInt64>(0)

    public var state: State { stateBox.withLock { $0 } }

    public init(fleet: SiteConfig.Fleet, controllerID: String, databasePath: String, tuning: Tuning = Tuning(),
                logger: Logger = Logger(label: "accessd.fleet.events")) {
        self.fleet = fleet
        self.controllerID = controllerID
        self.databasePath = databasePath
        self.tuning = tuning
        self.logger = logger
    }

    public func start() throws {
        running.store(true, ordering: .releasing)
        let thread = try NamedThread.start(name: "fleet-events") { [self] in run() }
        threadBox.withLock { $0 = thread }
    }

    /// Stops shipping after at most `drain` more of it (so the controller's last events, durable
    /// by now, go out), writes the cursor; returns once the thread has ended.
    public func stop(drain: Duration = .seconds(1)) {
        drainUntil.store(monotonicNanos() + drain.nanoseconds, ordering: .releasing)
        running.store(false, ordering: .releasing)
        wake()
        let thread = threadBox.withLock { t -> NamedThread? in defer { t = nil }; return t }
        thread?.join()
    }

    /// New events are durable: look now rather than at the next poll.
    public func wake() {
        monitor.locked {
            woken.store(true, ordering: .releasing)
            monitor.signal()
        }
    }

    private var isRunning: Bool { running.load(ordering: .acquiring) }
    /// Stopping, but still within the final drain.
    private var isDraining: Bool { !isRunning && monotonicNanos() < drainUntil.load(ordering: .acquiring) }

    private func run() {
        let names = FleetNames(community: fleet.community)
        var backoff: Duration = .milliseconds(250)
        var db: AccessDatabase?
        var cursor: Int64 = 0
        var stored: Int64 = 0
        while isRunning {
            do {
                if db == nil {
                    let opened = try AccessDatabase(path: databasePath, create: false)
                    try opened.setBusyTimeout(milliseconds: 5_000)
                    cursor = try opened.openOutbox(Self.outboxName)
                    stored = cursor
                    db = opened
                    stateBox.withLock { $0.ackedSerial = cursor }
                }
                let connection = try NatsConnection(FleetClient.options(fleet, name: "accessd \(controllerID) events"))
                defer { connection.close() }
                stateBox.withLock { $0.connected = true; $0.lastError = nil }
                backoff = .milliseconds(250)
                try ship(connection, names, db!, cursor: &cursor, stored: &stored)
            } catch {
                stateBox.withLock { $0.connected = false; $0.lastError = "\(error)" }
                logger.warning("events not shipped to the fleet for now; they wait in the log", metadata: [
                    "error": "\(error)", "acked_serial": "\(cursor)",
                ])
                if let db { flush(db, cursor: cursor, stored: &stored) }
                pause(backoff)
                backoff = min(backoff * 2, tuning.maxBackoff)
            }
        }
        if let db { flush(db, cursor: cursor, stored: &stored) }
    }

    /// Publishes the log after `cursor`, page by page, until stopped or the connection fails.
    private func ship(_ connection: NatsConnection, _ names: FleetNames, _ db: AccessDatabase,
                      cursor: inout Int64, stored: inout Int64) throws {
        var lastFlush = ContinuousClock.now
        while isRunning || isDraining {
            let page = try db.events(EventQuery(after: cursor, limit: tuning.pageSize))
            let last = try page.isEmpty ? db.lastEventSerial() : page.last!.serial
            stateBox.withLock { $0.backlog = max(0, last - cursor); $0.connected = connection.isConnected }
            if page.isEmpty {
                guard isRunning else { return }
                if ContinuousClock.now - lastFlush >= tuning.flushInterval {
                    flush(db, cursor: cursor, stored: &stored)
                    lastFlush = ContinuousClock.now
                }
                pause(tuning.pollInterval)
                continue
            }
            for event in page {
                guard isRunning || isDraining else { break }
                let ack = try RosterPublisher.retryingTransient(seconds: 10) {
                    try connection.publish(subject: names.eventsSubject(controller: controllerID, type: event.type.rawValue),
                                           payload: Array(event.json(controllerID: controllerID).rendered().utf8),
                                           messageID: event.id(controllerID: controllerID), expectedStream: names.eventsStream,
                                           timeout: tuning.publishTimeout)
                }
                cursor = event.serial
                stateBox.withLock {
                    $0.ackedSerial = cursor
                    $0.backlog = max(0, last - cursor)
                    $0.published += 1
                    if ack.duplicate { $0.duplicates += 1 }
                }
                if ContinuousClock.now - lastFlush >= tuning.flushInterval {
                    flush(db, cursor: cursor, stored: &stored)
                    lastFlush = ContinuousClock.now
                }
            }
        }
    }

    /// Writes the cursor when it moved; a failure is logged and tried again at the next flush
    /// (the events after the stored cursor are then sent again, and dropped as duplicates).
    private func flush(_ db: AccessDatabase, cursor: Int64, stored: inout Int64) {
        guard cursor > stored else { return }
        do {
            try db.advanceOutbox(Self.outboxName, to: cursor)
            stored = cursor
        } catch {
            logger.error("fleet outbox cursor not written", metadata: ["error": "\(error)", "serial": "\(cursor)"])
        }
    }

    /// Waits `duration`, or less when woken or stopped.
    private func pause(_ duration: Duration) {
        let deadline = monotonicNanos() + duration.nanoseconds
        monitor.locked {
            while isRunning, !woken.load(ordering: .acquiring), monotonicNanos() < deadline {
                monitor.wait(until: deadline)
            }
            woken.store(false, ordering: .releasing)
        }
    }
}
