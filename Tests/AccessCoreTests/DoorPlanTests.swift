import AccessCore
import AccessTestSupport
import Testing

/// A site with a normally-open lobby door (the `day` schedule, 08:00-18:00 daily), a first-card
/// office door (the same schedule, first card of `managers`) and a two-person vault door, on a
/// fire input; stepped by hand.
struct PlanRig {
    static let zone = Fixtures.shanghai

    var site: Site
    var now: SiteTime

    /// Started at `local` (Shanghai) with the operators' standing `modes`.
    init(at local: String, modes: [String: PortalMode] = [:], multiCard: MultiCardRule = MultiCardRule(cards: 2, seconds: 30)) {
        let portals = [
            Portal(id: "lobby", readers: ["r-lobby"]),
            Portal(id: "office", fromArea: "community", toArea: "office", readers: ["r-office"]),
            Portal(id: "vault", fromArea: "community", toArea: "vault", readers: ["r-vault", "r-vault-2"], multiCard: multiCard),
        ]
        let rules = SiteRules(controllerID: "plan-1", zone: Self.zone, portals: portals, defaultGroups: [.staff: ["managers"]])
        var b = RosterIndex.Builder(rules: rules)
        b.addSchedule(try! Schedule(name: "day", specs: ["daily 08:00-18:00"]))
        b.addGroup(AccessGroup(name: "managers", portals: ["lobby", "office", "vault"]))
        b.addHouse(id: "H1", building: "")
        b.addPerson(Person(id: "M1", houses: [HouseBinding(houseID: "H1", role: .tenant)], groups: ["managers"]))
        b.addPerson(Person(id: "R1", houses: [HouseBinding(houseID: "H1", role: .owner)]))
        b.addPerson(Person(id: "R2", houses: [HouseBinding(houseID: "H1", role: .family)]))
        b.addPerson(Person(id: "S1", houses: [HouseBinding(houseID: "H1", role: .staff)]))  // managers by role default
        for (person, card) in [("M1", "2001"), ("R1", "2002"), ("R2", "2003"), ("S1", "2004")] {
            b.addCredential(Credential(kind: .card, value: card, owner: .person(person)))
        }
        let layout = SiteLayout(rules: rules, doors: [
            SiteLayout.Door(id: "lobby", portals: ["lobby"], config: DoorConfig(unlockSeconds: 5), normallyOpenSchedule: "day"),
            SiteLayout.Door(id: "office", portals: ["office"], config: DoorConfig(unlockSeconds: 5, heldOpenSeconds: 30),
                            contact: "office.contact", normallyOpenSchedule: "day", firstCardGroup: "managers"),
            SiteLayout.Door(id: "vault", portals: ["vault"], config: DoorConfig(unlockSeconds: 5)),
        ], linkage: SiteLayout.Linkage(fire: ["fire"]))
        let wall = Fixtures.at(local) * 1_000_000
        now = SiteTime(mono: 1_000_000_000, wall: wall)
        site = Site(layout: layout, policy: AccessPolicy(rules: rules, roster: b.finish()),
                    clock: EventClock(lastLoggedMicros: 0, wall: wall, mono: now.mono))
        started = site.step(.start(modes: modes), at: now)
    }

    /// What starting did.
    var started: [SiteEffect] = []

    mutating func step(_ input: SiteInput) -> [SiteEffect] { site.step(input, at: now) }

    /// Moves both clocks on and ticks.
    mutating func wait(_ seconds: Double) -> [SiteEffect] {
        now = now.advanced(bySeconds: seconds)
        return step(.tick)
    }

    /// Moves both clocks on to a local time (Shanghai) and ticks.
    mutating func until(_ local: String) -> [SiteEffect] {
        wait(Double(Fixtures.at(local) * 1_000_000 - now.wall) / 1e6)
    }

    mutating func swipe(_ card: UInt64, at reader: String) -> [SiteEffect] { step(.credential(reader: reader, .card(card))) }

    mutating func command(_ portal: String, _ command: DoorCommand) -> [SiteEffect] {
        step(.portalCommand(portal: portal, command, operator: "t"))
    }

    func released(_ door: String) -> Bool { site.doors.first { $0.layout.id == door }!.machine.released }
}

extension [SiteEffect] {
    /// The lock changes of door `i` (true: released), in order.
    func lock(_ i: Int) -> [Bool] { compactMap { if case .lock(i, let released) = $0 { released } else { nil } } }

