import AccessCore
import AccessTestSupport
import Testing

/// A small site to step by hand: a gate door with a contact and an exit button, a building door
/// (not an escape route), a barrier lane, a fence zone with a siren, an emergency zone, linkage.
struct SiteRig {
    static let zone = Fixtures.shanghai
    static let portals = [
        Portal(id: "gate-in", kind: .door, direction: .in, fromArea: "outside", toArea: "community", readers: ["r-gate"]),
        Portal(id: "store-door", kind: .door, direction: .in, fromArea: "community", toArea: "store", readers: ["r-store"]),
        Portal(id: "lane-in", kind: .barrier, direction: .in, fromArea: "outside", toArea: "community", readers: ["lpr-in"]),
        Portal(id: "fence-3", kind: .fence, direction: .both, fromArea: "outside", toArea: "community"),
        Portal(id: "fence-4", kind: .fence, direction: .both, fromArea: "outside", toArea: "community"),
    ]
    /// 2026-12-01 09:00 in Shanghai, a Tuesday.
    static let morning = Fixtures.at("2026-12-01T09:00") * 1_000_000

    var site: Site
    var now: SiteTime

    init(wall: Int64 = morning, armSchedule: String? = nil) {
        let rules = SiteRules(controllerID: "site-1", zone: Self.zone, portals: Self.portals)
        var b = RosterIndex.Builder(rules: rules)
        b.addHouse(id: "H1", building: "")
        b.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]))
        b.addCredential(Credential(kind: .card, value: "1001", owner: .person("P1")))
        b.addCredential(Credential(kind: .pin, value: Fixtures.pin("2468"), owner: .person("P1")))
        b.addCredential(Credential(kind: .plate, value: "京A12345", owner: .person("P1")))
        // An arm schedule for the fence: nights only.
        if let armSchedule, let night = try? Schedule(name: armSchedule, specs: ["daily 22:00-24:00", "daily 00:00-06:00"]) {
            b.addSchedule(night)
        }
        let layout = SiteLayout(
            rules: rules,
            doors: [
                SiteLayout.Door(id: "gate", portals: ["gate-in"], config: DoorConfig(unlockSeconds: 5, heldOpenSeconds: 30),
                                contact: "gate.contact", exitButton: "gate.exit"),
                SiteLayout.Door(id: "store", portals: ["store-door"], config: DoorConfig(unlockSeconds: 3, escapeRoute: false)),
            ],
            lanes: [SiteLayout.Lane(portal: "lane-in", device: "gate-1", config: BarrierLaneConfig(closeDelaySeconds: 2))],
            zones: [
                SiteLayout.Zone(portal: "fence-3", device: "fence-host", zone: 3, armed: true, armSchedule: "night", outputs: ["siren"]),
                SiteLayout.Zone(portal: "fence-4", device: "fence-host", zone: 4, emergency: true, outputs: ["siren"]),
            ],
            linkage: SiteLayout.Linkage(fire: ["fire"], call: ["call"], tamper: ["tamper"]))
        now = SiteTime(mono: 1_000_000_000, wall: wall)
        site = Site(layout: layout, policy: AccessPolicy(rules: rules, roster: b.finish(), pinKey: Fixtures.pinKey),
                    clock: EventClock(lastLoggedMicros: 0, wall: wall, mono: now.mono))
    }

    mutating func step(_ input: SiteInput) -> [SiteEffect] { site.step(input, at: now) }

    /// Moves both clocks on and ticks.
    mutating func wait(_ seconds: Double) -> [SiteEffect] {
        now = now.advanced(bySeconds: seconds)
        return step(.tick)
    }
}

extension [SiteEffect] {
    var events: [AccessEvent] { compactMap { if case .log(let e) = $0 { e } else { nil } } }
    var reasons: [EventReason] { events.compactMap(\.reason) }
    var locks: [SiteEffect] { filter { if case .lock = $0 { true } else { false } } }
    var commands: [FieldCommand] { compactMap { if case .command(let c, _) = $0 { c } else { nil } } }
    var replies: [SiteReply] { compactMap { if case .reply(let r) = $0 { r } else { nil } } }
    var outputs: [String: Bool] {
        var out: [String: Bool] = [:]
        for case .output(let name, let on) in self { out[name] = on }
        return out
    }
}

