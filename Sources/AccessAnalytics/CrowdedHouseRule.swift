import AccessCore

/// `crowded_house` (群租 suspicion): more than `distinct_credentials_max` distinct credentials
/// (residents' cards, PINs by person and plates, household plates; not visitor passes, not staff)
/// granted for one house within `distinct_credentials_days`. Raised as the passage happens;
/// cleared when the count falls back.
enum CrowdedHouseRule: IndicatorRule {
    static let kind = IndicatorKind.crowdedHouse

    static func evaluate(_ a: inout HouseAnalytics, now: Int64, holds: inout Set<String>, raise: inout [Indicator]) {
        let th = a.thresholds
        let after = HouseAnalytics.floorSeconds(now) - Int64(th.distinctCredentialsDays) * HouseAnalytics.secondsPerDay
        for (houseID, h) in a.houses where h.credentials.count > th.distinctCredentialsMax {
            let n = HouseAnalytics.count(h.credentials, after: after)
            guard n > th.distinctCredentialsMax else { continue }
            let key = Indicator.key(kind, houseID, nil)
            holds.insert(key)
            if a.active[key] == nil { raise.append(indicator(a, houseID, count: n, since: now)) }
        }
    }

    static func indicator(_ a: HouseAnalytics, _ houseID: String, count: Int, since: Int64) -> Indicator {
        Indicator(kind: kind, houseID: houseID, personID: nil, sinceMicros: since, detail: [
            ("distinct_credentials", .int(count)), ("days", .int(a.thresholds.distinctCredentialsDays)),
            ("threshold", .int(a.thresholds.distinctCredentialsMax)),
        ])
    }
}
