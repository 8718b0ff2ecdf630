import AccessCore

/// The roster as the fleet sees it: change sets captured from store commands, applied in the
/// community's order with the applied sequence in the same transaction, and a digest that two
/// controllers with the same roster agree on.
extension AccessDatabase {
    // MARK: Capturing a command's changes

    /// Runs `body` (any roster commands of this store) in a transaction that is always rolled
    /// back, and returns what it returned with the records it changed, as their states after it,
    /// ordered for applying.
    ///
    /// Connection-local TEMP triggers note every row the commands touch, so every write path
    /// (single commands, imports, cascades) is captured without each knowing about the fleet; the
    /// database file is never changed.
    public func captureChanges<T>(_ body: () throws -> T) throws -> (T, [RosterChange]) {
        try installCaptureTriggers()
        var captured: (T, [RosterChange])?
        do {
            try connection.transaction {
                try connection.execute("DELETE FROM temp.fleet_touched")
                let result = try body()
                var keys: [RosterKey] = []
                let s = try connection.statement("SELECT DISTINCT kind, key FROM temp.fleet_touched")
                while try s.step() {
                    if let key = Self.rosterKey(kind: s.text(0), key: s.text(1)) { keys.append(key) }
                }
                s.reset()
                var changes: [RosterChange] = []
                for key in keys { changes.append(try image(of: key)) }
                captured = (result, RosterChange.ordered(changes))
                throw CaptureRollback()
            }
        } catch is CaptureRollback {}
        guard let captured else { throw StoreError.sqlite(operation: "capture roster changes", code: 1, message: "no result") }
        return captured
    }

    private struct CaptureRollback: Error {}

    private func installCaptureTriggers() throws(StoreError) {
        if try connection.scalarInt("SELECT 1 FROM sqlite_temp_master WHERE name = 'fleet_touched'") != nil { return }
        try connection.execute("CREATE TEMP TABLE fleet_touched (kind TEXT NOT NULL, key TEXT NOT NULL)")
        // table → (kind, key expression with R standing for NEW or OLD)
        let sources: [(String, String, String)] = [
            ("houses", "house", "R.id"), ("people", "person", "R.id"), ("person_houses", "person", "R.person_id"),
            ("person_groups", "person", "R.person_id"), ("credentials", "credential", "R.kind || ':' || R.value"),
            ("schedules", "schedule", "R.name"), ("schedule_dates", "schedule", "R.schedule"), ("groups", "group", "R.name"),
            ("group_portals", "group", "R.group_name"), ("visitor_passes", "visitor_pass", "R.id"),
        ]
        for (table, kind, key) in sources {
            for (event, rows) in [("INSERT", ["NEW"]), ("UPDATE", ["OLD", "NEW"]), ("DELETE", ["OLD"])] {
                let inserts = rows.map { "INSERT INTO fleet_touched VALUES ('\(kind)', \(key.replacing("R.", with: $0 + ".")));" }
                try connection.execute("""
                    CREATE TEMP TRIGGER fleet_\(table)_\(event.lowercased()) AFTER \(event) ON main.\(table)
                    BEGIN \(inserts.joined(separator: " ")) END
                    """)
            }
        }
    }

    static func rosterKey(kind: String, key: String) -> RosterKey? {
        switch kind {
        case "house": return .house(key)
        case "person": return .person(key)
        case "schedule": return .schedule(key)
        case "group": return .group(key)
        case "visitor_pass": return .visitorPass(key)
        case "credential":
            guard let colon = key.firstIndex(of: ":"), let k = CredentialKind(rawValue: String(key[..<colon])) else { return nil }
            return .credential(k, String(key[key.index(after: colon)...]))
        default: return nil
        }
    }

    /// A record's state in this database: a put of what is stored, or a delete when it is not.
    public func image(of key: RosterKey) throws -> RosterChange {
        switch key {
        case .schedule(let name): return try schedule(name).map(RosterChange.putSchedule) ?? .delete(key)
        case .group(let name): return try group(name).map(RosterChange.putGroup) ?? .delete(key)
        case .house(let id): return try house(id).map(RosterChange.putHouse) ?? .delete(key)
        case .person(let id): return try person(id).map(RosterChange.putPerson) ?? .delete(key)
        case .credential(let kind, let value): return try credential(kind: kind, value: value).map(RosterChange.putCredential) ?? .delete(key)
        case .visitorPass(let id): return try pass(id).map(RosterChange.putVisitorPass) ?? .delete(key)
        }
    }

