/// How much of the event log a controller keeps: the newest `maxCount` events, none older than
/// `maxAgeDays` (0: no age limit). The oldest go first; serials are never reused. Events an
/// outbox has not had acknowledged are kept while the log is below its limit.
public struct EventRetention: Sendable, Equatable {
    public var maxCount: Int64
    public var maxAgeDays: Int
    /// The share of `maxCount` at which `event_log_nearly_full` is raised (Hikvision warns at 90 %).
    public var alarmFraction: Double = 0.9

    public init(maxCount: Int64 = 10_000_000, maxAgeDays: Int = 0) {
        self.maxCount = maxCount
        self.maxAgeDays = maxAgeDays
    }
}
