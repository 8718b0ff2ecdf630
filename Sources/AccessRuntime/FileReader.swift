import SystemPackage

/// A file that could not be read: its path, the step that failed and the errno.
public struct FileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    /// `open` or `read`.
    public var operation: String
    public var errno: Int32

    public init(path: String, operation: String, errno: Int32) {
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    /// The C library's text for `errno` (`No such file or directory`).
    public var reason: String { SystemError.text(errno) }

    public var description: String { "\(path): cannot \(operation): \(reason) (errno \(errno))" }
}

/// Reads whole files through one descriptor (close-on-exec, reads retried on EINTR), without
/// Foundation.
public enum FileReader {
    /// Every byte of the file at `path`.
    public static func bytes(_ path: String) throws(FileError) -> [UInt8] {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec], retryOnInterrupt: true)
        } catch {
            throw FileError(path: path, operation: "open", errno: (error as? Errno)?.rawValue ?? 0)
        }
        defer { try? fd.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
            } catch {
                throw FileError(path: path, operation: "read", errno: (error as? Errno)?.rawValue ?? 0)
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// The file at `path` as text; invalid UTF-8 is replaced, never refused here (parsers report
    /// what they cannot read, with its line).
    public static func text(_ path: String) throws(FileError) -> String {
        String(decoding: try bytes(path), as: UTF8.self)
    }
}
