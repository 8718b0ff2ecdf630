import AccessRuntime
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system's zone database read directly: TZif files (RFC 8536) and the POSIX TZ rule in their
/// footer. `ZoneRules` is built from it instead of Foundation's `TimeZone`, which would pull ICU
/// (about 34 MB of data) into every statically linked program.
enum TZif {
    /// One offset change: from `instant` on, local time is UTC + `offset` seconds.
    struct Transition: Equatable {
        let instant: UnixSeconds
        let offset: Int
    }

    /// What a TZif file says: the offset in force before its first transition, its transitions
    /// in order, and the rule for instants after the last one (nil: the last offset stays).
    struct Zone {
        let initialOffset: Int
        let transitions: [Transition]
        let footer: PosixRule?
    }

    /// Where the database lives: `$TZDIR`, else Debian's `/usr/share/zoneinfo` (package tzdata).
    static var directory: String {
        if let dir = getenv("TZDIR"), dir.pointee != 0 { return String(cString: dir) }
        return "/usr/share/zoneinfo"
    }

    /// True for names shaped like IANA identifiers (`Asia/Shanghai`, `Etc/GMT-8`, `UTC`); rules out
    /// absolute paths and `..`, so an identifier can never name a file outside the database.
    static func isIdentifier(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            guard let first = part.utf8.first, first != UInt8(ascii: ".") else { return false }
            return part.utf8.allSatisfy { c in
                (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
                    || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
            }
        }
    }

    /// Reads the zone file for `identifier`, or nil when there is none (or it is not TZif).
    static func load(identifier: String, directory: String = TZif.directory) -> Zone? {
        guard isIdentifier(identifier), let bytes = try? FileReader.bytes(directory + "/" + identifier) else { return nil }
        return parse(bytes)
    }

    /// Parses TZif versions 1 to 4. Version 2+ files carry a second, 64-bit data block and a
    /// footer; that block is the one read when present. Leap-second records are skipped (Debian's
    /// default database has none).
    static func parse(_ bytes: [UInt8]) -> Zone? {
        var reader = ByteReader(bytes: bytes)
        guard let v1 = reader.header() else { return nil }
        var counts = v1.counts
        var timeSize = 4
        if v1.version >= 2 {
            // Skip the 32-bit block; the 64-bit header and block follow it.
            guard reader.skip(counts.dataLength(timeSize: 4)), let v2 = reader.header() else { return nil }
            counts = v2.counts
            timeSize = 8
        }
        var times: [Int64] = []
        times.reserveCapacity(counts.timeCount)
        for _ in 0..<counts.timeCount {
            guard let t = timeSize == 8 ? reader.int64() : reader.int32().map(Int64.init) else { return nil }
            times.append(t)
        }
        var typeIndexes: [Int] = []
        for _ in 0..<counts.timeCount {
            guard let index = reader.uint8() else { return nil }
            typeIndexes.append(Int(index))
        }
        var typeOffsets: [Int] = []
        for _ in 0..<counts.typeCount {
            guard let offset = reader.int32(), reader.skip(2) else { return nil }  // isdst, desigidx
            typeOffsets.append(Int(offset))
        }
        guard !typeOffsets.isEmpty, typeIndexes.allSatisfy({ $0 < typeOffsets.count }),
              reader.skip(counts.charCount + counts.leapCount * (timeSize + 4) + counts.isStdCount + counts.isUTCount)
        else { return nil }
        var footer: PosixRule?
        if v1.version >= 2 {
            // "\n" TZ-string "\n"; an empty string means no rule.
            guard reader.uint8() == 0x0A, let text = reader.line() else { return nil }
            if !text.isEmpty {
                guard let rule = PosixRule(text) else { return nil }
                footer = rule
            }
        }
        // RFC 8536 3.2: local time before the first transition is type 0's.
        let transitions = zip(times, typeIndexes).map { Transition(instant: $0, offset: typeOffsets[$1]) }
        return Zone(initialOffset: typeOffsets[0], transitions: transitions, footer: footer)
    }

