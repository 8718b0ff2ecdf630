import AccessCore
import AccessRuntime
import AccessStore
import AccessTestSupport
import Foundation
import Testing

@Suite("accessctl token")
struct TokenCommandTests {
    @Test func addPrintsTheTokenOnceWithItsScopesAndListNeverShowsIt() throws {
        let cli = CLI()
        let added = cli.run("token", "add", "camera", "--scope", "plates:write", "--scope", "events:read", "--expires", "90d", "--json")
        #expect(added.code == 0, "\(added.err)")
        let json = try #require(added.json)
        guard case .string(let token)? = json["token"] else { Issue.record("no token in \(added.out)"); return }
        #expect(token.hasPrefix(APIToken.prefix))
        #expect(json["scopes"] == .array([.string("events:read"), .string("plates:write")]))
        #expect(json["expires"] != .null)

        let list = cli.run("token", "list", "--json")
        #expect(list.code == 0)
        #expect(!list.out.contains(token))
        guard case .array(let entries)? = list.json, let entry = entries.first else { Issue.record("no list: \(list.out)"); return }
        #expect(entry["name"] == .string("camera"))
        #expect(entry["scopes"] == .array([.string("events:read"), .string("plates:write")]))
        #expect(entry["predates_scopes"] == .bool(false))
        #expect(entry["created_by"] == .string("\(try UnixUser.current().name) (note: tester)"))
        #expect(entry["last_used"] == .null)
        let text = cli.run("token", "list")
        #expect(text.out.contains("events:read plates:write") && text.out.contains("LAST USED") && text.out.contains("never"))
        #expect(!text.out.contains(token))
    }

    @Test(arguments: [
        (["--scope", "doors:open"], "scope \"doors:open\" is not one of events:read"),
        (["--scope", "events:read", "--expires", "2001-01-01"], "--expires: \"2001-01-01\" is not in the future"),
        (["--expires", "soon"], "--expires: \"soon\" is not a date"),
        (["--expires", "0d"], "--expires: \"0d\" must be a positive span"),
    ])
    func badScopesOrExpiriesAreRefusedAndMakeNoToken(arguments: [String], message: String) {
        let cli = CLI()
        let r = cli.run(["token", "add", "platform"] + arguments)
        #expect(r.code == 1)
        #expect(r.err.contains(message), "\(r.err)")
        #expect(cli.run("token", "list", "--json").json == .array([]))
    }

    @Test func aTokenMadeBeforeScopesKeepsEveryScopeAfterTheUpgrade() throws {
        let cli = CLI()
        let old = cli.run("token", "add", "platform", "--json")
        #expect(old.code == 0)
        // Turn the file back into the schema before scopes (version 4) with the real sqlite3 shell;
        // the next open migrates it.
        let db = cli.dir.file("access.db")
        let downgrade = try PeerProcess(["sqlite3", db, """
            ALTER TABLE api_tokens DROP COLUMN scopes; ALTER TABLE api_tokens DROP COLUMN expires_us;
            ALTER TABLE api_tokens DROP COLUMN last_used_us; ALTER TABLE audit DROP COLUMN note;
            ALTER TABLE events DROP COLUMN prev_hash; ALTER TABLE events DROP COLUMN hash;
            ALTER TABLE audit DROP COLUMN prev_hash; ALTER TABLE audit DROP COLUMN hash;
            DROP TRIGGER credentials_pin_hashed_insert; DROP TRIGGER credentials_pin_hashed_update;
            ALTER TABLE credentials DROP COLUMN duress; ALTER TABLE houses DROP COLUMN parking_spaces; DROP TABLE parking;
            PRAGMA user_version = 4;
            """], log: cli.dir.file("sqlite3.log"))
        #expect(downgrade.wait() == 0, "\(downgrade.output)")
        let list = cli.run("token", "list", "--json")
        #expect(list.code == 0, "\(list.err)")
        guard case .array(let entries)? = list.json, let entry = entries.first else { Issue.record("no list: \(list.out)"); return }
        #expect(entry["predates_scopes"] == .bool(true))
        #expect(entry["scopes"] == .array(APIScope.allCases.sorted().map { .string($0.rawValue) }))
        #expect(cli.run("token", "list").out.contains("all (made before scopes)"))
        guard case .string(let token)? = old.json?["token"] else { Issue.record("no token"); return }
        let grant = try #require(APIToken.match(token, among: try AccessDatabase(path: db).apiTokenGrants()))
        #expect(grant.scopes == Set(APIScope.allCases))
    }
}
