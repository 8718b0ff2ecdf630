#if canImport(Glibc)
import Glibc
#endif

/// systemd's readiness and watchdog protocol (`sd_notify`): datagrams to `$NOTIFY_SOCKET`.
/// Does nothing when the variable is absent (not started by systemd).
public enum SystemdNotifier {
    /// Sends `state` (e.g. `READY=1`); returns whether a datagram was sent.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        guard let raw = getenv("NOTIFY_SOCKET") else { return false }
        var path = Array(String(cString: raw).utf8)
        guard !path.isEmpty else { return false }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        // A leading '@' names an abstract socket: a NUL byte in the kernel's terms.
        if path[0] == UInt8(ascii: "@") { path[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { rawPath in
            for (i, b) in path.enumerated() { rawPath[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, message, message.count, 0, $0, length) }
        }
        return sent == message.count
    }

    /// Half the watchdog interval systemd asked for (`WATCHDOG_USEC`), in nanoseconds, if it
    /// asked this process.
    public static var watchdogPingNanos: UInt64? {
        guard let usec = getenv("WATCHDOG_USEC").flatMap({ UInt64(String(cString: $0)) }), usec > 0 else { return nil }
        if let pid = getenv("WATCHDOG_PID").flatMap({ Int32(String(cString: $0)) }), pid != getpid() { return nil }
        return usec * 1000 / 2
    }
}
