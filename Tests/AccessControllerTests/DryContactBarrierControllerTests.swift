import AccessConfig
import AccessControlProtocol
import AccessController
import AccessCore
import AccessDevices
@_spi(Testing) import AccessStore
import AccessTestSupport
import Foundation
import Glibc
import Testing

/// The garage exit of the simulated board: a barrier controller on dry contacts.
enum GarageLane {
    static func toml(pulseMillis: Int = 500) -> String {
        """
        [[portal]]
        id = "garage-out"
        kind = "barrier"
        direction = "out"
        from_area = "community"
        to_area = "outside"
        readers = ["lpr-garage-out"]
        [[barrier]]
        portal = "garage-out"
        open = "garage-out.open"
        close = "garage-out.close"
        stop = "garage-out.stop"
        loop = "garage-out.loop"
        infrared = "garage-out.infrared"
        raised = "garage-out.raised"
        lowered = "garage-out.lowered"
        close_delay_seconds = 1
        pulse_ms = \(pulseMillis)
        """
    }
}

extension Rig {
    /// The garage barrier's relays now: "open", "close", "stop" for those pressed.
    func garageRelays() -> [String] {
        ["open", "close", "stop"].filter { board.outputs["garage-out.\($0)"] == true }
    }

    /// Moves time on in quarter seconds (half a pulse), noting every relay seen pressed.
    func advanceWatching(_ seconds: Double) -> Set<String> {
        var seen = Set(garageRelays())
        for _ in 0..<Int(seconds * 4) {
            advance(0.25)
            seen.formUnion(garageRelays())
        }
        return seen
    }

    func garage(_ line: String, _ active: Bool) throws { try board.setInput("garage-out.\(line)", active: active) }
}

@Suite("A barrier on dry contacts through the controller (hand-moved clock)", .serialized)
struct DryContactBarrierControllerTests {
    @Test func aPlatePulsesOpenAndTheArmDoesNotLowerUntilTheLoopClears() throws {
        let rig = try Rig(extra: GarageLane.toml())
        try rig.garage("lowered", true)
        let decision = try #require(rig.controller.plate(lane: "lpr-garage-out", plate: "京A12345"))
        #expect(decision.granted)
        #expect(rig.garageRelays() == ["open"], "the grant presses OPEN at once")
        rig.advance(0.5)
        #expect(rig.garageRelays() == [], "for pulse_ms only")
        try rig.garage("lowered", false)
        try rig.garage("raised", true)
        try rig.garage("loop", true)
        #expect(rig.advanceWatching(60) == [], "a car on the loop: CLOSE is never pressed")
        _ = try rig.controller.door(portal: "garage-out", command: .close, operator: "guard")
        #expect(rig.advanceWatching(5) == [], "not for an operator either")
        try rig.garage("loop", false)
        #expect(rig.garageRelays() == [])
        rig.advance(1)
        #expect(rig.garageRelays() == ["close"], "the car has left: CLOSE")
        rig.advance(0.5)
        try rig.garage("raised", false)
        try rig.garage("infrared", true)
        #expect(rig.garageRelays() == ["open"], "the beam broken under the lowering arm: OPEN again")
        let lane = try rig.events().filter { $0.portal == "garage-out" && $0.type != .access }.compactMap(\.reason)
        #expect(lane == [.raised, .vehicleOnLoop, .close, .closeHeld, .vehiclePassed, .vehicleOnLoop, .reversed], "\(lane)")
        #expect(rig.controller.fieldStates.lanes.first { $0.portal == "garage-out" }?.loop == true)
    }

    @Test func noLimitSwitchAfterAnOpenIsABarrierFaultAlarm() throws {
        let rig = try Rig(extra: GarageLane.toml())
        try rig.garage("lowered", true)
        _ = rig.controller.plate(lane: "lpr-garage-out", plate: "京A12345")
        rig.advance(7.75)
        #expect(try !rig.reasons().contains("barrier_fault"))
        rig.advance(0.25)
        let fault = try #require(try rig.events().first { $0.reason == .barrierFault })
        #expect(fault.type == .alarm && fault.portal == "garage-out")
    }

    @Test func aLockLineNamedAsTheOpenContactIsRefusedAtAttach() throws {
        let toml = GarageLane.toml().replacingOccurrences(of: "open = \"garage-out.open\"", with: "open = \"b01.lock\"")
        #expect(throws: DeviceError.self) { try Rig(extra: toml) }
    }
}

@Suite("accessd with a barrier on dry contacts", .serialized, .timeLimit(.minutes(2)))
struct AccessdDryContactBarrierTests {
    @Test func aGrantPressesOpenAndTheArmStaysUpWhileTheLoopIsSet() throws {
        // Pulses of 5 s, so a relay's press is seen through the control socket in real time.
        let rig = try Rig(extra: GarageLane.toml(pulseMillis: 5_000))
        let process = try rig.startAccessd()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func relay(_ name: String) -> Int? {
            guard case .int(let v)? = try? rig.control([("op", "sim.outputs")])["outputs"]?["garage-out.\(name)"] else { return nil }
            return Int(v)
        }
        func input(_ line: String, _ active: Bool) throws {
            _ = try rig.control([("op", "sim.input"), ("line", .string("garage-out.\(line)")), ("value", .int(active ? 1 : 0))])
        }
        func laneEvents() -> [EventReason] {
            ((try? rig.accessdEvents()) ?? []).filter { $0.portal == "garage-out" && $0.type != .access }.compactMap(\.reason)
        }
        try input("lowered", true)
        let plate = try rig.control([("op", "sim.plate"), ("lane", "lpr-garage-out"), ("plate", "京A12345")])
        #expect(plate["decision"]?["granted"] == .bool(true))
        #expect(relay("open") == 1 && relay("close") == 0, "OPEN pressed")
        try input("lowered", false)
        try input("raised", true)
        _ = try rig.control([("op", "sim.loop"), ("lane", "lpr-garage-out"), ("value", 1)])
        #expect(rig.eventually(10) { laneEvents() == [.raised, .vehicleOnLoop] })
        _ = try rig.control([("op", "door"), ("portal", "garage-out"), ("command", "close"), ("operator", "guard")])
        #expect(rig.eventually(10) { laneEvents().last == .closeHeld })
        #expect(relay("close") == 0, "no CLOSE with the car on the loop")
        _ = try rig.control([("op", "sim.loop"), ("lane", "lpr-garage-out"), ("value", 0)])
        #expect(rig.eventually(10) { relay("close") == 1 }, "the car gone: CLOSE pressed")
        try input("raised", false)
        _ = try rig.control([("op", "sim.loop"), ("lane", "lpr-garage-out"), ("value", 1)])
        #expect(rig.eventually(10) { relay("close") == 0 && relay("open") == 1 }, "a car under the lowering arm: CLOSE let go, OPEN pressed")
        #expect(rig.eventually(10) { laneEvents().contains(.reversed) }, "\(laneEvents())")
        rig.stopAccessd(process)
        #expect(process.terminationStatus == 0)
    }
}
