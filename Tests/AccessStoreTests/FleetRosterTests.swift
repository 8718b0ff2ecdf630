import AccessCore
import AccessStore
import AccessTestSupport
import Testing

/// Change sets end to end without a network: commands captured on one database, applied to a
/// replica, the replica's index changed record by record. The incrementally changed index must
/// decide exactly as a full rebuild of the replica, and the digests of both databases agree.
@Suite("Fleet roster: change sets, applying, the incremental index")
struct FleetRosterTests {
    let rules = Fixtures.rules()
    let origin = ChangeSet.Origin(user: "op", host: "office", command: "test")

    func changeSet(_ changes: [RosterChange], id: String) -> ChangeSet {
        ChangeSet(community: "xfl", id: id, origin: origin, created: 1_790_000_000, changes: changes)
    }

    @Test func captureReturnsTheChangesAndLeavesTheDatabaseAsItWas() throws {
        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("office.db"))
        try db.addHouse(House(id: "H1", building: "B01"), operator: "t")
        let (_, changes) = try db.captureChanges {
            try db.addPerson(Person(id: "P1", name: "Li", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "t")
            try db.addCredential(Credential(kind: .card, value: "1234567", owner: .person("P1")), operator: "t")
        }
        #expect(changes.map(\.key) == [.person("P1"), .credential(.card, "1234567")])
        #expect(try db.person("P1") == nil)
        #expect(try db.credential(kind: .card, value: "1234567") == nil)

        // Removing a person captures the credentials the cascade takes with them.
        _ = try db.apply(changeSet(changes, id: "a"), sequence: 1)
        let (_, removal) = try db.captureChanges { try db.removePerson("P1", operator: "t") }
        #expect(Set(removal) == [.delete(.person("P1")), .delete(.credential(.card, "1234567"))])
    }

