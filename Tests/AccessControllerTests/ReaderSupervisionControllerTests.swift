import AccessConfig
import AccessControlProtocol
import AccessController
import AccessCore
import AccessDevices
import AccessRuntime
@_spi(Testing) import AccessStore
import AccessTestSupport
import Foundation
import Glibc
import Testing

/// Readers' LED, beeper and tamper lines and the anti-passback reset, through the controller on
/// the simulated board (time moved by hand) and through the real accessd.
@Suite("Reader supervision on the simulated board", .serialized)
struct ReaderSupervisionControllerTests {
    static let hardAntiPassback = "[anti_passback]\nmode = \"hard\"\n"

    @Test func theReadersLedAndBeeperLinesShowGrantsAndRefusals() throws {
        let rig = try Rig()
        #expect(rig.board.outputs["reader-north-in.led"] == false && rig.board.outputs["reader-north-in.beeper"] == false)
        try rig.board.swipe(reader: "reader-north-in", card: 6_553_701)
        #expect(rig.board.outputs["gate-north.lock"] == false, "released")
        #expect(rig.board.outputs["reader-north-in.led"] == true && rig.board.outputs["reader-north-in.beeper"] == true)
        rig.advance(0.2)
        #expect(rig.board.outputs["reader-north-in.beeper"] == false, "one short beep")
        #expect(rig.board.outputs["reader-north-in.led"] == true)
        rig.advance(5)
        #expect(rig.board.outputs["reader-north-in.led"] == false && rig.board.outputs["gate-north.lock"] == true, "out as the gate relocks")

        try rig.board.swipe(reader: "reader-b01", card: 99)
        #expect(rig.board.outputs["reader-b01.led"] == false && rig.board.outputs["reader-b01.beeper"] == true)
        var beeps = 1
        var last = true
        for _ in 0..<20 {
            rig.advance(0.05)
            let now = rig.board.outputs["reader-b01.beeper"] == true
            if now && !last { beeps += 1 }
            last = now
            #expect(rig.board.outputs["reader-b01.led"] == false, "the LED stays off on a refusal")
        }
        #expect(beeps == 3 && !last)
    }

    @Test func aReadersTamperSwitchLatchesAnAlarmUntilAnOperatorResetsIt() throws {
        let rig = try Rig()
        try rig.board.setInput("reader-north-in.tamper", active: true)
        let alarm = try #require(try rig.events().first { $0.reason == .readerTamper })
        #expect(alarm.type == .alarm && alarm.portal == "gate-in")
        #expect(rig.controller.readerStates.map(\.tamper) == [true])
        try rig.board.setInput("reader-north-in.tamper", active: false)
        #expect(rig.controller.readerStates.map(\.tamper) == [true], "latched")
        #expect(try rig.controller.reader("reader-north-in", command: .reset, operator: "alice") == ["alarm": false])
        #expect(rig.controller.readerStates.map(\.tamper) == [false])
        #expect(throws: ControlError.self) { try rig.controller.reader("reader-b01", command: .reset, operator: "alice") }
        rig.controller.flush()
        #expect(try rig.db.audit(target: "reader-north-in").map(\.action) == ["reader.reset"])
    }

    @Test func anOperatorsAntiPassbackResetLetsARefusedPersonInAndIsDurable() throws {
        let rig = try Rig(extra: Self.hardAntiPassback)
        try rig.board.swipe(reader: "reader-north-in", card: 6_553_701)
        rig.advance(10)
        try rig.board.swipe(reader: "reader-north-in", card: 6_553_701)
        #expect(rig.controller.lastDecision(at: "reader-north-in")?.reason == .antiPassback)
        #expect(try rig.controller.resetAntiPassback(person: "P1", operator: "alice") == ["cleared": true])
        rig.controller.flush()
        #expect(try rig.db.antiPassbackLedger().locations.isEmpty, "the reset is durable: a restart does not bring the location back")
        rig.advance(10)
        try rig.board.swipe(reader: "reader-north-in", card: 6_553_701)
        #expect(rig.controller.lastDecision(at: "reader-north-in")?.reason == .granted)
        #expect(throws: ControlError.self) { try rig.controller.resetAntiPassback(person: "P404", operator: "alice") }
        let audit = try rig.db.audit(target: "P1").filter { $0.action.hasPrefix("apb.") }
        #expect(audit.map(\.operator) == ["alice"])
        #expect(try rig.accessReasons() == [.granted, .antiPassback, .granted])
    }

