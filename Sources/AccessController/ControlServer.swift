import AccessCore
import AccessDevices
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The local control socket: a Unix stream socket that only its owner and group may use (mode
/// 0660), one JSON request per connection and one JSON reply. accessctl's `door` and `sim`
/// commands use it.
public final class ControlServer: @unchecked Sendable {
    let path: String
    let handler: @Sendable (JSON) -> JSON
    private let listener: Int32
    private let running = Atomic<Bool>(true)
    private var thread: pthread_t?

    public init(path: String, handler: @escaping @Sendable (JSON) -> JSON) throws {
        self.path = path
        self.handler = handler
        var address = try unixAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlError.unknown("control socket: \(String(cString: strerror(errno)))") }
        unlink(path)  // a stale socket of an earlier run
        let bound = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o660) == 0, listen(fd, 16) == 0 else {
            let code = errno
            close(fd)
            throw ControlError.unknown("control socket \(path): \(String(cString: strerror(code)))")
        }
        listener = fd
        thread = try startThread(name: "control") { self.acceptLoop() }  // ends at stop()
    }

    public func stop() {
        running.store(false, ordering: .releasing)
        if let thread { pthread_join(thread, nil) }
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
        if let json = JSON.parse(text) {
            reply = handler(json)
        } else {
            reply = .object([("ok", false), ("error", .string("malformed request: not one JSON object on a line"))])
        }
        let out = Array((reply.rendered() + "\n").utf8)
        _ = out.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}

/// Sends one request to a control socket and returns the reply (accessctl's side).
public enum ControlClient {
    public static func send(_ request: JSON, to path: String, timeoutSeconds: Int = 5) throws -> JSON {
        var address = try unixAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlError.unknown("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            throw ControlError.unknown("cannot reach accessd at \(path): \(String(cString: strerror(code)))\(code == ENOENT || code == ECONNREFUSED ? " (is accessd running?)" : "")")
        }
        let out = Array((request.rendered() + "\n").utf8)
        guard out.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == out.count else {
            throw ControlError.unknown("cannot send to accessd: \(String(cString: strerror(errno)))")
        }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(0x0A) {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            reply += chunk[0..<n]
        }
        guard let json = JSON.parse(String(decoding: reply.prefix { $0 != 0x0A }, as: UTF8.self)) else {
            throw ControlError.unknown("accessd gave no reply (timed out after \(timeoutSeconds) s)")
        }
        return json
    }
}

/// The address of a Unix socket at `path`, refused when the path is too long for one.
func unixAddress(_ path: String) throws -> sockaddr_un {
    var address = sockaddr_un()
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else {
        throw ControlError.unknown("socket path \(path) is longer than the \(capacity - 1) bytes a socket path may have")
    }
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
    }
    return address
}
