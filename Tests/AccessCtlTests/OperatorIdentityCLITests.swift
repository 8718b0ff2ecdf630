import AccessCore
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// The real accessctl run as another Unix user (`setpriv`; the tests run as root): its roster
/// changes are audited as that user whatever it types or sets in its environment.
@Suite("accessctl records the Unix user it runs as")
struct OperatorIdentityCLITests {
    @Test func aRosterChangeIsAuditedAsTheRealUserNotTheTypedNameOrTheEnvironment() throws {
        let dir = TemporaryDirectory("ctl-user")
        chmod(dir.path, 0o777)  // nobody writes the database here
        let accessctl = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessctl").path
        try #require(FileManager.default.isExecutableFile(atPath: accessctl))
        let run = try PeerProcess(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "USER=root", "SUDO_USER=root",
                                   "LOGNAME=root", accessctl, "--db", dir.file("access.db"), "--operator", "root",
                                   "house", "add", "B01-U1-0101", "--building", "B01"], log: dir.file("accessctl.log"))
        #expect(run.wait() == 0, "\(run.output)")
        let entry = try #require(try AccessDatabase(path: dir.file("access.db"), create: false).audit().first)
        #expect(entry.operator == "nobody", "the kernel's uid, not $USER, $SUDO_USER or --operator")
        #expect(entry.note == "root")
        #expect(entry.action == "house.add" && entry.target == "B01-U1-0101")
    }
}
