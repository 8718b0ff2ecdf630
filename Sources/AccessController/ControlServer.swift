import AccessControlProtocol
import AccessCore
import AccessRuntime
import AccessDevices
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The local control socket: a Unix stream socket that only its owner and group (the operators'
/// group) may use (mode 0660), one JSON request per connection and one JSON reply
/// (`ControlRequest` and `ControlReply` give the format). accessctl's `door`, `fence`, `status`,
/// `metrics` and `sim` commands use it. Each request is handed over with the caller's
/// credentials as the kernel gives them (`SO_PEERCRED`), so who made a command is never what the
/// caller says.
public final class ControlServer: @unchecked Sendable {
    let path: String
    let handler: @Sendable (JSON, PeerCredentials) -> JSON
    private let listener: Int32
    private let running = Atomic<Bool>(true)
    private var thread: NamedThread?

    /// `group`: the operators' group the socket is given (nil: the process's own group, which
    /// under systemd is the unit's `Group=`).
    public init(path: String, group: String? = nil, handler: @escaping @Sendable (JSON, PeerCredentials) -> JSON) throws {
        self.path = path
        self.handler = handler
        var groupID: gid_t?
        if let group {
            do {
                guard let id = try unixGroupID(named: group) else { throw ControlError.unknown("control.group: no group named \(group)") }
                groupID = id
            } catch let error as SystemError {
                throw ControlError.unknown("control.group \(group): \(error)")
            }
        }
        var address = try unixSocketAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlError.unknown("control socket: \(String(cString: strerror(errno)))") }
        unlink(path)  // a stale socket of an earlier run
        let bound = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o660) == 0, groupID.map({ chown(path, uid_t.max, $0) == 0 }) ?? true, listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw ControlError.unknown("control socket \(path): \(String(cString: strerror(code)))")
        }
        listener = fd
        thread = try NamedThread.start(name: "control") { self.acceptLoop() }  // ends at stop()
    }

    public func stop() {
        running.store(false, ordering: .releasing)
        thread?.join()
        thread = nil
        close(listener)
        unlink(path)
    }

    private func acceptLoop() {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        while running.load(ordering: .acquiring) {
            guard poll(&poller, 1, 200) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            serve(client)
            close(client)
        }
    }

    /// Reads one line (at most 64 KiB, within 2 s), answers it.
    private func serve(_ fd: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !request.contains(0x0A), request.count < 65_536 {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            request += chunk[0..<n]
        }
        let text = String(decoding: request.prefix { $0 != 0x0A }, as: UTF8.self)
        let reply: JSON
        do {
            let caller = try PeerCredentials.ofSocket(fd)
            if let json = JSON.parse(text) {
                reply = handler(json, caller)
            } else {
                reply = ControlReply.failure("malformed request: not one JSON object on a line")
            }
        } catch {
            reply = ControlReply.failure("the caller's credentials are unknown (\(error)): refused")
        }
        let out = Array((reply.rendered() + "\n").utf8)
        _ = out.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
