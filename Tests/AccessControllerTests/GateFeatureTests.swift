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

/// The gate features through the controller on the simulated board (time moved by hand), and
/// through the real accessd with a serial QR reader on a socat pty pair.
@Suite("Gate features on the simulated board", .serialized)
struct GateFeatureTests {
    /// A pass of `uses` entries at the rig's host house, valid for an hour from now, and its code.
    static func visitorPass(_ rig: Rig, uses: Int) throws -> (pass: VisitorPass, code: String) {
        let now = rig.clock.wallMicros() / 1_000_000
        let pass = try rig.db.issuePass(houseID: "B01-0301", visitorName: "王芳", validFrom: now - 60, validUntil: now + 3600,
                                        maxUses: uses, operator: "t")
        rig.controller.tick()  // the roster reload that brings the pass in
        return (pass, VisitorPassCode(secret: try rig.db.passSecret()).encode(passID: pass.id, expires: pass.validUntil))
    }

    @Test func aVisitorsQRCodeOpensTheGateOnceAUseAndTheUsesAreKeptDurably() throws {
        let rig = try Rig()
        let (pass, code) = try Self.visitorPass(rig, uses: 2)
        #expect(try rig.controller.simulatedQR(reader: "qr-north-in", code: code)?.reason == .granted)
        #expect(rig.board.outputs["gate-north.lock"] == false, "the fail-safe magnetic lock is released (de-energised)")
        rig.advance(10)
        #expect(rig.board.outputs["gate-north.lock"] == true, "relocked")
        #expect(try rig.controller.simulatedQR(reader: "qr-north-in", code: code)?.reason == .granted)
        rig.advance(10)
        let replay = try rig.controller.simulatedQR(reader: "qr-north-in", code: code)
        #expect(replay?.reason == .usesExhausted && replay?.granted == false)
        #expect(rig.board.outputs["gate-north.lock"] == true)
        rig.controller.flush()
        #expect(try rig.db.pass(pass.id)?.uses == 2)

        let access = try rig.events().filter { $0.type == .access && $0.credentialKind == .qr }
        #expect(access.map(\.reason) == [.granted, .granted, .usesExhausted])
        #expect(access.allSatisfy { $0.credential == pass.id && $0.portal == "gate-in" }, "the pass id is logged, never the code")
    }

    @Test func expiredForgedAndGarbledCodesOpenNothing() throws {
        let rig = try Rig()
        let (pass, code) = try Self.visitorPass(rig, uses: 5)
        let secret = try rig.db.passSecret()
        let now = rig.clock.wallMicros() / 1_000_000
        let expired = VisitorPassCode(secret: secret).encode(passID: pass.id, expires: now - 1)
        #expect(try rig.controller.simulatedQR(reader: "qr-north-in", code: expired)?.reason == .expired)
        let forged = String(code.dropLast()) + (code.hasSuffix("0") ? "1" : "0")
        #expect(try rig.controller.simulatedQR(reader: "qr-north-in", code: forged)?.reason == .unknownCredential)
        #expect(try rig.controller.simulatedQR(reader: "qr-north-in", code: "CA1.\u{7}") == nil, "a line with noise is no decision")
        #expect(rig.board.outputs["gate-north.lock"] == true)
        #expect(throws: DeviceError.self) { try rig.controller.simulatedQR(reader: "no-such-reader", code: code) }
        #expect(try rig.reasons().contains("garbled_frame"))
        #expect(rig.controller.counters.garbled == 1)
    }

    @Test func aResidentsAppCodeOpensLikeTheirCardForAMinute() throws {
        let rig = try Rig()
        let codes = ResidentQRCode(secret: try rig.db.passSecret())
        let now = rig.clock.wallMicros() / 1_000_000
        let code = codes.encode(personID: "P1", expires: now + 60)
        let d = try rig.controller.simulatedQR(reader: "qr-north-in", code: code)
        #expect(d?.reason == .granted && d?.personID == "P1")
        rig.advance(61)
        #expect(try rig.controller.simulatedQR(reader: "qr-north-in", code: code)?.reason == .expired)
    }
}

extension Rig {
    /// Types `keys` on a reader's keypad of the simulated board (8-bit bursts through the decoder).
    func type(_ keys: String, at reader: String = "reader-b01") throws {
        try board.keys(reader: reader, ControlRequest.keys(keys))
    }

    func accessReasons() throws -> [EventReason] {
        try events().filter { $0.type == .access }.compactMap(\.reason)
    }
}