    /// The door events of a door, with the plan they name (if any): "released day", "relocked".
    func doorEvents(_ door: String) -> [String] {
        events.filter { $0.type != .access && $0.detail.contains { $0.0 == "door" && $0.1 == .string(door) } }.compactMap { e in
            guard let reason = e.reason?.rawValue else { return nil }
            guard let plan = e.detail.first(where: { $0.0 == "plan" })?.1.stringValue else { return reason }
            return "\(reason) \(plan)"
        }
    }
}

@Suite("Door-status plans: normally open and first card")
struct DoorPlanTests {
    static let lobby = 0, office = 1, vault = 2

    @Test func theDoorHeldByThePlanIgnoresGrantsAndClosingAndTimesADoorLeftOpenFromThePlansEnd() {
        let s: UInt64 = 1_000_000_000
        var d = DoorStateMachine(config: DoorConfig(unlockSeconds: 5, heldOpenSeconds: 30))
        _ = d.start()
        _ = d.handle(.contact(open: false), at: 0)
        #expect(d.handle(.plan(open: true), at: 10 * s) == [.lock(released: true), .event(.released)])
        #expect(d.handle(.granted, at: 11 * s) == [] && d.nextDeadline == nil, "no unlock time to run out")
        #expect(d.handle(.contact(open: true), at: 12 * s) == [.event(.opened)], "not forced")
        #expect(d.nextDeadline == nil, "no held-open timer under the plan")
        #expect(d.handle(.contact(open: false), at: 13 * s) == [.event(.closed)], "closing does not relock")
        _ = d.handle(.contact(open: true), at: 100 * s)
        #expect(d.handle(.plan(open: false), at: 200 * s) == [.lock(released: false), .event(.relocked)])
        #expect(d.nextDeadline == 230 * s, "held open counted from the plan's end")
    }

    @Test func aNormallyOpenDoorIsReleasedWhenItsScheduleStartsAndRelockedWhenItEnds() {
        var rig = PlanRig(at: "2026-12-01T07:59:50")
        #expect(rig.started.lock(Self.lobby) == [false], "locked before the schedule")
        #expect(rig.wait(9).lock(Self.lobby) == [])
        let opening = rig.wait(1)
        #expect(opening.lock(Self.lobby) == [true], "08:00:00 releases it")
        #expect(opening.doorEvents("lobby") == ["released normally_open"])
        #expect(opening.events.first?.detail.contains { $0.0 == "schedule" && $0.1 == .string("day") } == true)
        #expect(rig.swipe(2002, at: "r-lobby").lock(Self.lobby) == [], "a grant has nothing to open")
        #expect(rig.wait(3600).lock(Self.lobby) == [], "no unlock time runs out: the plan holds it")
        #expect(rig.until("2026-12-01T17:59:59").lock(Self.lobby) == [])
        let closing = rig.wait(1)
        #expect(closing.lock(Self.lobby) == [false], "18:00:00 relocks it")
        #expect(closing.doorEvents("lobby") == ["relocked normally_open"])
        #expect(rig.swipe(2002, at: "r-lobby").lock(Self.lobby) == [true], "after the schedule a grant opens it for its unlock time")
        #expect(rig.wait(5).lock(Self.lobby) == [false])
    }

    @Test func startingInsideTheScheduleComesBackOpen() {
        let rig = PlanRig(at: "2026-12-01T12:00")
        #expect(rig.started.lock(Self.lobby) == [false, true], "the safe state first, then the plan")
        #expect(rig.started.lock(Self.office) == [false], "a first-card door waits for a first card again")
        #expect(rig.started.doorEvents("lobby") == ["released normally_open"])
    }

    @Test func anOperatorsModeWinsOverThePlanUntilNormal() {
        var rig = PlanRig(at: "2026-12-01T12:00")
        #expect(rig.command("lobby", .alwaysClosed).lock(Self.lobby) == [false])
        #expect(rig.wait(60).lock(Self.lobby) == [], "the plan does not reopen an always-closed door")
        #expect(rig.swipe(2002, at: "r-lobby").gateReasons == [.portalLocked])
        #expect(rig.command("lobby", .normal).lock(Self.lobby) == [true], "normal: the plan again")
        #expect(rig.command("lobby", .close).reasons.contains(.requestIgnored), "a momentary close does not fight the plan")
        #expect(rig.released("lobby"))

        // Always-open over the schedule's end: the door stays open until normal, then relocks.
        _ = rig.until("2026-12-01T17:59:50")
        #expect(rig.command("lobby", .alwaysOpen).lock(Self.lobby) == [])
        #expect(rig.wait(20).lock(Self.lobby) == [], "18:00 passes: the operator's always-open holds")
        #expect(rig.command("lobby", .normal).lock(Self.lobby) == [false], "normal after the schedule: locked")
    }

