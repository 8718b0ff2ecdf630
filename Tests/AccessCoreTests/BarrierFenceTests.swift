import AccessCore
import AccessTestSupport
import Testing

@Suite("Barrier lane")
struct BarrierLaneTests {
    let s: UInt64 = 1_000_000_000

    func lane() -> BarrierLaneStateMachine {
        var l = BarrierLaneStateMachine(config: BarrierLaneConfig(positionTimeoutSeconds: 8, closeDelaySeconds: 1))
        _ = l.handle(.position(.closed), at: 0)
        return l
    }

    @Test func grantRaisesAndTheArmLowersAfterTheVehicleHasPassed() {
        var l = lane()
        #expect(l.handle(.granted, at: 1 * s) == [.send(.open)])
        #expect(l.handle(.position(.open), at: 3 * s) == [.event(.raised)])
        #expect(l.handle(.loop(occupied: true), at: 4 * s) == [.event(.vehicleOnLoop)])
        #expect(l.handle(.loop(occupied: false), at: 6 * s) == [.event(.vehiclePassed)])
        #expect(l.nextDeadline == 7 * s)
        #expect(l.handle(.tick, at: 7 * s) == [.send(.close)])
        #expect(l.handle(.position(.closed), at: 9 * s) == [.event(.lowered)])
    }

    @Test func neverClosesOnAnOccupiedLoop() {
        var l = lane()
        _ = l.handle(.granted, at: 0)
        _ = l.handle(.position(.open), at: 1 * s)
        _ = l.handle(.loop(occupied: true), at: 2 * s)
        #expect(l.handle(.command(.close), at: 3 * s) == [.event(.closeHeld)], "operator close held")
        #expect(l.handle(.loop(occupied: false), at: 5 * s) == [.event(.vehiclePassed)])
        #expect(l.handle(.tick, at: 6 * s) == [.send(.close)], "the held close goes once the loop is clear")
    }

    @Test func aVehicleArrivingUnderALoweringArmRaisesItAgain() {
        var l = lane()
        _ = l.handle(.granted, at: 0)
        _ = l.handle(.position(.open), at: 1 * s)
        _ = l.handle(.loop(occupied: true), at: 2 * s)
        _ = l.handle(.loop(occupied: false), at: 3 * s)
        _ = l.handle(.tick, at: 4 * s)
        #expect(l.handle(.position(.closing), at: 4 * s + 100) == [])
        #expect(l.handle(.loop(occupied: true), at: 4 * s + 500) == [.event(.vehicleOnLoop), .event(.reversed), .send(.open)])
    }

    @Test func missingPositionFeedbackIsAFault() {
        var l = lane()
        _ = l.handle(.granted, at: 0)
        #expect(l.handle(.tick, at: 8 * s - 1) == [])
        #expect(l.handle(.tick, at: 8 * s) == [.event(.fault)])
        #expect(l.handle(.tick, at: 20 * s) == [], "raised once")
        _ = l.handle(.granted, at: 21 * s)
        #expect(l.handle(.position(.open), at: 22 * s) == [.event(.faultCleared), .event(.raised)])
    }

    @Test func fireRaisesAndLatches() {
        var l = lane()
        #expect(l.handle(.fire(active: true), at: 0) == [.event(.fireRaise), .send(.open)])
        #expect(l.handle(.command(.close), at: 1 * s) == [.event(.requestIgnored)])
        _ = l.handle(.position(.open), at: 1 * s)
        _ = l.handle(.loop(occupied: true), at: 2 * s)
        #expect(l.handle(.loop(occupied: false), at: 3 * s) == [.event(.vehiclePassed)])
        #expect(l.handle(.tick, at: 10 * s) == [], "no auto close during fire")
        _ = l.handle(.fire(active: false), at: 11 * s)
        #expect(l.handle(.resetAlarm, at: 12 * s) == [.event(.fireReset)])
    }

