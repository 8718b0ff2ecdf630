import AccessCore
import AccessTestSupport
import Testing

/// A community set up to reach every decision reason.
struct Community {
    static let secret: [UInt8] = Array("test-secret-0123456789abcdef0123".utf8)
    static let codes = VisitorPassCode(secret: secret)
    static let zone = Fixtures.shanghai

    static func policy(antiPassback: AntiPassbackPolicy = AntiPassbackPolicy(), zone: ZoneRules = zone) throws -> AccessPolicy {
        let rules = Fixtures.rules(zone: zone, antiPassback: antiPassback, defaultGroups: [.visitor: ["all-gates"]])
        var b = RosterIndex.Builder(rules: rules)
        var workdays = try Schedule(name: "workdays", specs: ["mon-fri 07:00-19:00"])
        workdays.holidays = [CivilDate(year: 2026, month: 10, day: 1)!]
        workdays.exceptions = [CivilDate(year: 2026, month: 12, day: 24)!: [try MinuteRange.parse("07:00-12:00")]]
        b.addSchedule(workdays)
        b.addSchedule(try Schedule(name: "night", specs: ["daily 22:00-24:00", "daily 00:00-06:00"]))
        b.addGroup(AccessGroup(name: "cleaners", portals: ["gate-in", "b01-door", "b02-door"], schedule: "workdays"))
        b.addGroup(AccessGroup(name: "all-gates", portals: ["gate-in", "gate-out", "lane-in", "lane-out"]))
        b.addGroup(AccessGroup(name: "night-guard", portals: ["gate-in"], schedule: "night"))
        b.addHouse(id: "H1", building: "B01")
        b.addHouse(id: "H2", building: "B02")
        b.addHouse(id: "H3", building: "B01")
        func person(_ id: String, _ role: Role, house: String = "H1", status: PersonStatus = .active,
                    from: String? = nil, until: String? = nil, groups: [String] = []) {
            b.addPerson(Person(id: id, status: status,
                               validFrom: from.map { ISO8601.parse($0, zone: zone, dateOnly: .startOfDay)! },
                               validUntil: until.map { ISO8601.parse($0, zone: zone, dateOnly: .endOfDay)! },
                               houses: [HouseBinding(houseID: house, role: role)], groups: groups))
        }
        person("owner1", .owner)
        person("tenant-past", .tenant, until: "2026-06-30")
        person("tenant-future", .tenant, from: "2027-01-01")
        person("suspended", .family, status: .suspended)
        person("banned", .family, status: .blacklisted)
        person("cleaner", .staff, house: "H2", groups: ["cleaners"])
        person("staff-bare", .staff, house: "H2")
        person("guard", .staff, house: "H2", groups: ["night-guard"])
        person("nanny", .visitor, house: "H1")
        func credential(_ kind: CredentialKind, _ value: String, _ owner: CredentialOwner, _ status: CredentialStatus = .active) {
            b.addCredential(Credential(kind: kind, value: value, owner: owner, status: status))
        }
        credential(.card, "1001", .person("owner1"))
        credential(.pin, Fixtures.pin("123456"), .person("owner1"))
        credential(.plate, "京A11111", .person("owner1"))
        credential(.card, "1002", .person("tenant-past"))
        credential(.card, "1003", .person("tenant-future"))
        credential(.card, "1004", .person("suspended"))
        credential(.card, "1005", .person("banned"))
        credential(.card, "1006", .person("cleaner"))
        credential(.card, "1007", .person("staff-bare"))
        credential(.card, "1008", .person("owner1"), .revoked)
        credential(.card, "1009", .person("owner1"), .lost)
        credential(.card, "1010", .none, .blacklisted)
        credential(.card, "1011", .person("guard"))
        credential(.card, "1012", .person("nanny"))
        credential(.plate, "京B22222", .house("H1"))
        credential(.plate, "京C33333", .house("H3"))
        credential(.plate, "京E55555", .none, .blacklisted)
        let from = Fixtures.at("2026-11-23T08:00")
        let until = Fixtures.at("2026-11-23T18:00")
        b.addVisitorPass(VisitorPass(id: "V1", houseID: "H1", visitorName: "王芳", plate: "京D44444", validFrom: from, validUntil: until, maxUses: 1))
        b.addVisitorPass(VisitorPass(id: "V2", houseID: "H1", visitorName: "李四", validFrom: from, validUntil: until, maxUses: 1, uses: 1))
        b.addVisitorPass(VisitorPass(id: "V3", houseID: "H1", visitorName: "赵五", validFrom: from, validUntil: until, maxUses: 3, status: .revoked))
        b.addVisitorPass(VisitorPass(id: "V4", houseID: "H1", visitorName: "钱六", validFrom: until, validUntil: until + 3600, maxUses: 1))
        b.addVisitorPass(VisitorPass(id: "V5", houseID: "H2", visitorName: "孙七", validFrom: from, validUntil: until, maxUses: 2, portals: ["gym"]))
        return AccessPolicy(rules: rules, roster: b.finish(), passCodes: codes, pinKey: Fixtures.pinKey)
    }

