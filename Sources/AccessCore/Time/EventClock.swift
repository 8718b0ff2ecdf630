/// Watches the wall clock against the monotonic one: whether it can be trusted (set, after
/// 2020), when it jumps (an NTP step, an operator, a dead RTC battery), and what time to give an
/// event while it is unset — the last time known good plus the monotonic time since, so no
/// event ever carries a 1970 timestamp.
public struct EventClock: Sendable, Equatable {
    /// A step larger than this between two looks is a jump (NTP slews smaller errors).
    public static let jumpThresholdMicros: Int64 = 2_000_000
    public static let earliestTrustedMicros = AccessPolicy.earliestTrustedTime * 1_000_000

    /// What changed at a look.
    public enum Change: Equatable, Sendable {
        /// The clock became valid; `from` is the estimate used until then.
        case set(from: Int64, to: Int64)
        /// The clock stepped while valid.
        case jump(from: Int64, to: Int64)
        /// The clock fell back before 2020; `from` is the last good time.
        case lost(from: Int64, to: Int64)
    }

    public private(set) var trusted: Bool
    /// wall − monotonic at the last look, in µs: constant while the clock runs freely.
    private var offset: Int64
    private var anchorMicros: Int64
    private var anchorMono: UInt64

    /// `lastLoggedMicros`: the newest time in the event log, the floor for estimates.
    public init(lastLoggedMicros: Int64, wall: Int64, mono: UInt64) {
        trusted = wall >= Self.earliestTrustedMicros
        offset = wall - Int64(mono / 1000)
        anchorMicros = max(lastLoggedMicros, Self.earliestTrustedMicros)
        anchorMono = mono
    }

    public func eventMicros(wall: Int64, mono: UInt64) -> Int64 {
        if wall >= Self.earliestTrustedMicros { return wall }
        return anchorMicros + Int64((mono &- anchorMono) / 1000)
    }

    public mutating func observe(wall: Int64, mono: UInt64) -> Change? {
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
