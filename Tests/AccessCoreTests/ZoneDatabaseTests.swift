@testable import AccessCore
import Foundation
import Testing

/// `ZoneRules` reads the system's TZif files itself (no ICU in the static build); these tests hold
/// it to Foundation's `TimeZone` for the same zones, and to RFC 8536 on damaged input.
@Suite("The zone database read from TZif files")
struct ZoneDatabaseTests {
    /// Northern and southern daylight saving, half-hour and 45-minute offsets, a half-hour DST
    /// shift, and zones without DST.
    static let zones = [
        "Asia/Shanghai", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "Europe/Berlin", "Europe/London",
        "America/New_York", "America/Los_Angeles", "America/St_Johns", "Australia/Sydney",
        "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham", "UTC",
    ]

    @Test(arguments: zones)
    func offsetsAgreeWithFoundationFrom1970To2100(_ identifier: String) throws {
        let rules = try #require(ZoneRules(identifier: identifier))
        let zone = try #require(TimeZone(identifier: identifier))
        var instants: [Int64] = Array(stride(from: Int64(0), to: 4_102_444_800, by: 86_400 * 7 + 3_600 * 5 + 17))
        var cursor = Date(timeIntervalSince1970: 0)
        var transitions = 0
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next.timeIntervalSince1970 < 4_102_444_800 {
            let t = Int64(next.timeIntervalSince1970.rounded())
            instants += [t - 1, t, t + 1]
            transitions += 1
            cursor = next
        }
        var disagreements: [String] = []
        for t in instants where rules.offset(at: t) != zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(t))) {
            disagreements.append("\(t): \(rules.offset(at: t)) against \(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(t))))")
        }
        #expect(disagreements.isEmpty, "\(identifier): \(disagreements.prefix(5))")
        if identifier == "Europe/Berlin" { #expect(transitions > 200) }  // the footer's rule carried to 2100
    }

    @Test func transitionsAfterTheFilesLastOneComeFromItsFooterRule() throws {
        // 2099's changes in Berlin: last Sunday of March 01:00 UTC, last Sunday of October 01:00 UTC.
        let berlin = try #require(ZoneRules(identifier: "Europe/Berlin"))
        let march29 = CivilDate(year: 2099, month: 3, day: 29)!.daysSinceEpoch * 86_400 + 3_600
        #expect(berlin.offset(at: march29 - 1) == 3_600)
        #expect(berlin.offset(at: march29) == 7_200)
        let october25 = CivilDate(year: 2099, month: 10, day: 25)!.daysSinceEpoch * 86_400 + 3_600
        #expect(berlin.offset(at: october25 - 1) == 7_200)
        #expect(berlin.offset(at: october25) == 3_600)
    }

    @Test(arguments: [
        ("CST-8", PosixRule(standardOffset: 28_800, daylight: nil)),
        ("<+0545>-5:45", PosixRule(standardOffset: 20_700, daylight: nil)),
        ("CET-1CEST,M3.5.0,M10.5.0/3", PosixRule(standardOffset: 3_600, daylight: .init(
            offset: 7_200, start: .monthWeekDay(month: 3, week: 5, weekday: 0), startTime: 7_200,
            end: .monthWeekDay(month: 10, week: 5, weekday: 0), endTime: 10_800))),
        ("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", PosixRule(standardOffset: 37_800, daylight: .init(
            offset: 39_600, start: .monthWeekDay(month: 10, week: 1, weekday: 0), startTime: 7_200,
            end: .monthWeekDay(month: 4, week: 1, weekday: 0), endTime: 7_200))),
        ("EST5EDT,J60/-1,300/+26", PosixRule(standardOffset: -18_000, daylight: .init(
            offset: -14_400, start: .julianNoLeap(60), startTime: -3_600, end: .zeroBasedDay(300), endTime: 93_600))),
    ])
    func posixRulesParse(_ text: String, _ expected: PosixRule) {
        #expect(PosixRule(text) == expected)
    }

    @Test(arguments: ["", "C-8", "CST", "CST-8CDT", "CST-8CDT,M3.5.0", "CST-8CDT,M13.1.0,M10.5.0", "CST-8CDT,M3.6.0,M10.5.0",
                      "CST-8CDT,J0,J365", "CST-200", "<+08-8", "CST-8 "])
    func malformedPosixRulesAreRefused(_ text: String) {
        #expect(PosixRule(text) == nil)
    }

    @Test func southernHemisphereYearsHaveDaylightTimeAtBothEnds() throws {
        let sydney = try #require(PosixRule("AEST-10AEDT,M10.1.0,M4.1.0/3"))
        let changes = sydney.transitions(in: 2030)
        #expect(changes.map(\.offset) == [36_000, 39_600])  // April back to standard, October forward
        #expect(changes[0].instant < changes[1].instant)
    }

    @Test(arguments: ["../../etc/passwd", "/etc/localtime", "Asia/../Asia/Shanghai", "Asia/Shanghai/", "Asia//Shanghai",
                      ".hidden", "Asia/Shang hai"])
    func identifiersThatAreNotZoneNamesNeverReachTheFileSystem(_ name: String) {
        #expect(!TZif.isIdentifier(name))
        #expect(ZoneRules(identifier: name) == nil)
    }

    @Test func aDamagedZoneFileIsRefusedAtEveryLength() throws {
        let bytes = try #require(FileManager.default.contents(atPath: TZif.directory + "/Europe/Berlin"))
        let file = [UInt8](bytes)
        #expect(TZif.parse(file) != nil)
        // Every truncation inside the data is refused (only the footer's trailing newline may go).
        for length in stride(from: 0, to: file.count - 1, by: 7) {
            #expect(TZif.parse(Array(file[0..<length])) == nil, "\(length) of \(file.count) bytes")
        }
        var badMagic = file
        badMagic[0] = UInt8(ascii: "X")
        #expect(TZif.parse(badMagic) == nil)
        // A transition naming a local time type the file does not have (in the 64-bit block read).
        func counts(at header: Int) -> [Int] {  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
            (0..<6).map { i in file[header + 20 + i * 4..<header + 24 + i * 4].reduce(0) { $0 << 8 | Int($1) } }
        }
        let v1 = counts(at: 0)
        let v2Header = 44 + v1[3] * 5 + v1[4] * 6 + v1[5] + v1[2] * 8 + v1[1] + v1[0]
        let v2 = counts(at: v2Header)
        try #require(v2[3] > 0)
        var badIndex = file
        badIndex[v2Header + 44 + v2[3] * 8] = 0xFF
        #expect(TZif.parse(badIndex) == nil)
    }

    @Test func aDatabaseDirectoryOtherThanTheSystemsIsRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tzdir-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("Test"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = try #require(FileManager.default.contents(atPath: TZif.directory + "/Asia/Kolkata"))
        try bytes.write(to: dir.appendingPathComponent("Test/Zone"))
        try Data("not a zone".utf8).write(to: dir.appendingPathComponent("Test/Text"))
        let zone = try #require(TZif.load(identifier: "Test/Zone", directory: dir.path))
        #expect(TZif.offsets(of: zone, from: 1_800_000_000, to: 1_900_000_000).initial == 19_800)
        #expect(TZif.load(identifier: "Test/Text", directory: dir.path) == nil)
        #expect(TZif.load(identifier: "Test/Missing", directory: dir.path) == nil)
    }
}
