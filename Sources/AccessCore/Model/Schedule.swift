/// A half-open span of minutes within a day, `[start, end)`; `end` may be 1440 (24:00).
public struct MinuteRange: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let start: Int
    public let end: Int

    public init?(start: Int, end: Int) {
        guard start >= 0, end <= 1440, start < end else { return nil }
        self.start = start
        self.end = end
    }

    public func contains(secondOfDay: Int) -> Bool {
        secondOfDay >= start * 60 && secondOfDay < end * 60
    }

    public var description: String { "\(Self.clock(start))-\(Self.clock(end))" }

    public static func < (a: MinuteRange, b: MinuteRange) -> Bool { (a.start, a.end) < (b.start, b.end) }

    static func clock(_ minutes: Int) -> String {
        "\(CivilDate.pad(minutes / 60, 2)):\(CivilDate.pad(minutes % 60, 2))"
    }

    /// Parses `HH:MM-HH:MM`.
    public static func parse(_ text: Substring) throws(ScheduleError) -> MinuteRange {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = parseClock(parts[0]), let end = parseClock(parts[1]) else {
            throw .badRange(String(text))
        }
        if end <= start {
            if end < start {
                throw .crossesMidnight(String(text))
            }
            throw .badRange(String(text))
        }
        guard let range = MinuteRange(start: start, end: end) else { throw .badRange(String(text)) }
        return range
    }

    static func parseClock(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count == 5, bytes[2] == UInt8(ascii: ":"),
              let h = CivilDate.digits(bytes[0..<2]), let m = CivilDate.digits(bytes[3..<5]), m < 60,
              h < 24 || (h == 24 && m == 0) else { return nil }
        return h * 60 + m
    }
}

/// The day types a week plan has segments for: the seven weekdays and holidays.
public enum DayType: Hashable, Sendable, Comparable {
    case weekday(Weekday)
    case holiday

    public static func < (a: DayType, b: DayType) -> Bool { a.order < b.order }
    var order: Int {
        switch self {
        case .weekday(let d): return d.rawValue
        case .holiday: return 8
        }
    }

    public var shortName: String {
        switch self {
        case .weekday(let d): return d.shortName
        case .holiday: return "hol"
        }
    }
}

/// A mistake in a schedule, named so that staff can fix it.
public enum ScheduleError: Error, Equatable, Sendable, CustomStringConvertible {
    case badRange(String)
    case crossesMidnight(String)
    case badDays(String)
    case badSegment(String)
    case tooManySegments(day: String, count: Int)
    case overlapping(day: String, String, String)

    public var description: String {
        switch self {
        case .badRange(let t):
            return "\"\(t)\" is not a time range (expected HH:MM-HH:MM with the start before the end, 24:00 allowed as end)"
        case .crossesMidnight(let t):
            return "\"\(t)\" crosses midnight: split it into two segments ending at 24:00 and starting at 00:00"
        case .badDays(let t):
            return "\"\(t)\" is not a set of days (use mon…sun, ranges like mon-fri, lists like sat,sun, daily, or hol)"
        case .badSegment(let t):
            return "\"\(t)\" is not a segment (expected DAYS HH:MM-HH:MM, e.g. \"mon-fri 07:00-19:00\")"
        case .tooManySegments(let day, let count):
            return "\(day) has \(count) segments; at most \(Schedule.maxSegmentsPerDay) are allowed a day"
        case .overlapping(let day, let a, let b):
            return "\(day): segments \(a) and \(b) overlap"
        }
    }
}

/// A week plan: up to 8 segments for each weekday and for holidays, holiday dates, and dated
/// exceptions that replace the plan for one day (an exception with no segments closes the day).
///
/// Schedules are read in the community's zone: `mon 07:00-19:00` means seven o'clock on the
/// gate's wall clock, whatever daylight-saving rules the zone has.
public struct Schedule: Hashable, Sendable {
    public static let maxSegmentsPerDay = 8

