import AccessCore
import AccessStore
import AccessTestSupport
import Testing

@Suite("Roster import")
struct ImportTests {
    let dir = TemporaryDirectory()
    let db: AccessDatabase
    static let header = "house_id,building,unit,floor,room,person_id,name,role,phone,valid_from,valid_until,cards,plates,groups,status\n"

    init() throws {
        db = try AccessDatabase(path: dir.file("i.db"))
        try db.saveSite(Fixtures.rules())
        try db.saveGroup(AccessGroup(name: "lanes", portals: ["lane-in", "lane-out"]), isNew: true, operator: "setup")
    }

    func run(_ csv: String, dryRun: Bool = false, replace: Bool = false) throws -> ImportReport {
        var reader = CSVReader(string: csv)
        return try db.importRoster(&reader, options: ImportOptions(fileName: "roster.csv", zone: Fixtures.shanghai, operator: "ops",
                                                                   dryRun: dryRun, replace: replace))
    }

    func problems(_ csv: String, replace: Bool = false) -> [String] {
        do {
            _ = try run(csv, replace: replace)
            return []
        } catch {
            return (error as? ImportError)?.problems ?? ["unexpected: \(error)"]
        }
    }

    static let base = header + """
        B01-U1-0301,B01,1,3,0301,P1,张伟,owner,13800000000,,,1001;1002,京A11111,,active
        B01-U1-0301,,,,,P2,李娜,family,,,,1003,,,
        B02-U1-0101,B02,1,1,0101,P3,王强,tenant,,2026-01-01,2026-06-30,1004,,lanes,

        """

    @Test func importsPeopleHousesCardsPlatesAndAudit() throws {
        let report = try run(Self.base)
        #expect(report.rows == 3)
        #expect(report.added == ["P1", "P2", "P3"])
        #expect(report.housesAdded == ["B01-U1-0301", "B02-U1-0101"])
        let p3 = try #require(try db.person("P3"))
        #expect(p3.validUntil == Fixtures.at("2026-07-01T00:00"))
        #expect(p3.groups == ["lanes"])
        #expect(p3.houses == [HouseBinding(houseID: "B02-U1-0101", role: .tenant)])
        #expect(try db.credential(kind: .plate, value: "京A11111")?.owner == .person("P1"))
        #expect(try db.credentials(person: "P1").count == 3)
        let actions = try db.audit(limit: 1000).map(\.action)
        #expect(actions.filter { $0 == "person.add" }.count == 3)
        #expect(actions.last == "import")
    }

    @Test func reimportingTheSameFileChangesNothing() throws {
        _ = try run(Self.base)
        let generation = try db.rosterGeneration()
        let report = try run(Self.base)
        #expect(report.unchanged == 3 && report.added.isEmpty && report.updated.isEmpty)
        #expect(try db.rosterGeneration() == generation + 1)  // the import itself is recorded once
    }

