import AccessCore
import AccessCtlKit
import AccessRuntime
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// Runs accessctl in-process against a fresh site in a temporary directory.
final class CLI {
    let dir = TemporaryDirectory("accessctl")
    let config: String

    init() {
        config = dir.write("site.toml", """
            [controller]
            id = "test-ctl"
            community = "测试小区"
            [database]
            path = "\(dir.file("access.db"))"
            [[portal]]
            id = "gate-in"
            readers = ["r1"]
            [[portal]]
            id = "gate-out"
            direction = "out"
            from_area = "community"
            to_area = "outside"
            [[portal]]
            id = "lane-in"
            kind = "barrier"
            [[portal]]
            id = "b01-door"
            building = "B01"
            from_area = "community"
            to_area = "b01"
            """)
    }

    struct Result {
        var code: Int32
        var out: String
        var err: String
        var json: JSON? { JSON.parse(out.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    @discardableResult
    func run(_ arguments: String...) -> Result { run(arguments) }

    func run(_ arguments: [String]) -> Result {
        let captured = CapturedOutput()
        let console = Console(out: { captured.appendOut($0) }, err: { captured.appendErr($0) })
        let code = AccessCtl.run(["--config", config, "--operator", "tester"] + arguments, console: console)
        return Result(code: code, out: captured.stdout, err: captured.stderr)
    }

    func seed() {
        run("house", "add", "B01-U1-0301", "--building", "B01", "--unit", "1", "--floor", "3", "--room", "0301")
        run("person", "add", "P1", "--house", "B01-U1-0301", "--role", "owner", "--name", "张伟", "--card", "10023456", "--plate", "京A12345")
    }
}

@Suite("accessctl")
struct CLITests {
    @Test func helpShowsExamplesAndExitsZero() {
        let r = CLI().run("--help")
        #expect(r.code == 0)
        #expect(r.out.contains("Examples:"))
        #expect(r.out.contains("import"))
        let sub = CLI().run("import", "--help")
        #expect(sub.code == 0 && sub.out.contains("--dry-run") && sub.out.contains("FILE:LINE: column: problem"))
    }

    @Test func checkPrintsTheDocumentedJSONAndExitsZeroWhateverTheDecision() throws {
        let cli = CLI()
        cli.seed()
        let granted = cli.run("check", "--portal", "b01-door", "--card", "10023456", "--at", "2026-11-23T08:00", "--json")
        #expect(granted.code == 0)
        let j = try #require(granted.json)
        #expect(j["granted"] == .bool(true))
        #expect(j["reason"] == .string("granted"))
        #expect(j["person_id"] == .string("P1"))
        #expect(j["house_id"] == .string("B01-U1-0301"))
        #expect(j["portal"] == .string("b01-door"))
        let unknown = cli.run("check", "--portal", "gate-in", "--card", "1", "--json")
        #expect(unknown.code == 0)
        #expect(unknown.json?["reason"] == .string("unknown_credential"))
        #expect(unknown.json?["person_id"] == .null)
        #expect(unknown.json?["house_id"] == .null)
    }

    @Test func failuresAreOneLineOnStderrWithNonZeroStatus() {
        let cli = CLI()
        cli.seed()
        for args in [["check", "--portal", "moon", "--card", "1"], ["person", "show", "nobody"],
                     ["card", "add", "10023456", "--person", "P1"], ["schedule", "add", "s", "--segment", "mon 19:00-07:00"]] {
            let r = cli.run(args)
            #expect(r.code != 0, "\(args)")
            #expect(r.err.hasPrefix("accessctl: "), "\(args)")
            #expect(r.err.split(separator: "\n").count == 1, "\(args)")
            #expect(r.out.isEmpty, "\(args)")
        }
        #expect(cli.run("schedule", "add", "s", "--segment", "mon 19:00-07:00").err.contains("crosses midnight"))
        let usage = cli.run("check", "--portal", "gate-in")
        #expect(usage.code == 64)
        #expect(usage.err.contains("exactly one of --card"))
    }

    @Test func aBadPlateRefusesTheWholePersonAdd() {
        let cli = CLI()
        cli.seed()
        let r = cli.run("person", "add", "P2", "--house", "B01-U1-0301", "--role", "family", "--card", "77", "--plate", "A12")
        #expect(r.code == 1)
        #expect(r.err.contains("\"A12\" is not a licence plate"))
        #expect(cli.run("person", "show", "P2").code == 1)
        #expect(cli.run("card", "show", "77").code == 1)
    }

    @Test func importReportsEveryBadRowAndChangesNothing() throws {
        let cli = CLI()
        let path = cli.dir.write("r.csv", """
            house_id,building,person_id,role,cards,valid_until
            B01-U1-0301,B01,P1,owner,1001,
            B01-U1-0302,,P2,owner,1002,
            B01-U1-0301,B01,P3,owner,1001,2026-02-30

            """)
        let r = cli.run("import", path)
        #expect(r.code == 1)
        let lines = r.err.split(separator: "\n").map(String.init)
        #expect(lines == [
            "\(path):3: building: house \"B01-U1-0302\" is new, so its building is required",
            "\(path):4: valid_until: \"2026-02-30\" is not a date (YYYY-MM-DD) or a date-time with offset (2026-12-31T18:00:00+08:00)",
            "import refused: 2 problem(s); nothing was changed",
        ])
        #expect(cli.run("person", "list", "--json").json == .array([]))
    }

