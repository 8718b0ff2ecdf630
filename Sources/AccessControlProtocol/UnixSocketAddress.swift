#if canImport(Glibc)
import Glibc
#endif

/// The address of a Unix socket at `path`, refused when the path is too long for one. Shared by
/// accessd's control server and accessctl's client.
public func unixSocketAddress(_ path: String) throws(ControlProtocolError) -> sockaddr_un {
    var address = sockaddr_un()
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else {
        throw .unreachable("socket path \(path) is longer than the \(capacity - 1) bytes a socket path may have")
    }
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
        raw[bytes.count] = 0
    }
    return address
}
