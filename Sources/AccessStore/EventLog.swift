import AccessCore

/// A filter over the event log. Paging is by serial: pass the last serial seen as `after`.
public struct EventQuery: Sendable {
    public var after: Int64 = 0
    public var limit: Int = 100
    public var sinceMicros: Int64?
    public var untilMicros: Int64?
    public var portal: String?
    public var houseID: String?
    public var personID: String?
    public var type: EventType?

    public init(after: Int64 = 0, limit: Int = 100) {
        self.after = after
        self.limit = limit
    }
}

extension AccessDatabase {
    /// Appends events in one transaction and returns them with their serials. When this returns,
    /// the events are durable (WAL, `synchronous=FULL`).
    @discardableResult
    public func appendEvents(_ events: [AccessEvent]) throws -> [AccessEvent] {
        let stored = try insertEvents(events)
        EventSamples.record(stored)
        return stored
    }

    /// Each event gets the next serial and its link in the hash chain (`LogChain`): one read of
    /// the last hash per batch, then a SHA-256 per event. Rows go in `insertRows` at a time, one
    /// statement for them all: SQLite then opens the table and its indexes and updates
    /// `sqlite_sequence` once per statement, not once per event (the writer's batches are large
    /// when events arrive faster than they commit).
    private func insertEvents(_ events: [AccessEvent]) throws -> [AccessEvent] {
        try connection.transaction {
            var stored = events
            var serial = try lastEventSerial()
            var previous = try eventChainHead()
            var details: [String?] = []
            details.reserveCapacity(Self.insertRows)
            var first = stored.startIndex
            while first < stored.endIndex {
                let rows = stored.endIndex - first >= Self.insertRows ? Self.insertRows : 1
                details.removeAll(keepingCapacity: true)
                var bytes = 0
                func size(_ text: String?) -> Int { text?.utf8.count ?? 0 }
                for i in first..<(first + rows) {
                    let e = stored[i]
                    serial += 1
                    let detail = e.detail.isEmpty ? nil : JSON.object(e.detail).rendered()
                    let hash = LogChain.hash(e, serial: serial, detail: detail, previous: previous)
                    details.append(detail)
                    bytes += e.type.rawValue.utf8.count + size(e.portal) + size(e.direction?.rawValue) + size(e.credentialKind?.rawValue)
                        + size(e.credential) + size(e.personID) + size(e.houseID) + size(e.role?.rawValue) + size(e.reason?.rawValue)
                        + size(detail) + previous.count + hash.count
                    stored[i].serial = serial
                    stored[i].previousHash = previous
                    stored[i].hash = hash
                    previous = hash
                }
                let s = try connection.statement(rows == 1 ? Self.insertOneSQL : Self.insertManySQL)
                s.beginRow(bytes: bytes)
                for row in 0..<rows {
                    let e = stored[first + row]
                    let p = Int32(row * Self.insertColumns)
                    try s.bindRow(e.serial, at: p + 1)
                    try s.bindRow(e.timeMicros, at: p + 2)
                    try s.bindRow(Int64(e.utcOffset), at: p + 3)
                    try s.bindRow(e.type.rawValue, at: p + 4)
                    try s.bindRow(e.portal, at: p + 5)
                    try s.bindRow(e.direction?.rawValue, at: p + 6)
                    try s.bindRow(e.credentialKind?.rawValue, at: p + 7)
                    try s.bindRow(e.credential, at: p + 8)
                    try s.bindRow(e.personID, at: p + 9)
                    try s.bindRow(e.houseID, at: p + 10)
                    try s.bindRow(e.role?.rawValue, at: p + 11)
                    try s.bindRow(e.granted.map { $0 ? 1 : 0 }, at: p + 12)
                    try s.bindRow(e.reason?.rawValue, at: p + 13)
                    try s.bindRow(details[row], at: p + 14)
                    try s.bindRow(e.previousHash ?? [], at: p + 15)
                    try s.bindRow(e.hash ?? [], at: p + 16)
                }
                while try s.step() {}
                first += rows
            }
            return stored
        }
    }

    /// Events one multi-row INSERT writes; the rest of a batch goes one at a time.
    private static let insertRows = 32

    /// Columns bound per row (the placeholders of one row in `insertSQL`).
    private static let insertColumns = 16

    private static let insertOneSQL = insertSQL(rows: 1)
    private static let insertManySQL = insertSQL(rows: insertRows)

    private static func insertSQL(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: insertColumns).joined(separator: ", ") + ")"
        return """
            INSERT INTO events (serial, time_us, utc_offset, type, portal, direction, credential_kind, credential,
                person_id, house_id, role, granted, reason, detail, prev_hash, hash) VALUES
            """ + " " + Array(repeating: row, count: rows).joined(separator: ", ")
    }

    /// Events matching `query`, oldest first.
    public func events(_ query: EventQuery) throws -> [AccessEvent] {
        let s = try connection.statement("""
            SELECT serial, time_us, utc_offset, type, portal, direction, credential_kind, credential,
                   person_id, house_id, role, granted, reason, detail, prev_hash, hash
            FROM events
            WHERE serial > ?1 AND (?2 IS NULL OR time_us >= ?2) AND (?3 IS NULL OR time_us < ?3)
              AND (?4 IS NULL OR portal = ?4) AND (?5 IS NULL OR house_id = ?5) AND (?6 IS NULL OR person_id = ?6)
              AND (?7 IS NULL OR type = ?7)
            ORDER BY serial LIMIT ?8
            """)
        try s.bind([.int(query.after), .optional(query.sinceMicros), .optional(query.untilMicros), .optional(query.portal),
                    .optional(query.houseID), .optional(query.personID), .optional(query.type?.rawValue), .int(Int64(query.limit))])
        var out: [AccessEvent] = []
        while try s.step() {
            var event = AccessEvent(
                serial: s.int(0), timeMicros: s.int(1), utcOffset: Int(s.int(2)), type: EventType(rawValue: s.text(3)) ?? .system,
                portal: s.optionalText(4), direction: s.optionalText(5).flatMap(PortalDirection.init(rawValue:)),
                credentialKind: s.optionalText(6).flatMap(CredentialKind.init(rawValue:)), credential: s.optionalText(7),
                personID: s.optionalText(8), houseID: s.optionalText(9), role: s.optionalText(10).flatMap(Role.init(rawValue:)),
                granted: s.optionalInt(11).map { $0 != 0 }, reason: s.optionalText(12).flatMap(EventReason.init(rawValue:)),
                detail: s.optionalText(13).map(Self.parseDetail) ?? []
            )
            event.previousHash = s.isNull(14) ? nil : s.blob(14)
            event.hash = s.isNull(15) ? nil : s.blob(15)
            out.append(event)
        }
        return out
    }

    /// The highest serial ever assigned (0 for an empty log).
    public func lastEventSerial() throws -> Int64 {
        try connection.scalarInt("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)") ?? 0
    }

    /// The latest time the log holds (µs since 1970), nil when it is empty: where a controller
    /// whose wall clock is unset counts from.
    public func lastEventTime() throws -> Int64? {
        try connection.scalarInt("SELECT max(time_us) FROM events")
    }

    static func parseDetail(_ text: String) -> [(String, JSON)] {
        guard case .object(let pairs)? = JSON.parse(text) else { return [] }
        return pairs
    }
}
