import AccessCore
import AccessTestSupport
import Testing

/// A site with a card-and-PIN gate, a PIN-only door and a plain door, stepped by hand.
struct GateRig {
    static let zone = Fixtures.shanghai
    /// 2026-12-01 09:00 in Shanghai, a Tuesday.
    static let morning = Fixtures.at("2026-12-01T09:00") * 1_000_000
    static let secret: [UInt8] = Array("gate-secret-0123456789abcdef0123".utf8)

    var site: Site
    var now: SiteTime

    init(wall: Int64 = morning, verify: VerifyMode = .cardAndPin, verifySchedule: String? = nil, gate: GateSettings = GateSettings(),
         interlocks: [[String]] = []) {
        let portals = [
            Portal(id: "gate-in", readers: ["r-gate"], verify: verify, verifySchedule: verifySchedule),
            Portal(id: "pin-door", fromArea: "community", toArea: "club", readers: ["r-pin"], verify: .pin),
            Portal(id: "plain-door", fromArea: "community", toArea: "gym", readers: ["r-plain", "qr-plain"]),
        ]
        let rules = SiteRules(controllerID: "gate-1", zone: Self.zone, portals: portals)
        var b = RosterIndex.Builder(rules: rules)
        b.addSchedule(try! Schedule(name: "night", specs: ["daily 22:00-24:00", "daily 00:00-06:00"]))
        b.addHouse(id: "H1", building: "")
        for (id, card, pin) in [("P1", "1001", "2468"), ("P2", "1002", "1357")] {
            b.addPerson(Person(id: id, houses: [HouseBinding(houseID: "H1", role: .owner)]))
            b.addCredential(Credential(kind: .card, value: card, owner: .person(id)))
            b.addCredential(Credential(kind: .pin, value: Fixtures.pin(pin), owner: .person(id)))
        }
        b.addCredential(Credential(kind: .pin, value: Fixtures.pin("9753"), owner: .person("P1"), duress: true))
        b.addVisitorPass(VisitorPass(id: "V1", houseID: "H1", visitorName: "王芳", validFrom: Self.morning / 1_000_000 - 3600,
                                     validUntil: Self.morning / 1_000_000 + 3600, maxUses: 3))
        let layout = SiteLayout(rules: rules, doors: [
            SiteLayout.Door(id: "gate", portals: ["gate-in"], config: DoorConfig(unlockSeconds: 5)),
            SiteLayout.Door(id: "pin", portals: ["pin-door"], config: DoorConfig(unlockSeconds: 5)),
            SiteLayout.Door(id: "plain", portals: ["plain-door"], config: DoorConfig(unlockSeconds: 5), contact: "plain.contact",
                            exitButton: "plain.exit"),
        ], gate: gate, interlocks: interlocks)
        now = SiteTime(mono: 1_000_000_000, wall: wall)
        site = Site(layout: layout, policy: AccessPolicy(rules: rules, roster: b.finish(), passCodes: VisitorPassCode(secret: Self.secret), pinKey: Fixtures.pinKey),
                    clock: EventClock(lastLoggedMicros: 0, wall: wall, mono: now.mono))
        _ = site.step(.start(modes: [:]), at: now)
    }

    mutating func swipe(_ card: UInt64, at reader: String = "r-gate") -> [SiteEffect] {
        site.step(.credential(reader: reader, .card(card)), at: now)
    }

    /// Types `keys` (digits, `*`, `#`) on a reader's keypad; the effects of every key.
    mutating func type(_ keys: String, at reader: String = "r-gate") -> [SiteEffect] {
        var out: [SiteEffect] = []
        for c in keys {
            let key: KeypadKey = c == "#" ? .hash : c == "*" ? .star : .digit(UInt8(c.asciiValue! - 48))
            out += site.step(.key(reader: reader, key), at: now)
        }
        return out
    }

    mutating func wait(_ seconds: Double) -> [SiteEffect] {
        now = now.advanced(bySeconds: seconds)
        return site.step(.tick, at: now)
    }
}

