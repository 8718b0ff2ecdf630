import AccessCore

/// An indicator in force. Its key (kind, house, person) is stable: it fires once and clears once.
public struct Indicator: Sendable, Hashable {
    public var kind: IndicatorKind
    public var houseID: String
    public var personID: String?
    /// When the condition began (µs): the moment the threshold was crossed.
    public var sinceMicros: Int64
    /// Facts for the platform: last seen, counts, thresholds.
    public var detail: [(String, JSON)]

    public init(kind: IndicatorKind, houseID: String, personID: String?, sinceMicros: Int64, detail: [(String, JSON)] = []) {
        self.kind = kind
        self.houseID = houseID
        self.personID = personID
        self.sinceMicros = sinceMicros
        self.detail = detail
    }

    /// `KIND:HOUSE:PERSON` (roster ids never contain `:`); the person part is empty for house indicators.
    public var key: String { Self.key(kind, houseID, personID) }

    static func key(_ kind: IndicatorKind, _ house: String, _ person: String?) -> String {
        "\(kind.rawValue):\(house):\(person ?? "")"
    }

    /// As the HTTP API serves it.
    public func json(zone: ZoneRules) -> JSON {
        .object([
            ("key", .string(key)), ("kind", .string(kind.rawValue)), ("house_id", .string(houseID)),
            ("person_id", .string(personID)), ("since", .string(ISO8601.format(micros: sinceMicros, zone: zone))),
            ("detail", .object(detail)),
        ])
    }

    public static func == (a: Indicator, b: Indicator) -> Bool {
        a.key == b.key && a.sinceMicros == b.sinceMicros && JSON.object(a.detail) == JSON.object(b.detail)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(key) }
}
