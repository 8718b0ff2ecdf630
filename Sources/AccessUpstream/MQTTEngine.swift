import AccessConfig
import AccessCore
import AccessRuntime
import AccessStore
import Glibc
import Logging
import Synchronization

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

    /// Monotonic nanoseconds: every wait, backoff, pace and deadline is read off it.
    private let clock: any RuntimeClock
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
    private var backoff: MQTTReconnectBackoff
    private var nextAttempt: UInt64 = 0
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
        clock = publisher.clock
        let now = publisher.clock.monotonicNanos()
        eventsBucket = MQTTTokenBucket(rate: publisher.config.backlogRate, now: now)
        alarmsBucket = MQTTTokenBucket(rate: publisher.config.backlogRate, now: now)
        backoff = MQTTReconnectBackoff(initial: tuning.initialBackoff, max: tuning.maxBackoff, stable: tuning.stableConnection)
    }

    /// A new client with the will, credentials and TLS set, not yet connected.
    func makeConnection() throws(MQTTError) -> MQTTConnection {
        let c = try MQTTConnection(clientID: clientID, cleanSession: false) { [inbox] event in inbox.events.append(event) }
        try c.setWill(topic: statusTopic, payload: Array("offline".utf8), qos: 1, retain: true)
        if let username = config.username { try c.setCredentials(username: username, password: password) }
        if let ca = config.tlsCAFile { try c.setTLS(caFile: ca, certificate: config.tlsCertificate, key: config.tlsKey) }
        try c.setMaxInflight(tuning.maxInflight + tuning.maxAlarmInflight + 2)
        return c
    }

    /// What one pass of the loop decided.
    enum Pass: Equatable {
        /// Wait for the socket or a wake-up at most this long (nanoseconds), then pass again.
        case wait(UInt64)
        /// An orderly stop was asked for.
        case stop
        /// A crash was simulated: the thread ends at once.
        case crashed
    }

    func run() {
        while true {
            switch step() {
            case .wait(let timeout):
                service(timeout: timeout)
            case .stop:
                stop()
                shared.finish()
                return
            case .crashed:
                shared.finish()
                return
            }
        }
    }

    /// One pass at the clock's time: commands, connection attempts and deadlines, publishing and
    /// the cursor. Never waits, so tests drive it with a clock they move by hand.
    func step() -> Pass {
        let now = clock.monotonicNanos()
        let commands = shared.take()
        if commands.crash {
            connection = nil  // as if the process died: no offline, no DISCONNECT, the cursor as last stored
            sessionUp = false
            publishStatus()
            return .crashed
        }
        if commands.stop { return .stop }
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
        return .wait(timeout(now: clock.monotonicNanos()))
    }

    /// Failed attempts and lost connections since the last accepted one (tests).
    var reconnectFailures: Int { backoff.failures }

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
        backoff.connected()
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
        if wasUp { backoff.ended(upSince: connectedAt, now: now) }
        retryLater(wasUp ? "connection lost: \(reason)" : reason, now: now)
    }

    private func retryLater(_ reason: String, now: UInt64) {
        lastError = reason
        let wait = backoff.delay
        nextAttempt = backoff.failed(now: now)
        // Every failure of a short run, then every tenth: a long outage does not flood the journal.
        if backoff.failures <= 5 || backoff.failures % 10 == 0 {
            logger.warning("MQTT \(reason); retrying", metadata: [
                "broker": "\(config.host):\(config.port)", "in_seconds": "\(Double(wait) / 1e9)",
                "attempt": "\(backoff.failures)", "acked_serial": "\(outbox.cursor)",
            ])
        }
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
            handleCallbacks(now: clock.monotonicNanos(), ignoringDisconnect: true)
            lost("\(error)", now: clock.monotonicNanos())
            return
        }
        handleCallbacks(now: clock.monotonicNanos())
        if connection != nil && c.socket < 0 { lost("socket closed", now: clock.monotonicNanos()) }
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
            try db.advanceOutbox(MQTTPublisher.outboxName, to: cursor)
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
        let drainDeadline = clock.monotonicNanos() + tuning.finalDrain.nanoseconds
        eventsMayHaveMore = true
        alarmsMayHaveMore = true
        while sessionUp {
            let now = clock.monotonicNanos()
            pump(now: now)
            let pending = eventIndex < eventPage.count || eventsMayHaveMore || alarmIndex < alarmPage.count || alarmsMayHaveMore
            if now >= drainDeadline || (!pending && outbox.events.inflight.isEmpty && outbox.alarms.inflight.isEmpty) { break }
            service(timeout: min(drainDeadline - now, timeout(now: now)))
        }
        if sessionUp, let c = connection {
            do {
                offlineMid = try c.publish(topic: statusTopic, payload: Array("offline".utf8), qos: 1, retain: true)
                let deadline = clock.monotonicNanos() + tuning.stopTimeout.nanoseconds
                while connection != nil && !offlineAcked {
                    let now = clock.monotonicNanos()
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
        try? db.setBusyTimeout(milliseconds: 2000)
        flush(now: clock.monotonicNanos())
        publishStatus()
        logger.info("MQTT publisher stopped", metadata: [
            "acked_serial": "\(outbox.cursor)", "stored_serial": "\(stored)", "published": "\(publishedMessages)",
        ])
    }
}