extension [SiteEffect] {
    /// The decisions' and alarms' reasons (not the doors' own events).
    var gateReasons: [EventReason] { events.filter { $0.type == .access || $0.type == .alarm }.compactMap(\.reason) }
}

@Suite("Verification modes, wrong attempts and repeat reads")
struct GateRulesTests {
    struct ModeCase: CustomTestStringConvertible, Sendable {
        var mode: VerifyMode
        var credential: PresentedCredential
        var reason: Reason
        var testDescription: String { "\(mode.rawValue): \(credential.kind.rawValue) → \(reason.rawValue)" }
    }

    static let modeCases: [ModeCase] = [
        ModeCase(mode: .card, credential: .card(1001), reason: .granted),
        ModeCase(mode: .card, credential: .pin("2468"), reason: .noRight),
        ModeCase(mode: .pin, credential: .card(1001), reason: .noRight),
        ModeCase(mode: .pin, credential: .pin("2468"), reason: .granted),
        ModeCase(mode: .cardOrPin, credential: .card(1001), reason: .granted),
        ModeCase(mode: .cardOrPin, credential: .pin("2468"), reason: .granted),
        ModeCase(mode: .cardAndPin, credential: .card(1001), reason: .pinRequired),
        ModeCase(mode: .cardAndPin, credential: .pin("2468"), reason: .noRight),
        // A refusal keeps its own reason: the mode is about how a valid person proves it.
        ModeCase(mode: .cardAndPin, credential: .card(9999), reason: .unknownCredential),
        ModeCase(mode: .pin, credential: .pin("0000"), reason: .unknownCredential),
    ]

