import AccessConfig
import AccessCore
import AccessCtlKit
import AccessRuntime
import AccessTestSupport
import Foundation
import Testing

/// A database copied to another machine: its PINs are keyed hashes, so the copy yields none, opens
/// nothing by PIN without the site's key, and its logs still verify.
@Suite("accessctl: PINs at rest")
struct SecretsAtRestCLITests {
    @Test func aDatabaseCopiedWithoutItsKeyYieldsNoPinAndStillVerifies() throws {
        let cli = CLI()
        cli.seed()
        #expect(cli.run("pin", "add", "48291375", "--person", "P1").code == 0)
        #expect(cli.run("pin", "add", "97531086", "--person", "P1", "--duress").code == 0)
        let at = ["--at", "2026-11-23T08:00", "--json"]
        #expect(cli.run(["check", "--portal", "gate-in", "--pin", "48291375"] + at).json?["reason"] == .string("granted"), "the detector")
        let keyFile = cli.dir.file("access.pin-key")
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int
        #expect(mode == 0o640, "the key file is made 0640 beside the database")
        #expect(cli.run("pin", "list").out.contains("****") && !cli.run("pin", "list", "--json").out.contains("48291375"))

        // The thief copies the database and its WAL (everything but the key) to another directory.
        let elsewhere = TemporaryDirectory("stolen")
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: cli.dir.file("access.db" + suffix)) {
            try FileManager.default.copyItem(atPath: cli.dir.file("access.db" + suffix), toPath: elsewhere.file("access.db" + suffix))
        }
        let raw = [elsewhere.file("access.db"), elsewhere.file("access.db-wal")].compactMap { readTextFile($0) }.joined()
        #expect(raw.contains("10023456"), "the detector: the copy holds the roster (a card number)")
        #expect(!raw.contains("48291375") && !raw.contains("97531086"), "no PIN in the copied bytes")

        let copy = ["--db", elsewhere.file("access.db"), "--operator", "thief"]
        let verify = cli.runRaw(copy + ["db", "verify", "--json"])
        #expect(verify.code == 0 && verify.json?["ok"] == .bool(true), "\(verify.out) \(verify.err)")
        for pin in ["48291375", "97531086"] {
            let check = cli.runRaw(copy + ["check", "--portal", "gate-in", "--pin", pin] + at)
            #expect(check.json?["granted"] == .bool(false) && check.json?["reason"] == .string("unknown_credential"),
                    "another key (made beside the copy) finds no PIN: \(check.out) \(check.err)")
        }
        #expect(FileManager.default.contentsEqual(atPath: keyFile, andPath: elsewhere.file("access.pin-key")) == false)

        // With the site's key beside it (a restore), the same copy decides as the site does.
        try FileManager.default.removeItem(atPath: elsewhere.file("access.pin-key"))
        try FileManager.default.copyItem(atPath: keyFile, toPath: elsewhere.file("access.pin-key"))
        let restored = cli.runRaw(copy + ["check", "--portal", "gate-in", "--pin", "97531086"] + at)
        #expect(restored.json?["reason"] == .string("granted") && restored.json?["person_id"] == .string("P1"), "\(restored.out)")
    }

    @Test func aKeyFileOthersMayReadIsRefusedByAccessctl() throws {
        let cli = CLI()
        cli.seed()
        let keyFile = cli.dir.file("access.pin-key")
        #expect(chmod(keyFile, 0o644) == 0)
        let r = cli.run("pin", "add", "48291375", "--person", "P1")
        #expect(r.code != 0 && r.err.contains("\(keyFile): mode 0644 lets other users read this secret; chmod 640 \(keyFile)"), "\(r.err)")
        #expect(chmod(keyFile, 0o600) == 0)
        #expect(cli.run("pin", "add", "48291375", "--person", "P1").code == 0)
    }
}

extension CLI {
    /// accessctl with exactly these arguments (no `--config`).
    func runRaw(_ arguments: [String]) -> Result {
        let captured = CapturedOutput()
        let console = Console(out: { captured.appendOut($0) }, err: { captured.appendErr($0) })
        let code = AccessCtl.run(arguments, console: console)
        return Result(code: code, out: captured.stdout, err: captured.stderr)
    }
}
