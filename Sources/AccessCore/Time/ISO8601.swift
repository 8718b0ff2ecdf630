/// ISO 8601 / RFC 3339 as the roster and the APIs use it, in the community's zone.
public enum ISO8601 {
    /// How a date without a time is read.
    public enum DateOnly: Sendable {
        /// The first instant of the day (a `valid_from`).
        case startOfDay
        /// The first instant of the following day, so the whole day is included (a `valid_until`).
        case endOfDay
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` (local time in `zone`) or the same followed by
    /// `Z` or `±HH:MM`. A space may stand for `T`. Returns nil when the text is none of these.
    public static func parse(_ text: String, zone: ZoneRules, dateOnly: DateOnly) -> UnixSeconds? {
        let t = text.trimmingSpaces
        if let date = CivilDate(iso: t) {
            switch dateOnly {
            case .startOfDay: return zone.startOfDay(date)
            case .endOfDay: return zone.startOfDay(date.adding(days: 1))
            }
        }
        let bytes = Array(t.utf8)
        guard bytes.count >= 16, let date = CivilDate(iso: t.prefix(10)),
              bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " ") || bytes[10] == UInt8(ascii: "t"),
              bytes[13] == UInt8(ascii: ":"),
              let hour = CivilDate.digits(bytes[11..<13]), let minute = CivilDate.digits(bytes[14..<16]),
              hour < 24, minute < 60 else { return nil }
        var index = 16
        var second = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
            guard bytes.count >= index + 3, let s = CivilDate.digits(bytes[(index + 1)..<(index + 3)]), s < 60
            else { return nil }
            second = s
            index += 3
            // Fractions of a second are accepted and dropped: decisions are to the second.
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                let start = index
                while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
                guard index > start else { return nil }
            }
        }
        let secondOfDay = hour * 3600 + minute * 60 + second
        if index == bytes.count {
            return zone.instant(of: date, secondOfDay: secondOfDay)
        }
        let local = date.daysSinceEpoch * 86_400 + Int64(secondOfDay)
        if bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
            return index + 1 == bytes.count ? local : nil
        }
        guard bytes.count == index + 6, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"),
              bytes[index + 3] == UInt8(ascii: ":"),
              let oh = CivilDate.digits(bytes[(index + 1)..<(index + 3)]),
              let om = CivilDate.digits(bytes[(index + 4)..<(index + 6)]), oh < 24, om < 60 else { return nil }
        let offset = Int64(oh * 3600 + om * 60) * (bytes[index] == UInt8(ascii: "-") ? -1 : 1)
        return local - offset
    }

    /// An RFC 3339 timestamp with its offset as the event log writes it
    /// (`2026-11-22T08:00:00.123456+08:00`, or `Z`): µs since 1970 and the offset in seconds;
    /// nil when the text has no explicit offset or is not one.
    public static func parseTimestamp(_ text: String) -> (micros: Int64, utcOffset: Int)? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20 else { return nil }
        let offset: Int
        if bytes.last == UInt8(ascii: "Z") {
            offset = 0
        } else {
            let o = bytes.count - 6
            guard bytes[o] == UInt8(ascii: "+") || bytes[o] == UInt8(ascii: "-"), bytes[o + 3] == UInt8(ascii: ":"),
                  let hours = CivilDate.digits(bytes[(o + 1)..<(o + 3)]), let minutes = CivilDate.digits(bytes[(o + 4)..<(o + 6)])
            else { return nil }
            offset = (hours * 3600 + minutes * 60) * (bytes[o] == UInt8(ascii: "-") ? -1 : 1)
        }
        guard let seconds = parse(text, zone: .fixed(offsetSeconds: 0), dateOnly: .startOfDay) else { return nil }
        var fraction: Int64 = 0
        if bytes.count > 19, bytes[19] == UInt8(ascii: ".") {
            var scale: Int64 = 100_000
            var i = 20
            while i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
                fraction += Int64(bytes[i] - UInt8(ascii: "0")) * scale
                scale /= 10
                i += 1
            }
        }
        return (seconds * 1_000_000 + fraction, offset)
    }

    /// RFC 3339 with the zone's offset, e.g. `2026-11-22T08:00:00+08:00`.
    public static func format(_ instant: UnixSeconds, zone: ZoneRules) -> String {
        format(local: zone.localTime(at: instant), fractionMicros: nil)
    }

    /// RFC 3339 with microseconds, for event timestamps.
    public static func format(micros: Int64, zone: ZoneRules) -> String {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        return format(local: zone.localTime(at: seconds), fractionMicros: Int(micros - seconds * 1_000_000))
    }

    static func format(local: LocalDateTime, fractionMicros: Int?) -> String {
        let s = local.secondOfDay
        var text = "\(local.date)T\(CivilDate.pad(s / 3600, 2)):\(CivilDate.pad(s / 60 % 60, 2)):\(CivilDate.pad(s % 60, 2))"
        if let fraction = fractionMicros { text += "." + CivilDate.pad(fraction, 6) }
        let offset = local.utcOffset
        if offset == 0 { return text + "Z" }
        let sign = offset < 0 ? "-" : "+"
        let magnitude = abs(offset)
        return text + "\(sign)\(CivilDate.pad(magnitude / 3600, 2)):\(CivilDate.pad(magnitude / 60 % 60, 2))"
    }

    /// How a validity bound is written back (export, `show`): a bare date when it falls on local
    /// midnight, the date-time with offset otherwise. `until` bounds are exclusive, so midnight
    /// prints as the previous day.
    public static func formatBound(_ instant: UnixSeconds, zone: ZoneRules, isUntil: Bool) -> String {
        let local = zone.localTime(at: instant)
        if local.secondOfDay == 0 {
            return (isUntil ? local.date.adding(days: -1) : local.date).description
        }
        return format(instant, zone: zone)
    }
}

extension String {
    /// The string without leading and trailing whitespace (Unicode's, so 全角 spaces go too).
    public var trimmingSpaces: String {
        // Fast path: most fields start and end with a printable ASCII character.
        if let first = utf8.first, let last = utf8.last, first > 0x20, first < 0x80, last > 0x20, last < 0x80 { return self }
        let scalars = unicodeScalars
        var start = scalars.startIndex
        var end = scalars.endIndex
        while start < end, scalars[start].properties.isWhitespace { start = scalars.index(after: start) }
        while end > start, scalars[scalars.index(before: end)].properties.isWhitespace { end = scalars.index(before: end) }
        return String(scalars[start..<end])
    }
}

extension StringProtocol {
    /// The text without leading and trailing characters from `set`.
    public func trimming(charactersIn set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
