import AccessCore

/// The 以房管人 analytics' side of the store: the roster facts it needs, read in three ordered
/// scans, and its snapshot (table `analytics_state`, migration `v4Analytics`): one row per person,
/// house and indicator in force, plus the serial up to which events were applied, all written in
/// one transaction so that a restart goes on from exactly that serial.
extension AccessDatabase {
    /// The row of `analytics_state` holding the serial of the last event applied.
    static let analyticsSerialKey = "serial"

    /// Houses, every person's bindings (in the roster's order) and each person's standing.
    public func analyticsRoster() throws -> AnalyticsRoster {
        try connection.transaction(immediate: false) {
            var houses: [House] = []
            let h = try connection.statement("SELECT id, building, unit, floor, room FROM houses ORDER BY id")
            while try h.step() { houses.append(Self.house(from: h)) }
            var members: [AnalyticsRoster.Member] = []
            let b = try connection.statement("SELECT person_id, house_id, role FROM person_houses ORDER BY person_id, position, house_id")
            while try b.step() {
                members.append(.init(houseID: b.text(1), personID: b.text(0), role: Role(rawValue: b.text(2)) ?? .visitor))
            }
            var people: [String: AnalyticsRoster.PersonFacts] = [:]
            let p = try connection.statement("SELECT id, status, valid_until, lives_alone FROM people")
            while try p.step() {
                people[p.text(0)] = .init(active: p.text(1) == PersonStatus.active.rawValue, validUntil: p.optionalInt(2), livesAlone: p.int(3) != 0)
            }
            return AnalyticsRoster(houses: houses, members: members, people: people)
        }
    }

    /// The row naming what the serial counts: `local` (this controller's log; also when the row
    /// is absent) or `fleet:COMMUNITY` (the community's events stream).
    static let analyticsSourceKey = "source"

    /// The persisted snapshot: the serial it was taken at (nil when there is none yet) and its
    /// rows; none when it was taken from another `source` (the analytics start again).
    public func analyticsState(source: String = "local") throws -> (appliedSerial: Int64?, rows: [(key: String, value: String)]) {
        try connection.transaction(immediate: false) {
            let stored = try connection.scalarText("SELECT value FROM analytics_state WHERE key = ?", [.text(Self.analyticsSourceKey)]) ?? "local"
            guard stored == source else { return (nil, []) }
            let serial = try connection.scalarText("SELECT value FROM analytics_state WHERE key = ?", [.text(Self.analyticsSerialKey)])
                .flatMap { Int64($0) }
            var rows: [(key: String, value: String)] = []
            let s = try connection.statement("SELECT key, value FROM analytics_state WHERE key NOT IN (?1, ?2)")
            try s.bind([.text(Self.analyticsSerialKey), .text(Self.analyticsSourceKey)])
            while try s.step() { rows.append((s.text(0), s.text(1))) }
            return (serial, rows)
        }
    }

    /// Writes a snapshot's changed rows and its serial in one transaction; a snapshot of
    /// another `source` is dropped first.
    public func saveAnalyticsState(_ snapshot: AnalyticsSnapshot, source: String = "local") throws {
        try connection.transaction {
            let stored = try connection.scalarText("SELECT value FROM analytics_state WHERE key = ?", [.text(Self.analyticsSourceKey)]) ?? "local"
            if stored != source {
                try connection.run("DELETE FROM analytics_state")
                try connection.run("INSERT INTO analytics_state (key, value) VALUES (?, ?)", [.text(Self.analyticsSourceKey), .text(source)])
            }
            for key in snapshot.deletions {
                try connection.run("DELETE FROM analytics_state WHERE key = ?", [.text(key)])
            }
            for (key, value) in snapshot.upserts {
                try connection.run("INSERT OR REPLACE INTO analytics_state (key, value) VALUES (?, ?)", [.text(key), .text(value)])
            }
            try connection.run("INSERT OR REPLACE INTO analytics_state (key, value) VALUES (?, ?)",
                               [.text(Self.analyticsSerialKey), .text(String(snapshot.appliedSerial))])
        }
    }

    /// The serial just before the first event at or after `micros` (the log's last serial when
    /// there is none): where analytics without a snapshot start, so that a first start reads only
    /// the widest window (30 days), not the whole log.
    public func serialBefore(micros: Int64) throws -> Int64 {
        // Serials follow time but for clock steps: the lowest serial of the window (events_time index).
        if let first = try connection.scalarInt("SELECT min(serial) FROM events WHERE time_us >= ?", [.int(micros)]) {
            return first - 1
        }
        return try lastEventSerial()
    }
}