    @Test func aRedeliveredChangeSetIsIgnored() throws {
        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("c.db"))
        let set = changeSet([.putHouse(House(id: "H1", building: "B01"))], id: "a")
        #expect(try db.apply(set, sequence: 7) != nil)
        #expect(try db.apply(set, sequence: 7) == nil)
        #expect(try db.apply(set, sequence: 3) == nil)
        #expect(try db.fleetSequence() == 7)
    }

    @Test func aChangeSetThatDoesNotFitChangesNothing() throws {
        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("c.db"))
        _ = try db.apply(changeSet([.putHouse(House(id: "H1", building: "B01"))], id: "a"), sequence: 1)
        let digest = try db.fleetDigest()
        let bad = changeSet([
            .putPerson(Person(id: "P1", name: "Li", houses: [HouseBinding(houseID: "H1", role: .owner)])),
            .putPerson(Person(id: "P2", name: "Wang", houses: [HouseBinding(houseID: "NOPE", role: .owner)])),
        ], id: "b")
        let error = #expect(throws: RosterError.self) { try db.apply(bad, sequence: 2) }
        #expect("\(error!)".contains("NOPE"))
        #expect(try db.person("P1") == nil)
        #expect(try db.fleetSequence() == 1)
        #expect(try db.fleetDigest() == digest)
    }

    @Test func changeSetsSurviveTheirJSON() throws {
        let pass = VisitorPass(id: "VABC", houseID: "H1", visitorName: "v", plate: "沪A12345", validFrom: 1, validUntil: 9, maxUses: 2)
        var schedule = try Schedule(name: "day", specs: ["mon-fri 07:00-19:00"])
        schedule.holidays = [CivilDate(year: 2026, month: 10, day: 1)!]
        let set = changeSet([
            .putSchedule(schedule), .putGroup(AccessGroup(name: "g", portals: ["gym"], schedule: "day")),
            .putHouse(House(id: "H1", building: "B01", unit: "2", floor: "15", room: "1502")),
            .putPerson(Person(id: "P1", name: "李", phone: "138", status: .suspended, validFrom: nil, validUntil: 99,
                              houses: [HouseBinding(houseID: "H1", role: .tenant)], groups: ["g"])),
            .putCredential(Credential(kind: .pin, value: Fixtures.pin("123456"), owner: .house("H1"), status: .lost, note: "n", duress: true)),
            .putVisitorPass(pass), .delete(.credential(.plate, "沪B00001")), .delete(.visitorPass("VOLD")),
        ], id: "c")
        let text = set.json().rendered()
        #expect(try ChangeSet.parse(Array(text.utf8)) == set)
    }

    /// A house's parking spaces travel in its record; a record from before they existed (no key)
    /// is a house without a limit, and its image is unchanged when none is set.
    @Test func aHousesParkingSpacesTravelInChangeSetsAndReachTheReplicasIndex() throws {
        let limited = changeSet([.putHouse(House(id: "H1", building: "B01", parkingSpaces: 1))], id: "p")
        let text = limited.json().rendered()
        #expect(text.contains(#""parking_spaces":1"#))
        #expect(try ChangeSet.parse(Array(text.utf8)) == limited)
        let plain = changeSet([.putHouse(House(id: "H2", building: "B01"))], id: "q").json().rendered()
        #expect(!plain.contains("parking_spaces"))
        #expect(try ChangeSet.parse(Array(plain.utf8)).changes == [.putHouse(House(id: "H2", building: "B01"))])
        let bad = text.replacingOccurrences(of: #""parking_spaces":1"#, with: #""parking_spaces":-2"#)
        let error = #expect(throws: ChangeSetError.self) { try ChangeSet.parse(Array(bad.utf8)) }
        #expect("\(error!)".contains("parking_spaces"))

        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("c.db"))
        _ = try db.apply(limited, sequence: 1)
        #expect(try db.house("H1")?.parkingSpaces == 1)
        var index = try db.loadRosterIndex(rules: rules)
        #expect(index.parkingSpaces(house: "H1") == 1)
        let inPlace = index.apply([.putHouse(House(id: "H1", building: "B01", parkingSpaces: 3))], rules: rules)
        #expect(inPlace)
        #expect(index.parkingSpaces(house: "H1") == 3, "applied in place, as a controller does")
        _ = try db.apply(changeSet([.putHouse(House(id: "H1", building: "B01"))], id: "r"), sequence: 2)
        #expect(try db.house("H1")?.parkingSpaces == nil, "a put replaces the whole record: the limit is gone")
    }

    /// The published example (API/examples/changeset.json, also checked against the schema by
    /// Scripts/test.sh) is what this build reads.
    @Test func thePublishedExampleIsReadAndApplies() throws {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let text = try #require(readTextFile(root + "/API/examples/changeset.json"))
        let set = try ChangeSet.parse(Array(text.utf8))
        #expect(set.changes.count == 5)
        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("c.db"))
        let applied = try #require(try db.apply(set, sequence: 1))
        #expect(applied.delta.contains(.delete(.credential(.card, "7654321"))))
        #expect(try db.credential(kind: .card, value: "1234567")?.owner == .person("P0001"))
    }

    @Test(arguments: [
        (#"{"version": 3, "community": "x"}"#, "version: change set format 3 is not supported"),
        (#"{"version": 2, "community": "x", "id": "a", "origin": {"user": "u", "host": "h", "command": "c"}, "created": 1, "changes": [{"op": "put", "kind": "credential", "value": {"kind": "pin", "value": "123456", "person_id": "P1", "house_id": null, "status": "active", "note": ""}}]}"#, "changes[0].value.value: a PIN travels as its keyed hash"),
        (#"{"version": 2, "community": "x", "id": "a", "origin": {"user": "u", "host": "h", "command": "c"}, "created": 1, "changes": [{"op": "delete", "kind": "credential", "key": "pin:123456"}]}"#, "changes[0].key: a PIN is named by its keyed hash"),
        (#"{"version": 1, "community": "x", "id": "a", "origin": {"user": "u", "host": "h", "command": "c"}, "created": 1, "changes": [{"op": "put", "kind": "person", "value": {"id": "P1"}}]}"#, "changes[0].value.houses: is missing"),
        (#"{"version": 1, "community": "x", "id": "a", "origin": {"user": "u", "host": "h", "command": "c"}, "created": 1, "changes": [{"op": "move", "kind": "house"}]}"#, "changes[0].op: \"move\" is not put or delete"),
        (#"{"version": 1, "community": "x", "id": "a", "origin": {"user": "u", "host": "h", "command": "c"}, "created": 1, "changes": [{"op": "delete", "kind": "credential", "key": "qr:1"}]}"#, "changes[0].key"),
        ("not json", "is not valid JSON"),
    ])
    func unreadableChangeSetsNameTheirProblem(text: String, expected: String) {
        let error = #expect(throws: ChangeSetError.self) { try ChangeSet.parse(Array(text.utf8)) }
        #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
    }

    /// Random commands at the office, each a change set applied to the office's replica and to a
    /// controller's; the controller's index is changed incrementally and checked against a full
    /// rebuild every few steps.
    @Test(arguments: [UInt64(1), 2, 3])
    func anIncrementallyChangedIndexDecidesAsAFullRebuild(seed: UInt64) throws {
        let dir = TemporaryDirectory()
        // One community PIN key: the office hashes, the controller stores the hash it is sent.
        let office = try AccessDatabase(path: dir.file("office.db"), pinKey: Fixtures.pinKey)
        let controller = try AccessDatabase(path: dir.file("controller.db"), pinKey: Fixtures.pinKey)
        try office.syncPortals(rules.portals)
        var random = SeededGenerator(seed: seed)
        var policy = try controller.loadPolicy(rules: rules)
        var sequence: UInt64 = 0
        var rebuilds = 0
        var compared = 0
        var cards: Set<UInt64> = []
        var plates: Set<String> = []
        var pins: Set<String> = []
        for step in 0..<240 {
            let (_, changes) = try office.captureChanges {
                try? randomCommand(office, &random, step: step, cards: &cards, plates: &plates, pins: &pins)
            }
            guard !changes.isEmpty else { continue }
            sequence += 1
            let set = changeSet(changes, id: "s\(sequence)")
            _ = try office.apply(set, sequence: sequence)
            let applied = try #require(try controller.apply(set, sequence: sequence))
            if !policy.apply(applied.delta) {
                policy = try controller.loadPolicy(rules: rules)
                rebuilds += 1
            }
            if step % 20 == 19 {
                let rebuilt = try controller.loadPolicy(rules: rules)
                compared += try expectSameDecisions(policy, rebuilt, cards: cards, plates: plates, pins: pins, step: step)
                #expect(try controller.fleetDigest() == controller.computeRosterDigest())
                #expect(try office.fleetDigest() == controller.fleetDigest())
            }
        }
        #expect(sequence > 150)
        #expect(compared > 1_000)
        #expect(rebuilds < 20, "groups and schedules change rarely; most change sets apply in place")
    }

    func expectSameDecisions(_ a: AccessPolicy, _ b: AccessPolicy, cards: Set<UInt64>, plates: Set<String>, pins: Set<String>, step: Int) throws -> Int {
        let credentials: [PresentedCredential] = cards.sorted().map { .card($0) } + plates.sorted().map { .plate($0) } + pins.sorted().map { .pin($0) }
        var compared = 0
        for credential in credentials {
            for portal in rules.portals {
                for at in [Fixtures.at("2026-11-23T10:00"), Fixtures.at("2026-11-23T23:00")] {
                    let request = DecisionRequest(portal: portal.id, credential: credential, at: at)
                    let x = try a.decide(request)
                    let y = try b.decide(request)
                    #expect(x == y, "step \(step): \(credential) at \(portal.id): incremental \(x.reason) \(x.personID ?? "-"), rebuilt \(y.reason) \(y.personID ?? "-")")
                    compared += 1
                }
            }
        }
        return compared
    }

    /// One roster command chosen at random; refusals (a person who is not there) are part of it.
    func randomCommand(_ db: AccessDatabase, _ r: inout SeededGenerator, step: Int, cards: inout Set<UInt64>,
                       plates: inout Set<String>, pins: inout Set<String>) throws {
        let houses = try db.houses().map(\.id)
        let people = try db.people().map(\.id)
        let roll = Int.random(in: 0..<100, using: &r)
        func pick(_ ids: [String]) -> String? { ids.isEmpty ? nil : ids[Int.random(in: 0..<ids.count, using: &r)] }
        let at = Fixtures.at("2026-11-23T00:00")
        switch roll {
        case 0..<12:
            let n = Int.random(in: 1...3, using: &r)
            try db.addHouse(House(id: "H\(step)", building: "B0\(n)"), operator: "t")
        case 12..<34:
            guard let h = pick(houses) else { return }
            let role = [Role.owner, .family, .tenant, .staff, .visitor][Int.random(in: 0..<5, using: &r)]
            let groups = Bool.random(using: &r) ? [] : try db.groups().map(\.name).prefix(1).map { $0 }
            try db.addPerson(Person(id: "P\(String(1000 + step))", name: "n", houses: [HouseBinding(houseID: h, role: role)], groups: groups), operator: "t")
        case 34..<46:
            guard let p = pick(people), let h = pick(houses) else { return }
            let status = [PersonStatus.active, .active, .suspended, .blacklisted][Int.random(in: 0..<4, using: &r)]
            try db.editPerson(p, operator: "t") { person in
                person.status = status
                person.validUntil = Bool.random(using: &r) ? nil : at + Int64.random(in: -3600...86400, using: &r)
                if Bool.random(using: &r) { person.houses.append(HouseBinding(houseID: h, role: .family)) } else { person.houses = [HouseBinding(houseID: h, role: .owner)] }
                person.houses = Array(Dictionary(person.houses.map { ($0.houseID, $0) }, uniquingKeysWith: { a, _ in a }).values).sorted { $0.houseID < $1.houseID }
            }
        case 46..<52:
            guard let p = pick(people) else { return }
            try db.removePerson(p, operator: "t")
        case 52..<66:
            guard let p = pick(people) else { return }
            let card = UInt64(1_000_000 + Int.random(in: 0..<400, using: &r))
            cards.insert(card)
            try db.addCredential(Credential(kind: .card, value: String(card), owner: .person(p)), operator: "t")
        case 66..<72:
            guard let card = cards.randomElement(using: &r) else { return }
            let status = [CredentialStatus.lost, .revoked, .active, .blacklisted][Int.random(in: 0..<4, using: &r)]
            try db.setCredentialStatus(kind: .card, value: String(card), status: status, operator: "t")
        case 72..<76:
            guard let card = cards.randomElement(using: &r) else { return }
            try db.removeCredential(kind: .card, value: String(card), operator: "t")
        case 76..<82:
            guard let h = pick(houses) else { return }
            let plate = "沪A" + String(10000 + Int.random(in: 0..<40, using: &r))
            plates.insert(plate)
            try db.addCredential(Credential(kind: .plate, value: plate, owner: .house(h)), operator: "t")
        case 82..<86:
            guard let p = pick(people) else { return }
            let pin = String(100_000 + Int.random(in: 0..<50, using: &r))
            pins.insert(pin)
            try db.addCredential(Credential(kind: .pin, value: pin, owner: .person(p)), operator: "t")
        case 86..<91:
            guard let h = pick(houses) else { return }
            let plate = "沪A" + String(10000 + Int.random(in: 0..<40, using: &r))
            plates.insert(plate)
            _ = try db.issuePass(houseID: h, visitorName: "v", plate: plate, validFrom: at, validUntil: at + 86400, maxUses: 2, operator: "t")
        case 91..<93:
            guard let pass = try db.passes().randomElement(using: &r) else { return }
            try db.revokePass(pass.id, operator: "t")
        case 93..<96:
            guard let h = pick(houses) else { return }
            try db.removeHouse(h, operator: "t")
        case 96..<98:
            let name = "g\(step)"
            try db.saveSchedule(try Schedule(name: "s\(step)", specs: ["mon-fri 07:00-19:00"]), isNew: true, operator: "t")
            try db.saveGroup(AccessGroup(name: name, portals: ["gym", "gate-in"], schedule: "s\(step)"), isNew: true, operator: "t")
        default:
            guard let p = pick(people), let g = try db.groups().map(\.name).first else { return }
            try db.editPerson(p, operator: "t") { $0.groups = [g] }
        }
    }
}