    /// The real accessd: the lines through `sim outputs`, the tamper and the resets through the
    /// control socket, recorded as the Unix user that called.
    @Test func accessdShowsReaderLinesLatchesTamperAndResetsAntiPassbackAsTheCaller() throws {
        let rig = try Rig(extra: Self.hardAntiPassback)
        let process = try rig.startAccessd()  // takes over the rig's database (and its key)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let socket = rig.dir.file("ctl.sock")
        func send(_ request: ControlRequest) throws -> ControlReply { try ControlClient.send(request, to: socket) }
        func outputs() throws -> [String: Bool] {
            guard case .outputs(let o) = try send(.simOutputs) else { return [:] }
            return o
        }
        func readers() throws -> [ControlStatus.Reader] {
            guard case .status(let s) = try send(.status) else { return [] }
            return s.readers
        }

        // A refusal at the building reader: its LED stays off; a grant at the gate lights its LED
        // for the gate's 5 s release.
        #expect(try send(.simSwipe(reader: "reader-b01", card: 99)) == .decision(ControlDecision(
            granted: false, reason: .unknownCredential, personID: nil, houseID: nil, portal: "b01-door")))
        #expect(try outputs()["reader-b01.led"] == false)
        guard case .decision(let grant?) = try send(.simSwipe(reader: "reader-north-in", card: 6_553_701)) else {
            Issue.record("no decision")
            return
        }
        #expect(grant.reason == .granted)
        let lines = try outputs()
        #expect(lines["reader-north-in.led"] == true && lines["gate-north.lock"] == false)

        // The tamper switch: latched, still latched while open, cleared by a reset once closed.
        try #require(try send(.simInput(line: "reader-north-in.tamper", active: true)) == .done)
        #expect(try readers() == [ControlStatus.Reader(reader: "reader-north-in", portal: "gate-in", tamper: true)])
        #expect(try send(.reader(reader: "reader-north-in", command: .reset, operator: "zhang")) == .portal(PortalState(alarm: true)))
        try #require(try send(.simInput(line: "reader-north-in.tamper", active: false)) == .done)
        #expect(try send(.reader(reader: "reader-north-in", command: .reset, operator: "zhang")) == .portal(PortalState(alarm: false)))
        #expect(try readers().map(\.tamper) == [false])

        // Hard anti-passback: P1 is in; their app code at the gate's QR reader is refused until
        // an operator resets them.
        let codes = ResidentQRCode(secret: try rig.db.passSecret())
        let now = Int64(Date().timeIntervalSince1970)
        let refused = try send(.simQR(reader: "qr-north-in", code: codes.encode(personID: "P1", expires: now + 60)))
        #expect(refused == .decision(ControlDecision(granted: false, reason: .antiPassback, personID: "P1", houseID: "B01-0301", portal: "gate-in")))
        #expect(throws: ControlProtocolError.refused("no person P404 on the roster")) {
            try send(.antiPassbackReset(person: "P404", operator: "zhang"))
        }
        #expect(try send(.antiPassbackReset(person: "P1", operator: "zhang")) == .antiPassbackReset(cleared: true))
        guard case .decision(let after?) = try send(.simQR(reader: "qr-north-in", code: codes.encode(personID: "P1", expires: now + 59))) else {
            Issue.record("no decision")
            return
        }
        #expect(after.reason == .granted)

        kill(process.processIdentifier, SIGTERM)
        #expect(rig.eventually(10) { !process.isRunning })
        let me = try UnixUser.current().name
        let audit = try rig.db.audit(after: 0, limit: 1000).filter { $0.action == "reader.reset" || $0.action == "apb.reset" }
        #expect(audit.map(\.action) == ["reader.reset", "reader.reset", "apb.reset"])
        #expect(audit.allSatisfy { $0.operator == me && $0.note == "zhang" }, "the kernel's user, the typed name as a note")
        let events = try rig.events()
        #expect(events.filter { $0.reason == .readerTamper }.count == 1)
        #expect(events.contains { $0.type == .operator && $0.reason == .antiPassbackReset && $0.personID == "P1" })
    }
}

/// Parking spaces through the real accessd: plates at the simulated lanes, a house of one space.
@Suite("Parking spaces through accessd", .serialized)
struct ParkingControllerTests {
    /// A second lane for exits; reads of the same plate are decided each time (no repeat-read
    /// window: the test reads a plate again within seconds).
    static let lanes = """
        [gate]
        repeat_read_seconds = 0
        [parking]
        visitor_spaces = 1
        [[portal]]
        id = "lane-out"
        kind = "barrier"
        direction = "out"
        from_area = "community"
        to_area = "outside"
        readers = ["lpr-out"]

        """

    @Test func aHouseOfOneSpaceLetsItsSecondCarInOnlyAfterTheFirstLeftAndTheCountSurvivesARestart() throws {
        let rig = try Rig(extra: Self.lanes)
        rig.controller.stop()  // the processes below take over the same database
        try rig.db.editHouse("B01-0301", operator: "t") { $0.parkingSpaces = 1 }
        try rig.db.addCredential(Credential(kind: .plate, value: "京A67890", owner: .house("B01-0301")), operator: "t")
        let socket = rig.dir.file("ctl.sock")
        func start() throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessd")
            process.arguments = ["--config", rig.config.source]
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
            #expect(rig.eventually(10) { (try? ControlClient.send(.status, to: socket)) != nil })
            return process
        }
        func stop(_ process: Process) {
            kill(process.processIdentifier, SIGTERM)
            #expect(rig.eventually(10) { !process.isRunning })
        }
        func plate(_ lane: String, _ plate: String) throws -> Reason? {
            guard case .decision(let d?) = try ControlClient.send(.simPlate(lane: lane, plate: plate), to: socket) else { return nil }
            return d.reason
        }

        var accessd = try start()
        defer { if accessd.isRunning { kill(accessd.processIdentifier, SIGKILL) } }
        #expect(try plate("lpr-in", "京A12345") == .granted)
        #expect(try plate("lpr-in", "京A67890") == .parkingFull, "the house's one space is taken")
        guard case .status(let status) = try ControlClient.send(.status, to: socket) else { Issue.record("no status"); return }
        #expect(status.parking == [ControlStatus.Parking(key: "house:B01-0301", inside: 1, spaces: 1),
                                   ControlStatus.Parking(key: "visitors", inside: 0, spaces: 1)])
        #expect(try plate("lpr-out", "京A12345") == .granted, "exits are always let out")
        #expect(try plate("lpr-in", "京A67890") == .granted)
        stop(accessd)

        accessd = try start()
        #expect(try plate("lpr-in", "京A12345") == .parkingFull, "the car inside was counted across the restart")
        stop(accessd)
        #expect(try rig.db.parkingLedger().inside("house:B01-0301") == 1)
        let full = try rig.events().filter { $0.reason == .parkingFull }
        #expect(full.count == 2 && full.allSatisfy { $0.type == .access && $0.granted == false && $0.portal == "lane-in" && $0.houseID == "B01-0301" })
    }
}
