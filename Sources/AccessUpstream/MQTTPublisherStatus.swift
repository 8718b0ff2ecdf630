/// What the publisher has done, for tests, logs and metrics.
public struct MQTTPublisherStatus: Sendable, Equatable {
    /// A CONNACK accepted the current connection.
    public var connected = false
    /// Every event up to this serial is acknowledged by the broker (in memory).
    public var ackedSerial: Int64 = 0
    /// The cursor as stored in the database.
    public var storedSerial: Int64 = 0
    /// Messages handed to the broker (events and alarms, with resends).
    public var publishedMessages = 0
    /// Connections accepted by the broker so far.
    public var connections = 0
    /// The last connection or store failure (no credentials in it).
    public var lastError: String?
}
