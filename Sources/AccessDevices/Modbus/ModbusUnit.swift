/// A device on a bus: its unit (slave) id and the name its errors and events carry.
public struct ModbusUnit: Sendable, Hashable, ExpressibleByIntegerLiteral {
    public var id: UInt8
    /// `nil` names it "unit N on <bus>".
    public var name: String?

    public init(_ id: UInt8, name: String? = nil) {
        self.id = id
        self.name = name
    }

    public init(integerLiteral value: UInt8) { self.init(value) }
}

/// Counters a bus keeps, for status pages and tests.
public struct ModbusBusStatistics: Sendable, Equatable {
    /// Requests that got a normal answer.
    public var answered = 0
    /// Requests answered with a Modbus exception.
    public var exceptions = 0
    /// Attempts repeated after no or a garbled answer.
    public var retries = 0
    /// Requests that failed after every attempt.
    public var failed = 0
    /// Successful (re)connections of the line.
    public var connects = 0
    /// Failed connection attempts.
    public var connectFailures = 0
}
