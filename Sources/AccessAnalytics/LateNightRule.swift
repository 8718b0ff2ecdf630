import AccessCore

/// `late_night`: a resident's `late_night_entries` entries in the `late_night` window (local
/// time) within `late_night_days`; entries within 30 minutes of the last counted one are the
/// same return. Raised as the entry happens; cleared when the entries age out of the window.
enum LateNightRule: IndicatorRule {
    static let kind = IndicatorKind.lateNight

    static func evaluate(_ a: inout HouseAnalytics, now: Int64, holds: inout Set<String>, raise: inout [Indicator]) {
        let th = a.thresholds
        let window = Int64(th.lateNightDays) * 86_400_000_000
        for (personID, p) in a.persons where p.lateNight.count >= th.lateNightEntries {
            let inWindow = p.lateNight.filter { now - $0 < window }
            guard inWindow.count >= th.lateNightEntries else { continue }
            let house = a.personHouse(personID, fallback: p.houseID)
            let key = Indicator.key(kind, house, personID)
            holds.insert(key)
            if a.active[key] == nil {
                raise.append(indicator(a, personID, house: house, count: inWindow.count, since: inWindow[th.lateNightEntries - 1]))
            }
        }
    }

    /// Counts a late-night entry at `micros` in the person's list (merging one within 30 minutes
    /// of the last); returns how many are in the window and since when the threshold is met.
    static func count(_ entries: inout [Int64], at micros: Int64, thresholds th: AnalyticsThresholds) -> (count: Int, since: Int64) {
        if let last = entries.last, micros >= last, micros - last < AnalyticsThresholds.lateNightMergeMicros {
            // The same return: gate, then building door.
        } else {
            entries.append(micros)
            if entries.count > th.lateNightEntries { entries.removeFirst(entries.count - th.lateNightEntries) }
        }
        let window = Int64(th.lateNightDays) * 86_400_000_000
        let inWindow = entries.filter { micros - $0 < window }
        return (inWindow.count, inWindow.count >= th.lateNightEntries ? inWindow[th.lateNightEntries - 1] : 0)
    }

    static func indicator(_ a: HouseAnalytics, _ personID: String, house: String, count: Int, since: Int64) -> Indicator {
        Indicator(kind: kind, houseID: house, personID: personID, sinceMicros: since, detail: [
            ("entries", .int(count)), ("days", .int(a.thresholds.lateNightDays)), ("window", .string(a.thresholds.lateNight.description)),
            ("threshold", .int(a.thresholds.lateNightEntries)),
        ])
    }
}
