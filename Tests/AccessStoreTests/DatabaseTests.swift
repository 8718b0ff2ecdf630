import AccessCore
// @testable: these tests check the file itself (pragmas, foreign and damaged files) through raw
// connections, which the store keeps to itself.
@testable import AccessStore
import AccessTestSupport
import Glibc
import Testing

@Suite("Opening databases")
struct DatabaseOpeningTests {
    @Test func newDatabaseIsWALWithFullSyncAndForeignKeys() throws {
        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("nested/dir/access.db"))
        #expect(try db.connection.scalarText("PRAGMA journal_mode") == "wal")
        #expect(try db.connection.scalarInt("PRAGMA synchronous") == 2)
        #expect(try db.connection.scalarInt("PRAGMA foreign_keys") == 1)
        #expect(try db.connection.scalarInt("PRAGMA user_version") == Int64(AccessDatabase.schemaVersion))
        #expect(try db.passSecret().count == 32)
        try db.integrityCheck()
    }

    @Test func reopeningKeepsTheSecretAndData() throws {
        let dir = TemporaryDirectory()
        let secret: [UInt8]
        do {
            let db = try AccessDatabase(path: dir.file("a.db"))
            secret = try db.passSecret()
            try db.addHouse(House(id: "H1", building: "B01"), operator: "t")
        }
        let again = try AccessDatabase(path: dir.file("a.db"))
        #expect(try again.passSecret() == secret)
        #expect(try again.house("H1")?.building == "B01")
    }

    @Test func garbageFileIsRefusedAndLeftUntouched() throws {
        let dir = TemporaryDirectory()
        let text = String(repeating: "this is not a database\n", count: 300)
        let path = dir.write("junk.db", text)
        let error = #expect(throws: StoreError.self) { try AccessDatabase(path: path) }
        #expect(error?.description.contains("is not a CommunityAccess database or is damaged") == true)
        #expect(error?.description.contains("left untouched") == true)
        #expect(dir.read("junk.db") == text)
    }

    @Test func anotherProgramsDatabaseIsRefused() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("other.db")
        do {
            let c = try SQLiteConnection(path: path)
            try c.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1)")
        }
        #expect(throws: StoreError.foreignDatabase(path: path)) { try AccessDatabase(path: path) }
        let c = try SQLiteConnection(path: path)
        #expect(try c.scalarInt("SELECT count(*) FROM t") == 1)
        #expect(try c.scalarInt("PRAGMA user_version") == 0)
    }

    @Test func newerSchemaIsRefusedWithoutChange() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("future.db")
        do { _ = try AccessDatabase(path: path) }
        do {
            let c = try SQLiteConnection(path: path)
            try c.execute("PRAGMA user_version = 99")
        }
        #expect(throws: StoreError.newerSchema(path: path, found: 99, supported: AccessDatabase.schemaVersion)) {
            try AccessDatabase(path: path)
        }
        #expect(try SQLiteConnection(path: path).scalarInt("PRAGMA user_version") == 99)
    }

    @Test func corruptedPagesAreFoundByTheIntegrityCheck() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("c.db")
        do {
            let db = try AccessDatabase(path: path)
            for i in 0..<2000 { try db.addHouse(House(id: "H\(i)", building: "B\(i % 7)"), operator: "t") }
            try db.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        // Overwrite a page in the middle of the file with garbage.
        let fd = open(path, O_WRONLY)
        #expect(fd >= 0)
        let garbage = [UInt8](repeating: 0xA5, count: 4096)
        #expect(pwrite(fd, garbage, garbage.count, 4096 * 20) == 4096)
        close(fd)
        // Either opening or the full check must notice; nothing may pass silently.
        let detected: Bool
        do {
            let reopened = try AccessDatabase(path: path)
            try reopened.integrityCheck()
            detected = false
        } catch {
            detected = error is StoreError
        }
        #expect(detected)
    }
}

@Suite("Roster changes")
struct RosterStoreTests {
    let dir = TemporaryDirectory()
    let db: AccessDatabase

