import AccessCore

/// An indicator starting or ending; the service turns each into an event.
public enum IndicatorChange: Sendable, Equatable {
    case fired(Indicator)
    /// Ended at `atMicros` (µs): the condition no longer holds.
    case cleared(Indicator, atMicros: Int64)

    public var indicator: Indicator {
        switch self {
        case .fired(let i), .cleared(let i, _): return i
        }
    }

    /// The event for the log: an `alarm` (`indicator_KIND`) when it fires, a `system`
    /// `indicator_cleared` when it ends, with the house, the person and the detail.
    public func event(zone: ZoneRules, nowMicros: Int64) -> AccessEvent {
        let i = indicator
        var detail: [(String, JSON)] = [("indicator", .string(i.key)), ("kind", .string(i.kind.rawValue)),
                                        ("since", .string(ISO8601.format(micros: i.sinceMicros, zone: zone)))]
        detail += i.detail.filter { pair in !detail.contains { $0.0 == pair.0 } }
        let offset = zone.offset(at: Self.floorSeconds(nowMicros))
        switch self {
        case .fired:
            return AccessEvent(timeMicros: nowMicros, utcOffset: offset, type: .alarm, personID: i.personID, houseID: i.houseID,
                               reason: i.kind.alarmReason, detail: detail)
        case .cleared(_, let at):
            detail.append(("cleared_at", .string(ISO8601.format(micros: at, zone: zone))))
            return AccessEvent(timeMicros: nowMicros, utcOffset: offset, type: .system, personID: i.personID, houseID: i.houseID,
                               reason: .indicatorCleared, detail: detail)
        }
    }

    static func floorSeconds(_ micros: Int64) -> Int64 { micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000 }
}