    @Test func dryRunThenImportThenExportRoundTrip() throws {
        let cli = CLI()
        let csv = "house_id,building,person_id,name,role,cards,plates,valid_until\nB01-U1-0301,B01,P1,张伟,owner,1001,京A12345,\nB01-U1-0301,B01,P2,李娜,tenant,1002,,2027-06-30\n"
        let path = cli.dir.write("r.csv", csv)
        let dry = cli.run("import", path, "--dry-run", "--json")
        #expect(dry.code == 0)
        #expect(dry.json?["added"] == .int(2))
        #expect(dry.json?["dry_run"] == .bool(true))
        #expect(cli.run("person", "list", "--json").json == .array([]))
        let real = cli.run("import", path)
        #expect(real.code == 0)
        #expect(real.out.contains("2 added"))
        let exported = cli.run("export", "--output", cli.dir.file("out.csv"))
        #expect(exported.code == 0)
        let text = try #require(cli.dir.read("out.csv"))
        #expect(text.contains("B01-U1-0301,B01,,,,P2,李娜,tenant,,,2027-06-30,1002,,,active"))
        let again = cli.run("import", cli.dir.file("out.csv"), "--json")
        #expect(again.json?["unchanged"] == .int(2))
    }

    @Test func visitorPassQRGrantsUntilItsUsesAreSpent() throws {
        let cli = CLI()
        cli.seed()
        let issued = cli.run("visitor", "issue", "--house", "B01-U1-0301", "--name", "王芳", "--from", "2026-11-23T08:00",
                             "--until", "2026-11-23T18:00", "--uses", "1", "--json")
        #expect(issued.code == 0)
        guard case .string(let code)? = issued.json?["qr"], case .string(let id)? = issued.json?["id"] else {
            Issue.record("no qr in \(issued.out)")
            return
        }
        let check = cli.run("check", "--portal", "gate-in", "--qr", code, "--at", "2026-11-23T09:00", "--json")
        #expect(check.json?["granted"] == .bool(true))
        #expect(check.json?["visitor_pass"] == .string(id))
        #expect(cli.run("check", "--portal", "gate-in", "--qr", code, "--at", "2026-11-23T18:00", "--json").json?["reason"] == .string("expired"))
        var forged = code
        forged.removeLast()
        forged += code.hasSuffix("0") ? "1" : "0"
        #expect(cli.run("check", "--portal", "gate-in", "--qr", forged, "--at", "2026-11-23T09:00", "--json").json?["reason"] == .string("unknown_credential"))
        #expect(cli.run("visitor", "revoke", id).code == 0)
        #expect(cli.run("check", "--portal", "gate-in", "--qr", code, "--at", "2026-11-23T09:00", "--json").json?["reason"] == .string("revoked"))
        let shown = cli.run("visitor", "show", id)
        #expect(shown.out.contains("█") && shown.out.contains(code))
    }

    @Test func qrCodeDecodesWithARealScanner() throws {
        let payload = "CA1.VABCDEFGHJK.1795420800.0123456789abcdef0123456789abcdef"
        let qr = try #require(QRMatrix(text: payload))
        let dir = TemporaryDirectory()
        let image = dir.write("qr.pbm", qr.pbm(scale: 4))
        let scanner = Process()
        scanner.executableURL = URL(fileURLWithPath: "/usr/bin/zbarimg")
        scanner.arguments = ["--quiet", "--raw", image]
        let pipe = Pipe()
        scanner.standardOutput = pipe
        try scanner.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        scanner.waitUntilExit()
        #expect(scanner.terminationStatus == 0)
        #expect(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == payload)
        #expect(qr.terminalText().split(separator: "\n").count == (qr.size + 4 + 1) / 2)
    }