    @Test func aStandingModeAtStartWinsOverThePlan() {
        let rig = PlanRig(at: "2026-12-01T12:00", modes: ["lobby": .alwaysClosed])
        #expect(rig.started.lock(Self.lobby) == [false])
        #expect(!rig.released("lobby"))
    }

    @Test func fireReleasesOverEverythingAndThePlanIsFollowedAfterTheReset() {
        var rig = PlanRig(at: "2026-12-01T17:59:50")
        _ = rig.command("lobby", .alwaysClosed)
        #expect(rig.step(.input(line: "fire", active: true)).lock(Self.lobby) == [true], "fire releases an always-closed door too")
        _ = rig.command("lobby", .normal)
        #expect(rig.wait(20).lock(Self.lobby) == [], "18:00 under fire: still released")
        _ = rig.step(.input(line: "fire", active: false))
        #expect(rig.command("lobby", .resetAlarm).lock(Self.lobby) == [false], "reset after the schedule: locked")

        var day = PlanRig(at: "2026-12-01T07:59:50")
        _ = day.step(.input(line: "fire", active: true))
        _ = day.wait(20)
        _ = day.step(.input(line: "fire", active: false))
        #expect(day.command("lobby", .resetAlarm).lock(Self.lobby) == [], "reset inside the schedule: the plan keeps it open")
        #expect(day.released("lobby"))
        #expect(day.wait(3600).lock(Self.lobby) == [])
    }

    @Test func aFirstCardDoorOpensForThePeriodOnlyOnceAGroupMemberHasPassed() {
        var rig = PlanRig(at: "2026-12-01T07:59:50")
        #expect(rig.wait(10).lock(Self.office) == [], "the schedule starts: still locked")
        let resident = rig.swipe(2002, at: "r-office")
        #expect(resident.gateReasons == [.granted] && resident.lock(Self.office) == [true])
        #expect(resident.doorEvents("office") == ["released"], "not a member: only the grant's own release")
        #expect(rig.wait(5).lock(Self.office) == [false])
        let first = rig.swipe(2001, at: "r-office")
        #expect(first.lock(Self.office) == [true])
        #expect(first.doorEvents("office") == ["released first_card"])
        #expect(first.events.last?.detail.contains { $0.0 == "first_card_person" && $0.1 == .string("M1") } == true)
        #expect(rig.wait(60).lock(Self.office) == [], "held open for the rest of the period")
        _ = rig.step(.input(line: "office.contact", active: true))
        #expect(rig.wait(120).reasons.contains(.heldOpen) == false, "no held-open alarm while the plan holds it")

        _ = rig.until("2026-12-01T17:59:59")
        let end = rig.wait(1)
        #expect(end.lock(Self.office) == [false] && end.doorEvents("office") == ["relocked first_card"])
        _ = rig.step(.input(line: "office.contact", active: false))

        // The next morning waits for its own first card; a staff member's role default counts.
        #expect(rig.until("2026-12-02T08:00").lock(Self.office) == [])
        #expect(!rig.released("office"))
        #expect(rig.swipe(2004, at: "r-office").doorEvents("office") == ["released first_card"])
    }

    @Test func aFirstCardBeforeTheScheduleOpensOnlyForItsUnlockTime() {
        var rig = PlanRig(at: "2026-12-01T07:59:00")
        #expect(rig.swipe(2001, at: "r-office").lock(Self.office) == [true])
        #expect(rig.wait(5).lock(Self.office) == [false])
        #expect(rig.wait(60).lock(Self.office) == [], "08:00: the card before the schedule was not its first card")
    }

    @Test func aFirstCardUnderAlwaysOpenCountsWhenTheDoorGoesBackToNormal() {
        var rig = PlanRig(at: "2026-12-01T09:00", modes: ["office": .alwaysOpen])
        _ = rig.swipe(2001, at: "r-office")
        #expect(rig.command("office", .normal).lock(Self.office) == [], "the first card passed: the plan keeps it open")
        #expect(rig.released("office"))
    }
}

