import AccessCore

/// JSON images of roster records, for the audit log and `--json` output. With a zone, instants
/// print as RFC 3339 in it; without, as Unix seconds (the audit log's stable form).
public enum RosterJSON {
    static func instant(_ value: UnixSeconds?, _ zone: ZoneRules?) -> JSON {
        guard let value else { return .null }
        guard let zone else { return .int(value) }
        return .string(ISO8601.format(value, zone: zone))
    }

    public static func house(_ h: House) -> JSON {
        .object([("id", .string(h.id)), ("building", .string(h.building)), ("unit", .string(h.unit)),
                 ("floor", .string(h.floor)), ("room", .string(h.room))] + (h.parkingSpaces.map { [("parking_spaces", .int(Int64($0)))] } ?? []))
    }

    public static func person(_ p: Person, credentials: [Credential], zone: ZoneRules? = nil) -> JSON {
        .object([
            ("id", .string(p.id)), ("name", .string(p.name)), ("phone", .string(p.phone)),
            ("status", .string(p.status.rawValue)),
            ("valid_from", instant(p.validFrom, zone)), ("valid_until", instant(p.validUntil, zone)),
            ("lives_alone", .bool(p.livesAlone)),
            ("houses", .array(p.houses.map { .object([("house_id", .string($0.houseID)), ("role", .string($0.role.rawValue))]) })),
            ("groups", .strings(p.groups)),
            ("credentials", .array(credentials.map { credential($0) })),
        ])
    }

    public static func credential(_ c: Credential) -> JSON {
        var owner: [(String, JSON)] = [("person_id", .null), ("house_id", .null)]
        switch c.owner {
        case .person(let id): owner[0].1 = .string(id)
        case .house(let id): owner[1].1 = .string(id)
        case .none: break
        }
        return .object([("kind", .string(c.kind.rawValue)), ("value", .string(c.kind == .pin ? "****" : c.value))]
            + owner + [("status", .string(c.status.rawValue)), ("note", .string(c.note))] + (c.kind == .pin ? [("duress", .bool(c.duress))] : []))
    }

    public static func schedule(_ s: Schedule) -> JSON {
        .object([
            ("name", .string(s.name)), ("segments", .strings(s.specs)),
            ("holidays", .strings(s.holidays.sorted().map(\.description))),
            ("exceptions", .object(s.exceptions.sorted { $0.key < $1.key }.map { ($0.key.description, .strings($0.value.map(\.description))) })),
        ])
    }

    public static func group(_ g: AccessGroup) -> JSON {
        .object([("name", .string(g.name)), ("portals", .strings(g.portals)), ("schedule", .string(g.schedule))])
    }

    public static func pass(_ p: VisitorPass, zone: ZoneRules? = nil) -> JSON {
        .object([
            ("id", .string(p.id)), ("house_id", .string(p.houseID)), ("visitor_name", .string(p.visitorName)),
            ("phone", .string(p.phone)), ("plate", .string(p.plate)),
            ("valid_from", instant(p.validFrom, zone)), ("valid_until", instant(p.validUntil, zone)),
            ("max_uses", .int(p.maxUses)), ("uses", .int(p.uses)), ("status", .string(p.status.rawValue)),
            ("portals", .strings(p.portals)),
        ])
    }

    public static func portal(_ p: Portal, mode: PortalMode) -> JSON {
        .object([
            ("id", .string(p.id)), ("kind", .string(p.kind.rawValue)), ("direction", .string(p.direction.rawValue)),
            ("from_area", .string(p.fromArea)), ("to_area", .string(p.toArea)), ("building", .string(p.building)),
            ("mode", .string(mode.rawValue)), ("readers", .strings(p.readers)),
        ])
    }
}

extension AccessDatabase {
    static func json(_ h: House) -> JSON { RosterJSON.house(h) }
    static func json(_ p: Person, credentials: [Credential]) -> JSON { RosterJSON.person(p, credentials: credentials) }
    static func json(_ c: Credential) -> JSON { RosterJSON.credential(c) }
    static func json(_ s: Schedule) -> JSON { RosterJSON.schedule(s) }
    static func json(_ g: AccessGroup) -> JSON { RosterJSON.group(g) }
}