    init() throws {
        db = try AccessDatabase(path: dir.file("r.db"))
        try db.saveSite(Fixtures.rules())
        try db.addHouse(House(id: "H1", building: "B01", unit: "1", floor: "3", room: "0301"), operator: "alice")
    }

    @Test func everyChangeIsAuditedWithBeforeAndAfter() throws {
        try db.addPerson(Person(id: "P1", name: "张伟", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "alice")
        try db.editPerson("P1", operator: "bob") { $0.name = "张伟伟" }
        let entries = try db.audit(target: "P1")
        #expect(entries.map(\.action) == ["person.add", "person.edit"])
        #expect(entries.map(\.operator) == ["alice", "bob"])
        #expect(entries[1].before?.contains("\"张伟\"") == true)
        #expect(entries[1].after?.contains("\"张伟伟\"") == true)
        #expect(entries[0].before == nil)
    }

    @Test func refusedChangesLeaveNoTrace() throws {
        let generation = try db.rosterGeneration()
        let audited = try db.audit().count
        #expect(throws: RosterError.notFound(kind: "house", id: "H9")) {
            try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H9", role: .owner)]), operator: "a")
        }
        #expect(throws: RosterError.notFound(kind: "group", id: "ghosts")) {
            try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)], groups: ["ghosts"]), operator: "a")
        }
        #expect(throws: RosterError.self) {
            try db.addPerson(Person(id: "P 1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "a")
        }
        #expect(try db.person("P1") == nil)
        #expect(try db.rosterGeneration() == generation)
        #expect(try db.audit().count == audited)
    }

    @Test func credentialsBelongToOneOwner() throws {
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "a")
        try db.addPerson(Person(id: "P2", houses: [HouseBinding(houseID: "H1", role: .family)]), operator: "a")
        try db.addCredential(Credential(kind: .card, value: "00123", owner: .person("P1")), operator: "a")
        #expect(try db.credential(kind: .card, value: "123")?.owner == .person("P1"))
        #expect(throws: RosterError.owned(kind: "card", value: "123", owner: "person P1")) {
            try db.addCredential(Credential(kind: .card, value: "123", owner: .person("P2")), operator: "a")
        }
        try db.addCredential(Credential(kind: .plate, value: "京a 12345", owner: .house("H1")), operator: "a")
        #expect(try db.credential(kind: .plate, value: "京A12345")?.owner == .house("H1"))
        #expect(throws: RosterError.self) {
            try db.addCredential(Credential(kind: .plate, value: "12345", owner: .house("H1")), operator: "a")
        }
    }

    @Test func revokingKeepsThePersonAndBlacklistingUnknownValuesRecordsThem() throws {
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "a")
        try db.addCredential(Credential(kind: .card, value: "555", owner: .person("P1")), operator: "a")
        try db.setCredentialStatus(kind: .card, value: "555", status: .lost, operator: "a")
        #expect(try db.credential(kind: .card, value: "555")?.status == .lost)
        #expect(try db.person("P1") != nil)
        try db.setCredentialStatus(kind: .plate, value: "粤B99999", status: .blacklisted, note: "stolen car", operator: "a")
        let plate = try #require(try db.credential(kind: .plate, value: "粤B99999"))
        #expect(plate.owner == .none && plate.status == .blacklisted && plate.note == "stolen car")
        #expect(throws: RosterError.notFound(kind: "card", id: "777")) {
            try db.setCredentialStatus(kind: .card, value: "777", status: .revoked, operator: "a")
        }
    }

    @Test func removingAPersonRemovesTheirCredentialsButNotEvents() throws {
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "a")
        try db.addCredential(Credential(kind: .card, value: "555", owner: .person("P1")), operator: "a")
        try db.appendEvents([AccessEvent(timeMicros: 1_795_363_200_000_000, utcOffset: 28_800, type: .access, personID: "P1", granted: true, reason: .granted)])
        try db.removePerson("P1", operator: "a")
        #expect(try db.credential(kind: .card, value: "555") == nil)
        #expect(try db.events(EventQuery()).count == 1)
        #expect(throws: RosterError.inUse(kind: "house", id: "H1", by: "1 person(s); remove or move them first")) {
            try db.addPerson(Person(id: "P2", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "a")
            try db.removeHouse("H1", operator: "a")
        }
    }

    @Test func schedulesAndGroupsValidateReferences() throws {
        var s = try Schedule(name: "workdays", specs: ["mon-fri 07:00-19:00"])
        s.holidays = [CivilDate(year: 2026, month: 10, day: 1)!]
        s.exceptions = [CivilDate(year: 2026, month: 12, day: 24)!: [try MinuteRange.parse("07:00-12:00")]]
        try db.saveSchedule(s, isNew: true, operator: "a")
        #expect(try db.schedule("workdays") == s)
        #expect(throws: RosterError.notFound(kind: "portal", id: "moon-gate")) {
            try db.saveGroup(AccessGroup(name: "g", portals: ["moon-gate"]), isNew: true, operator: "a")
        }
        try db.saveGroup(AccessGroup(name: "g", portals: ["gate-in", "b01-door"], schedule: "workdays"), isNew: true, operator: "a")
        #expect(throws: RosterError.inUse(kind: "schedule", id: "workdays", by: "group(s) g")) {
            try db.removeSchedule("workdays", operator: "a")
        }
        #expect(try db.group("g")?.portals == ["b01-door", "gate-in"])
    }

    @Test func dataVersionMovesWhenAnotherConnectionCommits() throws {
        let watcher = try AccessDatabase(path: dir.file("r.db"))
        let version = try watcher.dataVersion()
        let generation = try watcher.rosterGeneration()
        try db.addHouse(House(id: "H2", building: "B02"), operator: "a")
        #expect(try watcher.dataVersion() != version)
        #expect(try watcher.rosterGeneration() == generation + 1)
    }

    @Test func indexLoadedFromTheStoreDecidesLikeTheRoster() throws {
        try db.saveGroup(AccessGroup(name: "lanes", portals: ["lane-in"]), isNew: true, operator: "a")
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "a")
        try db.addPerson(Person(id: "S1", houses: [HouseBinding(houseID: "H1", role: .staff)], groups: ["lanes"]), operator: "a")
        try db.addCredential(Credential(kind: .card, value: "1", owner: .person("P1")), operator: "a")
        try db.addCredential(Credential(kind: .card, value: "2", owner: .person("S1")), operator: "a")
        try db.addCredential(Credential(kind: .plate, value: "京A11111", owner: .house("H1")), operator: "a")
        let pass = try db.issuePass(houseID: "H1", visitorName: "访客", validFrom: Fixtures.at("2026-11-23T08:00"),
                                    validUntil: Fixtures.at("2026-11-23T12:00"), maxUses: 1, operator: "a")
        let policy = try db.loadPolicy(rules: Fixtures.rules())
        let at = Fixtures.at("2026-11-23T10:00")
        func reason(_ portal: String, _ c: PresentedCredential) throws -> Reason {
            try policy.decide(DecisionRequest(portal: portal, credential: c, at: at)).reason
        }
        #expect(try reason("b01-door", .card(1)) == .granted)
        #expect(try reason("b01-door", .card(2)) == .noRight)
        #expect(try reason("lane-in", .card(2)) == .granted)
        #expect(try reason("lane-in", .plate("京A11111")) == .granted)
        let code = VisitorPassCode(secret: try db.passSecret()).encode(passID: pass.id, expires: pass.validUntil)
        #expect(try reason("gate-in", .qr(code)) == .granted)
        try db.recordPassUse(pass.id)
        #expect(try db.loadPolicy(rules: Fixtures.rules()).decide(DecisionRequest(portal: "gate-in", credential: .qr(code), at: at)).reason == .usesExhausted)
    }

    @Test func portalModesAndAntiPassbackPersist() throws {
        try db.setPortalMode("b01-door", .alwaysClosed, operator: "guard")
        #expect(try db.portalMode("b01-door") == .alwaysClosed)
        #expect(throws: RosterError.notFound(kind: "portal", id: "nope")) { try db.setPortalMode("nope", .normal, operator: "g") }
        try db.recordPassage(subject: "person:P1", area: "community", at: 100)
        let reopened = try AccessDatabase(path: dir.file("r.db"))
        #expect(try reopened.antiPassbackLedger().locations["person:P1"]?.area == "community")
        #expect(try reopened.loadSite()?.portals.map(\.id) == Fixtures.portals.map(\.id))
    }
}

