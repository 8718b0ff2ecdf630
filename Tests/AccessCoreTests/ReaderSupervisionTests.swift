import AccessCore
import AccessTestSupport
import Testing

/// Readers' LED and beeper, their tamper switches, and the operator's anti-passback reset, on
/// the site stepped by hand.
@Suite("Reader supervision and feedback")
struct ReaderSupervisionTests {
    typealias Action = ReaderSignalStateMachine.Action
    static let beep = ReaderSignalStateMachine.beepNanos

    /// Each signal's pattern: the changes due at each instant after it (nanoseconds).
    @Test(arguments: [
        (ReaderSignal.granted(ledNanos: 5_000_000_000), [
            (0, [Action(.led, on: true), Action(.beeper, on: true)]), (beep - 1, []), (beep, [Action(.beeper, on: false)]),
            (4_999_999_999, []), (5_000_000_000, [Action(.led, on: false)]),
        ]),
        (.denied, [
            (0, [Action(.beeper, on: true)]), (beep, [Action(.beeper, on: false)]), (2 * beep, [Action(.beeper, on: true)]),
            (3 * beep, [Action(.beeper, on: false)]), (4 * beep, [Action(.beeper, on: true)]), (5 * beep, [Action(.beeper, on: false)]),
            (60 * beep, []),
        ]),
        (.prompt, [(0, [Action(.beeper, on: true)]), (beep, [Action(.beeper, on: false)]), (10 * beep, [])]),
    ] as [(ReaderSignal, [(UInt64, [Action])])])
    func eachSignalPlaysItsPatternInTime(_ signal: ReaderSignal, _ pattern: [(UInt64, [Action])]) {
        var machine = ReaderSignalStateMachine()
        let start: MonotonicNanos = 1_000_000_000
        for (offset, expected) in pattern {
            let actions = offset == 0 ? machine.signal(signal, at: start) : machine.tick(at: start + offset)
            #expect(actions == expected, "at +\(offset) ns")
        }
        #expect(!machine.led && !machine.beeper && machine.nextDeadline == nil, "everything off once the pattern has played")
    }

    @Test func aRefusalDuringAGrantsLightPutsTheLedOutAtOnce() {
        var machine = ReaderSignalStateMachine()
        _ = machine.signal(.granted(ledNanos: 5_000_000_000), at: 0)
        _ = machine.tick(at: Self.beep)
        #expect(machine.signal(.denied, at: 1_000_000_000) == [Action(.led, on: false), Action(.beeper, on: true)])
        #expect(!machine.tick(at: 5_000_000_000).contains { $0.line == .led }, "the grant's own LED-off step went with it")
        #expect(!machine.led && !machine.beeper)
    }

    static let lines = SiteLayout.Reader(name: "r-gate", led: "r-gate.led", beeper: "r-gate.beeper", tamper: "r-gate.tamper")

    func rig() -> SiteRig {
        var rig = SiteRig()
        rig.site.bind(readers: [Self.lines])
        _ = rig.step(.start(modes: [:]))
        return rig
    }

