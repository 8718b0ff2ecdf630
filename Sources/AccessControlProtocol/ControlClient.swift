import AccessCore

#if canImport(Glibc)
import Glibc
#endif

/// accessctl's side of the control socket: one request per connection, one reply.
public enum ControlClient {
    /// Sends `request` to the socket at `path` and reads the typed reply; a refusal is thrown as
    /// `ControlProtocolError.refused` with accessd's message.
    public static func send(_ request: ControlRequest, to path: String, timeoutSeconds: Int = 5) throws(ControlProtocolError) -> ControlReply {
        try ControlReply(json: try send(request.json, to: path, timeoutSeconds: timeoutSeconds), for: request.op)
    }

    /// Sends one JSON object as it is and returns the reply as it came (wire-level tests).
    public static func send(_ request: JSON, to path: String, timeoutSeconds: Int = 5) throws(ControlProtocolError) -> JSON {
        var address = try unixSocketAddress(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            throw .unreachable("cannot reach accessd at \(path): \(String(cString: strerror(code)))\(code == ENOENT || code == ECONNREFUSED ? " (is accessd running?)" : "")")
        }
        let out = Array((request.rendered() + "\n").utf8)
        guard out.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == out.count else {
            throw .unreachable("cannot send to accessd: \(String(cString: strerror(errno)))")
        }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(0x0A) {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            reply += chunk[0..<n]
        }
        guard let json = JSON.parse(String(decoding: reply.prefix { $0 != 0x0A }, as: UTF8.self)) else {
            throw .noReply("accessd gave no reply (timed out after \(timeoutSeconds) s)")
        }
        return json
    }
}