    // MARK: Applying a change set

    /// The community sequence of the last change set applied here; 0 when none.
    public func fleetSequence() throws(StoreError) -> UInt64 {
        UInt64(try connection.scalarText("SELECT value FROM settings WHERE key = 'fleet_sequence'") ?? "0") ?? 0
    }

    /// The community's events-stream sequence up to which other gates' visitor-pass uses are
    /// counted here (0: none yet).
    public func fleetEventsSequence() throws(StoreError) -> UInt64 {
        UInt64(try connection.scalarText("SELECT value FROM settings WHERE key = 'fleet_events_sequence'") ?? "0") ?? 0
    }

    /// Counts one use per entry of `passIDs` (uses spent at other gates; a pass this roster does
    /// not have is skipped) and moves the events cursor to `sequence`, in one transaction, so
    /// a restart neither loses nor counts a use twice. The roster generation is not moved: the
    /// caller counts the uses in memory too.
    public func recordFleetPassUses(_ passIDs: [String], through sequence: UInt64) throws {
        try connection.transaction(immediate: true) {
            for id in passIDs {
                try connection.run("UPDATE visitor_passes SET uses = uses + 1 WHERE id = ?", [.text(id)])
            }
            try connection.run("""
                INSERT INTO settings (key, value) VALUES ('fleet_events_sequence', ?1)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """, [.text(String(sequence))])
        }
    }

    /// The secret that signs visitor passes, as hex (to hand to the fleet; never print it).
    public func passSecretHex() throws(StoreError) -> String {
        try connection.scalarText("SELECT value FROM settings WHERE key = 'pass_secret'") ?? ""
    }

