/// The changes to persist since the last snapshot: rows of `key → value` text to write, keys to
/// delete, and the serial of the last event applied (stored with them, in one transaction).
public struct AnalyticsSnapshot: Sendable {
    public var appliedSerial: Int64
    public var upserts: [(key: String, value: String)]
    public var deletions: [String]

    public init(appliedSerial: Int64, upserts: [(key: String, value: String)], deletions: [String]) {
        self.appliedSerial = appliedSerial
        self.upserts = upserts
        self.deletions = deletions
    }

    public var isEmpty: Bool { upserts.isEmpty && deletions.isEmpty }
}
