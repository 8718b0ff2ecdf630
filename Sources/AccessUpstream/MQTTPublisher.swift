import AccessConfig
import AccessController
import AccessCore
import AccessRuntime
import AccessStore
import Glibc
import Logging
import Synchronization

// MQTT push of the event log, from a durable outbox.
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
// (reset after a connection that stayed up 10 s; `MQTTReconnectBackoff`).
//
// Time: the engine reads the monotonic clock only through the `clock` it is given, and each pass
// of its loop (`MQTTEngine.step()`) never waits, so tests drive backoff, pacing and deadlines
// with a clock they move by hand.

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
    /// The engine's clock (monotonic time only); tests pass a clock they move by hand.
    let clock: any RuntimeClock
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

    init(config: SiteConfig.MQTT, controllerID: String, databasePath: String, feed: EventFeed, logger: Logger, tuning: Tuning,
         clock: any RuntimeClock = SystemClock()) {
        self.config = config
        self.controllerID = controllerID
        self.databasePath = databasePath
        self.feed = feed
        self.logger = logger
        self.tuning = tuning
        self.clock = clock
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
            for (key, file) in [("tls_ca_file", config.tlsCAFile), ("tls_certificate", config.tlsCertificate), ("tls_key", config.tlsKey)] {
                if let file, access(file, R_OK) != 0 { throw MQTTError.system("read \(key) \(file)", errno: errno) }
            }
            let db = try AccessDatabase(path: databasePath, create: false)
            // The row exists from the first start, so event retention knows what this outbox
            // still owes even before the broker has acknowledged anything.
            let cursor = try db.openOutbox(Self.outboxName)
            try db.setBusyTimeout(milliseconds: 200)  // a long import must not stall the network loop
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
            do {
                try NamedThread.start(name: "accessd-mqtt") { engine.run() }.detach()
            } catch {
                throw MQTTError.system("start the MQTT thread", errno: error.errno)
            }
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