    /// The zone from `start` to `end`: the offset in force at `start`, then every change of offset
    /// after it and before `end`, the footer's rule continuing the file's transitions.
    static func offsets(of zone: Zone, from start: UnixSeconds, to end: UnixSeconds) -> (initial: Int, changes: [Transition]) {
        var all = zone.transitions
        var before = zone.initialOffset
        if let rule = zone.footer, rule.daylight != nil {
            let last = zone.transitions.last?.instant ?? start - 366 * 86_400
            let firstYear = CivilDate(daysSinceEpoch: floorDiv(min(last, start), 86_400)).year - 1
            let lastYear = CivilDate(daysSinceEpoch: floorDiv(end, 86_400)).year
            let generated = (firstYear...lastYear).flatMap { rule.transitions(in: $0) }.filter { $0.instant > last }
            if zone.transitions.isEmpty, let first = generated.first {
                // Before the rule's first change the other of its two offsets was in force.
                before = first.offset == rule.standardOffset ? rule.daylight!.offset : rule.standardOffset  // allowed: checked above
            }
            all += generated
        } else if let rule = zone.footer, zone.transitions.isEmpty {
            before = rule.standardOffset
        }
        var initial = before
        var changes: [Transition] = []
        for t in all where t.instant < end {
            if t.instant <= start {
                initial = t.offset
            } else if t.offset != (changes.last?.offset ?? initial) {
                changes.append(t)
            }
        }
        return (initial, changes)
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }

    private struct Counts {
        let isUTCount, isStdCount, leapCount, timeCount, typeCount, charCount: Int

        func dataLength(timeSize: Int) -> Int {
            timeCount * timeSize + timeCount + typeCount * 6 + charCount + leapCount * (timeSize + 4) + isStdCount + isUTCount
        }
    }

    private struct ByteReader {
        let bytes: [UInt8]
        var at = 0

        mutating func skip(_ n: Int) -> Bool {
            guard n >= 0, at + n <= bytes.count else { return false }
            at += n
            return true
        }

        mutating func uint8() -> UInt8? {
            guard at < bytes.count else { return nil }
            defer { at += 1 }
            return bytes[at]
        }

