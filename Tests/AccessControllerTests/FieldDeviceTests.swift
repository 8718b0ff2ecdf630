import AccessConfig
import AccessController
import AccessCore
import AccessDevices
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// Lanes and fence zones: the site TOML appended to the Rig's, on a `simulated` Modbus line or on
/// a real pymodbus peer over TCP.
enum FieldSite {
    static func toml(bus: String) -> String {
        """
        [[portal]]
        id = "fence-north"
        kind = "fence"
        direction = "both"
        [[portal]]
        id = "fence-east"
        kind = "fence"
        direction = "both"
        \(bus)
        [[modbus.device]]
        id = "gate-in"
        bus = "field"
        unit = 1
        map = "\(Rig.root)/Hardware/devices/barrier-gate.toml"
        poll_ms = 20
        [[modbus.device]]
        id = "fence-host"
        bus = "field"
        unit = 2
        map = "\(Rig.root)/Hardware/devices/fence-host.toml"
        poll_ms = 20
        [[barrier]]
        portal = "lane-in"
        device = "gate-in"
        close_delay_seconds = 0
        position_timeout_seconds = 3
        [[fence]]
        portal = "fence-north"
        device = "fence-host"
        zone = 1
        outputs = ["siren", "strobe"]
        [[fence]]
        portal = "fence-east"
        device = "fence-host"
        zone = 2
        emergency = true
        """
    }

    static let simulated = toml(bus: """
        [[modbus.bus]]
        id = "field"
        transport = "simulated"
        """)
}

extension Rig {
    func lane() -> (position: String, loop: Bool)? {
        controller.fieldStates.lanes.first.map { ($0.position, $0.loop) }
    }

    func zone(_ portal: String) -> (armed: Bool, latched: [String])? {
        controller.fieldStates.zones.first { $0.portal == portal }.map { ($0.armed, $0.latched) }
    }

    func control(_ request: JSON) -> JSON { controller.handleControl(request, caller: try! .thisProcess()) }

    func setLoop(_ occupied: Bool) {
        _ = control(.object([("op", "sim.loop"), ("lane", "lpr-in"), ("value", .int(occupied ? 1 : 0))]))
    }

    func count(_ reason: String) throws -> Int { try reasons().filter { $0 == reason }.count }
}

@Suite("Barrier lanes and fence zones (simulated Modbus line)", .serialized)
struct FieldDeviceTests {
    @Test func aGrantedPlateRaisesTheArmAndItNeverClosesOnAnOccupiedLoop() throws {
        // The same car is read again within seconds on purpose: repeat-read suppression is off.
        let rig = try Rig(extra: FieldSite.simulated + "\n[gate]\nrepeat_read_seconds = 0\n", realTime: true)
        let gate = try #require(rig.controller.simulatedGate("gate-in"))
        let decision = try #require(rig.controller.plate(lane: "lpr-in", plate: "京A12345"))
        #expect(decision.granted)
        #expect(rig.eventually { rig.lane()?.position == "open" }, "the arm rises (1 s of travel)")
        #expect(gate.commands == [.open])
        #expect(try rig.reasons().contains("raised"))

        // A vehicle under the arm: an operator's close is held, not sent.
        rig.setLoop(true)
        #expect(try rig.eventually { try rig.reasons().contains("vehicle_on_loop") })
        _ = try rig.controller.door(portal: "lane-in", command: .close, operator: "guard")
        #expect(try rig.reasons().contains("close_held"))
        // No close was queued while the loop was occupied: the one close below is the first.

        // The vehicle leaves: the held close goes out, and the arm comes down.
        rig.setLoop(false)
        #expect(rig.eventually { gate.commands == [.open, .close] })
        #expect(rig.eventually { rig.lane()?.position == "closed" })
        #expect(try rig.reasons().contains("lowered"))

        // A vehicle arriving while the arm is coming down sends it back up.
        _ = rig.controller.plate(lane: "lpr-in", plate: "京A12345")
        #expect(rig.eventually { rig.lane()?.position == "open" })
        rig.setLoop(true)
        #expect(try rig.eventually { try rig.count("vehicle_on_loop") == 2 })
        rig.setLoop(false)  // passed: auto close
        #expect(rig.eventually { gate.commands.last == .close && rig.lane()?.position == "closing" })
        rig.setLoop(true)
        #expect(try rig.eventually { try rig.reasons().contains("reversed") })
        #expect(rig.eventually { gate.commands.last == .open }, "raised again: \(gate.commands)")
        #expect(rig.eventually { rig.lane()?.position == "open" })
    }

