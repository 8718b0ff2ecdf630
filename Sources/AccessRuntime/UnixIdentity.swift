import CGlibcExtras
#if canImport(Glibc)
import Glibc
#endif

/// A Unix user as the kernel knows it: the uid, and its name from the password database.
public struct UnixUser: Sendable, Equatable, CustomStringConvertible {
    public var uid: UInt32
    /// The login name; `uid:N` for a uid with no password entry.
    public var name: String

    public init(uid: UInt32, name: String) {
        self.uid = uid
        self.name = name
    }

    public var description: String { name }

    /// The user `uid` is, named with `getpwuid_r` (thread-safe, unlike `getpwuid`).
    public static func of(uid: UInt32) throws(SystemError) -> UnixUser {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 1024)
        while true {
            let code = getpwuid_r(uid, &entry, &buffer, buffer.count, &found)
            if code == ERANGE && buffer.count < 1 << 20 {
                buffer = [CChar](repeating: 0, count: buffer.count * 4)
                continue
            }
            if code == EINTR { continue }
            // ENOENT and friends mean "no such user" on some libcs; glibc returns 0 with no entry.
            if code == 0 || code == ENOENT || code == ESRCH {
                guard let found, let name = found.pointee.pw_name else { return UnixUser(uid: uid, name: "uid:\(uid)") }
                return UnixUser(uid: uid, name: String(cString: name))
            }
            throw SystemError("getpwuid_r \(uid)", errno: code)
        }
    }

    /// The user this process runs as (its real uid: `sudo` makes it root, as the kernel says).
    public static func current() throws(SystemError) -> UnixUser { try of(uid: getuid()) }
}

/// A Unix group's id from its name, with `getgrnam_r`; nil when there is no such group.
public func unixGroupID(named name: String) throws(SystemError) -> UInt32? {
    var entry = group()
    var found: UnsafeMutablePointer<group>?
    var buffer = [CChar](repeating: 0, count: 1024)
    while true {
        let code = getgrnam_r(name, &entry, &buffer, buffer.count, &found)
        if code == ERANGE && buffer.count < 1 << 20 {
            buffer = [CChar](repeating: 0, count: buffer.count * 4)
            continue
        }
        if code == EINTR { continue }
        if code == 0 || code == ENOENT || code == ESRCH { return found.map { $0.pointee.gr_gid } }
        throw SystemError("getgrnam_r \(name)", errno: code)
    }
}

/// Who is at the other end of a connected Unix socket, as the kernel recorded it when the peer
/// connected (`SO_PEERCRED`): nothing the peer sends can change it.
public struct PeerCredentials: Sendable, Equatable {
    public var pid: Int32
    public var user: UnixUser
    public var gid: UInt32

    public init(pid: Int32, user: UnixUser, gid: UInt32) {
        self.pid = pid
        self.user = user
        self.gid = gid
    }

    /// This process as a caller of itself (an in-process request, as tests make).
    public static func thisProcess() throws(SystemError) -> PeerCredentials {
        PeerCredentials(pid: getpid(), user: try UnixUser.current(), gid: getgid())
    }

    /// The credentials of the peer of the connected Unix socket `fd`.
    public static func ofSocket(_ fd: Int32) throws(SystemError) -> PeerCredentials {
        var credentials = access_peer_ucred()
        var length = socklen_t(MemoryLayout<access_peer_ucred>.size)
        _ = try syscall("getsockopt SO_PEERCRED") { getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) }
        return PeerCredentials(pid: credentials.pid, user: try UnixUser.of(uid: credentials.uid), gid: credentials.gid)
    }
}