        mutating func int32() -> Int32? {
            guard at + 4 <= bytes.count else { return nil }
            defer { at += 4 }
            return Int32(bitPattern: bytes[at..<at + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }

        mutating func int64() -> Int64? {
            guard at + 8 <= bytes.count else { return nil }
            defer { at += 8 }
            return Int64(bitPattern: bytes[at..<at + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }

        mutating func line() -> String? {
            guard let end = bytes[at...].firstIndex(of: 0x0A) else { return nil }
            defer { at = end + 1 }
            return String(decoding: bytes[at..<end], as: UTF8.self)
        }

        /// "TZif", the version byte, 15 reserved bytes, six big-endian counts.
        mutating func header() -> (version: Int, counts: Counts)? {
            guard at + 44 <= bytes.count, Array(bytes[at..<at + 4]) == Array("TZif".utf8) else { return nil }
            let versionByte = bytes[at + 4]
            let version = versionByte == 0 ? 1 : Int(versionByte) - Int(UInt8(ascii: "0"))
            guard (1...9).contains(version) else { return nil }
            at += 20
            var c: [Int] = []
            for _ in 0..<6 {
                guard let n = int32(), n >= 0 else { return nil }
                c.append(Int(n))
            }
            return (version, Counts(isUTCount: c[0], isStdCount: c[1], leapCount: c[2],
                                    timeCount: c[3], typeCount: c[4], charCount: c[5]))
        }
    }
}

/// A POSIX TZ rule such as `CST-8`, `CET-1CEST,M3.5.0,M10.5.0/3` or `<+1030>-10:30<+11>-11,M10.1.0,M4.1.0`
/// (with RFC 8536's extension of hours to ±167): the offsets after a TZif file's last transition.
struct PosixRule: Equatable {
    /// Standard time's offset from UTC (east positive, unlike the string's sign).
    let standardOffset: Int
    /// Daylight time: its offset and the yearly dates it starts and ends on; nil when there is none.
    let daylight: Daylight?

    struct Daylight: Equatable {
        let offset: Int
        let start: DateRule
        /// Seconds after local (standard) midnight of the start date.
        let startTime: Int
        let end: DateRule
        /// Seconds after local (daylight) midnight of the end date.
        let endTime: Int
    }

    enum DateRule: Equatable {
        /// `Jn`: day 1...365, February 29 never counted.
        case julianNoLeap(Int)
        /// `n`: day 0...365, February 29 counted.
        case zeroBasedDay(Int)
        /// `Mm.w.d`: weekday d (0 = Sunday) of week w (5 = last) of month m.
        case monthWeekDay(month: Int, week: Int, weekday: Int)

        /// The date in `year`, as days since 1970-01-01.
        func day(in year: Int) -> Int64 {
            let january1 = CivilDate(year: year, month: 1, day: 1)!.daysSinceEpoch  // allowed: Jan 1 exists
            switch self {
            case .julianNoLeap(let n):
                let leap = CivilDate.daysIn(month: 2, year: year) == 29
                return january1 + Int64(n - 1) + (leap && n >= 60 ? 1 : 0)
            case .zeroBasedDay(let n):
                return january1 + Int64(n)
            case .monthWeekDay(let month, let week, let weekday):
                let first = CivilDate(year: year, month: month, day: 1)!.daysSinceEpoch  // allowed: day 1 exists
                // Weekday.rawValue: Monday 1 … Sunday 7; POSIX: Sunday 0 … Saturday 6.
                let firstWeekday = Weekday.of(daysSinceEpoch: first).rawValue % 7
                var day = first + Int64((weekday - firstWeekday + 7) % 7) + Int64(7 * (week - 1))
                let length = Int64(CivilDate.daysIn(month: month, year: year))
                while day >= first + length { day -= 7 }
                return day
            }
        }
    }

    /// The transitions the rule makes in `year`, in order.
    func transitions(in year: Int) -> [TZif.Transition] {
        guard let dst = daylight else { return [] }
        let start = dst.start.day(in: year) * 86_400 + Int64(dst.startTime) - Int64(standardOffset)
        let end = dst.end.day(in: year) * 86_400 + Int64(dst.endTime) - Int64(dst.offset)
        return [TZif.Transition(instant: start, offset: dst.offset), TZif.Transition(instant: end, offset: standardOffset)]
            .sorted { $0.instant < $1.instant }
    }

    init(standardOffset: Int, daylight: Daylight?) {
        self.standardOffset = standardOffset
        self.daylight = daylight
    }

    /// Parses the rule, or nil when it is not one.
    init?(_ text: String) {
        var s = Scanner(bytes: Array(text.utf8))
        guard s.name(), let std = s.offset() else { return nil }
        if s.atEnd {
            self.init(standardOffset: -std, daylight: nil)
            return
        }
        guard s.name() else { return nil }
        var dstOffset = std - 3600
        if let first = s.peek, first != UInt8(ascii: ",") {
            guard let given = s.offset() else { return nil }
            dstOffset = given
        }
        guard s.take(UInt8(ascii: ",")), let start = s.dateRule() else { return nil }
        var startTime = 7200
        if s.take(UInt8(ascii: "/")) {
            guard let t = s.offset() else { return nil }
            startTime = t
        }
        guard s.take(UInt8(ascii: ",")), let end = s.dateRule() else { return nil }
        var endTime = 7200
        if s.take(UInt8(ascii: "/")) {
            guard let t = s.offset() else { return nil }
            endTime = t
        }
        guard s.atEnd else { return nil }
        self.init(standardOffset: -std, daylight: Daylight(offset: -dstOffset, start: start, startTime: startTime,
                                                           end: end, endTime: endTime))
    }

    private struct Scanner {
        let bytes: [UInt8]
        var at = 0

        var atEnd: Bool { at == bytes.count }
        var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func take(_ c: UInt8) -> Bool {
            guard peek == c else { return false }
            at += 1
            return true
        }

        /// `<…>` or three or more letters.
        mutating func name() -> Bool {
            if take(UInt8(ascii: "<")) {
                guard let close = bytes[at...].firstIndex(of: UInt8(ascii: ">")), close > at else { return false }
                at = close + 1
                return true
            }
            let start = at
            while let c = peek, (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) { at += 1 }
            return at - start >= 3
        }

        mutating func number(max: Int) -> Int? {
            let start = at
            var value = 0
            while let c = peek, c >= 0x30, c <= 0x39, at - start < 3 {
                value = value * 10 + Int(c - 0x30)
                at += 1
            }
            return at > start && value <= max ? value : nil
        }

        /// `[+-]hh[:mm[:ss]]` in seconds, sign as written (POSIX: west of UTC is positive).
        mutating func offset() -> Int? {
            var sign = 1
            if take(UInt8(ascii: "-")) { sign = -1 } else { _ = take(UInt8(ascii: "+")) }
            guard let hours = number(max: 167) else { return nil }
            var seconds = hours * 3600
            if take(UInt8(ascii: ":")) {
                guard let minutes = number(max: 59) else { return nil }
                seconds += minutes * 60
                if take(UInt8(ascii: ":")) {
                    guard let secs = number(max: 59) else { return nil }
                    seconds += secs
                }
            }
            return sign * seconds
        }

        mutating func dateRule() -> PosixRule.DateRule? {
            if take(UInt8(ascii: "J")) {
                guard let n = number(max: 365), n >= 1 else { return nil }
                return .julianNoLeap(n)
            }
            if take(UInt8(ascii: "M")) {
                guard let m = number(max: 12), m >= 1, take(UInt8(ascii: ".")), let w = number(max: 5), w >= 1,
                      take(UInt8(ascii: ".")), let d = number(max: 6) else { return nil }
                return .monthWeekDay(month: m, week: w, weekday: d)
            }
            guard let n = number(max: 365) else { return nil }
            return .zeroBasedDay(n)
        }
    }
}
