import AccessCore
import AccessRuntime
import AccessStore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The controller's writer: one thread with its own database connection that appends events
/// and records state (visitor uses, anti-passback, portal modes) in order, writing what arrives
/// together in one transaction. Callers never wait for the disk; `flush` waits until everything
/// submitted so far is durable.
public final class StoreWorker: @unchecked Sendable {
    public enum Job: Sendable {
        case event(AccessEvent)
        /// A visitor use, an anti-passback passage or an operator's command, kept with the events
        /// of the same step.
        case record(SiteRecord)
    }

    private let monitor = Monitor()
    // Guarded by `monitor`.
    private var jobs: [Job] = []
    private var submitted = 0
    private var written = 0
    private var stopping = false
    private var thread: NamedThread?
    /// Called on the worker thread with events once they are durable, serials assigned.
    private let onDurable: @Sendable ([AccessEvent]) -> Void
    /// Failed writes, counted; a failed batch is kept and written again (events are never dropped).
    public let failures = Atomic<Int>(0)
    public let lastError = Mutex<String?>(nil)

    private let onFailure: @Sendable (Error) -> Void
    /// Applied between batches, at most every `maintenanceNanos`.
    private let retention: EventRetention?
    private let maintenanceNanos: UInt64
    private let makeEvent: @Sendable (_ reason: EventReason, _ detail: [(String, JSON)]) -> AccessEvent
    private let clock: any RuntimeClock
    /// Maintenance passes asked for with `maintainNow` and passes done (guarded by `monitor`).
    private var maintenanceAsked = 0
    private var maintenanceDone = 0
    /// Whether `event_log_nearly_full` stands raised (it clears below 85 % of the limit).
    private var nearlyFull = false

    /// `retention`: how much of the log to keep; `makeEvent` builds the worker's own events
    /// (`event_log_nearly_full`, `event_log_pruned`) with the controller's clock and zone.
    /// `clock`: the wall clock retention judges an event's age by.
    public init(path: String, retention: EventRetention? = nil, maintenanceSeconds: Double = 60, clock: any RuntimeClock = SystemClock(),
                makeEvent: @escaping @Sendable (_ reason: EventReason, _ detail: [(String, JSON)]) -> AccessEvent = { reason, detail in
                    AccessEvent(timeMicros: wallClockMicros(), utcOffset: 0, type: .alarm, reason: reason, detail: detail)
                },
                onDurable: @escaping @Sendable ([AccessEvent]) -> Void = { _ in },
                onFailure: @escaping @Sendable (Error) -> Void = { _ in }) throws {
        self.onDurable = onDurable
        self.onFailure = onFailure
        self.retention = retention
        self.maintenanceNanos = UInt64(maintenanceSeconds * 1e9)
        self.makeEvent = makeEvent
        self.clock = clock
        let db = try AccessDatabase(path: path, create: false)
        nonisolated(unsafe) let connection = db
        thread = try NamedThread.start(name: "event-writer") { self.run(connection) }  // the thread keeps the worker alive until stop()
    }

    public func submit(_ more: [Job]) {
        guard !more.isEmpty else { return }
        monitor.locked {
            jobs += more
            submitted += more.count
            monitor.broadcast()
        }
    }

    /// Waits until every job submitted so far has been written.
    public func flush() {
        monitor.locked {
            let target = submitted
            while written < target { monitor.wait() }
        }
    }

    /// Runs a retention pass now, after what is queued, and waits for it (tests, operators).
    public func maintainNow() {
        guard retention != nil else { return }  // nothing to maintain: the worker would never answer
        monitor.locked {
            maintenanceAsked += 1
            let target = maintenanceAsked
            monitor.broadcast()
            while maintenanceDone < target && !stopping { monitor.wait() }
        }
    }

    /// Writes what is queued, then stops the thread.
    public func stop() {
        monitor.locked {
            stopping = true
            monitor.broadcast()
        }
        thread?.join()
        thread = nil
    }

