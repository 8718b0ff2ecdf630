import AccessCore
import AccessRuntime
import AccessStore
#if canImport(Glibc)
import Glibc
#endif

/// Reads the community's roster stream into a database, from where that database left off:
/// change sets are put back together from their parts, applied whole in stream order, and the
/// sequence advances only in the transaction that applied them. Used by accessd's fleet client
/// (for ever) and by the office and accessctl (until caught up).
public final class RosterFollower {
    /// What became of one message read.
    public enum Step: Sendable {
        /// Applied; the delta is what the in-memory index needs.
        case applied(AccessDatabase.AppliedChangeSet, ChangeSet)
        /// Already applied here (a redelivery, or accessctl on the same database was first).
        case alreadyApplied(sequence: UInt64)
        /// A part; more are due.
        case partial
        /// Refused alike everywhere: it does not fit the roster (logged and audited; the sequence moves on).
        case refused(sequence: UInt64, id: String, reason: String)
        /// Dropped: its parts stopped half way.
        case dropped(id: String, reason: String)
    }

    /// A change set this build cannot read: the follower stops before it and the controller
    /// keeps deciding on the roster it has, saying it is stuck, until an upgrade can read it.
    public struct Stuck: Error, Sendable, CustomStringConvertible {
        public var sequence: UInt64
        public var problem: String
        public var description: String { "change set at sequence \(sequence) cannot be read: \(problem)" }
    }

    let connection: NatsConnection
    let names: FleetNames
    let db: AccessDatabase
    private var reader: StreamReader?
    private var assembler = ChangeSetAssembler()
    /// The stream sequence the reader must deliver next: a later one means the stream was
    /// compacted past it (the roster stream has one subject, so nothing else skips).
    private var expected: UInt64 = 0

    public init(connection: NatsConnection, names: FleetNames, db: AccessDatabase) {
        self.connection = connection
        self.names = names
        self.db = db
    }

    deinit { reader?.close() }

    /// Waits up to `timeout` for something for `next` to do, reading nothing: true when a
    /// message has arrived, or when `next` must first start reading (which may load a snapshot).
    public func waitForNext(timeout: Duration) throws -> Bool {
        guard let reader else { return true }
        return try reader.waitForMessage(timeout: timeout)
    }

    /// Reads and applies the next message, waiting up to `timeout`; nil when none came.
    public func next(timeout: Duration) throws -> Step? {
        if reader == nil {
            // Compacted past what was applied here: the latest snapshot first, then the tail.
            let first = try connection.streamInfo(names.rosterStream).firstSequence
            if first > (try db.fleetSequence()) + 1, let loaded = try loadSnapshot(covering: first - 1) { return loaded }
            expected = try db.fleetSequence() + 1
            reader = connection.read(stream: names.rosterStream, filter: names.rosterSubject, fromSequence: expected)
        }
        guard let reader, let message = try reader.next(timeout: timeout) else { return nil }
        if message.sequence > expected {
            restart()
            if let loaded = try loadSnapshot(covering: message.sequence - 1) { return loaded }
            // Not stuck: a snapshot just written may not be readable yet; the caller tries again.
            let latest = try RosterSnapshots(connection: connection, names: names).latest()?.sequence
            throw FleetSyncError.timeout("waiting for a roster snapshot: the stream was compacted past \(expected - 1) (it goes on at \(message.sequence)); the latest snapshot is \(latest.map { "at \($0)" } ?? "none")")
        }
        expected = message.sequence + 1
        let outcome: ChangeSetAssembler.Outcome
        do {
            outcome = try assembler.add(sequence: message.sequence, headers: message.headers, payload: message.payload)
        } catch {
            restart()
            throw Stuck(sequence: message.sequence, problem: error.description)
        }
        switch outcome {
        case .incomplete:
            return .partial
        case .dropped(let id, let reason):
            return .dropped(id: id, reason: reason)
        case .complete(let set, let sequence):
            guard set.community == names.community else {
                restart()
                throw Stuck(sequence: sequence, problem: "it is for community \"\(set.community)\", not \"\(names.community)\"")
            }
            do {
                guard let applied = try db.apply(set, sequence: sequence) else { return .alreadyApplied(sequence: sequence) }
                return .applied(applied, set)
            } catch let error as RosterError {
                try db.refuseChangeSet(set, sequence: sequence, reason: "\(error)")
                return .refused(sequence: sequence, id: set.id, reason: "\(error)")
            } catch {
                restart()  // the disk, not the change set: read it again
                throw error
            }
        }
    }

