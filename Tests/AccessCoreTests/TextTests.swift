import AccessCore
import AccessTestSupport
import Testing

@Suite("Credential values")
struct CredentialValueTests {
    @Test(arguments: [
        ("京A12345", "京A12345"), ("京a 12345", "京A12345"), ("京A·12345", "京A12345"), (" 粤B-D12345 ", "粤BD12345"),
        ("沪AD12345", "沪AD12345"), ("京A1234挂", "京A1234挂"), ("粤Z1234港", "粤Z1234港"),
    ])
    func platesNormalise(_ input: String, _ expected: String) throws {
        #expect(try CredentialValue.plate(input) == expected)
    }

    @Test(arguments: ["A12345", "京112345", "京A1234", "京A1234567", "京A12$45", "", "京Aé2345"])
    func badPlatesAreRefused(_ input: String) {
        #expect(throws: CredentialValueError.self) { try CredentialValue.plate(input) }
    }

    @Test func cardsAndPins() throws {
        #expect(try CredentialValue.card(" 10023456 ") == 10_023_456)
        #expect(throws: CredentialValueError.badCard("0")) { try CredentialValue.card("0") }
        #expect(throws: CredentialValueError.badCard("12a")) { try CredentialValue.card("12a") }
        #expect(throws: CredentialValueError.badCard("99999999999999999999")) { try CredentialValue.card("99999999999999999999") }
        #expect(try CredentialValue.pin("0042") == "0042")
        #expect(throws: CredentialValueError.badPIN("123")) { try CredentialValue.pin("123") }
    }
}

@Suite("CSV reader")
struct CSVReaderTests {
    func records(_ text: String) throws -> [CSVRecord] {
        var reader = CSVReader(string: text)
        var out: [CSVRecord] = []
        while let r = try reader.next() { out.append(r) }
        return out
    }

    @Test func quotesCommasNewlinesAndLineNumbers() throws {
        let r = try records("\u{FEFF}a,b,c\r\n1,\"x, \"\"y\"\"\",3\n\n2,\"multi\nline\",4\n5,,\n")
        #expect(r.map(\.line) == [1, 2, 4, 6])
        #expect(r[0].fields == ["a", "b", "c"])
        #expect(r[1].fields == ["1", "x, \"y\"", "3"])
        #expect(r[2].fields == ["2", "multi\nline", "4"])
        #expect(r[3].fields == ["5", "", ""])
    }

    @Test func chunkedSourceGivesTheSameRecords() throws {
        let text = (0..<500).map { "row\($0),\"q,\($0)\",\($0 * 7)" }.joined(separator: "\n")
        var bytes = Array(text.utf8)[...]
        var reader = CSVReader { buffer in
            let n = min(7, bytes.count)
            buffer = Array(bytes.prefix(n))
            bytes = bytes.dropFirst(n)
            return n
        }
        var chunked: [CSVRecord] = []
        while let r = try reader.next() { chunked.append(r) }
        #expect(chunked == (try records(text)))
        #expect(chunked.count == 500)
    }

    @Test func malformedInputNamesTheLine() {
        #expect(throws: CSVError.unterminatedQuote(line: 2)) { try records("a\n\"open\nmore") }
        #expect(throws: CSVError.textAfterQuote(line: 1)) { try records("\"a\"b,c") }
        var reader = CSVReader(bytes: [0x61, 0x0A, 0xFF, 0xFE, 0x0A])
        #expect(throws: CSVError.notUTF8(line: 2)) { _ = try reader.next(); _ = try reader.next() }
    }

    @Test func writerQuotesOnlyWhenNeeded() throws {
        let line = CSVWriter.line(["a", "b,c", "say \"hi\"", "张伟"])
        #expect(line == "a,\"b,c\",\"say \"\"hi\"\"\",张伟\n")
        #expect(try records(line).first?.fields == ["a", "b,c", "say \"hi\"", "张伟"])
    }
}

@Suite("Roster CSV rows")
struct RosterCSVTests {
    func schema(_ header: String) throws -> RosterCSVSchema {
        try RosterCSVSchema(header: CSVRecord(line: 1, fields: header.split(separator: ",", omittingEmptySubsequences: false).map(String.init)), zone: Fixtures.shanghai)
    }

    @Test func headerProblemsAreNamed() {
        #expect(throws: RosterIssue(line: 1, column: "header", problem: "unknown column \"colour\" (known: house_id, building, unit, floor, room, person_id, name, role, phone, valid_from, valid_until, cards, plates, groups, status, parking_spaces); required column \"person_id\" is missing")) {
            try schema("house_id,colour")
        }
        #expect(throws: RosterIssue.self) { try schema("house_id,person_id,name,name") }
    }

    @Test func validRowKeepsAbsentColumnsNil() throws {
        let s = try schema("person_id,house_id,role,valid_until,cards,plates")
        let row = try s.row(CSVRecord(line: 7, fields: ["P1", "B01-0101", "tenant", "2026-06-30", "1001;1002", "京a12345"])).get()
        #expect(row.line == 7)
        #expect(row.role == .tenant)
        #expect(row.cards == [1001, 1002])
        #expect(row.plates == ["京A12345"])
        #expect(row.validUntil == .some(Fixtures.at("2026-07-01T00:00")))
        #expect(row.validFrom == nil)
        #expect(row.groups == nil)
        #expect(row.name == nil)
    }

    @Test func everyProblemInARowIsReported() throws {
        let s = try schema("house_id,person_id,role,valid_from,valid_until,cards,plates,status")
        let result = s.row(CSVRecord(line: 9, fields: ["", "P 1", "landlord", "2026-13-01", "2026-01-01", "12x", "A123", "gone"]))
        guard case .failure(let issues) = result else { Issue.record("row should fail"); return }
        let columns = issues.issues.map(\.column)
        #expect(columns == ["house_id", "person_id", "role", "valid_from", "cards", "plates", "status"])
        #expect(issues.issues.allSatisfy { $0.line == 9 })
        #expect(issues.issues[3].described(file: "r.csv").hasPrefix("r.csv:9: valid_from: \"2026-13-01\" is not a date"))
    }

    @Test func fieldCountMismatch() throws {
        let s = try schema("house_id,person_id")
        guard case .failure(let issues) = s.row(CSVRecord(line: 3, fields: ["a"])) else { Issue.record("should fail"); return }
        #expect(issues.issues == [RosterIssue(line: 3, column: "row", problem: "has 1 fields, the header has 2")])
    }
}

@Suite("JSON")
struct JSONTests {
    @Test func rendersInOrderWithNullsAndEscapes() {
        let j: JSON = .object([("b", 1), ("a", .null), ("s", .string("张\"\n\u{1}")), ("l", [true, false])])
        #expect(j.rendered() == "{\"b\":1,\"a\":null,\"s\":\"张\\\"\\n\\u0001\",\"l\":[true,false]}")
    }

    @Test func parsesWhatItRenders() throws {
        let j: JSON = .object([("x", .array([.int(-3), .double(1.5), .string("é\\/")])), ("y", .object([])), ("z", .null)])
        #expect(JSON.parse(j.rendered()) == j)
        #expect(JSON.parse("{\"a\": \"\\ud83d\\ude00\"}")?["a"] == .string("😀"))
    }

    @Test(arguments: ["{", "[1,]", "{\"a\" 1}", "tru", "\"\\x\"", "1 2", String(repeating: "[", count: 100)])
    func rejectsMalformed(_ text: String) {
        #expect(JSON.parse(text) == nil)
    }
}