    @Test func aDeniedPlateLeavesTheArmDownAndAlwaysClosedLocksTheLane() throws {
        let rig = try Rig(extra: FieldSite.simulated, realTime: true)
        let gate = try #require(rig.controller.simulatedGate("gate-in"))
        let denied = try #require(rig.controller.plate(lane: "lpr-in", plate: "沪B99999"))
        #expect(!denied.granted && denied.reason == .unknownCredential)
        _ = try rig.controller.door(portal: "lane-in", command: .alwaysClosed, operator: "guard")
        let locked = try #require(rig.controller.plate(lane: "lpr-in", plate: "京A12345"))
        #expect(locked.reason == .portalLocked)
        rig.controller.flush()
        #expect(try rig.db.portalMode("lane-in") == .alwaysClosed, "kept across restarts like a door's mode")
        #expect(try rig.db.audit(operator: "guard").map(\.action) == ["barrier.always-closed"])
        // Commands reach the gate in order: once the unlock of `normal` has arrived, anything
        // the refused plates had sent would have arrived before it.
        _ = try rig.controller.door(portal: "lane-in", command: .normal, operator: "guard")
        #expect(rig.eventually { gate.commands.last == .unlock })
        #expect(!gate.commands.contains(.open))
    }

    @Test func fireRaisesEveryBarrier() throws {
        let rig = try Rig(extra: FieldSite.simulated, realTime: true)
        try rig.board.setInput("fire.alarm", active: true)
        #expect(rig.eventually { rig.lane()?.position == "open" })
        #expect(try rig.reasons().contains("barrier_fire_raise"))
        // Latched: an operator cannot close it while the fire input is active.
        _ = try rig.controller.door(portal: "lane-in", command: .close, operator: "guard")
        #expect(try rig.reasons().contains("request_ignored"))
    }

    @Test func aFenceAlarmLatchesUntilResetAndSoundsTheSiren() throws {
        let rig = try Rig(extra: FieldSite.simulated, realTime: true)
        let host = try #require(rig.controller.simulatedFenceHost("fence-host"))
        #expect(rig.zone("fence-north")?.armed == true)
        // The host was told to arm both zones at start.
        #expect(rig.eventually { host.zoneStates.prefix(2).allSatisfy(\.armed) })

        try host.setAlarm(.broken, zone: 1, on: true)
        #expect(try rig.eventually { try rig.reasons().contains("fence_broken") })
        #expect(rig.board.outputs["siren"] == true && rig.board.outputs["strobe"] == true)
        try host.setAlarm(.broken, zone: 1, on: false)  // the wire is mended
        let reads = host.reads
        #expect(rig.eventually { host.reads >= reads + 2 }, "a whole poll since the mend")
        #expect(rig.zone("fence-north")?.latched == ["broken"], "latched until reset")
        #expect(rig.board.outputs["siren"] == true)

        // Reset while a cause is still there: it stays latched.
        try host.setAlarm(.short, zone: 1, on: true)
        #expect(rig.eventually { rig.zone("fence-north")?.latched == ["broken", "short"] })
        _ = try rig.controller.fence(portal: "fence-north", command: .reset, operator: "guard")
        #expect(rig.eventually { rig.zone("fence-north")?.latched == ["short"] })
        #expect(rig.board.outputs["siren"] == true)
        try host.setAlarm(.short, zone: 1, on: false)
        _ = try rig.controller.fence(portal: "fence-north", command: .reset, operator: "guard")
        #expect(rig.eventually { rig.zone("fence-north")?.latched == [] })
        #expect(rig.board.outputs["siren"] == false && rig.board.outputs["strobe"] == false)
        let resets = try rig.events().filter { $0.reason?.rawValue == "alarm_reset" }
        #expect(resets.count == 2)
        rig.controller.flush()
        #expect(try rig.db.audit(operator: "guard").map(\.action) == ["fence.reset", "fence.reset"])
    }

    @Test func anEmergencyZoneRefusesDisarmAndADisarmedZoneStillReportsTamper() throws {
        let rig = try Rig(extra: FieldSite.simulated, realTime: true)
        let host = try #require(rig.controller.simulatedFenceHost("fence-host"))
        #expect(throws: ControlError.self, "an emergency zone refuses, and says so") {
            try rig.controller.fence(portal: "fence-east", command: .disarm, operator: "guard")
        }
        #expect(rig.zone("fence-east")?.armed == true)
        #expect(try rig.reasons().contains("disarm_refused"))

