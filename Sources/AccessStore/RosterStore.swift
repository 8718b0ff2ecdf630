import AccessCore

/// Roster reads and writes. Every write runs in one transaction, bumps the roster generation
/// (so a running controller reloads) and records who changed what in the audit log.
extension AccessDatabase {
    // MARK: Houses

    public func house(_ id: String) throws -> House? {
        let s = try connection.statement("SELECT id, building, unit, floor, room, parking_spaces FROM houses WHERE id = ?")
        try s.bind([.text(id)])
        return try s.first(Self.house(from:))
    }

    public func houses(building: String? = nil, limit: Int = -1, offset: Int = 0) throws -> [House] {
        let s = try connection.statement("""
            SELECT id, building, unit, floor, room, parking_spaces FROM houses WHERE (?1 IS NULL OR building = ?1)
            ORDER BY id LIMIT ?2 OFFSET ?3
            """)
        try s.bind([.optional(building), .int(Int64(limit)), .int(Int64(offset))])
        var out: [House] = []
        while try s.step() { out.append(Self.house(from: s)) }
        return out
    }

    static func house(from s: Statement) -> House {
        House(id: s.text(0), building: s.text(1), unit: s.text(2), floor: s.text(3), room: s.text(4), parkingSpaces: s.optionalInt(5).map(Int.init))
    }

    public func addHouse(_ house: House, operator: String) throws {
        try Self.validateID(house.id, field: "house_id")
        guard !house.building.isEmpty else { throw RosterError.invalid(field: "building", value: "", problem: "is required") }
        try Self.validateParkingSpaces(house.parkingSpaces)
        try write(operator: `operator`, action: "house.add", target: house.id) {
            if try self.house(house.id) != nil { throw RosterError.alreadyExists(kind: "house", id: house.id) }
            try self.saveHouse(house)
            return (nil, Self.json(house))
        }
    }

    public func editHouse(_ id: String, operator: String, _ change: (inout House) throws -> Void) throws {
        try write(operator: `operator`, action: "house.edit", target: id) {
            guard let before = try self.house(id) else { throw RosterError.notFound(kind: "house", id: id) }
            var after = before
            try change(&after)
            after.id = before.id
            guard !after.building.isEmpty else { throw RosterError.invalid(field: "building", value: "", problem: "is required") }
            try Self.validateParkingSpaces(after.parkingSpaces)
            try self.saveHouse(after)
            return (Self.json(before), Self.json(after))
        }
    }

    public func removeHouse(_ id: String, operator: String) throws {
        try write(operator: `operator`, action: "house.remove", target: id) {
            guard let before = try self.house(id) else { throw RosterError.notFound(kind: "house", id: id) }
            if let n = try self.connection.scalarInt("SELECT count(*) FROM person_houses WHERE house_id = ?", [.text(id)]), n > 0 {
                throw RosterError.inUse(kind: "house", id: id, by: "\(n) person(s); remove or move them first")
            }
            try self.connection.run("DELETE FROM visitor_passes WHERE house_id = ?", [.text(id)])
            try self.connection.run("DELETE FROM houses WHERE id = ?", [.text(id)])
            return (Self.json(before), nil)
        }
    }

    static func validateParkingSpaces(_ spaces: Int?) throws {
        if let spaces, !(0...10_000).contains(spaces) {
            throw RosterError.invalid(field: "parking_spaces", value: "\(spaces)", problem: "is not a number of spaces (0-10000)")
        }
    }

    func saveHouse(_ house: House) throws {
        try connection.run("""
            INSERT INTO houses (id, building, unit, floor, room, parking_spaces) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET building = excluded.building, unit = excluded.unit,
                floor = excluded.floor, room = excluded.room, parking_spaces = excluded.parking_spaces
            """, [.text(house.id), .text(house.building), .text(house.unit), .text(house.floor), .text(house.room),
                  house.parkingSpaces.map { .int(Int64($0)) } ?? .null])
    }

    // MARK: People