    static func qr(_ id: String, expires: String = "2026-11-23T18:00") -> PresentedCredential {
        .qr(codes.encode(passID: id, expires: Fixtures.at(expires)))
    }
}

struct Case: CustomTestStringConvertible, Sendable {
    var note: String
    var portal: String
    var credential: PresentedCredential
    var at: String = "2026-11-23T10:00"  // a Monday
    var mode: PortalMode = .normal
    var reason: Reason
    var person: String?
    var house: String?
    var alarm = false
    var consumes = false

    var testDescription: String { "\(note): \(reason.rawValue)" }
}

@Suite("Decisions: every reason and its edges")
struct DecisionTableTests {
    static let cases: [Case] = [
        Case(note: "resident at own building", portal: "b01-door", credential: .card(1001), reason: .granted, person: "owner1", house: "H1"),
        Case(note: "resident at shared gate", portal: "gate-in", credential: .card(1001), reason: .granted, person: "owner1"),
        Case(note: "resident at another building", portal: "b02-door", credential: .card(1001), reason: .noRight, person: "owner1"),
        Case(note: "unknown card", portal: "gate-in", credential: .card(999), reason: .unknownCredential),
        Case(note: "lease ended: last day still valid", portal: "gate-in", credential: .card(1002), at: "2026-06-30T23:59:59", reason: .granted),
        Case(note: "lease ended: midnight after", portal: "gate-in", credential: .card(1002), at: "2026-07-01T00:00", reason: .expired, person: "tenant-past"),
        Case(note: "lease not begun: eve", portal: "gate-in", credential: .card(1003), at: "2026-12-31T23:59:59", reason: .notYetValid),
        Case(note: "lease begins at midnight", portal: "gate-in", credential: .card(1003), at: "2027-01-01T00:00", reason: .granted),
        Case(note: "suspended person", portal: "gate-in", credential: .card(1004), reason: .suspended, person: "suspended"),
        Case(note: "blacklisted person", portal: "gate-in", credential: .card(1005), reason: .blacklisted, person: "banned", alarm: true),
        Case(note: "blacklisted unowned card", portal: "gate-in", credential: .card(1010), reason: .blacklisted, alarm: true),
        Case(note: "blacklisted unowned plate", portal: "lane-in", credential: .plate("京E55555"), reason: .blacklisted, alarm: true),
        Case(note: "blacklisted beats locked portal", portal: "gate-in", credential: .card(1005), mode: .alwaysClosed, reason: .blacklisted, alarm: true),
        Case(note: "revoked card", portal: "gate-in", credential: .card(1008), reason: .revoked, person: "owner1"),
        Case(note: "lost card", portal: "gate-in", credential: .card(1009), reason: .revoked, person: "owner1"),
        Case(note: "always-closed portal", portal: "b01-door", credential: .card(1001), mode: .alwaysClosed, reason: .portalLocked, person: "owner1"),
        Case(note: "always-open portal still decides", portal: "b02-door", credential: .card(1001), mode: .alwaysOpen, reason: .noRight),
        Case(note: "schedule opens at 07:00", portal: "gate-in", credential: .card(1006), at: "2026-11-23T07:00", reason: .granted, person: "cleaner", house: "H2"),
        Case(note: "schedule: a second before", portal: "gate-in", credential: .card(1006), at: "2026-11-23T06:59:59", reason: .outsideSchedule),
        Case(note: "schedule end is exclusive", portal: "gate-in", credential: .card(1006), at: "2026-11-23T19:00", reason: .outsideSchedule),
        Case(note: "saturday", portal: "gate-in", credential: .card(1006), at: "2026-11-28T10:00", reason: .outsideSchedule),
        Case(note: "holiday on a thursday", portal: "gate-in", credential: .card(1006), at: "2026-10-01T10:00", reason: .outsideSchedule),
        Case(note: "exception morning", portal: "gate-in", credential: .card(1006), at: "2026-12-24T11:59", reason: .granted),
        Case(note: "exception afternoon", portal: "gate-in", credential: .card(1006), at: "2026-12-24T12:00", reason: .outsideSchedule),
        Case(note: "group lacks the portal", portal: "lane-in", credential: .card(1006), reason: .noRight),
        Case(note: "staff without groups", portal: "gate-in", credential: .card(1007), reason: .noRight),
        Case(note: "night shift before midnight", portal: "gate-in", credential: .card(1011), at: "2026-11-23T23:59:59", reason: .granted),
        Case(note: "night shift at midnight", portal: "gate-in", credential: .card(1011), at: "2026-11-24T00:00", reason: .granted),
        Case(note: "night shift ends 06:00", portal: "gate-in", credential: .card(1011), at: "2026-11-24T06:00", reason: .outsideSchedule),
        Case(note: "role default groups", portal: "lane-out", credential: .card(1012), reason: .granted, person: "nanny"),
        Case(note: "role default does not open buildings", portal: "b01-door", credential: .card(1012), reason: .noRight),
        Case(note: "PIN", portal: "b01-door", credential: .pin("123456"), reason: .granted, person: "owner1"),
        Case(note: "unknown PIN", portal: "b01-door", credential: .pin("000000"), reason: .unknownCredential),
        Case(note: "plate with spaces and lower case", portal: "lane-in", credential: .plate("京a 11111"), reason: .granted, person: "owner1"),
        Case(note: "household plate", portal: "lane-in", credential: .plate("京B22222"), reason: .granted, house: "H1"),
        Case(note: "household plate, empty house", portal: "lane-in", credential: .plate("京C33333"), reason: .noRight, house: "H3"),
        Case(note: "untrusted clock", portal: "gate-in", credential: .card(1001), at: "1970-01-01T08:00", reason: .clockUnset),
        Case(note: "visitor QR entry", portal: "gate-in", credential: Community.qr("V1"), reason: .granted, house: "H1", consumes: true),
        Case(note: "visitor QR at host building", portal: "b01-door", credential: Community.qr("V1"), reason: .granted, consumes: true),
        Case(note: "visitor QR elsewhere", portal: "b02-door", credential: Community.qr("V1"), reason: .noRight),
        Case(note: "visitor QR exit uses nothing", portal: "gate-out", credential: Community.qr("V1"), reason: .granted, consumes: false),
        Case(note: "visitor uses exhausted", portal: "gate-in", credential: Community.qr("V2"), reason: .usesExhausted),
        Case(note: "visitor exit after last use", portal: "gate-out", credential: Community.qr("V2"), reason: .granted),
        Case(note: "revoked pass", portal: "gate-in", credential: Community.qr("V3"), reason: .revoked),
        Case(note: "pass not yet valid", portal: "gate-in", credential: Community.qr("V4", expires: "2026-11-23T19:00"), reason: .notYetValid),
        Case(note: "pass expired", portal: "gate-in", credential: Community.qr("V1"), at: "2026-11-23T18:00", reason: .expired),
        Case(note: "pass restricted to listed portals", portal: "gate-in", credential: Community.qr("V5"), reason: .noRight),
        Case(note: "pass at its listed portal (both-way counts as entry)", portal: "gym", credential: Community.qr("V5"), reason: .granted, consumes: true),
        Case(note: "visitor plate", portal: "lane-in", credential: .plate("京D44444"), reason: .granted, house: "H1", consumes: true),
        Case(note: "forged QR signature", portal: "gate-in", credential: .qr("CA1.V1.1795420800.00000000000000000000000000000000"), reason: .unknownCredential),
        Case(note: "garbage QR", portal: "gate-in", credential: .qr("hello"), reason: .unknownCredential),
    ]