@Suite("The site as a value: inputs in, effects out, time moved by hand")
struct SiteTests {
    @Test func startLocksEveryDoorArmsTheZonesAndLogsTheStart() {
        var rig = SiteRig()
        let effects = rig.step(.start(modes: ["store-door": .alwaysOpen]))
        #expect(effects.reasons.first == .started)
        #expect(effects.locks == [.lock(door: 0, released: false), .lock(door: 1, released: false), .lock(door: 1, released: true)])
        #expect(effects.commands == [.arm(zone: 3, armed: true), .arm(zone: 4, armed: true)])
        #expect(!effects.reasons.contains(.clockUnset))
    }

    @Test func aGrantReleasesTheLockBeforeAnythingElseAndRelocksWhenTheTimeRunsOut() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        let swipe = rig.step(.credential(reader: "r-gate", .card(1001)))
        #expect(swipe.reasons == [.granted, .released])
        #expect(swipe.locks == [.lock(door: 0, released: true)])
        #expect(swipe.contains(.record(.passage(subject: "person:P1", area: "community", at: SiteRig.morning / 1_000_000))))
        #expect(rig.site.nextDeadline == rig.now.mono + 5_000_000_000)
        #expect(rig.wait(4.9).locks.isEmpty, "still released before its five seconds")
        let later = rig.wait(0.2)
        #expect(later.locks == [.lock(door: 0, released: false)] && later.reasons == [.relocked])
        #expect(rig.site.counters.decisions == 1 && rig.site.counters.granted == 1)
    }

    @Test func theLockIsHandedOverTheMomentItIsDecidedAndTheLogStillShowsTheDecisionFirst() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        var driven: [SiteEffect] = []
        let swipe = rig.site.step(.credential(reader: "r-gate", .card(1001)), at: rig.now) { driven.append($0) }
        #expect(driven == [.lock(door: 0, released: true)], "only lines are handed over")
        #expect(swipe.reasons == [.granted, .released], "the access event still comes first in the log")
        #expect(swipe.locks == [.lock(door: 0, released: true)])
    }

    @Test func aPinTypedKeyByKeyDecidesOnlyAtTheHashAndExpiresWhenLeftHalfTyped() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        for d in [2, 4, 6] as [UInt8] { #expect(rig.step(.key(reader: "r-gate", .digit(d))).isEmpty) }
        _ = rig.wait(11)  // the pause outlasts the keypad's timeout: the next person starts afresh
        #expect(rig.step(.key(reader: "r-gate", .digit(8))).isEmpty)
        #expect(rig.step(.key(reader: "r-gate", .hash)).reasons == [.unknownCredential])
        for d in [2, 4, 6, 8] as [UInt8] { _ = rig.step(.key(reader: "r-gate", .digit(d))) }
        let submitted = rig.step(.key(reader: "r-gate", .hash))
        #expect(submitted.reasons == [.granted, .released])
        #expect(submitted.events.first?.credential == nil, "a PIN never reaches the log")
    }

    @Test func fireReleasesEscapeDoorsAndRaisesBarriersLatchedUntilResetAfterItClears() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        let fire = rig.step(.input(line: "fire", active: true))
        #expect(fire.reasons == [.fireAlarm, .fireRelease, .released, .barrierFireRaise])
        #expect(fire.locks == [.lock(door: 0, released: true)], "the store door is not an escape route")
        #expect(fire.commands == [.barrier(.open)])
        #expect(rig.step(.input(line: "fire", active: true)).isEmpty, "a level reported again is not a new fire")
        #expect(rig.wait(60).locks.isEmpty, "latched: the unlock time does not relock it")
        #expect(!rig.step(.portalCommand(portal: "gate-in", .resetAlarm, operator: "op")).reasons.contains(.fireReset),
                "no reset while the panel still signals fire")
        #expect(rig.step(.input(line: "fire", active: false)).reasons == [.fireAlarmCleared])
        let reset = rig.step(.portalCommand(portal: "gate-in", .resetAlarm, operator: "op"))
        #expect(reset.reasons == [.resetAlarm, .alarmReset, .fireReset, .relocked])
        #expect(reset.locks == [.lock(door: 0, released: false)])
    }

    @Test(arguments: [
        // (wall clock step in seconds, the event it must give)
        (10.0, EventReason?.some(.clockJump)), (-30.0, .some(.clockJump)), (1.5, nil),
    ])
    func aWallClockStepIsAnEventAndSmallDriftIsNot(step: Double, expected: EventReason?) {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        rig.now.wall += Int64(step * 1_000_000)
        let tick = rig.step(.tick)
        #expect(tick.reasons.first == expected)
        if expected != nil {
            #expect(tick.contains(.notice(.clock(.jump(from: SiteRig.morning, to: rig.now.wall)))))
            #expect(tick.events.first?.detail.first { $0.0 == "jump_seconds" }?.1 == .int(Int64(step)))
        }
    }

    @Test func anUnsetClockRefusesTimeBasedDecisionsAndNeverStampsAnEventBefore2020() {
        let unset: Int64 = 86_400 * 1_000_000  // 1970-01-02: a dead RTC battery
        var rig = SiteRig(wall: unset)
        let start = rig.step(.start(modes: [:]))
        #expect(start.reasons.contains(.clockUnset) && start.contains(.notice(.clockUnsetAtStart)))
        let swipe = rig.step(.credential(reader: "r-gate", .card(1001)))
        #expect(swipe.reasons == [.clockUnset] && swipe.locks.isEmpty)
        #expect(swipe.events.allSatisfy { $0.timeMicros >= EventClock.earliestTrustedMicros })
        rig.now.wall = SiteRig.morning
        #expect(rig.step(.tick).reasons == [.clockSet])
        rig.now.mono += 3_000_000_000  // beyond the repeat-read window: a new presentation of the card
        #expect(rig.step(.credential(reader: "r-gate", .card(1001))).reasons.first == .granted)
    }

    @Test func aLaneNeverLowersOntoAVehicle() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        #expect(rig.step(.credential(reader: "lpr-in", .plate("京A12345"))).commands == [.barrier(.open)])
        _ = rig.step(.barrierStatus(device: "gate-1", position: .open, loopOccupied: false, fault: false))
        _ = rig.step(.barrierStatus(device: "gate-1", position: .open, loopOccupied: true, fault: false))
        let passed = rig.step(.barrierStatus(device: "gate-1", position: .open, loopOccupied: false, fault: false))
        #expect(passed.reasons == [.vehiclePassed])
        // The next car rolls on before the close delay ends: the arm stays up.
        _ = rig.step(.barrierStatus(device: "gate-1", position: .open, loopOccupied: true, fault: false))
        #expect(!rig.wait(3).commands.contains(.barrier(.close)))
        // An operator's close with a car on the loop is held, not sent.
        let held = rig.step(.portalCommand(portal: "lane-in", .close, operator: "op"))
        #expect(held.reasons == [.close, .closeHeld] && held.commands.isEmpty)
        let gone = rig.step(.barrierStatus(device: "gate-1", position: .open, loopOccupied: false, fault: false))
        #expect(gone.reasons == [.vehiclePassed])
        #expect(rig.wait(2).commands == [.barrier(.close)])
        // Closing, and a car arrives under the arm: raised again at once.
        let reversed = rig.step(.barrierStatus(device: "gate-1", position: .closing, loopOccupied: true, fault: false))
        #expect(reversed.commands == [.barrier(.open)] && reversed.reasons.contains(.reversed))
    }

    @Test func anOfflineGateIsAFaultAndTheDoorsCarryOn() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        let offline = rig.step(.deviceOnline(device: "gate-1", online: false))
        #expect(offline.reasons == [.deviceOffline, .barrierFault])
        #expect(offline.events.first?.type == .alarm)
        #expect(rig.step(.credential(reader: "r-gate", .card(1001))).reasons == [.granted, .released])
    }

    @Test func operatorModesHoldAndAreAudited() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        let closed = rig.step(.portalCommand(portal: "gate-in", .alwaysClosed, operator: "alice"))
        #expect(closed.replies == [.done(["released": false])])
        #expect(closed.contains(.record(.operatorCommand(portals: ["gate-in"], action: "door.always-closed", mode: .alwaysClosed, operator: "alice"))))
        #expect(closed.events.first?.type == .operator && closed.events.first?.detail.first?.1 == .string("alice"))
        #expect(rig.step(.credential(reader: "r-gate", .card(1001))).reasons == [.portalLocked])
        #expect(rig.step(.input(line: "gate.exit", active: true)).reasons == [.requestIgnored])
        let open = rig.step(.portalCommand(portal: "gate-in", .alwaysOpen, operator: "alice"))
        #expect(open.reasons == [.alwaysOpen, .modeAlwaysOpen, .released])
        #expect(rig.wait(3600).locks.isEmpty, "always-open does not relock on a timer")
        #expect(rig.step(.portalCommand(portal: "nowhere", .open, operator: "alice")).replies
                == [.unknownPortal("portal nowhere has no door, lane or fence zone")])
        let lane = rig.step(.portalCommand(portal: "lane-in", .alwaysOpen, operator: "bob"))
        #expect(lane.commands == [.barrier(.unlock), .barrier(.open), .barrier(.lock)])
        #expect(lane.contains(.record(.operatorCommand(portals: ["lane-in"], action: "barrier.always-open", mode: .alwaysOpen, operator: "bob"))))
    }

    @Test func aDoorHeldOpenAlarmsAndAForcedDoorAlarmsEveryTime() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        #expect(rig.step(.input(line: "gate.contact", active: false)).isEmpty, "the first report is a state")
        #expect(rig.step(.input(line: "gate.contact", active: true)).reasons == [.opened, .forcedOpen])
        #expect(rig.wait(30).reasons == [.heldOpen])
        _ = rig.step(.input(line: "gate.contact", active: false))
        #expect(rig.step(.input(line: "gate.contact", active: true)).reasons == [.opened, .forcedOpen])
    }

    @Test func fenceAlarmsLatchSoundTheSirenAndClearOnlyOnceTheHostHasBeenReset() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        let broken = rig.step(.fenceStatus(device: "fence-host", zones: [FenceZoneReport(zone: 3, armed: true, alarms: [.broken])]))
        #expect(broken.reasons == [.fenceBroken] && broken.outputs == ["siren": true])
        // The cause goes away: still latched.
        #expect(rig.step(.fenceStatus(device: "fence-host", zones: [FenceZoneReport(zone: 3, armed: true)])).isEmpty)
        let reset = rig.step(.fenceCommand(portal: "fence-3", .reset, operator: "op"))
        #expect(reset.commands == [.reset(zone: 3)] && reset.outputs.isEmpty)
        #expect(rig.site.zones[0].resetPending)
        let done = rig.step(.fenceResetDone(device: "fence-host", zone: 3, zones: [FenceZoneReport(zone: 3, armed: true)]))
        #expect(done.reasons == [.alarmReset] && done.outputs == ["siren": false])
        #expect(!rig.site.zones[0].resetPending && rig.site.zones[0].machine.latched.isEmpty)
    }

    @Test func anEmergencyZoneRefusesToBeDisarmedAndSaysWhy() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        let refused = rig.step(.fenceCommand(portal: "fence-4", .disarm, operator: "op"))
        #expect(refused.replies == [.refused("fence-4 is an emergency zone: it is armed always and cannot be disarmed")])
        #expect(refused.reasons == [.fenceDisarm, .disarmRefused] && refused.commands.isEmpty)
        let disarmed = rig.step(.fenceCommand(portal: "fence-3", .disarm, operator: "op"))
        #expect(disarmed.replies == [.done(["armed": false, "alarm": false])] && disarmed.commands == [.arm(zone: 3, armed: false)])
    }

    @Test func aHostThatLostItsArmStateIsPutBackAndAnOfflineHostIsACommFailAlarm() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        let found = rig.step(.fenceStatus(device: "fence-host", zones: [FenceZoneReport(zone: 3, armed: false)]))
        #expect(found.commands == [.arm(zone: 3, armed: true)])
        let offline = rig.step(.deviceOnline(device: "fence-host", online: false))
        #expect(offline.reasons == [.deviceOffline, .fenceCommFail, .fenceCommFail])
        let back = rig.step(.deviceOnline(device: "fence-host", online: true))
        #expect(back.reasons == [.deviceOnline, .commRestored, .commRestored])
        #expect(back.commands == [.arm(zone: 3, armed: true), .arm(zone: 4, armed: true)])
    }

    @Test func anArmScheduleArmsAtNightAndAnOperatorHoldsUntilItNextChanges() {
        var rig = SiteRig(armSchedule: "night")
        _ = rig.step(.start(modes: [:]))
        #expect(rig.step(.tick).commands == [.arm(zone: 3, armed: false)], "09:00 is outside the night schedule")
        _ = rig.step(.fenceCommand(portal: "fence-3", .arm, operator: "op"))
        #expect(rig.wait(3600).commands.isEmpty, "the operator's arm holds while the schedule is unchanged")
        #expect(rig.wait(12 * 3600).commands.isEmpty, "22:00: the schedule turns on; the zone is armed already")
        #expect(rig.wait(8 * 3600).commands == [.arm(zone: 3, armed: false)], "06:00: off again")
    }

    @Test func aMissingArmScheduleIsSaidOnceAndTheZoneKeepsItsState() {
        var rig = SiteRig()  // no schedule named "night" in the roster
        _ = rig.step(.start(modes: [:]))
        #expect(rig.step(.tick) == [.notice(.armScheduleMissing(schedule: "night", portal: "fence-3"))])
        #expect(rig.step(.tick).isEmpty)
    }

    @Test func aNewRosterDecidesTheNextSwipe() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        var b = RosterIndex.Builder(rules: rig.site.layout.rules)
        b.addHouse(id: "H1", building: "")
        let empty = AccessPolicy(rules: rig.site.layout.rules, roster: b.finish())
        #expect(rig.step(.roster(empty)).isEmpty)
        #expect(rig.step(.credential(reader: "r-gate", .card(1001))).reasons == [.unknownCredential])
    }

    @Test func garbledFramesOverrunsAndUnboundReadersAreCountedAndLogged() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        #expect(rig.step(.garbled(reader: "r-gate", problem: "parity")).reasons == [.garbledFrame])
        #expect(rig.step(.overrun(line: "r-gate.d0")).reasons == [.gpioOverrun])
        #expect(rig.step(.credential(reader: "r-nowhere", .card(1001))).reasons == [.unboundReader])
        #expect(rig.site.counters.garbled == 1 && rig.site.counters.overruns == 1 && rig.site.counters.decisions == 0)
    }

    @Test func stopPutsEveryLockInItsStoppedState() {
        var rig = SiteRig()
        _ = rig.step(.start(modes: [:]))
        let stop = rig.step(.stop)
        #expect(stop.locks == [.lock(door: 0, released: false), .lock(door: 1, released: false)])
        #expect(stop.reasons == [.stopped])
    }
}

@Suite("The event vocabulary")
struct EventVocabularyTests {
    @Test func everyStateMachineEventAndDecisionReasonHasAnEventReason() {
        for r in Reason.allCases { #expect(EventReason(r).rawValue == r.rawValue) }
        for e in DoorEvent.allCases { #expect(EventReason(e).rawValue == e.rawValue) }
        for e in BarrierLaneEvent.allCases { #expect(EventReason(e).rawValue.hasSuffix(e.rawValue)) }
        for k in FenceAlarmKind.allCases { #expect(EventReason(fenceAlarm: k).rawValue == "fence_\(k.rawValue)") }
        for c in DoorCommand.allCases { #expect(EventReason(c).rawValue == c.rawValue) }
        #expect(Set(EventReason.allCases.map(\.rawValue)).count == EventReason.allCases.count)
    }
}