    @Test func aGrantDrivesTheLockFirstThenLightsTheLedForTheReleaseTimeWithOneBeep() {
        var rig = rig()
        var driven: [SiteEffect] = []
        let swipe = rig.site.step(.credential(reader: "r-gate", .card(1001)), at: rig.now) { driven.append($0) }
        #expect(driven == [.lock(door: 0, released: true), .output("r-gate.led", on: true), .output("r-gate.beeper", on: true)],
                "the relay first; the reader's lines never delay it")
        #expect(swipe.reasons == [.granted, .released])
        #expect(rig.wait(0.15).outputs == ["r-gate.beeper": false])
        #expect(rig.wait(4.8).outputs.isEmpty)
        let relock = rig.wait(0.1)
        #expect(relock.outputs == ["r-gate.led": false] && relock.locks == [.lock(door: 0, released: false)], "the LED goes out as the door relocks")
    }

    @Test func aRefusalBeepsThreeTimesAndNeverLightsTheLed() {
        var rig = rig()
        let swipe = rig.step(.credential(reader: "r-gate", .card(999)))
        #expect(swipe.reasons == [.unknownCredential])
        #expect(swipe.locks.isEmpty)
        var beeper: [Bool] = swipe.compactMap { if case .output("r-gate.beeper", let on) = $0 { on } else { nil } }
        var led = swipe.outputs["r-gate.led"]
        for _ in 0..<10 {
            let later = rig.wait(0.15)
            beeper += later.compactMap { if case .output("r-gate.beeper", let on) = $0 { on } else { nil } }
            led = led ?? later.outputs["r-gate.led"]
        }
        #expect(beeper == [true, false, true, false, true, false])
        #expect(led == nil, "the LED stays off")
    }

    @Test func aReaderWithoutLinesAndALaneCameraDriveNoOutputs() {
        var rig = rig()
        #expect(rig.step(.credential(reader: "r-store", .card(1001))).outputs.isEmpty)
        #expect(rig.step(.credential(reader: "lpr-in", .plate("京A12345"))).outputs.isEmpty)
    }

    @Test func aTamperLatchesOneAlarmThatOnlyAnOperatorClearsOnceTheSwitchIsBack() {
        var rig = rig()
        let opened = rig.step(.input(line: "r-gate.tamper", active: true))
        #expect(opened.reasons == [.readerTamper])
        #expect(opened.events.first?.type == .alarm && opened.events.first?.portal == "gate-in")
        #expect(rig.step(.input(line: "r-gate.tamper", active: true)).isEmpty, "a level reported again is no new alarm")
        #expect(!rig.step(.input(line: "tamper", active: true)).reasons.contains(.readerTamper), "the site-wide tamper input is another alarm")

        let early = rig.step(.readerCommand(reader: "r-gate", .reset, operator: "alice"))
        #expect(early.replies == [.done(["alarm": true])], "the switch is still open: the alarm stays")
        #expect(early.reasons == [.readerReset])
        #expect(rig.site.tamperLatched == ["r-gate"])

        #expect(rig.step(.input(line: "r-gate.tamper", active: false)).isEmpty)
        #expect(rig.site.tamperLatched == ["r-gate"], "latched: the cover back on clears nothing by itself")
        let reset = rig.step(.readerCommand(reader: "r-gate", .reset, operator: "alice"))
        #expect(reset.replies == [.done(["alarm": false])])
        #expect(reset.reasons == [.readerReset, .alarmReset])
        #expect(reset.contains(.record(.audit(action: "reader.reset", target: "r-gate", operator: "alice"))))
        #expect(rig.site.tamperLatched.isEmpty)
        #expect(rig.step(.input(line: "r-gate.tamper", active: true)).reasons == [.readerTamper], "a new opening is a new alarm")
    }

    @Test func resettingAReaderWithoutATamperInputIsRefused() {
        var rig = rig()
        let reply = rig.step(.readerCommand(reader: "r-store", .reset, operator: "alice"))
        #expect(reply.replies == [.notFound("reader r-store has no tamper input in the board map")])
        #expect(reply.events.isEmpty)
    }

    @Test func anAntiPassbackResetForgetsThePersonAndTheirPlatesEverywhereAndIsAudited() {
        var rig = rig()
        _ = rig.step(.credential(reader: "r-gate", .card(1001)))
        _ = rig.step(.credential(reader: "lpr-in", .plate("京A12345")))
        #expect(rig.site.ledger.locations["person:P1"]?.area == "community")
        #expect(rig.site.ledger.locations["plate:京A12345"]?.area == "community")
        let reset = rig.step(.antiPassbackReset(person: "P1", operator: "alice"))
        #expect(reset.replies == [.done(["cleared": true])])
        #expect(rig.site.ledger.locations.isEmpty)
        #expect(reset.contains(.record(.forgetPassages(["person:P1", "plate:京A12345"]))))
        #expect(reset.contains(.record(.audit(action: "apb.reset", target: "P1", operator: "alice"))))
        let event = reset.events.first
        #expect(event?.type == .operator && event?.reason == .antiPassbackReset && event?.personID == "P1")
        #expect(rig.step(.antiPassbackReset(person: "P1", operator: "alice")).replies == [.done(["cleared": false])])
    }

    @Test func anAntiPassbackResetForAnUnknownPersonIsRefusedAndChangesNothing() {
        var rig = rig()
        _ = rig.step(.credential(reader: "r-gate", .card(1001)))
        let reset = rig.step(.antiPassbackReset(person: "P404", operator: "alice"))
        #expect(reset.replies == [.notFound("no person P404 on the roster")])
        #expect(reset.events.isEmpty && !reset.contains { if case .record = $0 { true } else { false } })
        #expect(rig.site.ledger.locations["person:P1"] != nil)
    }
}
