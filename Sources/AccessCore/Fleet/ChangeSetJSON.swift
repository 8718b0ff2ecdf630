/// The change set's JSON form (API/changeset.schema.json). Writing and reading are each other's
/// inverse; reading refuses anything it does not understand with the field's path.
extension ChangeSet {
    public func json() -> JSON {
        .object([
            ("version", .int(version)), ("community", .string(community)), ("id", .string(id)),
            ("origin", .object([("user", .string(origin.user)), ("host", .string(origin.host)), ("command", .string(origin.command))])),
            ("created", .int(created)),
            ("changes", .array(changes.map { $0.json() })),
        ])
    }

    /// Reads a change set. A newer `version` is refused before anything else is read, so the
    /// error says to upgrade rather than naming a field this build has never heard of.
    public init(json: JSON) throws(ChangeSetError) {
        let root = try Fields(json, path: "")
        let version = try root.int("version")
        guard version >= 1, version <= ChangeSet.currentVersion else {
            throw ChangeSetError(path: "version", problem: "change set format \(version) is not supported (this build reads 1 to \(ChangeSet.currentVersion)); upgrade the controller")
        }
        let origin = try root.object("origin")
        var changes: [RosterChange] = []
        let items = try root.array("changes")
        changes.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            changes.append(try RosterChange(json: item, path: "changes[\(i)]", version: Int(version)))
        }
        self.init(
            community: try root.identifier("community"), id: try root.string("id"),
            origin: Origin(user: try origin.string("user"), host: try origin.string("host"), command: try origin.string("command")),
            created: try root.int("created"), changes: changes, version: Int(version)
        )
    }

    /// Parses the UTF-8 text of a change set.
    public static func parse(_ bytes: some Collection<UInt8>) throws(ChangeSetError) -> ChangeSet {
        guard let json = JSON.parse(String(decoding: bytes, as: UTF8.self)) else {
            throw ChangeSetError(path: "", problem: "is not valid JSON")
        }
        return try ChangeSet(json: json)
    }
}

extension RosterChange {
    public func json() -> JSON {
        switch self {
        case .delete(let key):
            return .object([("op", .string("delete")), ("kind", .string(key.kindName)), ("key", .string(key.text))])
        default:
            return .object([("op", .string("put")), ("kind", .string(key.kindName)), ("value", value())])
        }
    }

    private func value() -> JSON {
        switch self {
        case .putSchedule(let s):
            return .object([
                ("name", .string(s.name)), ("segments", .strings(s.specs)),
                ("holidays", .strings(s.holidays.sorted().map(\.description))),
                ("exceptions", .object(s.exceptions.sorted { $0.key < $1.key }.map { ($0.key.description, .strings($0.value.map(\.description))) })),
            ])
        case .putGroup(let g):
            return .object([("name", .string(g.name)), ("portals", .strings(g.portals)), ("schedule", .string(g.schedule))])
        case .putHouse(let h):
            // parking_spaces only when set: a house without a limit has the image it always had.
            return .object([("id", .string(h.id)), ("building", .string(h.building)), ("unit", .string(h.unit)),
                            ("floor", .string(h.floor)), ("room", .string(h.room))]
                           + (h.parkingSpaces.map { [("parking_spaces", .int(Int64($0)))] } ?? []))
        case .putPerson(let p):
            return .object([
                ("id", .string(p.id)), ("name", .string(p.name)), ("phone", .string(p.phone)), ("status", .string(p.status.rawValue)),
                ("valid_from", .int(p.validFrom)), ("valid_until", .int(p.validUntil)), ("lives_alone", .bool(p.livesAlone)),
                ("houses", .array(p.houses.map { .object([("house_id", .string($0.houseID)), ("role", .string($0.role.rawValue))]) })),
                ("groups", .strings(p.groups)),
            ])
        case .putCredential(let c):
            var person: String?
            var house: String?
            switch c.owner {
            case .person(let id): person = id
            case .house(let id): house = id
            case .none: break
            }
            // A PIN travels as it is stored: its keyed hash under the community's PIN key.
            return .object([("kind", .string(c.kind.rawValue)), ("value", .string(c.value)), ("person_id", .string(person)),
                            ("house_id", .string(house)), ("status", .string(c.status.rawValue)), ("note", .string(c.note))]
                            + (c.kind == .pin ? [("duress", .bool(c.duress))] : []))
        case .putVisitorPass(let v):
            return .object([
                ("id", .string(v.id)), ("house_id", .string(v.houseID)), ("visitor_name", .string(v.visitorName)),
                ("phone", .string(v.phone)), ("plate", .string(v.plate)), ("valid_from", .int(v.validFrom)),
                ("valid_until", .int(v.validUntil)), ("max_uses", .int(v.maxUses)), ("uses", .int(v.uses)),
                ("status", .string(v.status.rawValue)), ("portals", .strings(v.portals)),
            ])
        case .delete:
            return .null
        }
    }