    public func person(_ id: String) throws -> Person? {
        let s = try connection.statement("""
            SELECT id, name, phone, status, valid_from, valid_until, lives_alone FROM people WHERE id = ?
            """)
        try s.bind([.text(id)])
        guard var person = try s.first(Self.person(from:)) else { return nil }
        person.houses = try bindings(of: id)
        person.groups = try groups(of: id)
        return person
    }

    static func person(from s: Statement) -> Person {
        Person(
            id: s.text(0), name: s.text(1), phone: s.text(2), status: PersonStatus(rawValue: s.text(3)) ?? .suspended,
            validFrom: s.optionalInt(4), validUntil: s.optionalInt(5), livesAlone: s.int(6) != 0, houses: []
        )
    }

    func bindings(of personID: String) throws -> [HouseBinding] {
        let s = try connection.statement("SELECT house_id, role FROM person_houses WHERE person_id = ? ORDER BY position, house_id")
        try s.bind([.text(personID)])
        var out: [HouseBinding] = []
        while try s.step() { out.append(HouseBinding(houseID: s.text(0), role: Role(rawValue: s.text(1)) ?? .visitor)) }
        return out
    }

    func groups(of personID: String) throws -> [String] {
        let s = try connection.statement("SELECT group_name FROM person_groups WHERE person_id = ? ORDER BY group_name")
        try s.bind([.text(personID)])
        var out: [String] = []
        while try s.step() { out.append(s.text(0)) }
        return out
    }

    /// People, optionally of one house or status, ordered by id.
    public func people(house: String? = nil, status: PersonStatus? = nil, limit: Int = -1, offset: Int = 0) throws -> [Person] {
        let s = try connection.statement("""
            SELECT id, name, phone, status, valid_from, valid_until, lives_alone FROM people p
            WHERE (?1 IS NULL OR EXISTS (SELECT 1 FROM person_houses h WHERE h.person_id = p.id AND h.house_id = ?1))
              AND (?2 IS NULL OR status = ?2)
            ORDER BY id LIMIT ?3 OFFSET ?4
            """)
        try s.bind([.optional(house), .optional(status?.rawValue), .int(Int64(limit)), .int(Int64(offset))])
        var out: [Person] = []
        while try s.step() { out.append(Self.person(from: s)) }
        for i in out.indices {
            out[i].houses = try bindings(of: out[i].id)
            out[i].groups = try groups(of: out[i].id)
        }
        return out
    }

    public func addPerson(_ person: Person, operator: String) throws {
        try write(operator: `operator`, action: "person.add", target: person.id) {
            if try self.connection.scalarInt("SELECT 1 FROM people WHERE id = ?", [.text(person.id)]) != nil {
                throw RosterError.alreadyExists(kind: "person", id: person.id)
            }
            try self.savePerson(person)
            return (nil, try self.personJSON(person.id))
        }
    }

    /// Changes a person; `change` sees the current record and may throw to refuse.
    public func editPerson(_ id: String, action: String = "person.edit", operator: String, _ change: (inout Person) throws -> Void) throws {
        try write(operator: `operator`, action: action, target: id) {
            guard var person = try self.person(id) else { throw RosterError.notFound(kind: "person", id: id) }
            let before = try self.personJSON(id)
            try change(&person)
            person.id = id
            try self.savePerson(person)
            return (before, try self.personJSON(id))
        }
    }

    public func removePerson(_ id: String, operator: String) throws {
        try write(operator: `operator`, action: "person.remove", target: id) {
            guard try self.person(id) != nil else { throw RosterError.notFound(kind: "person", id: id) }
            let before = try self.personJSON(id)
            try self.connection.run("DELETE FROM people WHERE id = ?", [.text(id)])
            try self.connection.run("DELETE FROM anti_passback WHERE subject = ?", [.text("person:" + id)])
            return (before, nil)
        }
    }

