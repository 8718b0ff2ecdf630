/// A time zone reduced to what decisions need: the UTC offset in force at any instant.
///
/// Built once from the system's zone database; afterwards every conversion is integer arithmetic
/// and a binary search, so a decision never calls into the calendar machinery.
public struct ZoneRules: Sendable, Hashable {
    /// The IANA identifier, e.g. `Asia/Shanghai`.
    public let identifier: String
    /// Instants (UTC seconds) at which the offset changes, ascending.
    private let transitions: [UnixSeconds]
    /// `offsets[0]` applies before the first transition, `offsets[i + 1]` from `transitions[i]` on.
    private let offsets: [Int]

    /// A zone with one offset forever (tests and `UTC`).
    public static func fixed(identifier: String = "UTC", offsetSeconds: Int) -> ZoneRules {
        ZoneRules(identifier: identifier, transitions: [], offsets: [offsetSeconds])
    }

    public static let utc = ZoneRules.fixed(offsetSeconds: 0)

    init(identifier: String, transitions: [UnixSeconds], offsets: [Int]) {
        precondition(offsets.count == transitions.count + 1)
        self.identifier = identifier
        self.transitions = transitions
        self.offsets = offsets
    }

    /// Loads an IANA zone from the system's database (`$TZDIR`, else `/usr/share/zoneinfo`), or nil
    /// when the identifier names no zone there.
    ///
    /// Transitions are collected from 1970 to 2100; beyond that the last offset is kept.
    public init?(identifier: String) {
        guard let zone = TZif.load(identifier: identifier) else { return nil }
        let (initial, changes) = TZif.offsets(of: zone, from: 0, to: 4_102_444_800)  // 2100-01-01
        self.init(identifier: identifier, transitions: changes.map(\.instant), offsets: [initial] + changes.map(\.offset))
    }

    /// The offset from UTC in force at `instant`.
    @inline(__always)
    public func offset(at instant: UnixSeconds) -> Int {
        if transitions.isEmpty { return offsets[0] }
        // Index of the first transition after `instant`.
        var low = 0
        var high = transitions.count
        while low < high {
            let mid = (low + high) / 2
            if transitions[mid] <= instant { low = mid + 1 } else { high = mid }
        }
        return offsets[low]
    }

    /// The local wall-clock time at `instant`.
    public func localTime(at instant: UnixSeconds) -> LocalDateTime {
        let offset = offset(at: instant)
        let local = instant + Int64(offset)
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        return LocalDateTime(
            date: CivilDate(daysSinceEpoch: days),
            secondOfDay: Int(local - days * 86_400),
            utcOffset: offset
        )
    }

    /// The instant at which the local clock shows `secondOfDay` on `date`.
    ///
    /// In a spring-forward gap the local time does not exist; the instant returned is the one the
    /// clock jumps to (the time is read with the offset in force before the gap). In a fall-back
    /// overlap the earlier of the two instants is returned.
    public func instant(of date: CivilDate, secondOfDay: Int) -> UnixSeconds {
        let local = date.daysSinceEpoch * 86_400 + Int64(secondOfDay)
        // Try each plausible offset; prefer the earliest instant that maps back to the same local time.
        var candidates: [UnixSeconds] = []
        for offset in Set(offsets) {
            let guess = local - Int64(offset)
            if self.offset(at: guess) == offset { candidates.append(guess) }
        }
        if let earliest = candidates.min() { return earliest }
        // In a gap: use the offset before the transition, which lands after the jump.
        // `local - maxOffset` is before the gap's transition, so it reads the offset before it.
        let before = offset(at: local - Int64(offsets.max() ?? 0))
        return local - Int64(before)
    }

    /// The first instant of `date` in this zone.
    public func startOfDay(_ date: CivilDate) -> UnixSeconds { instant(of: date, secondOfDay: 0) }
}
