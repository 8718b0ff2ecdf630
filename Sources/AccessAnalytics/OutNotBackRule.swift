import AccessCore

/// `out_not_back` (外出未归): a resident whose last passage was through an `out` portal, with
/// nothing since for `out_not_back_hours`. Any later passage (in, or a both-way portal) clears it.
enum OutNotBackRule: IndicatorRule {
    static let kind = IndicatorKind.outNotBack

    static func evaluate(_ a: inout HouseAnalytics, now: Int64, holds: inout Set<String>, raise: inout [Indicator]) {
        let nowSeconds = HouseAnalytics.floorSeconds(now)
        let limit = Int64(a.thresholds.outNotBackHours) * HouseAnalytics.microsPerHour
        for (personID, p) in a.persons
        where p.seen && p.direction == .out && now - p.seenMicros >= limit
            && a.roster.residentHouse(personID) != nil && a.roster.watched(personID, at: nowSeconds) {
            let house = a.personHouse(personID, fallback: p.houseID)
            let key = Indicator.key(kind, house, personID)
            holds.insert(key)
            if a.active[key] == nil {
                raise.append(Indicator(kind: kind, houseID: house, personID: personID, sinceMicros: p.seenMicros + limit, detail: [
                    ("last_seen", .string(ISO8601.format(micros: p.seenMicros, zone: a.zone))),
                    ("portal", .string(a.portalName(p.portal))), ("threshold_hours", .int(a.thresholds.outNotBackHours)),
                ]))
            }
        }
    }

    /// A passage of `personID` at `micros` in `direction`: anything but another way out ends it.
    /// `previousHouse` is the house of the passage before, the key's house when the roster has none.
    static func passage(_ a: inout HouseAnalytics, personID: String, direction: PortalDirection, previousHouse: String, at micros: Int64) {
        guard direction != .out else { return }
        a.clear(Indicator.key(kind, a.personHouse(personID, fallback: previousHouse), personID), at: micros)
    }
}
