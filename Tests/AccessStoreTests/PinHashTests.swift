import AccessCore
// @testable: a schema-8 file (PINs as typed) is made through the store's raw connection.
@testable import AccessStore
import AccessTestSupport
import Glibc
import Testing

/// PINs at rest: stored as keyed hashes, migrated from the digits once, never found without the key.
@Suite("PINs stored as keyed hashes")
struct PinHashTests {
    static let rules = Fixtures.rules()

    /// Every byte of the database file and its WAL, as text (for looking for the digits).
    static func rawText(_ path: String) -> String {
        [path, path + "-wal"].compactMap { readTextFile($0) }.joined()
    }

    /// A database as schema 8 left it: PINs stored as typed (one a duress PIN), no hashing trigger.
    static func schema8Database(_ path: String, pins: [(String, Bool)]) throws {
        let db = try AccessDatabase(path: path, pinKey: Fixtures.pinKey)
        try db.syncPortals(rules.portals)
        try db.addHouse(House(id: "H1", building: "B01"), operator: "t")
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "t")
        try db.addCredential(Credential(kind: .card, value: "1001", owner: .person("P1")), operator: "t")
        try db.connection.execute("DROP TRIGGER credentials_pin_hashed_insert; DROP TRIGGER credentials_pin_hashed_update")
        for (pin, duress) in pins {
            try db.connection.run("INSERT INTO credentials (kind, value, person_id, duress) VALUES ('pin', ?, 'P1', ?)",
                                  [.text(pin), .int(duress ? 1 : 0)])
        }
        // What came after schema 8 goes too (parking, v10), so the first open runs it again.
        try db.connection.execute("ALTER TABLE houses DROP COLUMN parking_spaces; DROP TABLE parking; PRAGMA user_version = 8")
    }

    static func reason(_ policy: AccessPolicy, _ pin: String) throws -> (Reason, Bool) {
        let d = try policy.decide(DecisionRequest(portal: "gym", credential: .pin(pin), at: Fixtures.at("2026-11-23T10:00")))
        return (d.reason, d.duress)
    }

    @Test func aSchema8DatabaseHasItsPinsHashedAtTheFirstOpenWithTheKeyInOneAuditedStep() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("access.db")
        try Self.schema8Database(path, pins: [("48291375", false), ("97531086", true)])
        #expect(Self.rawText(path).contains("48291375"), "the detector: the digits are in the schema-8 file")

        // Without the key the file is left as it was, with an error saying what to do.
        #expect(throws: StoreError.pinKeyNeeded(path: path, pins: 2)) { try AccessDatabase(path: path) }
        #expect(try SQLiteConnection(path: path).scalarInt("PRAGMA user_version") == 8)

        do {
            let db = try AccessDatabase(path: path, pinKey: Fixtures.pinKey)
            #expect(try db.connection.scalarInt("PRAGMA user_version") == Int64(AccessDatabase.schemaVersion))
            let stored = try db.credentials(kind: .pin).map(\.value)
            #expect(Set(stored) == [Fixtures.pin("48291375"), Fixtures.pin("97531086")])
            #expect(try db.credentials(kind: .pin).filter(\.duress).map(\.value) == [Fixtures.pin("97531086")], "duress is kept")
            let audit = try db.audit(limit: 1000).filter { $0.action == "pin.hash" }
            #expect(audit.count == 1 && audit.first?.target == "2 PIN(s)")
            #expect(try db.verifyAuditChain().isIntact)
            let policy = try db.loadPolicy(rules: Self.rules)
            #expect(try Self.reason(policy, "48291375") == (.granted, false))
            #expect(try Self.reason(policy, "97531086") == (.granted, true))
            // The database refuses digits, whoever writes them.
            #expect(throws: (any Error).self) {
                try db.connection.run("INSERT INTO credentials (kind, value, person_id) VALUES ('pin', '11223344', 'P1')")
            }
        }
        let raw = Self.rawText(path)
        #expect(!raw.contains("48291375") && !raw.contains("97531086"), "no PIN left anywhere in the file or its WAL")
        // Opened again: nothing is hashed twice.
        let again = try AccessDatabase(path: path, pinKey: Fixtures.pinKey)
        #expect(try again.audit(limit: 1000).filter { $0.action == "pin.hash" }.count == 1)
        #expect(try Self.reason(try again.loadPolicy(rules: Self.rules), "48291375") == (.granted, false))
    }

    @Test func aCopiedDatabaseOpenedWithAnotherKeyOrNoneFindsNoPin() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("access.db")
        let db = try AccessDatabase(path: path, pinKey: Fixtures.pinKey)
        try db.syncPortals(Self.rules.portals)
        try db.addHouse(House(id: "H1", building: "B01"), operator: "t")
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "t")
        try db.addCredential(Credential(kind: .pin, value: "48291375", owner: .person("P1")), operator: "t")
        #expect(try Self.reason(try db.loadPolicy(rules: Self.rules), "48291375").0 == .granted, "the detector")

        let other = try #require(PinKey(bytes: Array(repeating: 0xA5, count: 32)))
        let stolen = try AccessDatabase(path: path, pinKey: other)
        #expect(try Self.reason(try stolen.loadPolicy(rules: Self.rules), "48291375").0 == .unknownCredential)
        let keyless = try AccessDatabase(path: path)
        #expect(try Self.reason(try keyless.loadPolicy(rules: Self.rules), "48291375").0 == .unknownCredential)
        #expect(throws: RosterError.self) {
            try keyless.addCredential(Credential(kind: .pin, value: "11223344", owner: .person("P1")), operator: "t")
        }
    }

    @Test func aPinInUseIsStillRefusedAndRemovedByItsDigits() throws {
        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("access.db"), pinKey: Fixtures.pinKey)
        try db.addHouse(House(id: "H1", building: "B01"), operator: "t")
        for id in ["P1", "P2"] { try db.addPerson(Person(id: id, houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "t") }
        try db.addCredential(Credential(kind: .pin, value: "482913", owner: .person("P1")), operator: "t")
        let error = #expect(throws: RosterError.self) {
            try db.addCredential(Credential(kind: .pin, value: "482913", owner: .person("P2")), operator: "t")
        }
        #expect("\(error!)".contains("already in use") && !"\(error!)".contains("482913"))
        try db.setCredentialStatus(kind: .pin, value: "482913", status: .revoked, operator: "t")
        #expect(try db.credentials(kind: .pin).first?.status == .revoked)
        try db.removeCredential(kind: .pin, value: "482913", operator: "t")
        #expect(try db.credentials(kind: .pin).isEmpty)
        #expect(try db.audit(limit: 100).allSatisfy { !"\($0)".contains("482913") }, "the audit log never names the digits")
    }
}