    /// Validates references and writes the person with their bindings and groups. The import,
    /// which has checked houses and groups against its own maps, skips the lookups
    /// (`referencesChecked`); a new person has no old bindings to delete.
    func savePerson(_ person: Person, isNew: Bool = false, referencesChecked: Bool = false) throws {
        try Self.validateID(person.id, field: "person_id")
        guard !person.houses.isEmpty else {
            throw RosterError.invalid(field: "house", value: "", problem: "is required: every person belongs to a house")
        }
        if let from = person.validFrom, let until = person.validUntil, from >= until {
            throw RosterError.invalid(field: "valid_until", value: String(until), problem: "is not after valid_from")
        }
        if !referencesChecked {
            for binding in person.houses where try house(binding.houseID) == nil {
                throw RosterError.notFound(kind: "house", id: binding.houseID)
            }
            for group in person.groups where try connection.scalarInt("SELECT 1 FROM groups WHERE name = ?", [.text(group)]) == nil {
                throw RosterError.notFound(kind: "group", id: group)
            }
        }
        try connection.run("""
            INSERT INTO people (id, name, phone, status, valid_from, valid_until, lives_alone) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, phone = excluded.phone, status = excluded.status,
                valid_from = excluded.valid_from, valid_until = excluded.valid_until, lives_alone = excluded.lives_alone
            """, [.text(person.id), .text(person.name), .text(person.phone), .text(person.status.rawValue),
                  .optional(person.validFrom), .optional(person.validUntil), .int(person.livesAlone ? 1 : 0)])
        if !isNew {
            try connection.run("DELETE FROM person_houses WHERE person_id = ?", [.text(person.id)])
            try connection.run("DELETE FROM person_groups WHERE person_id = ?", [.text(person.id)])
        }
        for (position, binding) in person.houses.enumerated() {
            try connection.run("INSERT INTO person_houses (person_id, house_id, role, position) VALUES (?, ?, ?, ?)",
                               [.text(person.id), .text(binding.houseID), .text(binding.role.rawValue), .int(Int64(position))])
        }
        for group in Set(person.groups).sorted() {
            try connection.run("INSERT INTO person_groups (person_id, group_name) VALUES (?, ?)", [.text(person.id), .text(group)])
        }
    }

    // MARK: Credentials

    public func credential(kind: CredentialKind, value: String) throws -> Credential? {
        let s = try connection.statement("SELECT kind, value, person_id, house_id, status, note, duress FROM credentials WHERE kind = ? AND value = ?")
        try s.bind([.text(kind.rawValue), .text(value)])
        return try s.first(Self.credential(from:))
    }

    /// Credentials, optionally of one kind and one owner.
    public func credentials(kind: CredentialKind? = nil, person: String? = nil, house: String? = nil, limit: Int = -1, offset: Int = 0) throws -> [Credential] {
        let s = try connection.statement("""
            SELECT kind, value, person_id, house_id, status, note, duress FROM credentials
            WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR person_id = ?2) AND (?3 IS NULL OR house_id = ?3)
            ORDER BY kind, value LIMIT ?4 OFFSET ?5
            """)
        try s.bind([.optional(kind?.rawValue), .optional(person), .optional(house), .int(Int64(limit)), .int(Int64(offset))])
        var out: [Credential] = []
        while try s.step() { out.append(Self.credential(from: s)) }
        return out
    }

    static func credential(from s: Statement) -> Credential {
        let owner: CredentialOwner = s.optionalText(2).map(CredentialOwner.person) ?? s.optionalText(3).map(CredentialOwner.house) ?? .none
        return Credential(kind: CredentialKind(rawValue: s.text(0)) ?? .card, value: s.text(1), owner: owner,
                          status: CredentialStatus(rawValue: s.text(4)) ?? .revoked, note: s.text(5), duress: s.int(6) != 0)
    }

    /// Adds a credential. Refused when the value already belongs to anyone.
    public func addCredential(_ credential: Credential, operator: String) throws {
        let value = try storedValue(credential.kind, credential.value)
        var credential = credential
        credential.value = value
        try write(operator: `operator`, action: "\(credential.kind.rawValue).add", target: Self.masked(credential)) {
            if let existing = try self.credential(kind: credential.kind, value: value) {
                // Whose PIN it is stays secret: a PIN alone opens doors.
                if credential.kind == .pin {
                    throw RosterError.invalid(field: "pin", value: "****", problem: "is already in use; choose another")
                }
                throw RosterError.owned(kind: credential.kind.rawValue, value: Self.masked(existing), owner: Self.describeOwner(existing.owner))
            }
            switch credential.owner {
            case .person(let id):
                guard try self.person(id) != nil else { throw RosterError.notFound(kind: "person", id: id) }
            case .house(let id):
                guard try self.house(id) != nil else { throw RosterError.notFound(kind: "house", id: id) }
            case .none:
                guard credential.status == .blacklisted else {
                    throw RosterError.invalid(field: "owner", value: "", problem: "is required unless the credential is blacklisted")
                }
            }
            try self.insertCredential(credential)
            return (nil, Self.json(credential))
        }
    }