    @Test func lockedLanesIgnoreGrants() {
        var l = lane()
        #expect(l.handle(.command(.lock), at: 0) == [.send(.lock), .event(.locked)])
        #expect(l.handle(.granted, at: 1 * s) == [.event(.requestIgnored)])
        #expect(l.handle(.command(.unlock), at: 2 * s) == [.send(.unlock), .event(.unlocked)])
    }

    @Test func randomSequencesNeverCloseWithAVehicleOnTheLoop() {
        var generator = SeededGenerator(seed: 7)
        let inputs: [BarrierLaneStateMachine.Input] = [
            .granted, .command(.open), .command(.close), .command(.stop), .command(.lock), .command(.unlock),
            .position(.open), .position(.closed), .position(.closing), .position(.opening),
            .loop(occupied: true), .loop(occupied: false), .fire(active: true), .fire(active: false), .resetAlarm, .tick,
        ]
        var closes = 0
        for _ in 0..<2_000 {
            var l = lane()
            var now: UInt64 = 0
            for _ in 0..<60 {
                now += UInt64.random(in: 0...(3 * s), using: &generator)
                let input = inputs[Int.random(in: 0..<inputs.count, using: &generator)]
                let actions = l.handle(input, at: now)
                if actions.contains(.send(.close)) {
                    closes += 1
                    #expect(!l.loopOccupied, "close sent with the loop occupied after \(input)")
                }
            }
        }
        #expect(closes > 100, "the random walk exercised closing (\(closes) closes)")
    }
}

@Suite("Fence zone")
struct FenceZoneTests {
    @Test func alarmsLatchUntilResetAndOnlyClearWhenTheCauseIsGone() {
        var z = FenceZoneStateMachine(zone: 3, emergency: false, armed: true)
        #expect(z.handle(.hostAlarms([.broken])) == [.event(.alarm(.broken)), .linkage(on: true)])
        #expect(z.handle(.hostAlarms([])) == [], "latched after the host clears it")
        #expect(z.handle(.hostAlarms([.touch])) == [.event(.alarm(.touch))])
        #expect(z.handle(.reset) == [.resetHost, .event(.reset(cleared: [.broken], stillActive: [.touch]))])
        _ = z.handle(.hostAlarms([]))
        #expect(z.handle(.reset) == [.resetHost, .event(.reset(cleared: [.touch], stillActive: [])), .linkage(on: false)])
    }

    @Test func disarmedZonesIgnoreIntrusionButNotTamperOrPower() {
        var z = FenceZoneStateMachine(zone: 1, emergency: false)
        #expect(z.handle(.hostAlarms([.broken, .short])) == [])
        #expect(z.handle(.hostAlarms([.broken, .short, .tamper])) == [.event(.alarm(.tamper)), .linkage(on: true)])
        #expect(z.handle(.hostAlarms([.power])) == [.event(.alarm(.power))])
    }

    @Test func emergencyZonesAreArmedAndCannotBeDisarmed() {
        var z = FenceZoneStateMachine(zone: 2, emergency: true)
        #expect(z.armed)
        #expect(z.start() == [.armHost(true)])
        #expect(z.handle(.disarm) == [.event(.disarmRefused)])
        #expect(z.armed)
        var normal = FenceZoneStateMachine(zone: 4, emergency: false, armed: true)
        #expect(normal.handle(.disarm) == [.armHost(false), .event(.disarmed)])
        #expect(normal.handle(.arm) == [.armHost(true), .event(.armed)])
    }

    @Test func communicationLossIsAnAlarmWhetherArmedOrNot() {
        var z = FenceZoneStateMachine(zone: 1, emergency: false)
        #expect(z.handle(.hostOnline(false)) == [.event(.alarm(.commFail)), .linkage(on: true)])
        #expect(z.handle(.reset) == [.resetHost, .event(.reset(cleared: [], stillActive: [.commFail]))])
        #expect(z.handle(.hostOnline(true)) == [.event(.commRestored)])
        #expect(z.handle(.reset) == [.resetHost, .event(.reset(cleared: [.commFail], stillActive: [])), .linkage(on: false)])
    }
}
