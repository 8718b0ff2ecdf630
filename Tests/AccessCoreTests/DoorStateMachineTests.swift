import AccessCore
import Testing

@Suite("Door state machine")
struct DoorStateMachineTests {
    let s: UInt64 = 1_000_000_000

    /// A started door whose contact has reported closed, as the board does at start.
    func door(_ config: DoorConfig = DoorConfig(unlockSeconds: 5, heldOpenSeconds: 30), contactAtStart: Bool? = false) -> DoorStateMachine {
        var d = DoorStateMachine(config: config)
        _ = d.start()
        if let contactAtStart { _ = d.handle(.contact(open: contactAtStart), at: 0) }
        return d
    }

    @Test func startsLockedAndStopsInTheConfiguredSafeState() {
        var secure = DoorStateMachine(config: DoorConfig(releasedWhenStopped: false))
        #expect(secure.start() == [.lock(released: false)])
        #expect(secure.stop() == [.lock(released: false)])
        var failSafe = DoorStateMachine(config: DoorConfig(releasedWhenStopped: true))
        #expect(failSafe.start() == [.lock(released: false)], "locked while running")
        #expect(failSafe.stop() == [.lock(released: true)], "released, as unpowered, when stopped")
    }

    @Test func grantReleasesForTheUnlockTimeThenRelocks() {
        var d = door()
        #expect(d.handle(.granted, at: 10 * s) == [.lock(released: true), .event(.released)])
        #expect(d.nextDeadline == 15 * s)
        #expect(d.handle(.tick, at: 15 * s - 1) == [])
        #expect(d.handle(.tick, at: 15 * s) == [.lock(released: false), .event(.relocked)])
        #expect(d.nextDeadline == nil)
    }

    @Test func aSecondGrantExtendsTheReleaseWithoutPulsingTheRelay() {
        var d = door()
        _ = d.handle(.granted, at: 10 * s)
        #expect(d.handle(.granted, at: 12 * s) == [])
        #expect(d.handle(.tick, at: 15 * s) == [])
        #expect(d.handle(.tick, at: 17 * s) == [.lock(released: false), .event(.relocked)])
    }

    @Test func relocksAsSoonAsTheDoorCloses() {
        var d = door()
        _ = d.handle(.granted, at: 10 * s)
        #expect(d.handle(.contact(open: true), at: 11 * s) == [.event(.opened)])
        #expect(d.handle(.contact(open: false), at: 12 * s) == [.event(.closed), .lock(released: false), .event(.relocked)])
    }

    @Test func heldOpenAlarmAfterTheTimeoutClearedWhenClosed() {
        var d = door()
        _ = d.handle(.granted, at: 0)
        _ = d.handle(.contact(open: true), at: 1 * s)
        _ = d.handle(.tick, at: 5 * s)
        #expect(d.nextDeadline == 31 * s)
        #expect(d.handle(.tick, at: 31 * s - 1) == [])
        #expect(d.handle(.tick, at: 31 * s) == [.event(.heldOpen)])
        #expect(d.handle(.tick, at: 40 * s) == [], "raised once")
        #expect(d.handle(.contact(open: false), at: 41 * s) == [.event(.closed), .event(.heldOpenCleared)])
    }

    @Test func openingWhileLockedIsForced() {
        var d = door()
        #expect(d.handle(.contact(open: true), at: 3 * s) == [.event(.opened), .event(.forcedOpen)])
        #expect(d.forcedOpenActive)
        _ = d.handle(.contact(open: false), at: 4 * s)
        #expect(d.handle(.contact(open: true), at: 5 * s) == [.event(.opened), .event(.forcedOpen)],
                "a second intrusion is reported while the first awaits reset")
        _ = d.handle(.contact(open: false), at: 6 * s)
        _ = d.handle(.command(.resetAlarm), at: 7 * s)
        #expect(!d.forcedOpenActive, "latched until reset")
        #expect(d.handle(.contact(open: true), at: 8 * s) == [.event(.opened), .event(.forcedOpen)])
    }

    @Test func aDoorFoundOpenAtStartIsNotForcedButIsTimed() {
        var d = door(contactAtStart: nil)
        #expect(d.handle(.contact(open: true), at: 1 * s) == [.event(.opened)], "the report at start is a state")
        #expect(!d.forcedOpenActive)
        #expect(d.handle(.tick, at: 31 * s) == [.event(.heldOpen)], "held open from when it was found")
        _ = d.handle(.contact(open: false), at: 32 * s)
        #expect(d.handle(.contact(open: true), at: 33 * s) == [.event(.opened), .event(.forcedOpen)])
    }

    @Test func exitButtonReleasesLikeAGrant() {
        var d = door()
        #expect(d.handle(.exitButton, at: 0) == [.lock(released: true), .event(.released)])
        #expect(d.handle(.contact(open: true), at: 1 * s) == [.event(.opened)])
    }

    @Test func modes() {
        var d = door()
        #expect(d.handle(.command(.alwaysOpen), at: 0) == [.event(.modeAlwaysOpen), .lock(released: true), .event(.released)])
        #expect(d.handle(.contact(open: true), at: 1 * s) == [.event(.opened)], "no forced-open while always-open")
        #expect(d.handle(.tick, at: 100 * s) == [], "no held-open while always-open")
        _ = d.handle(.contact(open: false), at: 101 * s)
        #expect(d.handle(.command(.alwaysClosed), at: 102 * s) == [.event(.modeAlwaysClosed), .lock(released: false), .event(.relocked)])
        #expect(d.handle(.granted, at: 103 * s) == [.event(.requestIgnored)])
        #expect(d.handle(.exitButton, at: 103 * s) == [.event(.requestIgnored)])
        #expect(d.handle(.command(.normal), at: 104 * s) == [.event(.modeNormal)])
        #expect(d.handle(.granted, at: 105 * s) == [.lock(released: true), .event(.released)])
    }

    @Test func fireReleasesEscapeDoorsAndLatchesUntilResetAfterItClears() {
        var d = door()
        _ = d.handle(.command(.alwaysClosed), at: 0)
        #expect(d.handle(.fire(active: true), at: 1 * s) == [.event(.fireRelease), .lock(released: true), .event(.released)])
        #expect(d.handle(.command(.close), at: 2 * s) == [.event(.requestIgnored)])
        #expect(d.handle(.contact(open: true), at: 3 * s) == [.event(.opened)], "no forced-open during fire")
        #expect(d.handle(.tick, at: 100 * s) == [], "no held-open during fire")
        // Reset while the panel still asserts: the latch holds.
        #expect(d.handle(.command(.resetAlarm), at: 101 * s) == [.event(.alarmReset)])
        _ = d.handle(.fire(active: false), at: 102 * s)
        #expect(d.released, "latched after the input clears")
        #expect(d.handle(.command(.resetAlarm), at: 103 * s) == [.event(.alarmReset), .event(.fireReset), .lock(released: false), .event(.relocked)])
        #expect(d.mode == .alwaysClosed)
    }

    @Test func nonEscapeDoorsIgnoreFire() {
        var d = door(DoorConfig(escapeRoute: false))
        #expect(d.handle(.fire(active: true), at: 0) == [])
        #expect(!d.released)
    }

    @Test func doorsWithoutContactsNeverAlarm() {
        var d = door(DoorConfig(hasContact: false))
        #expect(d.handle(.contact(open: true), at: 0) == [])
        _ = d.handle(.granted, at: 0)
        #expect(d.handle(.tick, at: 1000 * s) == [.lock(released: false), .event(.relocked)])
    }
}