    func insertCredential(_ c: Credential) throws {
        var person: String?
        var house: String?
        switch c.owner {
        case .person(let id): person = id
        case .house(let id): house = id
        case .none: break
        }
        try connection.run("INSERT INTO credentials (kind, value, person_id, house_id, status, note, duress) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [.text(c.kind.rawValue), .text(c.value), .optional(person), .optional(house), .text(c.status.rawValue), .text(c.note),
                            .int(c.duress ? 1 : 0)])
    }

    /// Sets a credential's status: revoke, report lost, blacklist or restore it.
    ///
    /// Blacklisting an unknown value records it unowned, so a stolen card or a wanted plate is
    /// refused with an alarm wherever it appears.
    public func setCredentialStatus(kind: CredentialKind, value: String, status: CredentialStatus, note: String? = nil, operator: String) throws {
        let value = try storedValue(kind, value)
        try write(operator: `operator`, action: "\(kind.rawValue).\(status.rawValue)", target: kind == .pin ? "****" : value) {
            guard let before = try self.credential(kind: kind, value: value) else {
                if status == .blacklisted {
                    let c = Credential(kind: kind, value: value, owner: .none, status: .blacklisted, note: note ?? "")
                    try self.insertCredential(c)
                    return (nil, Self.json(c))
                }
                throw RosterError.notFound(kind: kind.rawValue, id: kind == .pin ? "****" : value)
            }
            if case .none = before.owner, status != .blacklisted {
                try self.connection.run("DELETE FROM credentials WHERE kind = ? AND value = ?", [.text(kind.rawValue), .text(value)])
                return (Self.json(before), nil)
            }
            var after = before
            after.status = status
            if let note { after.note = note }
            try self.connection.run("UPDATE credentials SET status = ?, note = ? WHERE kind = ? AND value = ?",
                                    [.text(status.rawValue), .text(after.note), .text(kind.rawValue), .text(value)])
            return (Self.json(before), Self.json(after))
        }
    }

    public func removeCredential(kind: CredentialKind, value: String, operator: String) throws {
        let value = try storedValue(kind, value)
        try write(operator: `operator`, action: "\(kind.rawValue).remove", target: kind == .pin ? "****" : value) {
            guard let before = try self.credential(kind: kind, value: value) else {
                throw RosterError.notFound(kind: kind.rawValue, id: kind == .pin ? "****" : value)
            }
            try self.connection.run("DELETE FROM credentials WHERE kind = ? AND value = ?", [.text(kind.rawValue), .text(value)])
            return (Self.json(before), nil)
        }
    }

    /// A credential value as this database stores it: `normalise`d, and for a PIN its keyed hash
    /// under `pinKey` (a value already in that form, e.g. from a change set, is kept). A PIN
    /// cannot be stored without the key.
    public func storedValue(_ kind: CredentialKind, _ value: String) throws -> String {
        guard kind == .pin else { return try Self.normalise(kind, value) }
        if PinDigest.isStored(value) { return value }
        let digits = try Self.normalise(.pin, value)
        guard let pinKey else {
            throw RosterError.invalid(field: "pin", value: "****", problem: "cannot be stored or looked up: no PIN key (pin_key_file) is loaded")
        }
        return pinKey.hash(digits)
    }

    /// The canonical spelling of a credential value, or an error naming the problem. A PIN's
    /// digits are checked here; `storedValue` hashes them.
    public static func normalise(_ kind: CredentialKind, _ value: String) throws -> String {
        do {
            switch kind {
            case .card: return String(try CredentialValue.card(value))
            case .pin: return try CredentialValue.pin(value)
            case .plate: return try CredentialValue.plate(value)
            case .qr: throw RosterError.invalid(field: "kind", value: "qr", problem: "QR codes are issued as visitor passes")
            }
        } catch let error as CredentialValueError {
            throw RosterError.invalid(field: kind.rawValue, value: value, problem: "is not valid: \(error.description)")
        }
    }

    static func masked(_ c: Credential) -> String { c.kind == .pin ? "****" : c.value }

    public static func describeOwner(_ owner: CredentialOwner) -> String {
        switch owner {
        case .person(let id): return "person \(id)"
        case .house(let id): return "house \(id)"
        case .none: return "the blacklist"
        }
    }

    // MARK: Schedules and groups

    public func schedule(_ name: String) throws -> Schedule? {
        let s = try connection.statement("SELECT segments FROM schedules WHERE name = ?")
        try s.bind([.text(name)])
        guard let segments = try s.first({ $0.text(0) }) else { return nil }
        let specs = segments.split(separator: "\n").map(String.init)
        var schedule = try Schedule(name: name, specs: specs)
        let d = try connection.statement("SELECT date, kind, segments FROM schedule_dates WHERE schedule = ? ORDER BY date")
        try d.bind([.text(name)])
        while try d.step() {
            guard let date = CivilDate(iso: d.text(0)) else { continue }
            if d.text(1) == "holiday" {
                schedule.holidays.insert(date)
            } else {
                schedule.exceptions[date] = try d.text(2).split(separator: " ").map { try MinuteRange.parse($0) }
            }
        }
        return schedule
    }

    public func schedules() throws -> [Schedule] {
        let s = try connection.statement("SELECT name FROM schedules ORDER BY name")
        var names: [String] = []
        while try s.step() { names.append(s.text(0)) }
        return try names.compactMap { try schedule($0) }
    }

    /// Creates (`isNew`) or replaces a schedule, holidays and exceptions included.
    public func saveSchedule(_ schedule: Schedule, isNew: Bool, operator: String) throws {
        try Self.validateID(schedule.name, field: "schedule")
        try write(operator: `operator`, action: isNew ? "schedule.add" : "schedule.edit", target: schedule.name) {
            let before = try self.schedule(schedule.name)
            if isNew, before != nil { throw RosterError.alreadyExists(kind: "schedule", id: schedule.name) }
            if !isNew, before == nil { throw RosterError.notFound(kind: "schedule", id: schedule.name) }
            try self.connection.run("""
                INSERT INTO schedules (name, segments) VALUES (?, ?)
                ON CONFLICT (name) DO UPDATE SET segments = excluded.segments
                """, [.text(schedule.name), .text(schedule.specs.joined(separator: "\n"))])
            try self.connection.run("DELETE FROM schedule_dates WHERE schedule = ?", [.text(schedule.name)])
            for date in schedule.holidays {
                try self.connection.run("INSERT INTO schedule_dates (schedule, date, kind) VALUES (?, ?, 'holiday')",
                                        [.text(schedule.name), .text(date.description)])
            }
            for (date, ranges) in schedule.exceptions {
                try self.connection.run("INSERT OR REPLACE INTO schedule_dates (schedule, date, kind, segments) VALUES (?, ?, 'exception', ?)",
                                        [.text(schedule.name), .text(date.description), .text(ranges.map(\.description).joined(separator: " "))])
            }
            return (before.map(Self.json), Self.json(schedule))
        }
    }

    public func removeSchedule(_ name: String, operator: String) throws {
        try write(operator: `operator`, action: "schedule.remove", target: name) {
            guard let before = try self.schedule(name) else { throw RosterError.notFound(kind: "schedule", id: name) }
            let users = try self.groups().filter { $0.schedule == name }.map(\.name)
            if !users.isEmpty { throw RosterError.inUse(kind: "schedule", id: name, by: "group(s) " + users.joined(separator: ", ")) }
            try self.connection.run("DELETE FROM schedules WHERE name = ?", [.text(name)])
            return (Self.json(before), nil)
        }
    }

    public func group(_ name: String) throws -> AccessGroup? {
        let s = try connection.statement("SELECT schedule FROM groups WHERE name = ?")
        try s.bind([.text(name)])
        guard let schedule = try s.first({ $0.optionalText(0) }) else { return nil }
        let p = try connection.statement("SELECT portal FROM group_portals WHERE group_name = ? ORDER BY portal")
        try p.bind([.text(name)])
        var portals: [String] = []
        while try p.step() { portals.append(p.text(0)) }
        return AccessGroup(name: name, portals: portals, schedule: schedule)
    }

    public func groups() throws -> [AccessGroup] {
        let s = try connection.statement("SELECT name FROM groups ORDER BY name")
        var names: [String] = []
        while try s.step() { names.append(s.text(0)) }
        return try names.compactMap { try group($0) }
    }

    /// Creates (`isNew`) or replaces a group. Portals must exist in the site description.
    public func saveGroup(_ group: AccessGroup, isNew: Bool, operator: String) throws {
        try Self.validateID(group.name, field: "group")
        try write(operator: `operator`, action: isNew ? "group.add" : "group.edit", target: group.name) {
            let before = try self.group(group.name)
            if isNew, before != nil { throw RosterError.alreadyExists(kind: "group", id: group.name) }
            if !isNew, before == nil { throw RosterError.notFound(kind: "group", id: group.name) }
            let known = Set(try self.portals().map(\.id))
            for portal in group.portals where !known.contains(portal) {
                throw RosterError.notFound(kind: "portal", id: portal)
            }
            if let schedule = group.schedule, try self.schedule(schedule) == nil {
                throw RosterError.notFound(kind: "schedule", id: schedule)
            }
            try self.connection.run("""
                INSERT INTO groups (name, schedule) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET schedule = excluded.schedule
                """, [.text(group.name), .optional(group.schedule)])
            try self.connection.run("DELETE FROM group_portals WHERE group_name = ?", [.text(group.name)])
            for portal in Set(group.portals).sorted() {
                try self.connection.run("INSERT INTO group_portals (group_name, portal) VALUES (?, ?)", [.text(group.name), .text(portal)])
            }
            return (before.map(Self.json), Self.json(group))
        }
    }

    public func removeGroup(_ name: String, operator: String) throws {
        try write(operator: `operator`, action: "group.remove", target: name) {
            guard let before = try self.group(name) else { throw RosterError.notFound(kind: "group", id: name) }
            if let n = try self.connection.scalarInt("SELECT count(*) FROM person_groups WHERE group_name = ?", [.text(name)]), n > 0 {
                throw RosterError.inUse(kind: "group", id: name, by: "\(n) person(s)")
            }
            try self.connection.run("DELETE FROM groups WHERE name = ?", [.text(name)])
            return (Self.json(before), nil)
        }
    }

    // MARK: Portals (from the site description)

    /// Records the configured portals so that commands given only `--db` know them. Modes set by
    /// operators are kept.
    public func syncPortals(_ portals: [Portal]) throws {
        let current = try self.portals()
        guard current.map(\.id) != portals.map(\.id) || current.map(Self.portalRow) != portals.map(Self.portalRow) else { return }
        try connection.transaction {
            try connection.run("DELETE FROM portals WHERE id NOT IN (SELECT value FROM json_each(?))",
                               [.text(JSON.strings(portals.map(\.id)).rendered())])
            for p in portals {
                try connection.run("""
                    INSERT INTO portals (id, kind, direction, from_area, to_area, building, readers) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, direction = excluded.direction, from_area = excluded.from_area,
                        to_area = excluded.to_area, building = excluded.building, readers = excluded.readers
                    """, [.text(p.id), .text(p.kind.rawValue), .text(p.direction.rawValue), .text(p.fromArea), .text(p.toArea),
                          .text(p.building), .text(p.readers.joined(separator: " "))])
            }
        }
    }

    static func portalRow(_ p: Portal) -> String {
        [p.id, p.kind.rawValue, p.direction.rawValue, p.fromArea, p.toArea, p.building, p.readers.joined(separator: " ")].joined(separator: "|")
    }

    public func portals() throws -> [Portal] {
        let s = try connection.statement("SELECT id, kind, direction, from_area, to_area, building, readers FROM portals ORDER BY rowid")
        var out: [Portal] = []
        while try s.step() {
            out.append(Portal(id: s.text(0), kind: PortalKind(rawValue: s.text(1)) ?? .door,
                              direction: PortalDirection(rawValue: s.text(2)) ?? .both, fromArea: s.text(3), toArea: s.text(4),
                              building: s.text(5), readers: s.text(6).split(separator: " ").map(String.init)))
        }
        return out
    }

    public func portalMode(_ id: String) throws -> PortalMode {
        PortalMode(rawValue: try connection.scalarText("SELECT mode FROM portals WHERE id = ?", [.text(id)]) ?? "normal") ?? .normal
    }

    public func setPortalMode(_ id: String, _ mode: PortalMode, operator: String) throws {
        try write(operator: `operator`, action: "portal.mode", target: id) {
            let before = try self.portalMode(id)
            try self.connection.run("UPDATE portals SET mode = ? WHERE id = ?", [.text(mode.rawValue), .text(id)])
            guard self.connection.changes == 1 else { throw RosterError.notFound(kind: "portal", id: id) }
            return (.string(before.rawValue), .string(mode.rawValue))
        }
    }

    /// Stores the mode the controller has put a portal in, so that it holds across a restart.
    /// Unlike `setPortalMode` it writes no audit record (the operator's command is audited in the
    /// same transaction by the caller) and leaves the roster generation alone: the controller is
    /// already in that mode, and a reload of the roster would gain nothing.
    public func recordPortalMode(_ id: String, _ mode: PortalMode) throws {
        try connection.run("UPDATE portals SET mode = ? WHERE id = ?", [.text(mode.rawValue), .text(id)])
    }

    // MARK: Anti-passback state

    public func antiPassbackLedger() throws -> AntiPassbackLedger {
        let s = try connection.statement("SELECT subject, area, since FROM anti_passback")
        var locations: [String: AntiPassbackLedger.Location] = [:]
        while try s.step() { locations[s.text(0)] = .init(area: s.text(1), since: s.int(2)) }
        return AntiPassbackLedger(locations: locations)
    }

    public func recordPassage(subject: String, area: String, at: UnixSeconds) throws {
        try connection.run("INSERT OR REPLACE INTO anti_passback (subject, area, since) VALUES (?, ?, ?)", [.text(subject), .text(area), .int(at)])
    }

    /// An operator's reset: these subjects' locations are forgotten.
    public func forgetPassages(_ subjects: [String]) throws {
        for subject in subjects { try connection.run("DELETE FROM anti_passback WHERE subject = ?", [.text(subject)]) }
    }

    // MARK: Parking

    /// The vehicles inside by key (`house:ID`, `visitors`), as the controller last counted them.
    public func parkingLedger() throws -> ParkingLedger {
        let s = try connection.statement("SELECT key, inside FROM parking")
        var counts: [String: Int] = [:]
        while try s.step() { counts[s.text(0)] = Int(s.int(1)) }
        return ParkingLedger(counts: counts)
    }

    public func recordParking(key: String, inside: Int) throws {
        try connection.run("INSERT OR REPLACE INTO parking (key, inside) VALUES (?, ?)", [.text(key), .int(Int64(inside))])
    }

    // MARK: Shared

    /// Runs a roster change in one transaction with its audit record; `body` returns the
    /// before and after images.
    func write(operator: String, action: String, target: String, _ body: () throws -> (JSON?, JSON?)) throws {
        try connection.transaction {
            let (before, after) = try body()
            try appendAudit(operator: `operator`, action: action, target: target, before: before, after: after)
            try bumpRosterGeneration()
        }
    }

    static func validateID(_ id: String, field: String) throws {
        if let problem = RosterCSVSchema.identifierProblem(id) {
            throw RosterError.invalid(field: field, value: id, problem: problem.hasPrefix("\"") ? String(problem.drop { $0 != " " }.dropFirst()) : problem)
        }
    }

    func personJSON(_ id: String) throws -> JSON? {
        guard let person = try person(id) else { return nil }
        let creds = try credentials(person: id)
        return Self.json(person, credentials: creds)
    }
}