    @Test func revokeScheduleAndModeShowUpInCheck() {
        let cli = CLI()
        cli.seed()
        #expect(cli.run("card", "revoke", "10023456", "--lost").code == 0)
        #expect(cli.run("check", "--portal", "gate-in", "--card", "10023456", "--json").json?["reason"] == .string("revoked"))
        #expect(cli.run("card", "resume", "10023456").code == 0)
        #expect(cli.run("portal", "mode", "b01-door", "always-closed").code == 0)
        #expect(cli.run("check", "--portal", "b01-door", "--card", "10023456", "--json").json?["reason"] == .string("portal_locked"))
        cli.run("schedule", "add", "day", "--segment", "mon-fri 08:00-18:00")
        cli.run("group", "add", "cleaners", "--portal", "gate-in", "--schedule", "day")
        cli.run("person", "add", "S1", "--house", "B01-U1-0301", "--role", "staff", "--group", "cleaners", "--card", "555")
        #expect(cli.run("check", "--portal", "gate-in", "--card", "555", "--at", "2026-11-23T07:59", "--json").json?["reason"] == .string("outside_schedule"))
        #expect(cli.run("check", "--portal", "gate-in", "--card", "555", "--at", "2026-11-23T08:00", "--json").json?["reason"] == .string("granted"))
        #expect(cli.run("person", "suspend", "S1").code == 0)
        #expect(cli.run("check", "--portal", "gate-in", "--card", "555", "--at", "2026-11-23T08:00", "--json").json?["reason"] == .string("suspended"))
    }

    @Test func dbOptionAloneDecidesLikeTheConfig() {
        let cli = CLI()
        cli.seed()
        let captured = CapturedOutput()
        let console = Console(out: { captured.appendOut($0) }, err: { captured.appendErr($0) })
        let code = AccessCtl.run(["--db", cli.dir.file("access.db"), "check", "--portal", "b01-door", "--card", "10023456", "--at", "2026-11-23T08:00", "--json"], console: console)
        #expect(code == 0)
        #expect(JSON.parse(captured.stdout.trimmingCharacters(in: .whitespacesAndNewlines))?["reason"] == .string("granted"))
    }

    @Test func auditNamesTheUnixUserAndKeepsTheTypedOperatorAsANote() throws {
        let cli = CLI()
        cli.seed()  // as `--operator tester`
        let r = cli.run("audit", "--json")
        guard case .array(let entries)? = r.json else { Issue.record("no audit json"); return }
        #expect(entries.count == 4)
        let user = try UnixUser.current().name
        #expect(entries.allSatisfy { $0["operator"] == .string(user) && $0["note"] == .string("tester") }, "\(entries)")
        #expect(cli.run("audit", "--by", "tester", "--json").json == .array([]), "a typed name is never the operator")
        #expect(cli.run("audit").out.contains("\(user) (note: tester)"))
        #expect(entries.map { $0["action"] } == [.string("house.add"), .string("person.add"), .string("card.add"), .string("plate.add")])
    }

    @Test func eventsPageByCursor() throws {
        let cli = CLI()
        cli.seed()
        let empty = cli.run("events", "--json")
        #expect(empty.json?["events"] == .array([]))
        #expect(empty.json?["next_after"] == .int(0))
        #expect(empty.json?["more"] == .bool(false))
    }

    @Test func followAfterZeroStartsAtTheFirstEventAndWithoutACursorFromNow() throws {
        let cli = CLI()
        let db = try AccessDatabase(path: cli.dir.file("access.db"))
        let old = (1...3).map { AccessEvent(timeMicros: 1_790_000_000_000_000 + Int64($0), utcOffset: 28_800, type: .system, reason: .started, detail: [("n", .int(Int64($0)))]) }
        _ = try db.appendEvents(old)
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessctl")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "accessctl is built beside the tests")
        /// Runs `events --follow ARGS --json` for 1.5 s (appending one new event after 0.5 s) and
        /// returns the reasons it printed.
        func follow(_ args: [String]) throws -> [String] {
            let process = Process()
            process.executableURL = binary
            process.arguments = ["--config", cli.config, "events", "--follow", "--json"] + args
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            usleep(500_000)
            _ = try db.appendEvents([AccessEvent(timeMicros: 1_790_000_000_100_000, utcOffset: 28_800, type: .system, reason: .stopped)])
            usleep(1_000_000)
            // SIGKILL: a test before may have run a ServiceGroup, which ignores SIGTERM, and an
            // ignored signal stays ignored in the children.
            kill(process.processIdentifier, SIGKILL)
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { JSON.parse(String($0))?["reason"]?.stringValue }
        }
        #expect(try follow(["--after", "0"]) == ["started", "started", "started", "stopped"])
        #expect(try follow([]) == ["stopped"], "no cursor: only what is recorded from now on")
    }

    @Test func theBuiltBinaryRunsWithGlobalOptionsFirst() throws {
        let cli = CLI()
        cli.seed()
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessctl")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path), "accessctl is built beside the tests")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--config", cli.config, "--json", "check", "--portal", "b01-door", "--card", "10023456", "--at", "2026-11-23T08:00"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(JSON.parse(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))?["granted"] == .bool(true))
    }
}