@Suite("Card and PIN, wrong attempts and repeat reads on the simulated board", .serialized)
struct ReaderRulesControllerTests {
    @Test func cardThenItsHoldersPinOnTheReadersKeypadOpensTheDoor() throws {
        let rig = try Rig(b01Verify: "card_and_pin")
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.controller.lastDecision(at: "reader-b01")?.reason == .pinRequired)
        #expect(rig.board.outputs["b01.lock"] == false, "nothing opens on the card alone")
        try rig.type("246810#")
        #expect(rig.controller.lastDecision(at: "reader-b01")?.reason == .granted)
        #expect(rig.board.outputs["b01.lock"] == true)
        rig.advance(10)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        try rig.type("111111#")
        #expect(rig.board.outputs["b01.lock"] == false)
        rig.advance(10)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        rig.advance(16)  // no PIN: the ticker ends the wait
        #expect(try rig.accessReasons() == [.pinRequired, .granted, .pinRequired, .wrongPin, .pinRequired, .pinTimeout])
        let access = try rig.events().filter { $0.type == .access }
        #expect(access.allSatisfy { $0.credentialKind == .card && $0.credential == "6553701" }, "logged as the card; the PIN never")
    }

    @Test func fiveWrongPinsLockTheReaderRaiseAnAlarmAndTheLockoutEnds() throws {
        let rig = try Rig()
        for pin in ["1111#", "2222#", "3333#", "4444#", "5555#"] { try rig.type(pin) }
        try rig.type("246810#")
        #expect(rig.board.outputs["b01.lock"] == false, "a locked reader opens for nobody")
        let alarm = try #require(try rig.events().first { $0.type == .alarm && $0.reason == .readerLocked })
        #expect(alarm.portal == "b01-door")
        try rig.board.swipe(reader: "reader-north-in", card: 6_553_701)
        #expect(rig.controller.lastDecision(at: "reader-north-in")?.granted == true, "the other readers carry on")
        rig.advance(181)
        try rig.type("246810#")
        #expect(rig.board.outputs["b01.lock"] == true)
        #expect(try rig.accessReasons() == [.unknownCredential, .unknownCredential, .unknownCredential, .unknownCredential,
                                            .unknownCredential, .readerLocked, .granted, .granted])
    }

    @Test func aDuressPinOnTheKeypadOpensAndTheSilentAlarmIsDurable() throws {
        let rig = try Rig()
        try rig.db.addCredential(Credential(kind: .pin, value: "975310", owner: .person("P1"), duress: true), operator: "t")
        rig.advance(0.25)  // the roster reload
        try rig.type("975310#")
        #expect(rig.board.outputs["b01.lock"] == true)
        #expect(rig.board.outputs["siren"] == false && rig.board.outputs["strobe"] == false, "silent")
        let alarm = try #require(try rig.events().first { $0.reason == .duress })
        #expect(alarm.type == .alarm && alarm.personID == "P1" && alarm.portal == "b01-door")
        #expect(try rig.accessReasons() == [.granted])
    }

    @Test func interlockedDoorsOpenOneAtATime() throws {
        let rig = try Rig(extra: "[[interlock]]\ndoors = [\"gate\", \"b01\"]\n")
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.board.outputs["b01.lock"] == true)
        try rig.board.swipe(reader: "reader-north-in", card: 6_553_701)
        #expect(rig.controller.lastDecision(at: "reader-north-in")?.reason == .interlock)
        #expect(rig.board.outputs["gate-north.lock"] == true, "the fail-safe gate lock stays energised: locked")
        rig.advance(6)  // b01 relocks
        try rig.board.swipe(reader: "reader-north-in", card: 6_553_701)
        #expect(rig.controller.lastDecision(at: "reader-north-in")?.reason == .granted)
        #expect(try rig.accessReasons() == [.granted, .interlock, .granted])
    }

    @Test func aBouncingCardIsOneDecisionAndOneEvent() throws {
        let rig = try Rig()
        for _ in 1...3 { try rig.board.swipe(reader: "reader-b01", card: 6_553_701) }
        rig.advance(1)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(try rig.accessReasons() == [.granted])
        #expect(rig.controller.counters.decisions == 1)
        rig.advance(3)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(try rig.accessReasons() == [.granted, .granted])
    }

    @Test func accessdTakesACardThenItsPinOverTheControlSocket() throws {
        let rig = try Rig(b01Verify: "card_and_pin")
        let process = try rig.startAccessd()  // takes over the rig's database (and its key)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let socket = rig.dir.file("ctl.sock")
        let card = try ControlClient.send(.object([("op", "sim.swipe"), ("reader", "reader-b01"), ("card", 6_553_701)]), to: socket)
        #expect(card["decision"]?["reason"] == .string("pin_required"))
        let pin = try ControlClient.send(.object([("op", "sim.keys"), ("reader", "reader-b01"), ("keys", "246810#")]), to: socket)
        #expect(pin["decision"]?["reason"] == .string("granted") && pin["decision"]?["person_id"] == .string("P1"))
        let outputs = try ControlClient.send(.object([("op", "sim.outputs")]), to: socket)
        #expect(outputs["outputs"]?["b01.lock"] == .int(1))
        kill(process.processIdentifier, SIGTERM)
        #expect(rig.eventually(10) { !process.isRunning })
        #expect(try rig.accessReasons().prefix(2) == [.pinRequired, .granted])
    }
}