    public var name: String
    public private(set) var segments: [DayType: [MinuteRange]]
    public var holidays: Set<CivilDate>
    public var exceptions: [CivilDate: [MinuteRange]]

    public init(
        name: String, segments: [DayType: [MinuteRange]] = [:], holidays: Set<CivilDate> = [],
        exceptions: [CivilDate: [MinuteRange]] = [:]
    ) throws(ScheduleError) {
        self.name = name
        self.segments = [:]
        self.holidays = holidays
        self.exceptions = exceptions
        for (day, ranges) in segments { try add(ranges, to: day) }
    }

    /// Builds a plan from segment specs such as `mon-fri 07:00-19:00` or `sat,sun 09:00-12:00`.
    public init(name: String, specs: [String]) throws(ScheduleError) {
        try self.init(name: name)
        for spec in specs {
            let (days, range) = try Self.parseSegment(spec)
            for day in days { try add([range], to: day) }
        }
    }

    mutating func add(_ ranges: [MinuteRange], to day: DayType) throws(ScheduleError) {
        let merged = ((segments[day] ?? []) + ranges).sorted()
        guard merged.count <= Self.maxSegmentsPerDay else {
            throw .tooManySegments(day: day.shortName, count: merged.count)
        }
        for (a, b) in zip(merged, merged.dropFirst()) where b.start < a.end {
            throw .overlapping(day: day.shortName, a.description, b.description)
        }
        segments[day] = merged
    }

    /// Whether the plan allows passage at the given local time.
    public func allows(_ local: LocalDateTime) -> Bool {
        let ranges: [MinuteRange]
        if let exception = exceptions[local.date] {
            ranges = exception
        } else if holidays.contains(local.date) {
            ranges = segments[.holiday] ?? []
        } else {
            ranges = segments[.weekday(local.date.weekday)] ?? []
        }
        for range in ranges where range.contains(secondOfDay: local.secondOfDay) { return true }
        return false
    }

    /// The plan written back as segment specs, one per day type and range, e.g. `mon 07:00-19:00`.
    public var specs: [String] {
        segments.sorted { $0.key < $1.key }.flatMap { day, ranges in ranges.map { "\(day.shortName) \($0)" } }
    }

    /// Parses `DAYS HH:MM-HH:MM`. DAYS: `mon`…`sun`, ranges (`mon-fri`), lists (`sat,sun`),
    /// `daily`, `hol` (holidays).
    public static func parseSegment(_ spec: String) throws(ScheduleError) -> ([DayType], MinuteRange) {
        let parts = spec.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2 else { throw .badSegment(spec) }
        let range = try MinuteRange.parse(parts[1])
        return (try parseDays(parts[0]), range)
    }

    static func parseDays(_ text: Substring) throws(ScheduleError) -> [DayType] {
        var days: [DayType] = []
        for item in text.lowercased().split(separator: ",", omittingEmptySubsequences: false) {
            switch item {
            case "daily", "all":
                days += Weekday.allCases.map(DayType.weekday)
            case "hol", "holiday", "holidays":
                days.append(.holiday)
            case "weekdays":
                days += (1...5).compactMap(Weekday.init(rawValue:)).map(DayType.weekday)
            case "weekends":
                days += [.weekday(.saturday), .weekday(.sunday)]
            default:
                let ends = item.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(ends.count),
                      let first = weekday(named: ends[0]), let last = weekday(named: ends[ends.count - 1]),
                      first.rawValue <= last.rawValue
                else { throw .badDays(String(text)) }
                days += (first.rawValue...last.rawValue).compactMap(Weekday.init(rawValue:)).map(DayType.weekday)
            }
        }
        var seen = Set<DayType>()
        return days.filter { seen.insert($0).inserted }
    }

    static func weekday(named name: Substring) -> Weekday? {
        Weekday.allCases.first { $0.shortName == name }
    }
}