@Suite("Multi-card opening")
struct MultiCardTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var note: String
        var cards = 2
        /// Who presents, and when (seconds from the first).
        var reads: [(String, Double)]
        var outcomes: [String]
        var testDescription: String { note }
    }

    static let cases: [Case] = [
        Case(note: "two people open it", reads: [("P1", 0), ("P2", 10)], outcomes: ["awaiting 1", "open with P1"]),
        Case(note: "the same person twice counts once", reads: [("P1", 0), ("P1", 5), ("P2", 6)],
             outcomes: ["awaiting 1", "awaiting 1", "open with P1"]),
        Case(note: "too slow: the set starts over", reads: [("P1", 0), ("P2", 30), ("P3", 31)],
             outcomes: ["awaiting 1", "awaiting 1", "open with P2"]),
        Case(note: "three people within the time", cards: 3, reads: [("P1", 0), ("P2", 10), ("P3", 29.9)],
             outcomes: ["awaiting 1", "awaiting 2", "open with P1 P2"]),
        Case(note: "an opening starts the next set", reads: [("P1", 0), ("P2", 1), ("P3", 2)], outcomes: ["awaiting 1", "open with P1", "awaiting 1"]),
    ]

    @Test(arguments: cases)
    func collection(_ c: Case) {
        var collection = MultiCardCollection(rule: MultiCardRule(cards: c.cards, seconds: 30))
        let outcomes = c.reads.map { person, at in
            let d = Decision(granted: true, reason: .granted, portal: "vault", credentialKind: .card, personID: person, subject: "person:" + person)
            switch collection.admit(d, at: 1_000 + UInt64(at * 1e9)) {
            case .awaiting(let n): return "awaiting \(n)"
            case .complete(let earlier): return "open with " + earlier.compactMap(\.personID).joined(separator: " ")
            }
        }
        #expect(outcomes == c.outcomes)
    }

    @Test func twoDifferentPeopleOpenTheVaultAndBothPass() {
        var rig = PlanRig(at: "2026-12-01T09:00")
        let first = rig.swipe(2002, at: "r-vault")
        #expect(first.gateReasons == [.awaitingMoreCards] && first.lock(DoorPlanTests.vault) == [])
        #expect(first.events.first?.granted == false)
        #expect(first.events.first?.detail.contains { $0.0 == "cards_needed" && $0.1 == .int(2) } == true)
        #expect(rig.site.lastDecision["r-vault"]?.reason == .awaitingMoreCards)
        _ = rig.wait(4)
        #expect(rig.swipe(2002, at: "r-vault").gateReasons == [.awaitingMoreCards], "the same person again: still one")
        let second = rig.swipe(2001, at: "r-vault-2")
        #expect(second.gateReasons == [.granted] && second.lock(DoorPlanTests.vault) == [true], "the second person, at the other reader")
        #expect(second.events.first?.detail.contains { $0.0 == "with" && $0.1 == .strings(["R1"]) } == true)
        let passages = second.compactMap { if case .record(.passage(let subject, _, _)) = $0 { subject } else { nil } }
        #expect(passages == ["person:R1", "person:M1"], "both pass")
        #expect(rig.wait(5).lock(DoorPlanTests.vault) == [false], "released once, for the unlock time")
        #expect(rig.swipe(2003, at: "r-vault").gateReasons == [.awaitingMoreCards], "the next opening needs two again")
    }

    @Test func aDeniedCardIsNotCountedAndResetsNothing() {
        var rig = PlanRig(at: "2026-12-01T09:00")
        _ = rig.swipe(2002, at: "r-vault")
        #expect(rig.swipe(9999, at: "r-vault").gateReasons == [.unknownCredential])
        #expect(rig.swipe(2001, at: "r-vault").lock(DoorPlanTests.vault) == [true])
    }

    @Test func tooSlowAndTheCollectionStartsOver() {
        var rig = PlanRig(at: "2026-12-01T09:00")
        _ = rig.swipe(2002, at: "r-vault")
        _ = rig.wait(30)
        #expect(rig.swipe(2001, at: "r-vault").gateReasons == [.awaitingMoreCards], "30 s later: counted as the first")
        #expect(rig.swipe(2003, at: "r-vault-2").gateReasons == [.granted])
    }

    @Test func aDoorHeldOpenByAnOperatorAsksForOneCard() {
        var rig = PlanRig(at: "2026-12-01T09:00", modes: ["vault": .alwaysOpen])
        #expect(rig.swipe(2002, at: "r-vault").gateReasons == [.granted])
        #expect(rig.site.multiCards["vault"] == nil)
    }
}
