import AccessCore
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// Mutated roster files into a real database: an import is applied whole or refused whole, and a
/// refusal names file, line and column for every problem. `ACCESS_FUZZ_SCALE` / `ACCESS_FUZZ_SEED`
/// scale and replay (AccessTestSupport/Fuzzing.swift).
@Suite("Fuzzing: roster import")
struct ImportFuzzTests {
    static let csv = ImportTests.base + """
        B02-U1-0102,B02,1,1,0102,P4,赵敏,owner,13900000000,2026-01-01,,2001,粤B D12345,,active
        B02-U1-0102,,,,,P5,"周,杰",tenant,,,2027-06-30T18:00:00+08:00,2002;2003,,lanes,suspended

        """

    /// The roster as text plus the audit trail's length: what "nothing changed" compares.
    static func state(_ db: AccessDatabase) throws -> (roster: String, audit: Int) {
        var text = ""
        _ = try db.exportRoster(zone: Fixtures.shanghai) { text += $0 }
        return (text, try db.audit(limit: 1_000_000).count)
    }

    @Test func mutatedRosterFilesApplyWholeOrNotAtAll() throws {
        var fuzz = FuzzRun("roster-import")
        let dir = TemporaryDirectory("import-fuzz")
        let db = try AccessDatabase(path: dir.file("fuzz.db"))
        try db.saveSite(Fixtures.rules())
        try db.saveGroup(AccessGroup(name: "lanes", portals: ["lane-in", "lane-out"]), isNew: true, operator: "setup")
        let seed = Array(Self.csv.utf8)
        var reader = CSVReader(bytes: seed)
        _ = try db.importRoster(&reader, options: ImportOptions(fileName: "roster.csv", zone: Fixtures.shanghai, operator: "setup"))
        let linePrefix = try Regex(#"^roster\.csv:[0-9]+: [a-z_]+: \S"#)
        var refused = 0
        var applied = 0
        for _ in 0..<fuzz.cases(400) {
            let bytes = fuzz.mutate(seed, maxEdits: 3)
            let replace = fuzz.chance(0.3)
            let before = try Self.state(db)
            var reader = CSVReader(bytes: bytes)
            do {
                _ = try db.importRoster(&reader, options: ImportOptions(fileName: "roster.csv", zone: Fixtures.shanghai,
                                                                        operator: "fuzz", replace: replace))
                applied += 1
                // Applied: a second import of the same file changes nothing more (whole, not half).
                let after = try Self.state(db)
                var again = CSVReader(bytes: bytes)
                _ = try db.importRoster(&again, options: ImportOptions(fileName: "roster.csv", zone: Fixtures.shanghai,
                                                                       operator: "fuzz", replace: replace))
                #expect(try Self.state(db).roster == after.roster, "\(fuzz)")
            } catch let error as ImportError {
                refused += 1
                #expect(!error.problems.isEmpty, "\(fuzz)")
                for problem in error.problems {
                    #expect(problem.firstMatch(of: linePrefix) != nil, "\(problem), \(fuzz)")
                }
                let after = try Self.state(db)
                #expect(after.roster == before.roster && after.audit == before.audit, "a refused import changed the roster, \(fuzz)")
            } catch {
                Issue.record("not an ImportError: \(error), \(fuzz)")
            }
            // Back to the seed roster for the next case (what an applied mutation changed).
            var restore = CSVReader(bytes: seed)
            _ = try db.importRoster(&restore, options: ImportOptions(fileName: "roster.csv", zone: Fixtures.shanghai,
                                                                     operator: "setup", replace: true))
        }
        #expect(refused > 0 && applied > 0, "both outcomes reached: \(refused) refused, \(applied) applied")
        try db.integrityCheck()
    }
}