        _ = try rig.controller.fence(portal: "fence-north", command: .disarm, operator: "guard")
        #expect(rig.eventually { host.zoneStates.first?.armed == false }, "the host is disarmed too")
        try host.setAlarm(.touch, zone: 1, on: true)
        try host.setAlarm(.tamper, zone: 1, on: true)
        #expect(try rig.eventually { try rig.reasons().contains("fence_tamper") }, "tamper alarms whether armed or not")
        // The poll that brought the tamper brought the touch too.
        #expect(try !rig.reasons().contains("fence_touch"), "a disarmed zone ignores touch")
    }

    @Test func aDeviceDyingRaisesAlarmsWhileDoorsKeepWorking() throws {
        let rig = try Rig(extra: FieldSite.simulated, realTime: true)
        #expect(try rig.eventually { try rig.count("device_online") == 2 })
        _ = rig.control(.object([("op", "sim.device"), ("device", "fence-host"), ("online", 0)]))
        _ = rig.control(.object([("op", "sim.device"), ("device", "gate-in"), ("online", 0)]))
        #expect(try rig.eventually { try rig.count("device_offline") == 2 })
        #expect(try rig.eventually { try rig.reasons().contains("fence_comm_fail") })
        #expect(try rig.reasons().contains("barrier_fault"))
        // Doors do not notice.
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.board.outputs["b01.lock"] == true)
        #expect(try rig.events().contains { $0.type == .access && $0.reason?.rawValue == "granted" })

        _ = rig.control(.object([("op", "sim.device"), ("device", "fence-host"), ("online", 1)]))
        #expect(try rig.eventually { try rig.reasons().contains("comm_restored") })
        #expect(try rig.eventually { try rig.count("device_online") == 3 })
        let metrics = rig.controller.metrics.render()
        #expect(metrics.contains(#"access_device_online{device="fence-host"} 1"#))
        #expect(metrics.contains(#"access_device_online{device="gate-in"} 0"#))
    }
}

@Suite("Barrier lanes and fence zones on a real Modbus peer (pymodbus over TCP)", .serialized)
struct ModbusFieldTests {
    @Test func aPlateOpensARealGateAndASilentHostIsACommFailureWhileDoorsWork() async throws {
        let dir = TemporaryDirectory("field-modbus")
        let peer = try await ModbusPeer.tcp(["barrier:1", "fence:2"], dir: dir)
        defer { peer.kill() }
        let rig = try Rig(extra: FieldSite.toml(bus: """
            [[modbus.bus]]
            id = "field"
            transport = "tcp"
            host = "127.0.0.1"
            port = \(peer.port)
            response_timeout_ms = 200
            retries = 1
            """))
        let granted = try #require(rig.controller.plate(lane: "lpr-in", plate: "京A12345"))
        #expect(granted.granted)
        try await until { rig.lane()?.position == "open" }
        #expect(try await peer.command("show 1").contains(#""position": 2"#), "the peer's arm is up")

        // A vehicle on the peer's loop holds an operator's close.
        try await peer.command("loop 1 on")
        try await until { rig.lane()?.loop == true }
        _ = try rig.controller.door(portal: "lane-in", command: .close, operator: "guard")
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await peer.command("show 1").contains(#""position": 2"#), "still up over the vehicle")
        try await peer.command("loop 1 off")
        try await until { rig.lane()?.position == "closed" }

        // A fence alarm from the host latches.
        try await peer.command("alarm 2 1 broken on")
        try await until { rig.zone("fence-north")?.latched == ["broken"] }
        #expect(rig.board.outputs["siren"] == true)

        // The host goes silent: comm failure, device offline, and the doors still open at once.
        try await peer.command("silence 2 on")
        try await until(seconds: 5) { (try? rig.reasons().contains("fence_comm_fail")) == true }
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.board.outputs["b01.lock"] == true, "the relay does not wait for Modbus")
        #expect(try rig.reasons().contains("device_offline"))
        try await peer.command("silence 2 off")
        try await until(seconds: 5) { (try? rig.reasons().contains("comm_restored")) == true }
        #expect(rig.zone("fence-north")?.latched == ["broken", "comm_fail"])
    }

    /// Polls every 20 ms for up to `seconds`; fails the test when the condition never holds.
    func until(seconds: Double = 3, _ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(condition(), "condition not met within \(seconds) s", sourceLocation: sourceLocation)
    }
}