    /// `version`: the change set's format. From format 2 a PIN is its keyed hash (64 hex digits),
    /// never the digits; format 1 carried the digits, which the applying controller hashes.
    init(json: JSON, path: String, version: Int = ChangeSet.currentVersion) throws(ChangeSetError) {
        let f = try Fields(json, path: path)
        let kind = try f.string("kind")
        switch try f.string("op") {
        case "delete":
            let key = try f.string("key")
            switch kind {
            case "schedule": self = .delete(.schedule(key))
            case "group": self = .delete(.group(key))
            case "house": self = .delete(.house(key))
            case "person": self = .delete(.person(key))
            case "visitor_pass": self = .delete(.visitorPass(key))
            case "credential":
                guard let colon = key.firstIndex(of: ":"), let k = CredentialKind(rawValue: String(key[..<colon])), k != .qr else {
                    throw ChangeSetError(path: path + ".key", problem: "\"\(key)\" is not KIND:VALUE with KIND card, pin or plate")
                }
                let value = String(key[key.index(after: colon)...])
                if k == .pin, version >= 2, !PinDigest.isStored(value) {
                    throw ChangeSetError(path: path + ".key", problem: "a PIN is named by its keyed hash (64 lowercase hex digits) from format 2, never by its digits")
                }
                self = .delete(.credential(k, value))
            default:
                throw ChangeSetError(path: path + ".kind", problem: "\"\(kind)\" is not a roster record kind")
            }
        case "put":
            let v = try f.object("value")
            switch kind {
            case "schedule":
                var specs: [String] = []
                for spec in try v.strings("segments") { specs.append(spec) }
                var schedule: Schedule
                do { schedule = try Schedule(name: try v.identifier("name"), specs: specs) } catch let error as ScheduleError {
                    throw ChangeSetError(path: v.path + ".segments", problem: "\(error)")
                } catch let error as ChangeSetError { throw error } catch { throw ChangeSetError(path: v.path, problem: "\(error)") }
                for day in try v.strings("holidays") { schedule.holidays.insert(try v.date(day, field: "holidays")) }
                for (day, ranges) in try v.object("exceptions").pairs {
                    var parsed: [MinuteRange] = []
                    for range in try v.stringsOf(ranges, field: "exceptions." + day) {
                        do { parsed.append(try MinuteRange.parse(Substring(range))) } catch {
                            throw ChangeSetError(path: v.path + ".exceptions." + day, problem: "\"\(range)\" is not HH:MM-HH:MM")
                        }
                    }
                    schedule.exceptions[try v.date(day, field: "exceptions")] = parsed
                }
                self = .putSchedule(schedule)
            case "group":
                self = .putGroup(AccessGroup(name: try v.identifier("name"), portals: try v.strings("portals"), schedule: try v.optionalString("schedule")))
            case "house":
                let spaces = try v.absentOrInt("parking_spaces")
                if let spaces, !(0...10_000).contains(spaces) {
                    throw ChangeSetError(path: v.path + ".parking_spaces", problem: "\(spaces) is not a number of spaces (0-10000)")
                }
                self = .putHouse(House(id: try v.identifier("id"), building: try v.string("building"), unit: try v.string("unit"),
                                       floor: try v.string("floor"), room: try v.string("room"), parkingSpaces: spaces.map(Int.init)))
            case "person":
                var houses: [HouseBinding] = []
                for (i, item) in try v.array("houses").enumerated() {
                    let b = try Fields(item, path: v.path + ".houses[\(i)]")
                    houses.append(HouseBinding(houseID: try b.identifier("house_id"), role: try b.enumValue("role", Role.self)))
                }
                self = .putPerson(Person(
                    id: try v.identifier("id"), name: try v.string("name"), phone: try v.string("phone"),
                    status: try v.enumValue("status", PersonStatus.self), validFrom: try v.optionalInt("valid_from"),
                    validUntil: try v.optionalInt("valid_until"), livesAlone: try v.bool("lives_alone"), houses: houses,
                    groups: try v.strings("groups")
                ))
            case "credential":
                let kind = try v.enumValue("kind", CredentialKind.self)
                guard kind != .qr else { throw ChangeSetError(path: v.path + ".kind", problem: "QR codes are visitor passes, not credentials") }
                let owner: CredentialOwner
                switch (try v.optionalString("person_id"), try v.optionalString("house_id")) {
                case (let p?, nil): owner = .person(p)
                case (nil, let h?): owner = .house(h)
                case (nil, nil): owner = .none
                default: throw ChangeSetError(path: v.path, problem: "a credential belongs to a person or a house, not both")
                }
                let value = try v.string("value")
                if kind == .pin, version >= 2, !PinDigest.isStored(value) {
                    throw ChangeSetError(path: v.path + ".value", problem: "a PIN travels as its keyed hash (64 lowercase hex digits) from format 2, never as its digits")
                }
                self = .putCredential(Credential(kind: kind, value: value, owner: owner,
                                                 status: try v.enumValue("status", CredentialStatus.self), note: try v.string("note"),
                                                 duress: kind == .pin && version >= 2 ? try v.optionalBool("duress") ?? false : false))
            case "visitor_pass":
                self = .putVisitorPass(VisitorPass(
                    id: try v.identifier("id"), houseID: try v.identifier("house_id"), visitorName: try v.string("visitor_name"),
                    phone: try v.string("phone"), plate: try v.optionalString("plate"), validFrom: try v.int("valid_from"),
                    validUntil: try v.int("valid_until"), maxUses: Int(try v.int("max_uses")), uses: Int(try v.int("uses")),
                    status: try v.enumValue("status", VisitorPass.Status.self), portals: try v.strings("portals")
                ))
            default:
                throw ChangeSetError(path: path + ".kind", problem: "\"\(kind)\" is not a roster record kind")
            }
        case let op:
            throw ChangeSetError(path: path + ".op", problem: "\"\(op)\" is not put or delete")
        }
    }
}

