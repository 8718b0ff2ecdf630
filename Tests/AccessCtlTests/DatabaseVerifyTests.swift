import AccessCore
import AccessStore
import AccessTestSupport
import Foundation
import Testing

@Suite("accessctl db verify")
struct DatabaseVerifyTests {
    func logWithEvents(_ cli: CLI) throws {
        cli.seed()  // audit entries
        let db = try AccessDatabase(path: cli.dir.file("access.db"))
        try db.appendEvents((1...12).map { i in
            AccessEvent(timeMicros: 1_790_000_000_000_000 + Int64(i), utcOffset: 28_800, type: .system, reason: .started)
        })
    }

    @Test func anIntactDatabaseExitsZeroAndSaysWhatItChecked() throws {
        let cli = CLI()
        try logWithEvents(cli)
        let r = cli.run("db", "verify", "--json")
        #expect(r.code == 0, "\(r.err)")
        let json = try #require(r.json)
        #expect(json["ok"] == .bool(true))
        #expect(json["events"]?["checked"] == .int(12) && json["events"]?["intact"] == .bool(true))
        #expect(json["audit"]?["checked"] == .int(4) && json["audit"]?["first_bad_serial"] == .null)
        let text = cli.run("db", "verify")
        #expect(text.code == 0 && text.out.contains("events: intact, 12 checked") && text.out.contains("audit: intact, 4 checked"))
    }

    @Test(arguments: [
        ("DELETE FROM events WHERE serial = 7", "event chain broken: serial 7 deleted", "events", 7),
        ("UPDATE events SET reason = 'stopped' WHERE serial = 4", "event chain broken: serial 4 altered or reordered", "events", 4),
        ("UPDATE audit SET target = 'B09-U9-0909' WHERE id = 1", "audit chain broken: serial 1 altered or reordered", "audit", 1),
    ])
    func aTamperedDatabaseExitsOneNamingTheFirstBadSerial(sql: String, message: String, log: String, serial: Int64) throws {
        let cli = CLI()
        try logWithEvents(cli)
        let shell = try PeerProcess(["sqlite3", cli.dir.file("access.db"), sql], log: cli.dir.file("sqlite3.log"))
        #expect(shell.wait() == 0, "\(shell.output)")
        let r = cli.run("db", "verify", "--json")
        #expect(r.code == 1)
        #expect(r.err == "accessctl: \(message)\n", "\(r.err)")
        #expect(r.json?["ok"] == .bool(false))
        #expect(r.json?[log]?["first_bad_serial"] == .int(serial))
        #expect(cli.run("db", "verify").out.contains("BROKEN at serial \(serial)"))
    }
}
