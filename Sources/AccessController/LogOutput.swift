import AccessCore
#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Where accessd's log lines go, chosen once at start from what stderr is:
/// - `journal`: started by systemd with stderr connected to the journal (`$JOURNAL_STREAM` names
///   stderr's device and inode): each entry is sent with journald's native protocol to
///   `/run/systemd/journal/socket`, metadata as fields of their own (`PORTAL=`, `REASON=` …), so
///   `journalctl -u accessd REASON=granted` works;
/// - `jsonLines`: stderr is a file or a pipe: one JSON object a line (`time`, `level`, `logger`,
///   `message` and the metadata), for a collector;
/// - `text`: stderr is a terminal: `time level logger: message key=value …` for people.
///
/// What is logged names portals, devices, doors and reasons; never a card number, plate, PIN,
/// person, name or phone number (the event log in the database holds those, for those allowed).
public enum LogOutput: Sendable, Equatable {
    case journal
    case jsonLines
    case text

    /// The output for this process's stderr and environment.
    public static func detect() -> LogOutput {
        if let stream = getenv("JOURNAL_STREAM").map({ String(cString: $0) }), stderrIs(journalStream: stream),
           access(JournalSocket.path, W_OK) == 0 {
            return .journal
        }
        return isatty(2) == 1 ? .text : .jsonLines
    }

    /// `$JOURNAL_STREAM` is "DEVICE:INODE" of the stream systemd connected; it is inherited by
    /// children whose stderr may point elsewhere, so it counts only when it is stderr.
    static func stderrIs(journalStream: String) -> Bool {
        let parts = journalStream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == device && UInt64(st.st_ino) == inode
    }

    /// Installs the handler for every logger of the process. `ACCESSD_LOG_LEVEL` (trace … critical)
    /// sets the level, info by default.
    public static func bootstrap(identifier: String, output: LogOutput = .detect()) {
        let level = getenv("ACCESSD_LOG_LEVEL").flatMap { Logger.Level(rawValue: String(cString: $0)) } ?? .info
        let journal = output == .journal ? JournalSocket() : nil
        LoggingSystem.bootstrap { label in
            if output == .journal, let journal {
                return AccessLogHandler(label: label, identifier: identifier, level: level, sink: .journal(journal))
            }
            return AccessLogHandler(label: label, identifier: identifier, level: level,
                                    sink: output == .text ? .text : .jsonLines)
        }
    }
}

/// The handler behind `LogOutput`: formats with the pure functions below and writes one whole
/// record per call (one `write` or one datagram), so lines from threads never interleave.
public struct AccessLogHandler: LogHandler {
    enum Sink: Sendable {
        case journal(JournalSocket)
        case jsonLines
        case text
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let identifier: String
    let sink: Sink

    init(label: String, identifier: String, level: Logger.Level, sink: Sink) {
        self.label = label
        self.identifier = identifier
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        let pairs = fields.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        switch sink {
        case .journal(let socket):
            socket.send(LogFormat.journalEntry(identifier: identifier, label: label, level: event.level,
                                               message: "\(event.message)", metadata: pairs,
                                               file: event.file, line: event.line, function: event.function))
        case .jsonLines:
            LogFormat.writeStderr(LogFormat.jsonLine(time: LogFormat.now(), label: label, level: event.level,
                                                     message: "\(event.message)", metadata: pairs))
        case .text:
            LogFormat.writeStderr(LogFormat.textLine(time: LogFormat.now(), label: label, level: event.level,
                                                     message: "\(event.message)", metadata: pairs))
        }
    }
}

/// The three formats, as pure functions of a log record.
public enum LogFormat {
    /// syslog priorities, as journald's `PRIORITY=` wants them.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// A metadata key as a journal field name: upper case letters, digits and underscores, not
    /// starting with an underscore or digit (those are journald's own), at most 64 characters.
    public static func journalFieldName(_ key: String) -> String {
        var name = String(key.uppercased().map { c -> Character in
            (c.isASCII && (c.isLetter || c.isNumber)) ? c : "_"
        }.prefix(64))
        while let first = name.first, first == "_" || first.isNumber { name.removeFirst() }
        return name.isEmpty ? "FIELD" : name
    }

    /// One entry in journald's native protocol: `NAME=value\n`, or for a value holding a newline
    /// `NAME\n` + its length as 64-bit little endian + the bytes + `\n`.
    public static func journalEntry(identifier: String, label: String, level: Logger.Level, message: String,
                                    metadata: [(String, String)], file: String, line: UInt, function: String) -> [UInt8] {
        var out: [UInt8] = []
        func field(_ name: String, _ value: String) {
            let bytes = Array(value.utf8)
            out += Array(name.utf8)
            if bytes.contains(UInt8(ascii: "\n")) {
                out.append(UInt8(ascii: "\n"))
                var length = UInt64(bytes.count).littleEndian
                withUnsafeBytes(of: &length) { out += $0 }
                out += bytes
            } else {
                out.append(UInt8(ascii: "="))
                out += bytes
            }
            out.append(UInt8(ascii: "\n"))
        }
        field("MESSAGE", message)
        field("PRIORITY", String(priority(level)))
        field("SYSLOG_IDENTIFIER", identifier)
        field("LOGGER", label)
        field("CODE_FILE", file)
        field("CODE_LINE", String(line))
        field("CODE_FUNC", function)
        let own: Set<String> = ["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "LOGGER", "CODE_FILE", "CODE_LINE", "CODE_FUNC"]
        for (key, value) in metadata {
            let name = journalFieldName(key)
            field(own.contains(name) ? "META_" + name : name, value)
        }
        return out
    }

    /// `{"time":"…","level":"info","logger":"accessd","message":"…","portal":"…"}` and a newline.
    public static func jsonLine(time: String, label: String, level: Logger.Level, message: String,
                                metadata: [(String, String)]) -> [UInt8] {
        var pairs: [(String, JSON)] = [("time", .string(time)), ("level", .string(level.rawValue)),
                                       ("logger", .string(label)), ("message", .string(message))]
        let own: Set<String> = ["time", "level", "logger", "message"]
        for (key, value) in metadata { pairs.append((own.contains(key) ? "meta_" + key : key, .string(value))) }
        return Array(JSON.object(pairs).rendered().utf8) + [UInt8(ascii: "\n")]
    }

    /// `2026-12-05T03:01:02.123Z info accessd.controller: message key=value …` and a newline.
    public static func textLine(time: String, label: String, level: Logger.Level, message: String,
                                metadata: [(String, String)]) -> [UInt8] {
        var line = "\(time) \(level.rawValue) \(label): \(message)"
        for (key, value) in metadata {
            let quoted = value.contains(" ") || value.isEmpty ? JSON.string(value).rendered() : value
            line += " \(key)=\(quoted)"
        }
        return Array(line.utf8) + [UInt8(ascii: "\n")]
    }

    /// UTC, millisecond precision, ISO 8601.
    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    static func writeStderr(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(2, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}

/// journald's native socket: one datagram per entry. When the journal refuses one (it is away,
/// or the entry is too big for a datagram), the entry goes to stderr, which systemd also connects
/// to the journal, as a JSON line.
final class JournalSocket: Sendable {
    static let path = "/run/systemd/journal/socket"
    let fd: Int32

    init() {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    func send(_ entry: [UInt8]) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(Self.path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let sent = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, entry, entry.count, Int32(MSG_NOSIGNAL), $0, length) }
        }
        if sent != entry.count {
            LogFormat.writeStderr(Array("journal refused a log entry (\(entry.count) bytes, errno \(errno))\n".utf8))
        }
    }
}