@Suite("accessd with a serial QR reader", .serialized, .timeLimit(.minutes(3)))
struct AccessdSerialQRTests {
    @Test func codesScannedOnTheSerialLineAreDecidedAndAReplugIsSurvived() async throws {
        let rig = try Rig()
        rig.controller.stop()  // the process below takes over the same database
        let now = Int64(Date().timeIntervalSince1970)
        let pass = try rig.db.issuePass(houseID: "B01-0301", visitorName: "王芳", validFrom: now - 60, validUntil: now + 3600,
                                        maxUses: 1, operator: "t")
        let secret = try rig.db.passSecret()
        let visitorCode = VisitorPassCode(secret: secret).encode(passID: pass.id, expires: pass.validUntil)

        var pty = try await PtyPair(dir: rig.dir)
        // The simulated board, with its QR reader on the pty instead of `sim qr`.
        var map = try #require(readTextFile("\(Rig.root)/Hardware/boards/sim.toml"))
        map = map.replacing("name = \"qr-north-in\"\n", with: "name = \"qr-north-in\"\ndevice = \"\(pty.a)\"\n", maxReplacements: 1)
        try #require(map.contains(pty.a))
        let mapPath = rig.dir.write("board.toml", map)
        let site = try #require(readTextFile(rig.config.source)).replacing("\(Rig.root)/Hardware/boards/sim.toml", with: mapPath)
        let config = rig.dir.write("serial-site.toml", site)

        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessd")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path))
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--config", config]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        #expect(rig.eventually(10) { (try? ControlClient.send(.object([("op", "status")]), to: rig.dir.file("ctl.sock"))) != nil })

        func qrEvents() throws -> [AccessEvent] {
            try rig.db.events(EventQuery(after: 0, limit: 1000)).filter { $0.credentialKind == .qr || $0.reason == .garbledFrame }
        }
        func deviceEvents() throws -> [EventReason] {
            try rig.db.events(EventQuery(after: 0, limit: 1000)).compactMap(\.reason).filter { $0 == .deviceOnline || $0 == .deviceOffline }
        }
        let residentCode = ResidentQRCode(secret: secret).encode(personID: "P1", expires: Int64(Date().timeIntervalSince1970) + 60)
        try PtyPair.send(Array("\(visitorCode)\r\n".utf8) + [0x41, 0x00, 0x0A] + Array("\(residentCode)\r\n".utf8), to: pty.b)
        #expect(rig.eventually(10) { (try? qrEvents().count) == 3 })
        let first = try qrEvents()
        #expect(first.map(\.reason) == [.granted, .garbledFrame, .granted], "\(first.map(\.reason))")
        #expect(first.first?.credential == pass.id && first.last?.personID == "P1")
        #expect(try rig.db.pass(pass.id)?.uses == 1)

        // The reader unplugged and plugged back: accessd reopens the port by itself.
        pty.kill()
        #expect(rig.eventually(10) { (try? deviceEvents()) == [.deviceOnline, .deviceOffline] })
        pty = try await PtyPair(dir: rig.dir)
        defer { pty.kill() }
        #expect(rig.eventually(10) { (try? deviceEvents()) == [.deviceOnline, .deviceOffline, .deviceOnline] })
        try PtyPair.send(Array("\(visitorCode)\n".utf8), to: pty.b)
        #expect(rig.eventually(10) { (try? qrEvents().count) == 4 })
        #expect(try qrEvents().last?.reason == .usesExhausted, "the pass's one entry was spent before the replug")

        kill(process.processIdentifier, SIGTERM)
        #expect(rig.eventually(10) { !process.isRunning })
        #expect(process.terminationStatus == 0)
    }
}
