import AccessCore

/// Watches the wall clock against the monotonic one: whether it can be trusted (set, after
/// 2020), when it jumps (an NTP step, an operator, a dead RTC battery), and what time to give an
/// event while it is unset — the last time known good plus the monotonic time since, so no
/// event ever carries a 1970 timestamp.
struct EventClock: Sendable {
    /// A step larger than this between two looks is a jump (NTP slews smaller errors).
    static let jumpThresholdMicros: Int64 = 2_000_000
    static let earliestTrustedMicros = AccessPolicy.earliestTrustedTime * 1_000_000

    /// What changed at a look.
    enum Change: Equatable {
        /// The clock became valid; `from` is the estimate used until then.
        case set(from: Int64, to: Int64)
        /// The clock stepped while valid.
        case jump(from: Int64, to: Int64)
        /// The clock fell back before 2020; `from` is the last good time.
        case lost(from: Int64, to: Int64)
    }

    private(set) var trusted: Bool
    /// wall − monotonic at the last look, in µs: constant while the clock runs freely.
    private var offset: Int64
    private var anchorMicros: Int64
    private var anchorMono: UInt64

    /// `lastLoggedMicros`: the newest time in the event log, the floor for estimates.
    init(lastLoggedMicros: Int64, wall: Int64, mono: UInt64) {
        trusted = wall >= Self.earliestTrustedMicros
        offset = wall - Int64(mono / 1000)
        anchorMicros = max(lastLoggedMicros, Self.earliestTrustedMicros)
        anchorMono = mono
    }

    func eventMicros(wall: Int64, mono: UInt64) -> Int64 {
        if wall >= Self.earliestTrustedMicros { return wall }
        return anchorMicros + Int64((mono &- anchorMono) / 1000)
    }

    mutating func observe(wall: Int64, mono: UInt64) -> Change? {
        let newOffset = wall - Int64(mono / 1000)
        let nowTrusted = wall >= Self.earliestTrustedMicros
        let expected = offset + Int64(mono / 1000)  // the wall clock had it run on freely
        defer {
            offset = newOffset
            trusted = nowTrusted
        }
        switch (trusted, nowTrusted) {
        case (false, true):
            return .set(from: eventMicros(wall: 0, mono: mono), to: wall)
        case (true, false):
            anchorMicros = max(anchorMicros, expected)
            anchorMono = mono
            return .lost(from: expected, to: wall)
        case (true, true) where abs(newOffset - offset) > Self.jumpThresholdMicros:
            return .jump(from: expected, to: wall)
        default:
            return nil
        }
    }
}

extension Controller {
    /// The event recording a clock change: `clock_set`, `clock_jump` (system) or `clock_unset` (alarm).
    func clockEvent(_ change: EventClock.Change) -> AccessEvent {
        let zone = config.controller.timeZone
        func detail(_ from: Int64, _ to: Int64) -> [(String, JSON)] {
            [("from", .string(ISO8601.format(micros: from, zone: zone))), ("to", .string(ISO8601.format(micros: to, zone: zone))),
             ("jump_seconds", .int((to - from) / 1_000_000))]
        }
        switch change {
        case .set(let from, let to):
            logger.notice("the wall clock is set: time-based decisions resume")
            return AccessEvent(timeMicros: to, utcOffset: offset(), type: .system, reason: "clock_set", detail: detail(from, to))
        case .jump(let from, let to):
            logger.warning("the wall clock jumped", metadata: ["seconds": "\((to - from) / 1_000_000)"])
            return AccessEvent(timeMicros: to, utcOffset: offset(), type: .system, reason: "clock_jump", detail: detail(from, to))
        case .lost(let from, let to):
            logger.error("the wall clock fell back before 2020: time-based decisions are refused until it is set")
            return AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .alarm, reason: "clock_unset", detail: detail(from, to))
        }
    }
}
