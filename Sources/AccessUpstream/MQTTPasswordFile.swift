import Glibc

/// The password: the file's first line (never logged).
func readPasswordFile(_ path: String) throws(MQTTError) -> String {
    let operation = "read password_file \(path)"
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .system(operation, errno: errno) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw .system(operation, errno: errno)
        }
        if n == 0 { break }
        bytes += chunk[0..<n]
        if bytes.count > 65_536 { throw MQTTError(operation: operation, code: 3, detail: "longer than 64 KiB: not a password file") }
    }
    let line = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
    let password = String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self)
    guard !password.isEmpty else { throw MQTTError(operation: operation, code: 3, detail: "the first line is empty") }
    return password
}