    /// Applies everything the stream holds now. Returns the stream position read up to: the
    /// last sequence applied, or past it when the stream ends in the parts of a change set whose
    /// publisher stopped half way (the next change set published after them drops them).
    @discardableResult
    public func catchUp(timeout: Duration = .seconds(10)) throws -> UInt64 {
        let last = try connection.streamInfo(names.rosterStream).lastSequence
        let deadline = ContinuousClock.now + timeout
        while try db.fleetSequence() < last {
            if let reader, reader.nextSequence > last { return last }  // read to the end; a tail of parts is pending
            guard ContinuousClock.now < deadline else {
                throw FleetSyncError.timeout("catching up with the roster stream (at \(try db.fleetSequence()) of \(last))")
            }
            _ = try next(timeout: .milliseconds(500))
        }
        return try db.fleetSequence()
    }

    /// Replaces the roster with the latest snapshot when it reaches `sequence`; nil when none
    /// does (the stream was not compacted past this replica after all, or the snapshot is older).
    private func loadSnapshot(covering sequence: UInt64) throws -> Step? {
        guard let snapshot = try RosterSnapshots(connection: connection, names: names).latest(), snapshot.sequence >= sequence else {
            return nil
        }
        let set = ChangeSet(community: names.community, id: "snapshot-\(snapshot.sequence)",
                            origin: ChangeSet.Origin(user: "fleet", host: "snapshot", command: "snapshot"), created: 0, changes: snapshot.records)
        guard let applied = try db.replaceRoster(with: snapshot.records, sequence: snapshot.sequence, digest: snapshot.digest,
                                                 origin: "fleet@snapshot") else { return nil }
        return .applied(applied, set)
    }

    /// Starts reading again from what the database has applied (after an error).
    public func restart() {
        reader?.close()
        reader = nil
        assembler = ChangeSetAssembler()
    }
}

/// Why a roster change could not be published or followed.
public enum FleetSyncError: Error, Sendable, CustomStringConvertible {
    case timeout(String)
    /// Another operator changed the roster first, and re-running the command on top refused it.
    case conflict(String)
    case notConfigured(String)

    public var description: String {
        switch self {
        case .timeout(let s): return "timed out \(s)"
        case .conflict(let s): return s
        case .notConfigured(let s): return s
        }
    }
}

/// Publishes roster commands as change sets, with optimistic concurrency: the command runs on
/// the local replica brought up to the stream's end, its changes are published expecting that
/// end, and when another operator got there first the replica catches up and the command runs
/// again on top (so it is re-checked: adding a card someone else took now fails, naming them).
public struct RosterPublisher {
    let connection: NatsConnection
    let names: FleetNames
    public let replica: AccessDatabase
    public let follower: RosterFollower
    /// Whether to apply what was published to the replica at once (the office). A controller's
    /// accessctl leaves that to accessd, which applies it in memory too.
    let applyLocally: Bool

    public init(connection: NatsConnection, names: FleetNames, replica: AccessDatabase, applyLocally: Bool) {
        self.connection = connection
        self.names = names
        self.replica = replica
        self.applyLocally = applyLocally
        follower = RosterFollower(connection: connection, names: names, db: replica)
    }

    /// How long the events stream keeps an event.
    public static let eventsRetentionDays = 30

    /// Creates the community's roster and events streams when this user may (the office's may; a
    /// controller's finds it made).
    public func ensureStreams(replicas: Int) throws {
        try Self.retryingTransient { try ensureStreamsOnce(replicas: replicas) }
    }

