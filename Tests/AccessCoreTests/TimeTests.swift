import AccessCore
import AccessTestSupport
import Testing

@Suite("Civil time and zones")
struct TimeTests {
    @Test(arguments: [
        ("1970-01-01", Int64(0), Weekday.thursday), ("2000-02-29", 11_016, .tuesday), ("2026-11-23", 20_780, .monday),
        ("1969-12-31", -1, .wednesday), ("2100-03-01", 47_541, .monday),
    ])
    func daysSinceEpoch(_ text: String, _ days: Int64, _ weekday: Weekday) throws {
        let date = try #require(CivilDate(iso: text))
        #expect(date.daysSinceEpoch == days)
        #expect(CivilDate(daysSinceEpoch: days) == date)
        #expect(date.weekday == weekday)
        #expect(date.description == text)
    }

    @Test(arguments: ["2026-02-29", "2026-13-01", "2026-00-10", "2026-1-01", "20261101", "2026-11-31", ""])
    func invalidDates(_ text: String) {
        #expect(CivilDate(iso: text) == nil)
    }

    @Test func shanghaiIsEightHoursAheadWithoutDST() {
        let zone = Fixtures.shanghai
        #expect(zone.offset(at: Fixtures.at("2026-07-01T12:00")) == 28_800)
        #expect(zone.offset(at: Fixtures.at("2026-01-01T12:00")) == 28_800)
        let local = zone.localTime(at: 1_795_363_200)  // 2026-11-22T16:00:00Z
        #expect(local.date == CivilDate(year: 2026, month: 11, day: 23))
        #expect(local.secondOfDay == 0)
    }

    @Test func springForwardGapAndFallBackOverlap() throws {
        let ny = try #require(ZoneRules(identifier: "America/New_York"))
        // 02:30 does not exist on 2026-03-08: it is read with the offset before the jump (03:30 EDT).
        let gap = ny.instant(of: CivilDate(year: 2026, month: 3, day: 8)!, secondOfDay: 2 * 3600 + 1800)
        #expect(ny.localTime(at: gap).secondOfDay == 3 * 3600 + 1800)
        // 01:30 happens twice on 2026-11-01: the earlier (EDT) is chosen.
        let overlap = ny.instant(of: CivilDate(year: 2026, month: 11, day: 1)!, secondOfDay: 3600 + 1800)
        #expect(ny.offset(at: overlap) == -4 * 3600)
        #expect(ny.offset(at: overlap + 3600) == -5 * 3600)
    }

    @Test func unknownZoneIsRefused() {
        #expect(ZoneRules(identifier: "Asia/Shangai") == nil)
        #expect(ZoneRules(identifier: "") == nil)
    }

    @Test(arguments: [
        ("2026-12-31", "2026-12-31T00:00:00+08:00"),
        ("2026-12-31T18:30", "2026-12-31T18:30:00+08:00"),
        ("2026-12-31 18:30:15", "2026-12-31T18:30:15+08:00"),
        ("2026-12-31T10:30:00Z", "2026-12-31T18:30:00+08:00"),
        ("2026-12-31T18:30:00.123+08:00", "2026-12-31T18:30:00+08:00"),
        ("2026-12-31T05:30:00-05:00", "2026-12-31T18:30:00+08:00"),
    ])
    func iso8601RoundTrips(_ input: String, _ formatted: String) throws {
        let instant = try #require(ISO8601.parse(input, zone: Fixtures.shanghai, dateOnly: .startOfDay))
        #expect(ISO8601.format(instant, zone: Fixtures.shanghai) == formatted)
    }

    @Test(arguments: ["2026-12-31T25:00", "2026-12-31T18", "yesterday", "2026-12-31T18:30+8", "2026-12-31T18:30:00+08:00x"])
    func iso8601Rejects(_ input: String) {
        #expect(ISO8601.parse(input, zone: Fixtures.shanghai, dateOnly: .startOfDay) == nil)
    }

    @Test func dateOnlyUntilCoversTheWholeDay() throws {
        let until = try #require(ISO8601.parse("2026-06-30", zone: Fixtures.shanghai, dateOnly: .endOfDay))
        #expect(ISO8601.format(until, zone: Fixtures.shanghai) == "2026-07-01T00:00:00+08:00")
        #expect(ISO8601.formatBound(until, zone: Fixtures.shanghai, isUntil: true) == "2026-06-30")
        #expect(ISO8601.formatBound(until + 60, zone: Fixtures.shanghai, isUntil: true) == "2026-07-01T00:01:00+08:00")
    }

    @Test func eventTimesCarryMicroseconds() {
        #expect(ISO8601.format(micros: 1_795_363_200_000_042, zone: Fixtures.shanghai) == "2026-11-23T00:00:00.000042+08:00")
        #expect(ISO8601.format(micros: 0, zone: .utc) == "1970-01-01T00:00:00.000000Z")
    }
}

@Suite("Schedules")
struct ScheduleTests {
    @Test func parsesDaySetsAndRanges() throws {
        let s = try Schedule(name: "s", specs: ["mon-fri 07:00-19:00", "sat,sun 09:00-12:00", "hol 10:00-11:00", "daily 23:00-24:00"])
        #expect(s.specs.contains("mon 07:00-19:00"))
        #expect(s.specs.contains("sun 09:00-12:00"))
        #expect(s.specs.contains("hol 10:00-11:00"))
        #expect(s.specs.filter { $0.hasSuffix("23:00-24:00") }.count == 7)
        #expect(try Schedule(name: "s", specs: s.specs) == s)
    }

    @Test(arguments: [
        ("mon-fri 19:00-07:00", ScheduleError.crossesMidnight("19:00-07:00")),
        ("mon-fri 07:00-07:00", .badRange("07:00-07:00")),
        ("mon-fri 7:00-19:00", .badRange("7:00-19:00")),
        ("fri-mon 07:00-19:00", .badDays("fri-mon")),
        ("someday 07:00-19:00", .badDays("someday")),
        ("mon-fri", .badSegment("mon-fri")),
        ("mon 24:30-25:00", .badRange("24:30-25:00")),
    ])
    func refusesBadSegments(_ spec: String, _ error: ScheduleError) {
        #expect(throws: error) { try Schedule(name: "s", specs: [spec]) }
    }

    @Test func atMostEightSegmentsADay() throws {
        let eight = (0..<8).map { "mon \(pad($0 * 2)):00-\(pad($0 * 2 + 1)):00" }
        _ = try Schedule(name: "s", specs: eight)
        #expect(throws: ScheduleError.tooManySegments(day: "mon", count: 9)) {
            try Schedule(name: "s", specs: eight + ["mon 20:00-21:00"])
        }
    }

    @Test func overlapsAreRefused() {
        #expect(throws: ScheduleError.overlapping(day: "tue", "08:00-12:00", "11:00-13:00")) {
            try Schedule(name: "s", specs: ["tue 08:00-12:00", "tue 11:00-13:00"])
        }
    }

    func pad(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
}