    private func run(_ db: AccessDatabase) {
        var pending: [Job] = []
        var retryDelay: UInt32 = 10_000
        var nextMaintenance = monotonicNanos() + maintenanceNanos
        while true {
            let (asked, done) = monitor.locked { (maintenanceAsked, maintenanceDone) }
            if retention != nil, pending.isEmpty, monotonicNanos() >= nextMaintenance || asked > done {
                nextMaintenance = monotonicNanos() + maintenanceNanos
                maintain(db)
                monitor.locked {
                    maintenanceDone = asked
                    monitor.broadcast()
                }
            }
            let (batch, stop): ([Job], Bool) = monitor.locked {
                while jobs.isEmpty && !stopping && pending.isEmpty && maintenanceAsked == maintenanceDone {
                    if retention == nil { monitor.wait() } else {
                        monitor.wait(until: nextMaintenance)
                        if monotonicNanos() >= nextMaintenance { break }
                    }
                }
                defer { jobs.removeAll(keepingCapacity: true) }
                return (pending + jobs, stopping && jobs.isEmpty && pending.isEmpty)
            }
            if stop { return }
            if batch.isEmpty { continue }
            if write(batch, db) {
                pending = []
                retryDelay = 10_000
                monitor.locked {
                    written += batch.count
                    monitor.broadcast()
                }
            } else {
                // Keep the batch (and what arrives meanwhile) and try again, backing off to 1 s.
                pending = batch
                usleep(retryDelay)
                retryDelay = min(retryDelay * 2, 1_000_000)
            }
        }
    }

    /// Retention: prunes the oldest events in chunks, raises `event_log_nearly_full` at 90 % of
    /// the limit, and `event_log_pruned_unacknowledged` when the limit forced out events an outbox
    /// still owed. A failure is reported and tried again at the next pass.
    private func maintain(_ db: AccessDatabase) {
        guard let retention else { return }
        do {
            var report = try db.pruneEvents(retention, nowMicros: clock.wallMicros())
            var unacknowledged = report.deletedUnacknowledged
            while report.deleted > 0 && !monitor.locked({ stopping || !jobs.isEmpty }) {
                report = try db.pruneEvents(retention, nowMicros: clock.wallMicros())
                unacknowledged += report.deletedUnacknowledged
            }
            var events: [AccessEvent] = []
            if unacknowledged > 0 {
                events.append(makeEvent(.eventLogPrunedUnacknowledged, [("deleted", .int(unacknowledged)), ("limit", .int(retention.maxCount))]))
            }
            let fill = Double(report.count) / Double(retention.maxCount)
            if fill >= retention.alarmFraction && !nearlyFull {
                nearlyFull = true
                events.append(makeEvent(.eventLogNearlyFull, [("count", .int(report.count)), ("limit", .int(retention.maxCount))]))
            } else if fill < retention.alarmFraction - 0.05 && nearlyFull {
                nearlyFull = false
            }
            if !events.isEmpty, write(events.map { .event($0) }, db) {}
        } catch {
            failures.add(1, ordering: .relaxed)
            onFailure(error)
        }
    }

    /// Writes a batch in one transaction; false when it failed and nothing was written.
    private func write(_ batch: [Job], _ db: AccessDatabase) -> Bool {
        do {
            let events = batch.compactMap { job -> AccessEvent? in if case .event(let e) = job { return e } else { return nil } }
            let stored = try db.transaction {
                for job in batch {
                    switch job {
                    case .event: break
                    case .record(.passUse(let id)): try db.recordPassUse(id)
                    case .record(.passage(let subject, let area, let at)): try db.recordPassage(subject: subject, area: area, at: at)
                    case .record(.operatorCommand(let portals, let action, let mode, let who)):
                        if let mode {
                            for portal in portals {
                                try db.recordPortalMode(portal, mode)
                            }
                        }
                        try db.appendAudit(operator: who, action: action, target: portals.joined(separator: ","),
                                           before: nil, after: mode.map { .object([("mode", .string($0.rawValue))]) })
                    case .record(.audit(let action, let target, let who)):
                        try db.appendAudit(operator: who, action: action, target: target, before: nil, after: nil)
                    case .record(.forgetPassages(let subjects)): try db.forgetPassages(subjects)
                    case .record(.parking(let key, let inside)): try db.recordParking(key: key, inside: inside)
                    }
                }
                return try db.appendEvents(events)
            }
            if !stored.isEmpty { onDurable(stored) }
            return true
        } catch {
            failures.add(1, ordering: .relaxed)
            lastError.withLock { $0 = "\(error)" }
            onFailure(error)
            return false
        }
    }
}
