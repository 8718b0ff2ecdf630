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

    public init(path: String, onDurable: @escaping @Sendable ([AccessEvent]) -> Void = { _ in },
                onFailure: @escaping @Sendable (Error) -> Void = { _ in }) throws {
        self.onDurable = onDurable
        self.onFailure = onFailure
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
        while true {
            let (batch, stop): ([Job], Bool) = monitor.locked {
                while jobs.isEmpty && !stopping && pending.isEmpty { monitor.wait() }
                defer { jobs.removeAll(keepingCapacity: true) }
                return (pending + jobs, stopping && jobs.isEmpty && pending.isEmpty)
            }
            if stop { return }
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

    /// Writes a batch in one transaction; false when it failed and nothing was written.
    private func write(_ batch: [Job], _ db: AccessDatabase) -> Bool {
        do {
            let events = batch.compactMap { job -> AccessEvent? in if case .event(let e) = job { return e } else { return nil } }
            let stored = try db.connection.transaction {
                for job in batch {
                    switch job {
                    case .event: break
                    case .passUse(let id): try db.recordPassUse(id)
                    case .passage(let subject, let area, let at): try db.recordPassage(subject: subject, area: area, at: at)
                    case .operatorCommand(let portals, let action, let mode, let who):
                        if let mode {
                            for portal in portals {
                                try db.connection.run("UPDATE portals SET mode = ? WHERE id = ?", [.text(mode.rawValue), .text(portal)])
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