    @Test func everyBadRowIsListedAndNothingChanges() throws {
        _ = try run(Self.base)
        let before = try db.people().map(\.id)
        let audit = try db.audit(limit: 10_000).count
        let bad = Self.header + """
            B01-U1-0301,,,,,P4,新人,owner,,,,2001,,,
            B09-U1-0101,,,,,P5,,owner,,,,,,,
            B01-U1-0301,,,,,P6,,landlord,,2026-13-01,,,,,
            B01-U1-0301,,,,,P7,,owner,,,,1001,,,
            B01-U1-0301,,,,,P8,,owner,,,,,京A1,,
            B01-U1-0301,,,,,P9,,owner,,,,,,nobody,
            B01-U1-0301,,,,,P4,,owner,,,,,,,
            B01-U1-0301,,,,,P10,,owner,,,,2001,,,
            B01-U1-0301,,,,,P11,,,,,,,,,

            """
        let found = problems(bad)
        #expect(found == [
            "roster.csv:3: building: house \"B09-U1-0101\" is new, so its building is required",
            "roster.csv:4: role: \"landlord\" is not a role (owner, family, tenant, staff, visitor)",
            "roster.csv:4: valid_from: \"2026-13-01\" is not a date (YYYY-MM-DD) or a date-time with offset (2026-12-31T18:00:00+08:00)",
            "roster.csv:5: cards: card 1001 belongs to person P1, who is not in this file (remove it from them first, or use --replace)",
            "roster.csv:6: plates: \"京A1\" is not a licence plate: expected 5 characters after the letter (6 for new-energy plates), found 1",
            "roster.csv:7: groups: no group \"nobody\" (create it with `accessctl group add`)",
            "roster.csv:8: person_id: \"P4\" is already on line 2",
            "roster.csv:9: cards: card 2001 is also listed on line 2",
            "roster.csv:10: role: is required for a new person",
        ])
        #expect(try db.people().map(\.id) == before)
        #expect(try db.audit(limit: 10_000).count == audit)
        #expect(try db.house("B09-U1-0101") == nil)
    }

    @Test func headerAndFramingErrorsAreReported() {
        #expect(problems("house_id,person_id,shoe_size\n1,2,3\n") == [
            "roster.csv:1: header: unknown column \"shoe_size\" (known: house_id, building, unit, floor, room, person_id, name, role, phone, valid_from, valid_until, cards, plates, groups, status, parking_spaces)",
        ])
        #expect(problems("") == ["roster.csv:1: header: the file is empty (expected a header row)"])
        #expect(problems("house_id,person_id,name\nH,P,\"unclosed\n") == ["roster.csv:2: row: a quoted field is never closed"])
        // A header that is not UTF-8 (found by ImportFuzzTests): a problem of the file, not a crash of the import.
        var reader = CSVReader(bytes: Array("house_id,person_id,name".utf8) + [0xFF] + Array("\nH,P,N\n".utf8))
        let error = #expect(throws: ImportError.self) {
            try db.importRoster(&reader, options: ImportOptions(fileName: "roster.csv", zone: Fixtures.shanghai, operator: "ops"))
        }
        #expect(error?.problems == ["roster.csv:1: header: the line is not valid UTF-8"])
    }

    @Test func cardsMoveBetweenPeopleInOneFile() throws {
        _ = try run(Self.base)
        let swap = Self.header + """
            B01-U1-0301,,,,,P1,,,,,,1003,,,
            B01-U1-0301,,,,,P2,,,,,,1001;1002,,,

            """
        let report = try run(swap)
        #expect(report.updated == ["P1", "P2"])
        #expect(try db.credential(kind: .card, value: "1001")?.owner == .person("P2"))
        #expect(try db.credential(kind: .card, value: "1003")?.owner == .person("P1"))
        #expect(try db.credential(kind: .plate, value: "京A11111") == nil)  // plates column present and empty: cleared
    }

    @Test func absentColumnsKeepValuesAndEmptyCellsClearThem() throws {
        _ = try run(Self.base)
        _ = try run("person_id,house_id,valid_until,groups\nP3,B02-U1-0101,,\n")
        let p3 = try #require(try db.person("P3"))
        #expect(p3.validUntil == nil)
        #expect(p3.groups.isEmpty)
        #expect(p3.validFrom == Fixtures.at("2026-01-01T00:00"))  // column absent
        #expect(p3.name == "王强")
        #expect(try db.credentials(person: "P3").map(\.value) == ["1004"])
    }

    @Test func statusIsNotResetByAFileWithoutTheColumn() throws {
        _ = try run(Self.base)
        try db.editPerson("P2", operator: "ops") { $0.status = .blacklisted }
        _ = try run("person_id,house_id,name\nP2,B01-U1-0301,李娜\n")
        #expect(try db.person("P2")?.status == .blacklisted)
    }

    @Test func dryRunReportsAndChangesNothing() throws {
        _ = try run(Self.base)
        let audit = try db.audit(limit: 10_000).count
        let report = try run(Self.header + "B03-U1-0101,B03,1,1,0101,P9,新,owner,,,,,,,\n", dryRun: true, replace: true)
        #expect(report.dryRun)
        #expect(report.added == ["P9"])
        #expect(report.removed == ["P1", "P2", "P3"])
        #expect(try db.people().map(\.id) == ["P1", "P2", "P3"])
        #expect(try db.house("B03-U1-0101") == nil)
        #expect(try db.audit(limit: 10_000).count == audit)
    }

    @Test func replaceRemovesTheAbsentAndFreesTheirCards() throws {
        _ = try run(Self.base)
        let report = try run(Self.header + "B01-U1-0301,,,,,P9,新,owner,,,,1001,,,\n", replace: true)
        #expect(report.removed == ["P1", "P2", "P3"])
        #expect(try db.people().map(\.id) == ["P9"])
        #expect(try db.credential(kind: .card, value: "1001")?.owner == .person("P9"))
        #expect(try db.credential(kind: .card, value: "1002") == nil)
    }

    @Test func exportRoundTrips() throws {
        _ = try run(Self.base)
        var text = ""
        let count = try db.exportRoster(zone: Fixtures.shanghai) { text += $0 }
        #expect(count == 3)
        #expect(text.contains("B02-U1-0101,B02,1,1,0101,P3,王强,tenant,,2026-01-01,2026-06-30,1004,,lanes,active,\n"))
        let other = try AccessDatabase(path: dir.file("copy.db"))
        try other.saveGroup(AccessGroup(name: "lanes", portals: []), isNew: true, operator: "t")
        var reader = CSVReader(string: text)
        let report = try other.importRoster(&reader, options: ImportOptions(fileName: "x", zone: Fixtures.shanghai, operator: "t"))
        #expect(report.added.count == 3)
        for id in ["P1", "P2", "P3"] {
            #expect(try other.person(id) == (try db.person(id)))
            #expect(try other.credentials(person: id) == (try db.credentials(person: id)))
        }
    }
}
