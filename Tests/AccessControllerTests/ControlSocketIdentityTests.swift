import AccessControlProtocol
import AccessController
import AccessCore
import AccessRuntime
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// The control socket records who the kernel says is calling (`SO_PEERCRED`), whatever name the
/// request carries. Callers of other uids are real processes started with `setpriv` (the tests
/// run as root, as CI does).
@Suite("Control socket: operators are who the kernel says", .serialized)
struct ControlSocketIdentityTests {
    /// Sends one request line from a process running as `uid`/`gid` (no supplementary groups);
    /// its stdout: the reply, or `EACCES` when the socket refused to connect it. Debian's own
    /// python: another user may not run one installed under root's home.
    static func send(_ request: String, to socket: String, uid: Int, gid: Int, dir: TemporaryDirectory) throws -> (status: Int32, output: String) {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(sys.argv[1])
            except PermissionError:
                print("EACCES"); sys.exit(3)
            s.sendall((sys.argv[2] + "\\n").encode())
            print(s.makefile().readline().strip())
            """
        let child = try PeerProcess(["setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "/usr/bin/python3", "-c", script, socket, request],
                                    log: dir.file("client-\(UUID().uuidString).log"))
        let status = child.wait()
        return (status, child.output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func aDoorCommandIsRecordedAsTheCallersUserAndAForgedNameIsOnlyANote() throws {
        let rig = try Rig()
        chmod(rig.dir.path, 0o711)  // the other user must reach the socket inside
        let socket = rig.dir.file("ops.sock")
        let server = try ControlServer(path: socket, group: "nogroup") { rig.controller.handleControl($0, caller: $1) }
        defer { server.stop() }
        var info = stat()
        #expect(stat(socket, &info) == 0)
        #expect(info.st_gid == 65_534, "the socket belongs to the operators' group")
        #expect(info.st_mode & 0o777 == 0o660)

        let nobody = try UnixUser.of(uid: 65_534).name
        let forged = #"{"op":"door","portal":"b01-door","command":"always-closed","operator":"root"}"#
        let reply = try Self.send(forged, to: socket, uid: 65_534, gid: 65_534, dir: rig.dir)
        #expect(reply.status == 0 && JSON.parse(reply.output)?["ok"] == .bool(true), "\(reply.output)")
        rig.controller.flush()
        let entry = try #require(try rig.db.audit(target: "b01-door").last)
        #expect(entry.operator == nobody, "the kernel's user, not the name in the request")
        #expect(entry.note == "root")
        #expect(entry.action == "door.always-closed")
        #expect(try rig.db.audit(operator: "root").isEmpty)
        let event = try #require(try rig.events().last { $0.type == .operator })
        #expect(event.detail.first { $0.0 == "operator" }?.1 == .string("\(nobody) (note: root)"))
    }

    @Test func fenceAndLaneCommandsAreRecordedAsTheCallersUserToo() throws {
        let rig = try Rig(extra: FieldSite.simulated, realTime: true)
        chmod(rig.dir.path, 0o711)
        let socket = rig.dir.file("ops.sock")
        let server = try ControlServer(path: socket, group: "nogroup") { rig.controller.handleControl($0, caller: $1) }
        defer { server.stop() }
        let nobody = try UnixUser.of(uid: 65_534).name
        for request in [#"{"op":"fence","portal":"fence-north","command":"disarm","operator":"zhang"}"#,
                        #"{"op":"door","portal":"lane-in","command":"always-open","operator":"zhang"}"#] {
            let reply = try Self.send(request, to: socket, uid: 65_534, gid: 65_534, dir: rig.dir)
            #expect(reply.status == 0 && JSON.parse(reply.output)?["ok"] == .bool(true), "\(reply.output)")
        }
        rig.controller.flush()
        let entries = try rig.db.audit().filter { $0.action.hasPrefix("fence.") || $0.action.hasPrefix("barrier.") }
        #expect(entries.map(\.action) == ["fence.disarm", "barrier.always-open"])
        #expect(entries.allSatisfy { $0.operator == nobody && $0.note == "zhang" }, "\(entries)")
    }

    @Test func theCallersOwnNameAddsNoNote() throws {
        let rig = try Rig()
        chmod(rig.dir.path, 0o711)
        let socket = rig.dir.file("ops.sock")
        let server = try ControlServer(path: socket, group: "nogroup") { rig.controller.handleControl($0, caller: $1) }
        defer { server.stop() }
        let nobody = try UnixUser.of(uid: 65_534).name
        let request = #"{"op":"door","portal":"b01-door","command":"open","operator":"\#(nobody)"}"#
        #expect(try Self.send(request, to: socket, uid: 65_534, gid: 65_534, dir: rig.dir).status == 0)
        rig.controller.flush()
        let entry = try #require(try rig.db.audit(target: "b01-door").last)
        #expect(entry.operator == nobody && entry.note == nil)
    }

    @Test func aUserOutsideTheOperatorsGroupCannotConnect() throws {
        let rig = try Rig()
        chmod(rig.dir.path, 0o711)
        let socket = rig.dir.file("ops.sock")
        let server = try ControlServer(path: socket, group: "nogroup") { rig.controller.handleControl($0, caller: $1) }
        defer { server.stop() }
        let request = #"{"op":"door","portal":"b01-door","command":"always-open","operator":"x"}"#
        let refused = try Self.send(request, to: socket, uid: 65_534, gid: 1, dir: rig.dir)  // group daemon
        #expect(refused.status == 3 && refused.output == "EACCES", "\(refused.output)")
        rig.controller.flush()
        #expect(try rig.db.audit(target: "b01-door").isEmpty)
        #expect(try rig.db.portalMode("b01-door") == .normal)
    }

    @Test func anUnknownGroupIsRefusedNamingIt() throws {
        let rig = try Rig()
        #expect {
            try ControlServer(path: rig.dir.file("ops.sock"), group: "no-such-operators") { rig.controller.handleControl($0, caller: $1) }
        } throws: { "\($0)".contains("no group named no-such-operators") }
    }

    @Test func theIdentityKeepsUserAndNoteApart() {
        #expect(OperatorIdentity(user: "alice", note: "zhang").recorded == "alice (note: zhang)")
        #expect(OperatorIdentity(recorded: "alice (note: zhang (duty))") == OperatorIdentity(user: "alice", note: "zhang (duty)"))
        #expect(OperatorIdentity(user: "alice", note: "alice").note == nil)
        #expect(OperatorIdentity(user: "alice", note: "  ").note == nil)
        #expect(OperatorIdentity(recorded: "api:platform") == OperatorIdentity(user: "api:platform"))
    }
}