@Suite("Event log")
struct EventLogTests {
    @Test func serialsAreMonotonicAndNeverReused() throws {
        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("e.db"))
        let e = AccessEvent(timeMicros: 1_795_363_200_000_000, utcOffset: 28_800, type: .access, portal: "gate-in", direction: .in,
                            credentialKind: .card, credential: "1001", personID: "P1", houseID: "H1", role: .owner, granted: true,
                            reason: .granted, detail: [("alarm", false)])
        let first = try db.appendEvents([e, e, e])
        #expect(first.map(\.serial) == [1, 2, 3])
        try db.connection.execute("DELETE FROM events WHERE serial = 3")
        let next = try db.appendEvents([e])
        #expect(next[0].serial == 4)
        #expect(try db.lastEventSerial() == 4)
        let page = try db.events(EventQuery(after: 1, limit: 10))
        #expect(page.map(\.serial) == [2, 4])
        let json = page[0].json(controllerID: "xfl-north-1")
        #expect(json["id"] == .string("xfl-north-1:2"))
        #expect(json["time"] == .string("2026-11-23T00:00:00.000000+08:00"))
        #expect(json["house_id"] == .string("H1"))
        #expect(json["alarm"] == .bool(false))
        var byHouse = EventQuery()
        byHouse.houseID = "H2"
        #expect(try db.events(byHouse).isEmpty)
    }
}

