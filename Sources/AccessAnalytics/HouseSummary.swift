import AccessCore

/// One house as the API serves it: who lives there, when each was last seen, passages per day
/// over the last 30 days, distinct visitors and credentials, indicators in force.
public struct HouseSummary: Sendable {
    public struct Resident: Sendable {
        public var personID: String
        public var role: Role
        public var livesAlone: Bool
        public var lastSeen: LastSeen?
    }

    public struct LastSeen: Sendable, Equatable {
        public var micros: Int64
        public var portal: String
        public var direction: PortalDirection

        public init(micros: Int64, portal: String, direction: PortalDirection) {
            self.micros = micros
            self.portal = portal
            self.direction = direction
        }
    }

    public struct Day: Sendable, Equatable {
        public var date: CivilDate
        public var entries: Int
        public var exits: Int

        public init(date: CivilDate, entries: Int, exits: Int) {
            self.date = date
            self.entries = entries
            self.exits = exits
        }
    }

    public var house: House
    public var residents: [Resident]
    /// The last 30 local days, oldest first, today last.
    public var days: [Day]
    public var entries30d: Int { days.reduce(0) { $0 + $1.entries } }
    public var exits30d: Int { days.reduce(0) { $0 + $1.exits } }
    public var distinctVisitors30d: Int
    /// Distinct credentials (cards, PINs by person, plates) used for the house in the last 7 days.
    public var distinctCredentials7d: Int
    public var indicators: [Indicator]

    public func json(zone: ZoneRules) -> JSON {
        .object([
            ("house_id", .string(house.id)), ("building", .string(house.building)), ("unit", .string(house.unit)),
            ("floor", .string(house.floor)), ("room", .string(house.room)),
            ("residents", .array(residents.map { r in
                .object([
                    ("person_id", .string(r.personID)), ("role", .string(r.role.rawValue)), ("lives_alone", .bool(r.livesAlone)),
                    ("last_seen", r.lastSeen.map { seen in
                        .object([("time", .string(ISO8601.format(micros: seen.micros, zone: zone))), ("portal", .string(seen.portal)),
                                 ("direction", .string(seen.direction == .both ? nil : seen.direction.rawValue))])
                    } ?? .null),
                ])
            })),
            ("entries_30d", .int(entries30d)), ("exits_30d", .int(exits30d)), ("balance_30d", .int(entries30d - exits30d)),
            ("days", .array(days.map { .object([("date", .string($0.date.description)), ("entries", .int($0.entries)), ("exits", .int($0.exits))]) })),
            ("distinct_visitors_30d", .int(distinctVisitors30d)), ("distinct_credentials_7d", .int(distinctCredentials7d)),
            ("indicators", .array(indicators.map { $0.json(zone: zone) })),
        ])
    }
}
