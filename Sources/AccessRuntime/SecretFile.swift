#if canImport(Glibc)
import Glibc
#endif

/// A secret file that cannot be used: its path and why, in words an installer can act on.
public struct SecretFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
}

/// Directories made on first use (the database's, the PIN key's).
public enum Directories {
    /// Makes every missing directory on the way to `path`'s parent, mode 0750 (an existing one is
    /// left as it is).
    public static func makeParent(of path: String) throws(SystemError) {
        guard let slash = path.lastIndex(of: "/") else { return }
        let directory = path[..<slash]
        var built = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            built += "/" + component
            do {
                _ = try syscall("mkdir \(built)") { mkdir(built, 0o750) }
            } catch where error.errno == EEXIST {
                continue
            }
        }
    }
}

/// Files that hold secrets (the PIN key, passwords, TLS private keys, the database with the
/// visitor-pass secret): the one check of who may read them, and the one way a key file is made.
public enum SecretFile {
    /// Who besides the owner may use a file.
    public enum Sharing: Sendable {
        /// A key or password: the group may read it (the operators' `accessctl` hashes PINs with
        /// the PIN key), nobody else may read it, and only the owner may change it.
        case secret
        /// The database: the operators' group reads and writes it; others nothing.
        case groupWritable
    }

    /// Refuses a file whose mode lets other users read it (any `o` bit) or, for a `.secret`, lets
    /// the group change it. A file that does not exist passes: whoever reads it says so.
    public static func checkMode(_ path: String, sharing: Sharing = .secret) throws(SecretFileError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT { return }
            throw SecretFileError(path: path, problem: "cannot stat: \(SystemError.text(code))")
        }
        let mode = UInt32(info.st_mode) & 0o7777
        let allowed: UInt32 = sharing == .secret ? 0o740 : 0o770
        guard mode & ~allowed & 0o777 != 0 else { return }
        let fix = String(mode & allowed & 0o777, radix: 8)
        let what = sharing == .secret ? "secret" : "database (it holds the visitor-pass secret)"
        let problem = mode & 0o007 != 0 ? "lets other users read this \(what)" : "lets the group change this secret"
        throw SecretFileError(path: path, problem: "mode 0\(String(mode & 0o777, radix: 8)) \(problem); chmod \(fix) \(path)")
    }

    /// The key in the file at `path` (hex text, `bytes` long); when there is no such file, a new
    /// random key is written there first (mode 0640, made whole under a temporary name and then
    /// linked, so a reader never sees half a key and two processes starting together agree).
    public static func loadOrCreateKey(_ path: String, bytes: Int) throws(SecretFileError) -> [UInt8] {
        if access(path, F_OK) != 0 {
            do {
                try Directories.makeParent(of: path)
            } catch {
                throw SecretFileError(path: path, problem: "cannot make its directory: \(error)")
            }
            var generator = SystemRandomNumberGenerator()
            let key = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try write(key, to: path, replacing: false)
        }
        return try readKey(path, bytes: bytes)
    }

    /// The key in the file at `path`: `bytes` bytes as hex text (spaces and a final newline ignored).
    public static func readKey(_ path: String, bytes: Int) throws(SecretFileError) -> [UInt8] {
        try checkMode(path)
        let text: String
        do {
            text = try FileReader.text(path)
        } catch {
            throw SecretFileError(path: path, problem: "cannot \(error.operation): \(error.reason)")
        }
        let hex = text.filter { !$0.isWhitespace }
        guard hex.utf8.count == bytes * 2, let key = decodeHex(hex) else {
            throw SecretFileError(path: path, problem: "is not a key: expected \(bytes * 2) hex digits (\(bytes) bytes) on one line")
        }
        return key
    }

    /// Writes `key` to `path` as hex text, mode 0640: under a temporary name, synced, then linked
    /// (`replacing: false`: an existing file wins) or renamed over the old one.
    public static func write(_ key: [UInt8], to path: String, replacing: Bool) throws(SecretFileError) {
        let temporary = "\(path).\(getpid()).tmp"
        func fail(_ step: String, _ code: Int32) -> SecretFileError {
            SecretFileError(path: path, problem: "cannot \(step): \(SystemError.text(code))")
        }
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw fail("create \(temporary)", errno) }
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = key.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] } + [10]
        var written = 0
        while written < text.count {
            let n = text.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                close(fd)
                unlink(temporary)
                throw fail("write \(temporary)", code)
            }
            written += n
        }
        // The mode is set explicitly: a umask of 0077 would otherwise leave the group out.
        let synced = fchmod(fd, 0o640) == 0 && fsync(fd) == 0
        let code = errno
        close(fd)
        text = []
        guard synced else { unlink(temporary); throw fail("sync \(temporary)", code) }
        defer { unlink(temporary) }
        if replacing {
            guard rename(temporary, path) == 0 else { throw fail("rename \(temporary)", errno) }
        } else if link(temporary, path) != 0 && errno != EEXIST {
            throw fail("link \(temporary)", errno)
        }
    }

    private static func decodeHex(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var high: UInt8?
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return high == nil ? out : nil
    }
}
