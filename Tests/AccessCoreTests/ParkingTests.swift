import AccessCore
import AccessTestSupport
import Testing

/// Parking spaces: a house's plates (and the visitors') may hold at most so many cars inside;
/// entries and exits at barrier lanes are counted.
@Suite("Parking spaces")
struct ParkingTests {
    static let laneIn = Portal(id: "lane-in", kind: .barrier, direction: .in, fromArea: "outside", toArea: "community", readers: ["lpr-in"])
    static let laneOut = Portal(id: "lane-out", kind: .barrier, direction: .out, fromArea: "community", toArea: "outside", readers: ["lpr-out"])
    static let laneBoth = Portal(id: "lane-both", kind: .barrier, direction: .both, readers: ["lpr-both"])
    static let gate = Portal(id: "gate-in", kind: .door, direction: .in, readers: ["r-gate"])
    static let morning = Fixtures.at("2026-12-01T09:00")

    static func granted(house: String? = "H1", pass: String? = nil, portal: Portal = laneIn) -> Decision {
        Decision(granted: true, reason: .granted, portal: portal.id, credentialKind: .plate, houseID: house, visitorPassID: pass)
    }

    /// Each passage and the count it leaves (nil: it counts nowhere).
    @Test(arguments: [
        ([(granted(), CredentialKind.plate, laneIn)], [Optional(("house:H1", 1))]),
        ([(granted(), .plate, laneIn), (granted(), .plate, laneIn), (granted(), .plate, laneOut)], [("house:H1", 1), ("house:H1", 2), ("house:H1", 1)]),
        ([(granted(), .plate, laneOut), (granted(), .plate, laneOut)], [("house:H1", 0), ("house:H1", 0)]),
        ([(granted(), .plate, laneBoth)], [nil]),
        ([(granted(), .card, laneIn)], [nil]),
        ([(granted(), .plate, gate)], [nil]),
        ([(Decision(granted: false, reason: .noRight, portal: "lane-in", credentialKind: .plate, houseID: "H1"), .plate, laneIn)], [nil]),
        ([(granted(house: "H1", pass: "V1"), .plate, laneIn), (granted(house: nil), .plate, laneIn)], [("visitors", 1), nil]),
    ] as [([(Decision, CredentialKind, Portal)], [(String, Int)?])])
    func entriesCountUpExitsDownNeverBelowZero(_ passages: [(Decision, CredentialKind, Portal)], _ expected: [(String, Int)?]) {
        var ledger = ParkingLedger()
        for ((decision, kind, portal), want) in zip(passages, expected) {
            let got = ledger.recordPassage(decision, kind: kind, portal: portal)
            #expect(got?.key == want?.0 && got?.inside == want?.1)
        }
    }

    static func policy(visitorSpaces: Int? = 1) -> AccessPolicy {
        let rules = SiteRules(controllerID: "c", zone: Fixtures.shanghai, portals: [laneIn, laneOut, gate], visitorParkingSpaces: visitorSpaces)
        var b = RosterIndex.Builder(rules: rules)
        b.addHouse(id: "H1", building: "", parkingSpaces: 1)
        b.addHouse(id: "H2", building: "")
        b.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]))
        b.addPerson(Person(id: "P2", houses: [HouseBinding(houseID: "H2", role: .owner)]))
        b.addCredential(Credential(kind: .plate, value: "京A11111", owner: .person("P1")))
        b.addCredential(Credential(kind: .plate, value: "京A22222", owner: .house("H1")))
        b.addCredential(Credential(kind: .plate, value: "京B33333", owner: .person("P2")))
        b.addCredential(Credential(kind: .card, value: "1001", owner: .person("P1")))
        b.addVisitorPass(VisitorPass(id: "V1", houseID: "H2", visitorName: "王芳", plate: "京D44444", validFrom: morning - 3600,
                                     validUntil: morning + 3600, maxUses: 5))
        return AccessPolicy(rules: rules, roster: b.finish())
    }

    /// What the policy decides with so many cars inside.
    @Test(arguments: [
        ("lane-in", PresentedCredential.plate("京A11111"), [:], Reason.granted),
        ("lane-in", .plate("京A11111"), ["house:H1": 1], .parkingFull),
        ("lane-in", .plate("京A22222"), ["house:H1": 1], .parkingFull),  // the household's own car: the same spaces
        ("lane-out", .plate("京A11111"), ["house:H1": 3], .granted),  // exits are always let out
        ("gate-in", .card(1001), ["house:H1": 1], .granted),  // people on foot take no space
        ("lane-in", .plate("京B33333"), ["house:H2": 40], .granted),  // a house without a limit
        ("lane-in", .plate("京D44444"), ["house:H2": 40], .granted),  // a visitor counts against the visitors' spaces
        ("lane-in", .plate("京D44444"), ["visitors": 1], .parkingFull),
    ] as [(String, PresentedCredential, [String: Int], Reason)])
    func aFullHouseOrAFullVisitorsLotRefusesEntryOnly(_ portal: String, _ credential: PresentedCredential, _ inside: [String: Int],
                                                      _ expected: Reason) throws {
        let decision = try Self.policy().decide(DecisionRequest(portal: portal, credential: credential, at: Self.morning),
                                                 parking: ParkingLedger(counts: inside))
        #expect(decision.reason == expected && decision.granted == (expected == .granted))
        if expected == .parkingFull { #expect(!decision.consumesVisitorUse, "a refused visitor spends no entry") }
    }

    @Test func withoutVisitorSpacesVisitorsAreNotLimited() throws {
        let decision = try Self.policy(visitorSpaces: nil).decide(
            DecisionRequest(portal: "lane-in", credential: .plate("京D44444"), at: Self.morning), parking: ParkingLedger(counts: ["visitors": 100]))
        #expect(decision.reason == .granted)
    }

    /// The site counts as it grants: a house with one space lets its second car in only after
    /// the first has left, and each count is recorded for the store.
    @Test func theSiteCountsGrantedPlatesAndRefusesTheSecondCarOfAOneSpaceHouse() {
        let policy = Self.policy()
        let layout = SiteLayout(rules: policy.rules, lanes: [
            SiteLayout.Lane(portal: "lane-in", device: "gate-in-1", config: BarrierLaneConfig()),
            SiteLayout.Lane(portal: "lane-out", device: "gate-out-1", config: BarrierLaneConfig()),
        ])
        let wall = Self.morning * 1_000_000
        var now = SiteTime(mono: 1_000_000_000, wall: wall)
        var site = Site(layout: layout, policy: policy, clock: EventClock(lastLoggedMicros: 0, wall: wall, mono: now.mono))
        _ = site.step(.start(modes: [:]), at: now)
        func plate(_ lane: String, _ plate: String) -> [SiteEffect] {
            now = now.advanced(bySeconds: 5)
            return site.step(.credential(reader: lane, .plate(plate)), at: now)
        }
        let first = plate("lpr-in", "京A11111")
        #expect(first.reasons.first == .granted && first.commands == [.barrier(.open)])
        #expect(first.contains(.record(.parking(key: "house:H1", inside: 1))))
        let second = plate("lpr-in", "京A22222")
        #expect(second.reasons == [.parkingFull] && second.commands.isEmpty, "the arm stays down")
        #expect(!second.contains { if case .record(.parking) = $0 { true } else { false } })
        let out = plate("lpr-out", "京A11111")
        #expect(out.contains(.record(.parking(key: "house:H1", inside: 0))))
        #expect(plate("lpr-in", "京A22222").reasons.first == .granted)
        #expect(site.parking.inside("house:H1") == 1)
    }
}