    @Test(arguments: modeCases)
    func eachModeTakesTheCredentialsItNames(_ c: ModeCase) throws {
        let rig = GateRig(verify: c.mode)
        let d = try rig.site.policy.decide(DecisionRequest(portal: "gate-in", credential: c.credential, at: GateRig.morning / 1_000_000))
        #expect(d.reason == c.reason)
        #expect(d.granted == (c.reason == .granted))
        if c.reason == .pinRequired { #expect(d.personID == "P1", "the card's holder is known: their PIN is awaited") }
    }

    @Test func cardThenTheHoldersOwnPinOpensAndNothingOpensBefore() {
        var rig = GateRig()
        let card = rig.swipe(1001)
        #expect(card.gateReasons == [.pinRequired])
        #expect(card.locks.isEmpty)
        #expect(rig.type("246").locks.isEmpty)
        let pin = rig.type("8#")
        #expect(pin.locks == [.lock(door: 0, released: true)])
        #expect(pin.events.first?.reason == .granted && pin.events.first?.credentialKind == .card && pin.events.first?.personID == "P1")
        #expect(pin.events.allSatisfy { $0.credential != "2468" }, "a PIN is never logged")
        #expect(rig.site.lastDecision["r-gate"]?.granted == true)
    }

    @Test func anotherPersonsPinAfterTheCardIsAWrongPin() {
        var rig = GateRig()
        _ = rig.swipe(1001)
        let wrong = rig.type("1357#")
        #expect(wrong.gateReasons == [.wrongPin])
        #expect(wrong.locks.isEmpty)
        // The card must be shown again: the PIN alone opens nothing at a card-and-PIN gate.
        #expect(rig.type("2468#").gateReasons == [.noRight])
    }

    @Test func noPinInTimeAfterTheCardIsAPinTimeoutOnce() {
        var rig = GateRig()
        _ = rig.swipe(1001)
        #expect(rig.wait(14).gateReasons.isEmpty)
        let timeout = rig.wait(2)
        #expect(timeout.gateReasons == [.pinTimeout])
        #expect(timeout.events.first?.personID == "P1" && timeout.events.first?.granted == false)
        #expect(rig.wait(30).gateReasons.isEmpty, "said once")
        #expect(rig.type("2468#").gateReasons == [.noRight], "a PIN after the timeout is a PIN alone")
    }

    @Test func aPinTypedJustAfterTheDeadlineBeforeTheTickIsAPinTimeoutNotAGrant() {
        var rig = GateRig()
        _ = rig.swipe(1001)
        rig.now = rig.now.advanced(bySeconds: 15.5)
        let late = rig.type("2468#")
        #expect(late.gateReasons == [.pinTimeout])
        #expect(late.locks.isEmpty)
    }

    @Test func theModeAppliesOnlyWhileItsScheduleIsOn() {
        var day = GateRig(verifySchedule: "night")
        #expect(day.swipe(1001).gateReasons == [.granted])
        var night = GateRig(wall: Fixtures.at("2026-12-01T23:00") * 1_000_000, verifySchedule: "night")
        #expect(night.swipe(1001).gateReasons == [.pinRequired])
        var missing = GateRig(verifySchedule: "no-such-schedule")
        #expect(missing.swipe(1001).gateReasons == [.pinRequired], "a schedule missing from the roster leaves the mode in force")
    }

    @Test func fiveFailedAttemptsLockTheReaderWithAnAlarmAndItRefusesEverythingUntilTheLockoutEnds() {
        var rig = GateRig(verify: .pin)
        for attempt in 1...4 {
            #expect(rig.type("00\(attempt)0#", at: "r-pin").gateReasons == [.unknownCredential])
            _ = rig.wait(5)
        }
        let fifth = rig.type("0050#", at: "r-pin")
        #expect(fifth.gateReasons == [.unknownCredential, .readerLocked])
        #expect(fifth.events.last?.type == .alarm && fifth.events.last?.portal == "pin-door")
        let locked = rig.type("2468#", at: "r-pin")
        #expect(locked.gateReasons == [.readerLocked])
        #expect(locked.locks.isEmpty && locked.events.first?.personID == nil, "a locked reader says nothing of who it was")
        #expect(rig.swipe(1001, at: "r-plain").gateReasons == [.granted], "only that reader is locked")
        _ = rig.wait(179)
        #expect(rig.type("2468#", at: "r-pin").gateReasons == [.readerLocked])
        _ = rig.wait(2)
        #expect(rig.type("2468#", at: "r-pin").gateReasons == [.granted])
    }

    @Test func aGrantInBetweenAndAttemptsSpreadBeyondTheWindowDoNotLock() {
        var rig = GateRig(verify: .pin)
        for _ in 1...4 { _ = rig.type("0000#", at: "r-pin") }
        #expect(rig.type("2468#", at: "r-pin").gateReasons == [.granted])
        for _ in 1...4 { #expect(rig.type("0000#", at: "r-pin").gateReasons == [.unknownCredential]) }
        _ = rig.wait(61)
        #expect(rig.type("0000#", at: "r-pin").gateReasons == [.unknownCredential], "the first four fell out of the 60 s window")
        var off = GateRig(verify: .pin, gate: GateSettings(wrongAttemptLimit: 0))
        for _ in 1...10 { #expect(off.type("0000#", at: "r-pin").gateReasons == [.unknownCredential]) }
    }

    @Test func wrongPinsAfterCardsCountTowardsTheLockout() {
        var rig = GateRig()
        for i in 1...5 {
            _ = rig.swipe(1001)
            let reasons = rig.type("1357#").gateReasons
            #expect(reasons == (i < 5 ? [.wrongPin] : [.wrongPin, .readerLocked]))
            _ = rig.wait(4)  // beyond the repeat window for the next swipe of the same card
        }
        #expect(rig.swipe(1001).gateReasons == [.readerLocked])
    }

    @Test func theSameCardAtTheSameReaderWithinTheRepeatWindowIsOneDecision() {
        var rig = GateRig(verify: .card)
        #expect(rig.swipe(1001, at: "r-plain").gateReasons == [.granted])
        rig.now = rig.now.advanced(bySeconds: 1)
        #expect(rig.swipe(1001, at: "r-plain").isEmpty, "a bounce: nothing at all")
        #expect(rig.swipe(1002, at: "r-plain").gateReasons == [.granted], "another card is another read")
        #expect(rig.swipe(1001, at: "r-gate").gateReasons == [.granted], "another reader is another read")
        rig.now = rig.now.advanced(bySeconds: 3)
        #expect(rig.swipe(1001, at: "r-plain").gateReasons == [.granted])
        #expect(rig.site.counters.decisions == 4)
    }

    @Test func aBurstOfTheSameVisitorCodeSpendsOneUse() {
        var rig = GateRig()
        let code = VisitorPassCode(secret: GateRig.secret).encode(passID: "V1", expires: GateRig.morning / 1_000_000 + 3600)
        var effects: [SiteEffect] = []
        for _ in 1...5 {
            effects += rig.site.step(.credential(reader: "qr-plain", .qr(code)), at: rig.now)
            rig.now = rig.now.advanced(bySeconds: 0.2)
        }
        #expect(effects.gateReasons == [.granted])
        #expect(effects.filter { $0 == .record(.passUse("V1")) }.count == 1)
    }

    @Test func aDuressPinOpensAsUsualAndRaisesASilentAlarm() {
        var rig = GateRig(verify: .pin)
        let effects = rig.type("9753#", at: "r-pin")
        #expect(effects.locks == [.lock(door: 1, released: true)], "it opens as the person's PIN does")
        #expect(effects.gateReasons == [.granted, .duress])
        let alarm = effects.events.last
        #expect(alarm?.type == .alarm && alarm?.personID == "P1" && alarm?.houseID == "H1" && alarm?.portal == "pin-door")
        #expect(effects.outputs.isEmpty, "silent: no siren, no light")
        #expect(effects.events.first?.detail.contains { $0.0 == "duress" } != true, "the access event looks like any other")
        #expect(rig.type("2468#", at: "r-pin").gateReasons == [.granted], "the person's own PIN raises nothing")
    }

    @Test func aDuressPinAfterTheCardAtACardAndPinGateOpensWithTheAlarm() {
        var rig = GateRig()
        _ = rig.swipe(1001)
        let effects = rig.type("9753#")
        #expect(effects.gateReasons == [.granted, .duress])
        #expect(effects.locks == [.lock(door: 0, released: true)])
        _ = rig.wait(10)
        _ = rig.swipe(1002)
        #expect(rig.type("9753#").gateReasons == [.wrongPin], "another person's duress PIN is just a wrong PIN")
    }

    @Test func ofInterlockedDoorsOnlyOneIsReleasedOrOpenAtATime() {
        var rig = GateRig(verify: .card, interlocks: [["gate", "plain"]])
        #expect(rig.swipe(1001, at: "r-plain").locks == [.lock(door: 2, released: true)])
        let held = rig.swipe(1002)
        #expect(held.gateReasons == [.interlock] && held.locks.isEmpty, "the other door is released")
        _ = rig.wait(6)  // the plain door relocks unopened
        #expect(rig.swipe(1002).gateReasons == [.granted])
        _ = rig.wait(6)
        // The plain door is opened (from inside, say): the gate waits until it is closed again.
        _ = rig.site.step(.input(line: "plain.contact", active: true), at: rig.now)
        _ = rig.wait(4)
        #expect(rig.swipe(1001).gateReasons == [.interlock])
        _ = rig.site.step(.input(line: "plain.contact", active: false), at: rig.now)
        _ = rig.wait(4)
        #expect(rig.swipe(1001).gateReasons == [.granted])
        // While the gate is released, the plain door's exit button is held back too.
        let exit = rig.site.step(.input(line: "plain.exit", active: true), at: rig.now)
        #expect(exit.locks.isEmpty && exit.reasons == [.interlock])
        // Doors outside the group are not held.
        #expect(rig.type("2468#", at: "r-pin").gateReasons == [.granted])
    }
}
