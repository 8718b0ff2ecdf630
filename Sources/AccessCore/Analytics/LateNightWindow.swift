/// A span of the local day in minutes, `[start, end)`, which may cross midnight.
public struct LateNightWindow: Sendable, Equatable, CustomStringConvertible {
    public var startMinute: Int
    public var endMinute: Int

    public init(startMinute: Int, endMinute: Int) {
        self.startMinute = startMinute
        self.endMinute = endMinute
    }

    /// Parses `HH:MM-HH:MM` (24:00 allowed as the end; a start after the end crosses midnight).
    public static func parse(_ text: String) -> LateNightWindow? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = clock(parts[0]), let end = clock(parts[1]), start != end, start < 1440 else { return nil }
        return LateNightWindow(startMinute: start, endMinute: end)
    }

    static func clock(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count == 5, bytes[2] == UInt8(ascii: ":"),
              let h = CivilDate.digits(bytes[0..<2]), let m = CivilDate.digits(bytes[3..<5]), m < 60,
              h < 24 || (h == 24 && m == 0) else { return nil }
        return h * 60 + m
    }

    public func contains(minuteOfDay m: Int) -> Bool {
        startMinute < endMinute ? (m >= startMinute && m < endMinute) : (m >= startMinute || m < endMinute)
    }

    public var description: String { "\(MinuteRange.clock(startMinute))-\(MinuteRange.clock(endMinute))" }
}
