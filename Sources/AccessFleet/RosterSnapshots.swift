import AccessCore
import AccessStore

// Snapshots keep the roster stream bounded (interfaces.md, Fleet).
//
// A snapshot is the whole roster at a community sequence S, as a change set of puts (the same
// format, id `snapshot-S`, in parts when large) on stream `ROSTER_SNAPSHOTS_COMMUNITY`, subject
// `access.COMMUNITY.roster.snapshot`, every part headed with S and the roster digest at S. Once
// it is stored, the roster stream is purged below S + 1 − keep (the last `keep` change sets stay,
// so a controller a little behind still applies the tail) and older snapshots are purged. A
// controller or office replica that finds the stream starting past what it has applied loads the
// latest snapshot (whole, checked against its digest, in one transaction), then follows the tail.

/// Writing and reading the community's roster snapshots.
public struct RosterSnapshots {
    public static let sequenceHeader = "Access-Snapshot-Sequence"
    public static let digestHeader = "Access-Snapshot-Digest"
    /// The office compacts on its own once the roster stream holds this many messages.
    public static let automaticThreshold: UInt64 = 10_000
    /// Change sets kept after a snapshot: a controller this far behind needs no snapshot.
    public static let defaultKeep: UInt64 = 1_000

    let connection: NatsConnection
    let names: FleetNames

    public init(connection: NatsConnection, names: FleetNames) {
        self.connection = connection
        self.names = names
    }

    /// Creates the snapshots stream when this user may (the office).
    func ensureStream(replicas: Int) throws {
        do {
            _ = try connection.ensureStream(StreamSpec(
                name: names.snapshotStream, subjects: [names.snapshotSubject],
                description: "CommunityAccess roster snapshots of \(names.community)", replicas: replicas,
                allowDirect: false  // read from the leader: a replica still catching up would answer "none"
            ))
        } catch FleetError.notPermitted {
            _ = try connection.streamInfo(names.snapshotStream)
        }
    }

    /// What a compaction did.
    public struct Compaction: Sendable, Equatable {
        public var sequence: UInt64
        public var records: Int
        public var parts: Int
        /// The roster stream's first sequence afterwards.
        public var firstKept: UInt64
    }

    /// Publishes a snapshot of `replica` (brought up to the stream's end first by the caller) and
    /// purges what it makes unnecessary, keeping the last `keep` change sets.
    public func compact(replica: AccessDatabase, origin: ChangeSet.Origin, replicas: Int, keep: UInt64 = defaultKeep) throws -> Compaction {
        try ensureStream(replicas: replicas)
        let (sequence, digest, records) = try replica.rosterSnapshot()
        let set = ChangeSet(community: names.community, id: "snapshot-\(sequence)", origin: origin,
                            created: AccessDatabase.nowMicros() / 1_000_000, changes: records)
        let parts = ChangeSetParts.split(set, maxBytes: max(64 * 1024, connection.maxPayload - 8 * 1024))
        var expected = try connection.streamInfo(names.snapshotStream).lastSequence
        var first: UInt64 = 0
        for part in parts {
            var headers = part.headers
            headers[Self.sequenceHeader] = String(sequence)
            headers[Self.digestHeader] = digest.hex
            let ack = try RosterPublisher.retryingTransient {
                try connection.publish(subject: names.snapshotSubject, payload: part.payload, headers: headers,
                                       messageID: set.id + "/" + (part.headers[ChangeSetParts.partHeader] ?? "1/1"),
                                       expectedLastSequence: expected)
            }
            if first == 0 { first = ack.sequence }
            expected = ack.sequence
        }
        // Older snapshots go. Never "keep from 1": with libnats 3.4 and nats-server 2.9 that
        // purged the stream's only snapshot here (a test checks one is left).
        if first > 1 { try connection.purge(stream: names.snapshotStream, keepFromSequence: first) }
        let firstKept = sequence + 1 > keep ? sequence + 1 - keep : 1
        if firstKept > 1 { try connection.purge(stream: names.rosterStream, keepFromSequence: firstKept) }
        return Compaction(sequence: sequence, records: records.count, parts: parts.count, firstKept: firstKept)
    }

    /// The latest snapshot: its sequence, digest and records; nil when there is none.
    public func latest() throws -> (sequence: UInt64, digest: RosterDigest, records: [RosterChange])? {
        guard let last = try lastPart() else { return nil }
        guard let at = last.headers[Self.sequenceHeader].flatMap({ UInt64($0) }),
              let digest = last.headers[Self.digestHeader].flatMap({ RosterDigest(hex: $0) }) else {
            throw FleetSyncError.conflict("the latest roster snapshot has no sequence or digest header")
        }
        let total = last.headers[ChangeSetParts.partHeader]?.split(separator: "/").last.flatMap { UInt64($0) } ?? 1
        guard total >= 1, last.sequence >= total else { throw FleetSyncError.conflict("the latest roster snapshot's parts are not whole") }
        var assembler = ChangeSetAssembler()
        for sequence in (last.sequence - total + 1)...last.sequence {
            guard let message = try connection.message(stream: names.snapshotStream, sequence: sequence) else {
                throw FleetSyncError.conflict("the latest roster snapshot lost its part at \(sequence)")
            }
            let outcome = try assembler.add(sequence: sequence, headers: message.headers, payload: message.payload)
            if case .complete(let set, _) = outcome { return (at, digest, set.changes) }
        }
        throw FleetSyncError.conflict("the latest roster snapshot's parts do not make a whole")
    }

    /// The snapshot stream's last message; nil when there is none (or no stream yet).
    private func lastPart() throws -> StreamMessage? {
        do {
            return try connection.lastMessage(stream: names.snapshotStream, subject: names.snapshotSubject)
        } catch {
            if case .notFound = error { return nil }
            throw error
        }
    }
}
