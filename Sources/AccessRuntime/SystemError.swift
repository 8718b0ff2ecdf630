#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: what was being done and the errno it failed with.
public struct SystemError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// What was being done, e.g. `open /etc/accessd.toml` or `start thread store-writer`.
    public var operation: String
    /// The C library's error number.
    public var errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// The C library's text for `errno` (`No such file or directory`).
    public var reason: String { Self.text(errno) }

    public var description: String { "\(operation): \(reason) (errno \(errno))" }

    /// `strerror`, for codes that did not come through a `SystemError`.
    public static func text(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "unknown error \(code)" }
        return String(cString: text)
    }
}

/// Runs a C call that returns -1 and sets errno on failure, again while it fails with `EINTR`,
/// and turns any other failure into a `SystemError` naming `operation`.
///
///     let n = try syscall("read \(path)") { read(fd, buffer, count) }
@inlinable
public func syscall<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code == EINTR { continue }
        throw SystemError(operation(), errno: code)
    }
}

/// Runs a C call that returns NULL and sets errno on failure (`fopen`, `gpiod_chip_open_by_name`),
/// again while it fails with `EINTR`. `errno` is cleared first, so a library that returns NULL
/// without setting it is reported with errno 0 rather than a stale code.
@inlinable
public func syscall<T>(_ operation: @autoclosure () -> String, _ body: () -> T?) throws(SystemError) -> T {
    while true {
        errno = 0
        if let result = body() { return result }
        let code = errno
        if code == EINTR { continue }
        throw SystemError(operation(), errno: code)
    }
}

/// Checks a call that returns its error number instead of setting errno (the pthread functions).
@inlinable
public func checkReturnedError(_ operation: @autoclosure () -> String, _ code: Int32) throws(SystemError) {
    if code != 0 { throw SystemError(operation(), errno: code) }
}
