import AccessConfig
import AccessControlProtocol
import AccessController
import AccessCore
@_spi(Testing) import AccessStore
import AccessTestSupport
import Foundation
import Glibc
import Testing

/// The real accessd: secrets others may read are refused before anything starts, and PINs (kept
/// as keyed hashes) still open at the keypad.
@Suite("accessd: secrets at rest", .serialized)
struct SecretsAtRestAccessdTests {
    /// Runs accessd with `arguments` until it exits (or `seconds` pass); its exit code and stderr.
    static func accessd(_ rig: Rig, _ arguments: [String], seconds: Double = 20) throws -> (code: Int32?, err: String) {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessd")
        let log = rig.dir.write("accessd-\(UInt32.random(in: 0...UInt32.max)).err", "")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        _ = rig.eventually(seconds) { !process.isRunning }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return (nil, readTextFile(log) ?? "")
        }
        return (process.terminationStatus, readTextFile(log) ?? "")
    }

    @Test func aPinKeyFileOthersMayReadIsRefusedAtStartAndByCheckConfig() throws {
        let rig = try Rig()
        rig.controller.stop()
        let key = rig.config.pinKeyPath
        #expect(key == rig.dir.file("access.pin-key"))
        let ok = try Self.accessd(rig, ["--config", rig.config.source, "--check-config"])
        #expect(ok.code == 0, "the detector: the rig's site passes as it is: \(ok.err)")

        #expect(chmod(key, 0o644) == 0)
        let message = "\(key): mode 0644 lets other users read this secret; chmod 640 \(key)"
        let check = try Self.accessd(rig, ["--config", rig.config.source, "--check-config"])
        #expect(check.code == 1 && check.err.contains("security.pin_key_file: " + message), "\(check.err)")
        let start = try Self.accessd(rig, ["--config", rig.config.source])
        #expect(start.code == 1 && start.err.contains(message), "accessd refuses to start: \(start.err)")

        #expect(chmod(key, 0o660) == 0)
        let groupWritable = try Self.accessd(rig, ["--config", rig.config.source, "--check-config"])
        #expect(groupWritable.code == 1 && groupWritable.err.contains("mode 0660 lets the group change this secret; chmod 640"), "\(groupWritable.err)")
        #expect(chmod(key, 0o600) == 0)
        #expect(try Self.accessd(rig, ["--config", rig.config.source, "--check-config"]).code == 0)
    }

    @Test func theDatabaseAndCredentialFilesOthersMayReadAreRefusedToo() throws {
        let rig = try Rig(extra: "[upstream.mqtt]\nusername = \"gate\"\npassword_file = \"PASSWORD\"\n")
        rig.controller.stop()
        let password = rig.dir.write("mqtt.pw", "secret\n")
        let site = try #require(readTextFile(rig.config.source)).replacing("\"PASSWORD\"", with: "\"\(password)\"")
        let config = rig.dir.write("site-mqtt.toml", site)
        #expect(chmod(password, 0o600) == 0)
        #expect(try Self.accessd(rig, ["--config", config, "--check-config"]).code == 0, "the detector")
        #expect(chmod(password, 0o604) == 0)
        let mqtt = try Self.accessd(rig, ["--config", config, "--check-config"])
        #expect(mqtt.code == 1 && mqtt.err.contains("upstream.mqtt.password_file: \(password): mode 0604 lets other users read this secret"), "\(mqtt.err)")
        #expect(chmod(password, 0o600) == 0)

        let db = rig.config.databasePath
        #expect(chmod(db, 0o644) == 0)
        let exposed = try Self.accessd(rig, ["--config", config])
        #expect(exposed.code == 1 && exposed.err.contains("database.path: \(db): mode 0644 lets other users read this database"), "\(exposed.err)")
    }

    @Test func aPinAndADuressPinTypedAtTheKeypadOpenThroughTheRealAccessd() throws {
        let rig = try Rig()
        try rig.db.addCredential(Credential(kind: .pin, value: "975310", owner: .person("P1"), duress: true), operator: "t")
        let process = try rig.startAccessd()  // takes over the rig's database (and its key)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let socket = rig.dir.file("ctl.sock")
        func type(_ keys: String) throws -> JSON? {
            try ControlClient.send(.object([("op", "sim.keys"), ("reader", "reader-b01"), ("keys", .string(keys))]), to: socket)["decision"]
        }
        let pin = try type("246810#")
        #expect(pin?["reason"] == .string("granted") && pin?["person_id"] == .string("P1"))
        let wrong = try type("246811#")
        #expect(wrong?["reason"] == .string("unknown_credential"))
        let duress = try type("975310#")
        #expect(duress?["reason"] == .string("granted"))
        kill(process.processIdentifier, SIGTERM)
        #expect(rig.eventually(10) { !process.isRunning })
        #expect(try rig.accessReasons() == [.granted, .unknownCredential, .granted])
        let alarm = try #require(try rig.events().first { $0.reason == .duress })
        #expect(alarm.type == .alarm && alarm.personID == "P1")
    }
}