/// Reads an object's fields, naming the path of whatever is missing or of the wrong type.
struct Fields {
    let pairs: [(String, JSON)]
    let path: String

    init(_ json: JSON, path: String) throws(ChangeSetError) {
        guard case .object(let pairs) = json else { throw ChangeSetError(path: path, problem: "is not an object") }
        self.pairs = pairs
        self.path = path
    }

    private func at(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    private func value(_ key: String) throws(ChangeSetError) -> JSON {
        guard let v = pairs.first(where: { $0.0 == key })?.1 else { throw ChangeSetError(path: at(key), problem: "is missing") }
        return v
    }

    func string(_ key: String) throws(ChangeSetError) -> String {
        guard case .string(let s) = try value(key) else { throw ChangeSetError(path: at(key), problem: "is not a string") }
        return s
    }

    func optionalString(_ key: String) throws(ChangeSetError) -> String? {
        switch try value(key) {
        case .null: return nil
        case .string(let s): return s
        default: throw ChangeSetError(path: at(key), problem: "is not a string or null")
        }
    }

    func identifier(_ key: String) throws(ChangeSetError) -> String {
        let s = try string(key)
        if let problem = RosterCSVSchema.identifierProblem(s) { throw ChangeSetError(path: at(key), problem: problem) }
        return s
    }

    func int(_ key: String) throws(ChangeSetError) -> Int64 {
        guard case .int(let n) = try value(key) else { throw ChangeSetError(path: at(key), problem: "is not an integer") }
        return n
    }

    /// An integer that may be absent (a field added after the first change sets), or null.
    func absentOrInt(_ key: String) throws(ChangeSetError) -> Int64? {
        guard pairs.contains(where: { $0.0 == key }) else { return nil }
        return try optionalInt(key)
    }

    func optionalInt(_ key: String) throws(ChangeSetError) -> Int64? {
        switch try value(key) {
        case .null: return nil
        case .int(let n): return n
        default: throw ChangeSetError(path: at(key), problem: "is not an integer or null")
        }
    }

    func bool(_ key: String) throws(ChangeSetError) -> Bool {
        guard case .bool(let b) = try value(key) else { throw ChangeSetError(path: at(key), problem: "is not true or false") }
        return b
    }

    func optionalBool(_ key: String) throws(ChangeSetError) -> Bool? {
        guard pairs.contains(where: { $0.0 == key }) else { return nil }
        return try bool(key)
    }

    func array(_ key: String) throws(ChangeSetError) -> [JSON] {
        guard case .array(let items) = try value(key) else { throw ChangeSetError(path: at(key), problem: "is not an array") }
        return items
    }

    func object(_ key: String) throws(ChangeSetError) -> Fields { try Fields(try value(key), path: at(key)) }

    func strings(_ key: String) throws(ChangeSetError) -> [String] { try stringsOf(try value(key), field: key) }

    func stringsOf(_ json: JSON, field: String) throws(ChangeSetError) -> [String] {
        guard case .array(let items) = json else { throw ChangeSetError(path: at(field), problem: "is not an array of strings") }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw ChangeSetError(path: at(field), problem: "is not an array of strings") }
            out.append(s)
        }
        return out
    }

    func enumValue<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type) throws(ChangeSetError) -> E where E.RawValue == String {
        let s = try string(key)
        guard let e = E(rawValue: s) else {
            throw ChangeSetError(path: at(key), problem: "\"\(s)\" is not one of " + E.allCases.map(\.rawValue).joined(separator: ", "))
        }
        return e
    }

    func date(_ text: String, field: String) throws(ChangeSetError) -> CivilDate {
        guard let d = CivilDate(iso: text) else { throw ChangeSetError(path: at(field), problem: "\"\(text)\" is not a date YYYY-MM-DD") }
        return d
    }
}