    @Test(arguments: cases)
    func decide(_ c: Case) throws {
        let policy = try Community.policy()
        let request = DecisionRequest(portal: c.portal, credential: c.credential, at: Fixtures.at(c.at), portalMode: c.mode)
        let d = try policy.decide(request)
        #expect(d.reason == c.reason)
        #expect(d.granted == (c.reason == .granted))
        #expect(d.alarm == c.alarm)
        #expect(d.portal == c.portal)
        #expect(d.credentialKind == c.credential.kind)
        if let person = c.person { #expect(d.personID == person) }
        if let house = c.house { #expect(d.houseID == house) }
        if c.reason == .granted { #expect(d.consumesVisitorUse == c.consumes) }
    }

    @Test func everyReasonIsReachable() {
        // anti-passback: AntiPassbackTests; the reader's and doors' state (card and PIN, lockout,
        // interlock): GateRulesTests; multi-card: DoorPlanTests; parking spaces: ParkingTests
        let reached = Set(Self.cases.map(\.reason)).union([.antiPassback, .pinRequired, .wrongPin, .pinTimeout, .readerLocked, .interlock,
                                                            .awaitingMoreCards, .parkingFull])
        #expect(reached == Set(Reason.allCases))
    }

    @Test func untrustedClockFlagRefusesEvenValidCredentials() throws {
        let d = try Community.policy().decide(DecisionRequest(portal: "gate-in", credential: .card(1001), at: Fixtures.at("2026-11-23T10:00"), clockTrusted: false))
        #expect(d.reason == .clockUnset)
        #expect(!d.granted)
    }

    @Test func unknownPortalIsAnErrorNotADenial() throws {
        #expect(throws: DecisionError.unknownPortal("nope")) {
            try Community.policy().decide(DecisionRequest(portal: "nope", credential: .card(1001), at: Fixtures.at("2026-11-23T10:00")))
        }
    }

    @Test func tamperedExpiryIsRejected() throws {
        let genuine = Community.codes.encode(passID: "V1", expires: Fixtures.at("2026-11-23T18:00"))
        var parts = genuine.split(separator: ".").map(String.init)
        parts[2] = String(Fixtures.at("2027-11-23T18:00"))
        let d = try Community.policy().decide(DecisionRequest(portal: "gate-in", credential: .qr(parts.joined(separator: ".")), at: Fixtures.at("2026-11-23T10:00")))
        #expect(d.reason == .unknownCredential)
    }

    @Test func codeSignedWithAnotherSecretIsRejected() throws {
        let other = VisitorPassCode(secret: Array("another-controller-secret-000000".utf8)).encode(passID: "V1", expires: Fixtures.at("2026-11-23T18:00"))
        let d = try Community.policy().decide(DecisionRequest(portal: "gate-in", credential: .qr(other), at: Fixtures.at("2026-11-23T10:00")))
        #expect(d.reason == .unknownCredential)
    }

    @Test func scheduleFollowsDaylightSavingInTheCommunityZone() throws {
        // New York moves to EDT at 02:00 on 2026-03-08. A 09:00-17:00 plan means 09:00 on the wall clock.
        let newYork = try #require(ZoneRules(identifier: "America/New_York"))
        let rules = Fixtures.rules(zone: newYork)
        var b = RosterIndex.Builder(rules: rules)
        b.addSchedule(try Schedule(name: "office", specs: ["daily 09:00-17:00"]))
        b.addGroup(AccessGroup(name: "office", portals: ["gate-in"], schedule: "office"))
        b.addHouse(id: "H", building: "B")
        b.addPerson(Person(id: "p", houses: [HouseBinding(houseID: "H", role: .staff)], groups: ["office"]))
        b.addCredential(Credential(kind: .card, value: "1", owner: .person("p")))
        let policy = AccessPolicy(rules: rules, roster: b.finish())
        func reason(_ local: String) throws -> Reason {
            try policy.decide(DecisionRequest(portal: "gate-in", credential: .card(1), at: Fixtures.at(local, zone: newYork))).reason
        }
        #expect(try reason("2026-03-08T09:00") == .granted)
        #expect(try reason("2026-03-08T08:59") == .outsideSchedule)
        #expect(try reason("2026-03-07T09:00") == .granted)
        // The same UTC instant as 09:00 EDT was 08:00 EST the day before.
        let edtNine = Fixtures.at("2026-03-08T09:00", zone: newYork)
        let d = try policy.decide(DecisionRequest(portal: "gate-in", credential: .card(1), at: edtNine - 86_400))
        #expect(d.reason == .outsideSchedule)
    }
}

@Suite("Anti-passback")
struct AntiPassbackTests {
    func policy(_ mode: AntiPassbackMode, forgive: Int64 = 0) throws -> AccessPolicy {
        try Community.policy(antiPassback: AntiPassbackPolicy(areas: ["community": .init(mode: mode, forgiveAfterSeconds: forgive)]))
    }

    let inside = AntiPassbackLedger(locations: ["person:owner1": .init(area: "community", since: Fixtures.at("2026-11-23T09:00"))])

    @Test func hardRefusesASecondEntry() throws {
        let d = try policy(.hard).decide(DecisionRequest(portal: "gate-in", credential: .card(1001), at: Fixtures.at("2026-11-23T10:00")), ledger: inside)
        #expect(d.reason == .antiPassback)
        #expect(!d.granted)
    }

    @Test func hardAllowsTheMatchingExit() throws {
        let d = try policy(.hard).decide(DecisionRequest(portal: "gate-out", credential: .card(1001), at: Fixtures.at("2026-11-23T10:00")), ledger: inside)
        #expect(d.granted)
    }

    @Test func softGrantsAndFlags() throws {
        let d = try policy(.soft).decide(DecisionRequest(portal: "gate-in", credential: .card(1001), at: Fixtures.at("2026-11-23T10:00")), ledger: inside)
        #expect(d.granted)
        #expect(d.antiPassbackViolation)
    }

    @Test func forgivenessLapsesTheRecord() throws {
        let p = try policy(.hard, forgive: 3600)
        let early = try p.decide(DecisionRequest(portal: "gate-in", credential: .card(1001), at: Fixtures.at("2026-11-23T09:59:59")), ledger: inside)
        let late = try p.decide(DecisionRequest(portal: "gate-in", credential: .card(1001), at: Fixtures.at("2026-11-23T10:00")), ledger: inside)
        #expect(early.reason == .antiPassback)
        #expect(late.reason == .granted)
    }

    @Test func offIgnoresTheLedger() throws {
        let d = try policy(.off).decide(DecisionRequest(portal: "gate-in", credential: .card(1001), at: Fixtures.at("2026-11-23T10:00")), ledger: inside)
        #expect(d.granted && !d.antiPassbackViolation)
    }

    @Test func ledgerRecordsPassagesButNotBothWayPortals() {
        var ledger = AntiPassbackLedger()
        let gateIn = Fixtures.portals[0]
        let gym = Fixtures.portals[6]
        ledger.recordPassage(subject: "person:x", portal: gateIn, at: 100)
        #expect(ledger.locations["person:x"]?.area == "community")
        ledger.recordPassage(subject: "person:x", portal: gym, at: 200)
        #expect(ledger.locations["person:x"]?.since == 100)
        #expect(ledger.isViolation(subject: "person:x", portal: gateIn, at: 300, rule: .init(mode: .hard)))
        #expect(!ledger.isViolation(subject: "person:y", portal: gateIn, at: 300, rule: .init(mode: .hard)))
    }
}