@Suite("Roster watcher")
struct RosterWatcherTests {
    @Test func reloadsOnRosterChangesOnly() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("w.db")
        let writer = try AccessDatabase(path: path)
        try writer.saveSite(Fixtures.rules())
        try writer.addHouse(House(id: "H1", building: "B01"), operator: "t")
        try writer.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "t")
        let watcher = try RosterWatcher(path: path, rules: Fixtures.rules())
        let request = DecisionRequest(portal: "b01-door", credential: .card(42), at: Fixtures.at("2026-11-23T10:00"))
        #expect(try watcher.load().decide(request).reason == .unknownCredential)
        #expect(try watcher.refresh() == nil)

        try writer.appendEvents([AccessEvent(timeMicros: 1, utcOffset: 0, type: .system)])
        #expect(try watcher.refresh() == nil)  // an event is not a roster change

        try writer.addCredential(Credential(kind: .card, value: "42", owner: .person("P1")), operator: "t")
        #expect(try watcher.refresh()?.decide(request).reason == .granted)

        try writer.setCredentialStatus(kind: .card, value: "42", status: .revoked, operator: "t")
        #expect(try watcher.refresh()?.decide(request).reason == .revoked)
    }

    /// A change set applied in place is not loaded again; a change committed between the last
    /// load and the change set is.
    @Test func anAcknowledgedChangeSetIsNotReloaded() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("w.db")
        let writer = try AccessDatabase(path: path)
        try writer.saveSite(Fixtures.rules())
        let watcher = try RosterWatcher(path: path, rules: Fixtures.rules())
        _ = try watcher.load()
        let origin = ChangeSet.Origin(user: "u", host: "h", command: "c")
        let first = try #require(try writer.apply(ChangeSet(community: "x", id: "1", origin: origin, created: 0, changes: [.putHouse(House(id: "H1", building: "B01"))]), sequence: 1))
        watcher.acknowledge(generation: first.generation)
        #expect(try watcher.refresh() == nil)

        try writer.addHouse(House(id: "H2", building: "B01"), operator: "t")  // not applied in place
        let second = try #require(try writer.apply(ChangeSet(community: "x", id: "2", origin: origin, created: 0, changes: [.putHouse(House(id: "H3", building: "B01"))]), sequence: 2))
        watcher.acknowledge(generation: second.generation)
        #expect(try watcher.refresh() != nil)
    }
}