    /// Replaces the secret that signs visitor passes with `hex` (the fleet's community secret:
    /// at least 16 bytes). Codes signed with the old one stop opening gates.
    public func setPassSecret(hex: String) throws {
        guard hex.count >= 32, hex.count % 2 == 0, hex.allSatisfy(\.isHexDigit) else {
            throw RosterError.invalid(field: "pass_secret", value: "(\(hex.count) characters)", problem: "must be at least 16 bytes of hex")
        }
        try connection.run("INSERT INTO settings (key, value) VALUES ('pass_secret', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                           [.text(hex.lowercased())])
    }

    /// The roster digest kept up to date by `apply` (`RosterDigest.empty` before the first).
    public func fleetDigest() throws(StoreError) -> RosterDigest {
        RosterDigest(hex: try connection.scalarText("SELECT value FROM settings WHERE key = 'fleet_digest'") ?? "") ?? .empty
    }

    /// What applying a change set did: the records' states after it, cascades included (a deleted
    /// person's credentials, a deleted house's passes), for the in-memory index.
    public struct AppliedChangeSet: Sendable {
        public var sequence: UInt64
        public var delta: [RosterChange]
        public var digest: RosterDigest
        /// The roster generation the change set's transaction wrote.
        public var generation: Int64
        /// A snapshot replaced the whole roster: the index in memory is rebuilt, not changed.
        public var replacedWhole = false
    }

    /// Applies a change set at community sequence `sequence`, whole or not at all, with the
    /// sequence and the new digest in the same transaction. Returns nil, changing nothing, when
    /// a sequence at or after it was already applied (a redelivery). A change that does not fit
    /// this roster (an unknown house, a PIN in use) throws `RosterError` and nothing is applied.
    public func apply(_ changeSet: ChangeSet, sequence: UInt64) throws -> AppliedChangeSet? {
        try connection.transaction {
            guard sequence > (try fleetSequence()) else { return nil }
            var digest = try fleetDigest()
            if try connection.scalarText("SELECT value FROM settings WHERE key = 'fleet_digest'") == nil {
                digest = try computeRosterDigest()  // first change set on a roster kept before the fleet
            }
            var delta: [RosterChange] = []
            for change in try changeSet.changes.map(storedForm) {
                var keys = [change.key]
                keys += try cascade(of: change)
                for key in keys {
                    let before = try image(of: key)
                    if !before.isDelete { digest.remove(before) }
                }
                try applyOne(change)
                for key in keys {
                    let after = try image(of: key)
                    if !after.isDelete { digest.add(after) }
                    delta.append(after)
                }
            }
            try connection.run("INSERT OR REPLACE INTO settings (key, value) VALUES ('fleet_sequence', ?)", [.text(String(sequence))])
            try connection.run("INSERT OR REPLACE INTO settings (key, value) VALUES ('fleet_digest', ?)", [.text(digest.hex)])
            try appendAudit(
                operator: changeSet.origin.user + "@" + changeSet.origin.host, action: "fleet.apply", target: "sequence \(sequence)",
                before: nil,
                after: .object([("id", .string(changeSet.id)), ("command", .string(changeSet.origin.command)), ("changes", .int(changeSet.changes.count))])
            )
            try bumpRosterGeneration()
            ChangeSetSamples.record(changeSet)
            return AppliedChangeSet(sequence: sequence, delta: delta, digest: digest, generation: try rosterGeneration())
        }
    }

    /// A change with its PIN as this database stores it: a format-1 change set named PINs by
    /// their digits, hashed here with the PIN key; format 2 carries the hash already.
    private func storedForm(_ change: RosterChange) throws -> RosterChange {
        switch change {
        case .putCredential(var credential) where credential.kind == .pin:
            credential.value = try storedValue(.pin, credential.value)
            return .putCredential(credential)
        case .delete(.credential(.pin, let value)):
            return .delete(.credential(.pin, try storedValue(.pin, value)))
        default:
            return change
        }
    }

    /// Passes over a change set that does not fit the roster (a platform's change naming a house
    /// nobody has): every controller refuses it alike, so all stay equal. The sequence moves on
    /// and the audit log keeps why. False when the sequence was already passed.
    @discardableResult
    public func refuseChangeSet(_ changeSet: ChangeSet, sequence: UInt64, reason: String) throws -> Bool {
        try connection.transaction {
            guard sequence > (try fleetSequence()) else { return false }
            try connection.run("INSERT OR REPLACE INTO settings (key, value) VALUES ('fleet_sequence', ?)", [.text(String(sequence))])
            try appendAudit(
                operator: changeSet.origin.user + "@" + changeSet.origin.host, action: "fleet.refuse", target: "sequence \(sequence)",
                before: nil, after: .object([("id", .string(changeSet.id)), ("command", .string(changeSet.origin.command)), ("reason", .string(reason))])
            )
            return true
        }
    }

    /// Records a delete takes with it: a person's credentials, a house's credentials and passes.
    private func cascade(of change: RosterChange) throws -> [RosterKey] {
        switch change {
        case .delete(.person(let id)):
            return try credentials(person: id).map { .credential($0.kind, $0.value) }
        case .delete(.house(let id)):
            return try credentials(house: id).map { .credential($0.kind, $0.value) } + (try passes(house: id)).map { .visitorPass($0.id) }
        default:
            return []
        }
    }

    private func applyOne(_ change: RosterChange) throws {
        switch change {
        case .putSchedule(let schedule):
            try Self.validateID(schedule.name, field: "schedule")
            try connection.run("INSERT INTO schedules (name, segments) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET segments = excluded.segments",
                               [.text(schedule.name), .text(schedule.specs.joined(separator: "\n"))])
            try connection.run("DELETE FROM schedule_dates WHERE schedule = ?", [.text(schedule.name)])
            for date in schedule.holidays {
                try connection.run("INSERT INTO schedule_dates (schedule, date, kind) VALUES (?, ?, 'holiday')", [.text(schedule.name), .text(date.description)])
            }
            for (date, ranges) in schedule.exceptions {
                try connection.run("INSERT OR REPLACE INTO schedule_dates (schedule, date, kind, segments) VALUES (?, ?, 'exception', ?)",
                                   [.text(schedule.name), .text(date.description), .text(ranges.map(\.description).joined(separator: " "))])
            }
        case .putGroup(let group):
            // Portals are not checked against this controller's: a community group names the
            // portals of every controller, and each keeps those it has.
            try Self.validateID(group.name, field: "group")
            if let schedule = group.schedule, try self.schedule(schedule) == nil { throw RosterError.notFound(kind: "schedule", id: schedule) }
            try connection.run("INSERT INTO groups (name, schedule) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule",
                               [.text(group.name), .optional(group.schedule)])
            try connection.run("DELETE FROM group_portals WHERE group_name = ?", [.text(group.name)])
            for portal in Set(group.portals).sorted() {
                try connection.run("INSERT INTO group_portals (group_name, portal) VALUES (?, ?)", [.text(group.name), .text(portal)])
            }
        case .putHouse(let house):
            try Self.validateID(house.id, field: "house_id")
            guard !house.building.isEmpty else { throw RosterError.invalid(field: "building", value: "", problem: "is required") }
            try saveHouse(house)
        case .putPerson(let person):
            try savePerson(person)
        case .putCredential(var credential):
            credential.value = try storedValue(credential.kind, credential.value)
            switch credential.owner {
            case .person(let id): guard try person(id) != nil else { throw RosterError.notFound(kind: "person", id: id) }
            case .house(let id): guard try house(id) != nil else { throw RosterError.notFound(kind: "house", id: id) }
            case .none:
                guard credential.status == .blacklisted else {
                    throw RosterError.invalid(field: "owner", value: "", problem: "is required unless the credential is blacklisted")
                }
            }
            try connection.run("DELETE FROM credentials WHERE kind = ? AND value = ?", [.text(credential.kind.rawValue), .text(credential.value)])
            try insertCredential(credential)
        case .putVisitorPass(let pass):
            guard try house(pass.houseID) != nil else { throw RosterError.notFound(kind: "house", id: pass.houseID) }
            guard pass.validFrom < pass.validUntil, pass.maxUses > 0 else {
                throw RosterError.invalid(field: "visitor_pass", value: pass.id, problem: "has an empty validity or no uses")
            }
            let plate = try pass.plate.map { try Self.normalise(.plate, $0) }
            try connection.run("""
                INSERT INTO visitor_passes (id, house_id, visitor_name, phone, plate, valid_from, valid_until, max_uses, uses, status,
                    portals, issued_by, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'fleet', ?)
                ON CONFLICT (id) DO UPDATE SET house_id = excluded.house_id, visitor_name = excluded.visitor_name,
                    phone = excluded.phone, plate = excluded.plate, valid_from = excluded.valid_from,
                    valid_until = excluded.valid_until, max_uses = excluded.max_uses, uses = max(uses, excluded.uses),
                    status = excluded.status, portals = excluded.portals
                """, [.text(pass.id), .text(pass.houseID), .text(pass.visitorName), .text(pass.phone), .optional(plate),
                      .int(pass.validFrom), .int(pass.validUntil), .int(Int64(pass.maxUses)), .int(Int64(pass.uses)),
                      .text(pass.status.rawValue), .text(pass.portals.joined(separator: " ")), .int(Self.nowMicros() / 1_000_000)])
        case .delete(let key):
            try delete(key)
        }
    }

    private func delete(_ key: RosterKey) throws {
        switch key {
        case .schedule(let name):
            if let n = try connection.scalarInt("SELECT count(*) FROM groups WHERE schedule = ?", [.text(name)]), n > 0 {
                throw RosterError.inUse(kind: "schedule", id: name, by: "\(n) group(s)")
            }
            try connection.run("DELETE FROM schedules WHERE name = ?", [.text(name)])
        case .group(let name):
            if let n = try connection.scalarInt("SELECT count(*) FROM person_groups WHERE group_name = ?", [.text(name)]), n > 0 {
                throw RosterError.inUse(kind: "group", id: name, by: "\(n) person(s)")
            }
            try connection.run("DELETE FROM groups WHERE name = ?", [.text(name)])
        case .house(let id):
            if let n = try connection.scalarInt("SELECT count(*) FROM person_houses WHERE house_id = ?", [.text(id)]), n > 0 {
                throw RosterError.inUse(kind: "house", id: id, by: "\(n) person(s)")
            }
            try connection.run("DELETE FROM visitor_passes WHERE house_id = ?", [.text(id)])
            try connection.run("DELETE FROM houses WHERE id = ?", [.text(id)])
        case .person(let id):
            try connection.run("DELETE FROM people WHERE id = ?", [.text(id)])
            try connection.run("DELETE FROM anti_passback WHERE subject = ?", [.text("person:" + id)])
        case .credential(let kind, let value):
            try connection.run("DELETE FROM credentials WHERE kind = ? AND value = ?", [.text(kind.rawValue), .text(value)])
        case .visitorPass(let id):
            try connection.run("DELETE FROM visitor_passes WHERE id = ?", [.text(id)])
        }
    }

    // MARK: Digest

    /// The digest of the whole roster, read record by record (for `fleet status --verify` and
    /// the first change set on a roster that predates the fleet).
    public func computeRosterDigest() throws -> RosterDigest {
        var digest = RosterDigest.empty
        for record in try rosterRecords() { digest.add(record) }
        return digest
    }

    /// Every record of the roster as a put, in an order that applies to an empty roster
    /// (schedules, groups, houses, people, credentials, passes), read in one transaction.
    /// Visitor passes carry no uses: uses are counted at each gate.
    public func rosterRecords() throws -> [RosterChange] {
        try connection.transaction(immediate: false) {
            var records: [RosterChange] = []
            for schedule in try schedules() { records.append(.putSchedule(schedule)) }
            for group in try groups() { records.append(.putGroup(group)) }
            for house in try houses() { records.append(.putHouse(house)) }
            for person in try people() { records.append(.putPerson(person)) }
            for credential in try credentials() { records.append(.putCredential(credential)) }
            for var pass in try passes() {
                pass.uses = 0
                records.append(.putVisitorPass(pass))
            }
            return records
        }
    }

    // MARK: Snapshots

    /// The whole roster at the applied community sequence: what a snapshot carries.
    public func rosterSnapshot() throws -> (sequence: UInt64, digest: RosterDigest, records: [RosterChange]) {
        try connection.transaction(immediate: false) {
            (try fleetSequence(), try fleetDigest(), try rosterRecords())
        }
    }

    /// Replaces the whole roster with a snapshot's `records` at community sequence `sequence`
    /// (the stream before it was compacted away), in one transaction: the digest of what was
    /// written must equal `digest`, or nothing changes. Uses counted here of passes that remain
    /// are kept; anti-passback state is kept. Nil, changing nothing, when this roster is
    /// already at or past `sequence`.
    public func replaceRoster(with records: [RosterChange], sequence: UInt64, digest expected: RosterDigest,
                              origin: String) throws -> AppliedChangeSet? {
        try connection.transaction {
            guard sequence > (try fleetSequence()) else { return nil }
            var uses: [String: Int] = [:]
            for pass in try passes() where pass.uses > 0 { uses[pass.id] = pass.uses }
            for table in ["credentials", "person_groups", "person_houses", "people", "visitor_passes", "houses",
                          "group_portals", "groups", "schedule_dates", "schedules"] {
                try connection.run("DELETE FROM \(table)")
            }
            var digest = RosterDigest.empty
            for record in records {
                guard !record.isDelete else {
                    throw RosterError.invalid(field: "snapshot", value: "sequence \(sequence)", problem: "holds a delete")
                }
                try applyOne(record)
                digest.add(record)
            }
            guard digest == expected else {
                throw RosterError.invalid(field: "snapshot", value: "sequence \(sequence)",
                                          problem: "its records' digest \(digest.hex.prefix(12)) is not its stated \(expected.hex.prefix(12))")
            }
            for (id, n) in uses {
                try connection.run("UPDATE visitor_passes SET uses = max(uses, ?) WHERE id = ?", [.int(Int64(n)), .text(id)])
            }
            try connection.run("INSERT OR REPLACE INTO settings (key, value) VALUES ('fleet_sequence', ?)", [.text(String(sequence))])
            try connection.run("INSERT OR REPLACE INTO settings (key, value) VALUES ('fleet_digest', ?)", [.text(digest.hex)])
            try appendAudit(operator: origin, action: "fleet.snapshot", target: "sequence \(sequence)", before: nil,
                            after: .object([("records", .int(records.count)), ("digest", .string(digest.hex))]))
            try bumpRosterGeneration()
            return AppliedChangeSet(sequence: sequence, delta: [], digest: digest, generation: try rosterGeneration(), replacedWhole: true)
        }
    }
}
