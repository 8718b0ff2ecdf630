import AccessCore
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
        case passUse(String)
        case passage(subject: String, area: String, at: UnixSeconds)
        /// An operator's command at portals (`door.open`, `barrier.close`, `fence.disarm` …): the
        /// audit record, and the portals' standing mode when the command sets one.
        case operatorCommand(portals: [String], action: String, mode: PortalMode?, operator: String)
    }

    private let monitor = Monitor()
    // Guarded by `monitor`.
    private var jobs: [Job] = []
    private var submitted = 0
    private var written = 0
    private var stopping = false
    private var thread: pthread_t?
    /// Called on the worker thread with events once they are durable, serials assigned.
    private let onDurable: @Sendable ([AccessEvent]) -> Void
    /// Failed writes, counted; a failed batch is kept and written again (events are never dropped).
    public let failures = Atomic<Int>(0)
    public let lastError = Mutex<String?>(nil)

    private let onFailure: @Sendable (Error) -> Void
    /// Applied between batches, at most every `maintenanceNanos`.
    private let retention: EventRetention?
    private let maintenanceNanos: UInt64
    private let makeEvent: @Sendable (_ reason: String, _ detail: [(String, JSON)]) -> AccessEvent
    /// Whether `event_log_nearly_full` stands raised (it clears below 85 % of the limit).
    private var nearlyFull = false

    /// `retention`: how much of the log to keep; `makeEvent` builds the worker's own events
    /// (`event_log_nearly_full`, `event_log_pruned`) with the controller's clock and zone.
    public init(path: String, retention: EventRetention? = nil, maintenanceSeconds: Double = 60,
                makeEvent: @escaping @Sendable (_ reason: String, _ detail: [(String, JSON)]) -> AccessEvent = { reason, detail in
                    AccessEvent(timeMicros: AccessDatabase.nowMicros(), utcOffset: 0, type: .alarm, reason: reason, detail: detail)
                },
                onDurable: @escaping @Sendable ([AccessEvent]) -> Void = { _ in },
                onFailure: @escaping @Sendable (Error) -> Void = { _ in }) throws {
        self.onDurable = onDurable
        self.onFailure = onFailure
        self.retention = retention
        self.maintenanceNanos = UInt64(maintenanceSeconds * 1e9)
        self.makeEvent = makeEvent
        let db = try AccessDatabase(path: path, create: false)
        nonisolated(unsafe) let connection = db
        thread = try startThread { self.run(connection) }  // the thread keeps the worker alive until stop()
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

    /// Writes what is queued, then stops the thread.
    public func stop() {
        monitor.locked {
            stopping = true
            monitor.broadcast()
        }
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func run(_ db: AccessDatabase) {
        var pending: [Job] = []
        var retryDelay: UInt32 = 10_000
        var nextMaintenance = monotonicNow() + maintenanceNanos
        while true {
            if retention != nil, pending.isEmpty, monotonicNow() >= nextMaintenance {
                nextMaintenance = monotonicNow() + maintenanceNanos
                maintain(db)
            }
            let (batch, stop): ([Job], Bool) = monitor.locked {
                while jobs.isEmpty && !stopping && pending.isEmpty {
                    if retention == nil { monitor.wait() } else {
                        monitor.wait(until: nextMaintenance)
                        if monotonicNow() >= nextMaintenance { break }
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
            var report = try db.pruneEvents(retention, nowMicros: AccessDatabase.nowMicros())
            var unacknowledged = report.deletedUnacknowledged
            while report.deleted > 0 && !monitor.locked({ stopping || !jobs.isEmpty }) {
                report = try db.pruneEvents(retention, nowMicros: AccessDatabase.nowMicros())
                unacknowledged += report.deletedUnacknowledged
            }
            var events: [AccessEvent] = []
            if unacknowledged > 0 {
                events.append(makeEvent("event_log_pruned_unacknowledged", [("deleted", .int(unacknowledged)), ("limit", .int(retention.maxCount))]))
            }
            let fill = Double(report.count) / Double(retention.maxCount)
            if fill >= retention.alarmFraction && !nearlyFull {
                nearlyFull = true
                events.append(makeEvent("event_log_nearly_full", [("count", .int(report.count)), ("limit", .int(retention.maxCount))]))
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
                    case .passUse(let id): try db.recordPassUse(id)
                    case .passage(let subject, let area, let at): try db.recordPassage(subject: subject, area: area, at: at)
                    case .operatorCommand(let portals, let action, let mode, let who):
                        if let mode {
                            for portal in portals {
                                try db.recordPortalMode(portal, mode)
                            }
                        }
                        try db.appendAudit(operator: who, action: action, target: portals.joined(separator: ","),
                                           before: nil, after: mode.map { .object([("mode", .string($0.rawValue))]) })
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
