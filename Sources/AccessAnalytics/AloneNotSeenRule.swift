import AccessCore

/// `alone_not_seen` (关爱独居老人): a person living alone (the only owner/family/tenant of a house,
/// or flagged `lives_alone`) with no granted passage for `alone_not_seen_hours`. Someone never
/// seen counts from when the analytics first watched them; any passage of theirs clears it.
enum AloneNotSeenRule: IndicatorRule {
    static let kind = IndicatorKind.aloneNotSeen

    static func evaluate(_ a: inout HouseAnalytics, now: Int64, holds: inout Set<String>, raise: inout [Indicator]) {
        let nowSeconds = HouseAnalytics.floorSeconds(now)
        let limit = Int64(a.thresholds.aloneNotSeenHours) * HouseAnalytics.microsPerHour
        for (personID, house) in a.roster.alone where a.roster.watched(personID, at: nowSeconds) {
            let state = a.persons[personID]
            let base: Int64
            if let state, state.seen {
                base = state.seenMicros
            } else if let state, state.knownSince != .min {
                base = state.knownSince
            } else {
                HouseAnalytics.update(&a.persons[personID, default: HouseAnalytics.PersonState()]) { p in
                    p.knownSince = now
                    p.flags |= HouseAnalytics.dirtyFlag
                }
                a.unsaved = true
                continue
            }
            guard now - base >= limit else { continue }
            let key = Indicator.key(kind, house, personID)
            holds.insert(key)
            if a.active[key] == nil {
                raise.append(Indicator(kind: kind, houseID: house, personID: personID, sinceMicros: base + limit, detail: [
                    ("last_seen", state.flatMap { $0.seen ? .string(ISO8601.format(micros: $0.seenMicros, zone: a.zone)) : nil } ?? .null),
                    ("threshold_hours", .int(a.thresholds.aloneNotSeenHours)),
                ]))
            }
        }
    }

    /// A passage of `personID` at `micros`: the person was seen, so what was in force ends.
    static func passage(_ a: inout HouseAnalytics, personID: String, at micros: Int64) {
        if let house = a.roster.livesAlone(personID) { a.clear(Indicator.key(kind, house, personID), at: micros) }
    }
}
