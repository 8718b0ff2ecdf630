import AccessCore

/// What `verifyEventChain` or `verifyAuditChain` found in one log.
public struct ChainReport: Sendable, Equatable {
    /// `events` or `audit`.
    public var log: String
    /// Entries read.
    public var checked: Int64
    /// Entries stored before the chain existed (no hash), all at the start of the log.
    public var unchained: Int64
    /// Where the chain first breaks; nil when it is intact.
    public var firstBreak: ChainBreak?

    public var isIntact: Bool { firstBreak == nil }

    public init(log: String, checked: Int64, unchained: Int64, firstBreak: ChainBreak?) {
        self.log = log
        self.checked = checked
        self.unchained = unchained
        self.firstBreak = firstBreak
    }

    public var json: JSON {
        .object([
            ("log", .string(log)), ("intact", .bool(isIntact)), ("checked", .int(checked)), ("unchained", .int(unchained)),
            ("first_bad_serial", firstBreak.map { .int($0.serial) } ?? .null), ("problem", .string(firstBreak?.problem)),
        ])
    }
}

extension AccessDatabase {
    static let eventChainAnchorKey = "event_chain_anchor"

    /// The hash the next event links to: the newest event's; genesis when the newest has none
    /// (stored before the chain) or the log never held one; the retention anchor's when
    /// retention removed every event.
    func eventChainHead() throws(StoreError) -> [UInt8] {
        let newest = try connection.statement("SELECT hash FROM events ORDER BY serial DESC LIMIT 1")
        if let hash = try newest.first({ $0.isNull(0) ? nil : $0.blob(0) }) { return hash ?? LogChain.genesis }
        return try eventChainAnchor()?.hash ?? LogChain.genesis
    }

    /// The serial and hash of the last event retention removed: where the kept log's chain starts.
    public func eventChainAnchor() throws(StoreError) -> (serial: Int64, hash: [UInt8])? {
        guard let text = try connection.scalarText("SELECT value FROM settings WHERE key = ?", [.text(Self.eventChainAnchorKey)]),
              let colon = text.firstIndex(of: ":"), let serial = Int64(text[..<colon]),
              let hash = Hex.decode(String(text[text.index(after: colon)...])) else { return nil }
        return (serial, hash)
    }

    /// Before retention deletes every event up to `serial`: remembers that event's hash, so the
    /// chain of what is kept still starts somewhere known (nothing when it has no hash).
    func recordEventChainAnchor(deletingUpTo serial: Int64) throws(StoreError) {
        let s = try connection.statement("SELECT hash FROM events WHERE serial = ?")
        try s.bind([.int(serial)])
        guard let hash = try s.first({ $0.isNull(0) ? nil : $0.blob(0) }) ?? nil else { return }
        try connection.run("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           [.text(Self.eventChainAnchorKey), .text("\(serial):\(Hex.encode(hash))")])
    }

    /// The id and previous hash of the next audit entry.
    func nextAuditLink() throws(StoreError) -> (id: Int64, previous: [UInt8]) {
        let last = try connection.scalarInt("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)") ?? 0
        let newest = try connection.statement("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
        let previous = (try newest.first { $0.isNull(0) ? nil : $0.blob(0) } ?? nil) ?? LogChain.genesis
        return (last + 1, previous)
    }

    /// Walks the event log in serial order, recomputing every hash from what is stored, in one
    /// read transaction (writers carry on). Retention's removals are not breaks: the chain starts
    /// at the anchor retention left, or at the first kept event's stored previous hash.
    public func verifyEventChain() throws -> ChainReport {
        try connection.transaction(immediate: false) {
            var verifier = ChainVerifier(anchor: try eventChainAnchor())
            let s = try connection.statement("""
                SELECT serial, time_us, utc_offset, type, portal, direction, credential_kind, credential,
                       person_id, house_id, role, granted, reason, detail, prev_hash, hash
                FROM events ORDER BY serial
                """)
            defer { s.reset() }
            while try s.step() {
                let serial = s.int(0)
                let previous = s.isNull(14) ? nil : s.blob(14)
                let hash = s.isNull(15) ? nil : s.blob(15)
                let recomputed = previous.map { previous in
                    LogChain.hash(LogChain.EventFields(
                        serial: serial, timeMicros: s.int(1), utcOffset: s.int(2), type: s.text(3), portal: s.optionalText(4),
                        direction: s.optionalText(5), credentialKind: s.optionalText(6), credential: s.optionalText(7),
                        personID: s.optionalText(8), houseID: s.optionalText(9), role: s.optionalText(10),
                        granted: s.optionalInt(11).map { $0 != 0 }, reason: s.optionalText(12), detail: s.optionalText(13)),
                        previous: previous)
                }
                if let problem = verifier.check(serial: serial, previous: previous, hash: hash, recomputed: recomputed) {
                    return ChainReport(log: "events", checked: verifier.checked, unchained: verifier.unchained, firstBreak: problem)
                }
            }
            let problem = verifier.finish(lastAssigned: try lastEventSerial())
            return ChainReport(log: "events", checked: verifier.checked, unchained: verifier.unchained, firstBreak: problem)
        }
    }

    /// Walks the audit log by id as `verifyEventChain` walks events (the audit log is never pruned).
    public func verifyAuditChain() throws -> ChainReport {
        try connection.transaction(immediate: false) {
            var verifier = ChainVerifier()
            let s = try connection.statement("""
                SELECT id, time_us, operator, note, action, target, before, after, prev_hash, hash FROM audit ORDER BY id
                """)
            defer { s.reset() }
            while try s.step() {
                let id = s.int(0)
                let previous = s.isNull(8) ? nil : s.blob(8)
                let hash = s.isNull(9) ? nil : s.blob(9)
                let recomputed = previous.map { previous in
                    LogChain.hash(LogChain.AuditFields(
                        id: id, timeMicros: s.int(1), operator: s.text(2), note: s.optionalText(3), action: s.text(4), target: s.text(5),
                        before: s.optionalText(6), after: s.optionalText(7)), previous: previous)
                }
                if let problem = verifier.check(serial: id, previous: previous, hash: hash, recomputed: recomputed) {
                    return ChainReport(log: "audit", checked: verifier.checked, unchained: verifier.unchained, firstBreak: problem)
                }
            }
            let last = try connection.scalarInt("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit'), 0)") ?? 0
            return ChainReport(log: "audit", checked: verifier.checked, unchained: verifier.unchained, firstBreak: verifier.finish(lastAssigned: last))
        }
    }
}