    private func ensureStreamsOnce(replicas: Int) throws {
        try RosterSnapshots(connection: connection, names: names).ensureStream(replicas: replicas)
        do {
            _ = try connection.ensureStream(StreamSpec(
                name: names.rosterStream, subjects: [names.rosterSubject],
                description: "CommunityAccess roster change sets of \(names.community)", replicas: replicas,
                duplicateWindow: .seconds(120), denyDelete: true
            ))
        } catch FleetError.notPermitted {
            _ = try connection.streamInfo(names.rosterStream)
        }
        do {
            // Every controller's events: kept 30 days for the platform's durable consumers; a
            // repeated event id within 10 minutes is dropped (FleetEventPublisher).
            _ = try connection.ensureStream(StreamSpec(
                name: names.eventsStream, subjects: [names.eventsSubjects],
                description: "CommunityAccess events of every controller of \(names.community)", replicas: replicas,
                maxAge: .seconds(Self.eventsRetentionDays * 86_400), duplicateWindow: .seconds(600), denyDelete: true
            ))
        } catch FleetError.notPermitted {
            _ = try connection.streamInfo(names.eventsStream)
        }
        do {
            _ = try KeyValueBucket.ensure(BucketSpec(name: names.statusBucket, replicas: replicas), on: connection)
            // Indicator claims are kept as long as the events they stand for.
            _ = try KeyValueBucket.ensure(BucketSpec(name: names.indicatorsBucket, replicas: replicas,
                                                     ttl: .seconds(Self.eventsRetentionDays * 86_400)), on: connection)
        } catch FleetError.notPermitted {}
    }

    /// Runs `body` as one roster change; returns its result and the community sequence the
    /// change set got (nil when the command changed nothing).
    public func change<T>(origin: ChangeSet.Origin, attempts: Int = 5, _ body: (AccessDatabase) throws -> T) throws -> (T, UInt64?) {
        var lastConflict = ""
        for _ in 0..<attempts {
            let base = try Self.retryingTransient { try follower.catchUp() }
            let result: T
            let changes: [RosterChange]
            do {
                (result, changes) = try replica.captureChanges { try body(replica) }
            } catch {
                if !lastConflict.isEmpty {
                    throw FleetSyncError.conflict("another operator changed the roster first (\(lastConflict)); on top of their change: \(error)")
                }
                throw error
            }
            guard !changes.isEmpty else { return (result, nil) }
            let set = ChangeSet(community: names.community, id: Self.changeSetID(), origin: origin,
                                created: AccessDatabase.nowMicros() / 1_000_000, changes: changes)
            do {
                let sequence = try publish(set, after: base)
                if applyLocally { _ = try replica.apply(set, sequence: sequence) }
                return (result, sequence)
            } catch FleetError.wrongLastSequence(let failure) {
                lastConflict = failure.description
                continue
            }
        }
        throw FleetSyncError.conflict("the roster kept changing under this command (\(attempts) attempts); try again")
    }

    /// Publishes a change set right after `base`, in parts when large; returns its sequence.
    public func publish(_ set: ChangeSet, after base: UInt64) throws -> UInt64 {
        var expected = base
        for part in ChangeSetParts.split(set, maxBytes: max(64 * 1024, connection.maxPayload - 8 * 1024)) {
            // A retry after a timeout sends the same message id: if the first was stored after
            // all, JetStream answers "duplicate" with its sequence instead of storing it twice.
            let ack = try Self.retryingTransient {
                try connection.publish(subject: names.rosterSubject, payload: part.payload, headers: part.headers,
                                       messageID: set.id + "/" + (part.headers[ChangeSetParts.partHeader] ?? "1/1"),
                                       expectedLastSequence: expected)
            }
            expected = ack.sequence
        }
        return expected
    }

    /// Runs `body` again while the cluster is between leaders (a node died: a new stream leader
    /// is elected within seconds), for up to `seconds`.
    public static func retryingTransient<T>(seconds: Int = 30, _ body: () throws -> T) throws -> T {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var wait: Duration = .milliseconds(100)
        while true {
            do {
                return try body()
            } catch let error as FleetError {
                switch error {
                case .timeout, .noResponders, .notConnected:
                    guard ContinuousClock.now + wait < deadline else { throw error }
                    sleepBlocking(for: wait)
                    wait = min(wait * 2, .seconds(2))
                default:
                    throw error
                }
            }
        }
    }

    static func changeSetID() -> String {
        var generator = SystemRandomNumberGenerator()
        let hex = (0..<4).map { _ in String(UInt32.random(in: 0...UInt32.max, using: &generator), radix: 16) }.joined()
        return "cs-" + hex
    }
}
