/// When each indicator fires (`[analytics]` in the site TOML).
public struct AnalyticsThresholds: Sendable, Equatable {
    /// A person living alone not seen (no granted passage) for this long: 关爱独居老人.
    public var aloneNotSeenHours: Int = 48
    /// A resident whose last passage was out, not back for this long: 外出未归.
    public var outNotBackHours: Int = 72
    /// The window over which distinct credentials of one house are counted (群租 suspicion).
    public var distinctCredentialsDays: Int = 7
    /// More distinct credentials than this within the window fires the indicator.
    public var distinctCredentialsMax: Int = 8
    /// Local wall-clock window counted as late night, minutes since midnight; `start > end`
    /// crosses midnight (e.g. 23:00-05:00).
    public var lateNight: LateNightWindow = LateNightWindow(startMinute: 0, endMinute: 300)
    /// This many late-night entries within `lateNightDays` fires the indicator.
    public var lateNightEntries: Int = 3
    public var lateNightDays: Int = 7

    public init() {}

    /// Holds per house at most this many distinct credentials (at least one more than the
    /// threshold, so the indicator can always fire); counts saturate there.
    public var credentialCap: Int { max(64, distinctCredentialsMax + 1) }
    /// Distinct visitors kept per house over 30 days; the count saturates there.
    public static let visitorCap = 128
    /// Days of per-day entry and exit counts kept per house.
    public static let dayWindow = 30
    /// Late-night entries closer than this to the previous counted one are one return (the
    /// community gate and the building door a minute later are the same coming home).
    public static let lateNightMergeMicros: Int64 = 30 * 60 * 1_000_000
}
