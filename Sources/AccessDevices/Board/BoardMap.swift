import AccessCore
import TOMLKit

/// A board's GPIO lines by role, read from `Hardware/boards/*.toml`. Lines are found by name on
/// the chip (device-tree `gpio-line-names`, or gpio-sim's `name`), never by number.
public struct BoardMap: Sendable, Equatable {
    public enum Bias: String, Sendable, CaseIterable {
        case asIs = "as-is", disable, pullUp = "pull-up", pullDown = "pull-down"
    }

    /// What an output drives.
    public enum OutputRole: String, Sendable, CaseIterable {
        case lock, siren, light, relay
        case barrierOpen = "barrier-open", barrierClose = "barrier-close"
    }

    /// What an input reports.
    public enum InputRole: String, Sendable, CaseIterable {
        case doorContact = "door-contact", exitButton = "exit-button", fire, call, tamper, loop, fence, generic
    }

    public struct Output: Sendable, Equatable {
        public var name: String
        public var role: OutputRole
        public var activeLow: Bool
        /// The value the line takes at start, at stop and before anything else runs.
        public var safeActive: Bool

        public init(name: String, role: OutputRole, activeLow: Bool = false, safeActive: Bool = false) {
            self.name = name
            self.role = role
            self.activeLow = activeLow
            self.safeActive = safeActive
        }
    }

    public struct Input: Sendable, Equatable {
        public var name: String
        public var role: InputRole
        public var activeLow: Bool
        public var bias: Bias
        /// A change is reported once the line has held its new level this long.
        public var debounceNanos: UInt64

        public init(name: String, role: InputRole, activeLow: Bool = false, bias: Bias = .asIs, debounceNanos: UInt64 = 20_000_000) {
            self.name = name
            self.role = role
            self.activeLow = activeLow
            self.bias = bias
            self.debounceNanos = debounceNanos
        }
    }

    public struct Reader: Sendable, Equatable {
        public var name: String
        public var d0: String
        public var d1: String
        public var bias: Bias
        /// nil: auto (26/34/37 and keypad bursts, frame end by silence).
        public var format: WiegandFormat?
        public var silenceNanos: UInt64

        public init(name: String, d0: String, d1: String, bias: Bias = .asIs, format: WiegandFormat?, silenceNanos: UInt64 = 25_000_000) {
            self.name = name
            self.d0 = d0
            self.d1 = d1
            self.bias = bias
            self.format = format
            self.silenceNanos = silenceNanos
        }
    }

    public var model: String
    /// Restricts the line search to one chip (name like `gpiochip0` or label); nil: every chip.
    public var chip: String?
    public var outputs: [Output]
    public var inputs: [Input]
    public var readers: [Reader]

    /// Every line name the map uses, in declaration order.
    public var lineNames: [String] { outputs.map(\.name) + inputs.map(\.name) + readers.flatMap { [$0.d0, $0.d1] } }

    public init(model: String, chip: String? = nil, outputs: [Output] = [], inputs: [Input] = [], readers: [Reader] = []) {
        self.model = model
        self.chip = chip
        self.outputs = outputs
        self.inputs = inputs
        self.readers = readers
    }

    /// Reads and validates a board map file.
    public static func load(path: String) throws(DeviceError) -> BoardMap {
        try parse(try readText(path), file: path)
    }

    public static func parse(_ text: String, file: String) throws(DeviceError) -> BoardMap {
        func fail(_ key: String, _ problem: String) -> DeviceError { .configuration(file: file, key: key, problem: problem) }
        if let (line, problem) = tomlTextProblem(in: text) {
            throw fail("line \(line)", problem)
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw fail("line \(e.source.begin.line)", e.description)
        } catch {
            throw fail("syntax", "\(error)")
        }
        let t = TableReader(file: file)
        try t.allow(root, "", ["board", "output", "input", "reader"])
        guard let board = root["board"]?.table else { throw fail("board", "the table [board] is required") }
        try t.allow(board, "board", ["model", "chip", "doc"])
        var map = BoardMap(model: try t.string(board, "board.model", required: true), chip: try t.optionalString(board, "board.chip"))

        for (i, item) in try t.tables(root, "output").enumerated() {
            let k = "output[\(i)]"
            try t.allow(item, k, ["name", "role", "active_low", "safe", "doc"])
            let safe = try t.string(item, "\(k).safe", default: "inactive")
            guard safe == "inactive" || safe == "active" else { throw fail("\(k).safe", "\"\(safe)\" is not inactive or active") }
            map.outputs.append(Output(name: try t.string(item, "\(k).name", required: true),
                                      role: try t.enumeration(item, "\(k).role", default: nil),
                                      activeLow: try t.bool(item, "\(k).active_low", default: false),
                                      safeActive: safe == "active"))
        }
        for (i, item) in try t.tables(root, "input").enumerated() {
            let k = "input[\(i)]"
            try t.allow(item, k, ["name", "role", "contact", "active_low", "bias", "debounce_ms", "doc"])
            // A dry contact between the line and ground, with a pull-up: a normally-closed contact
            // (door reed switch, tamper) is active when it opens and the line goes high; a
            // normally-open one (exit button, fire panel relay) when it closes and pulls the line low.
            var activeLow = try t.bool(item, "\(k).active_low", default: false)
            if let contact = try t.optionalString(item, "\(k).contact") {
                guard item["active_low"] == nil else { throw fail("\(k).contact", "give contact or active_low, not both") }
                guard contact == "no" || contact == "nc" else { throw fail("\(k).contact", "\"\(contact)\" is not no or nc") }
                activeLow = contact == "no"
            }
            map.inputs.append(Input(name: try t.string(item, "\(k).name", required: true),
                                    role: try t.enumeration(item, "\(k).role", default: nil),
                                    activeLow: activeLow,
                                    bias: try t.enumeration(item, "\(k).bias", default: Bias.asIs),
                                    debounceNanos: UInt64(try t.int(item, "\(k).debounce_ms", default: 20, range: 0...10_000)) * 1_000_000))
        }
        for (i, item) in try t.tables(root, "reader").enumerated() {
            let k = "reader[\(i)]"
            try t.allow(item, k, ["name", "d0", "d1", "bias", "format", "silence_ms", "doc"])
            let format = try t.string(item, "\(k).format", default: "auto")
            guard format == "auto" || WiegandFormat(rawValue: format) != nil else {
                throw fail("\(k).format", "\"\(format)\" is not one of auto, 26, 34, 37, raw")
            }
            map.readers.append(Reader(name: try t.string(item, "\(k).name", required: true),
                                      d0: try t.string(item, "\(k).d0", required: true),
                                      d1: try t.string(item, "\(k).d1", required: true),
                                      bias: try t.enumeration(item, "\(k).bias", default: Bias.asIs),
                                      format: WiegandFormat(rawValue: format),
                                      silenceNanos: UInt64(try t.int(item, "\(k).silence_ms", default: 25, range: 5...1_000)) * 1_000_000))
        }
        var seen: [String: String] = [:]
        let owners = map.outputs.enumerated().map { ("output[\($0.offset)].name", $0.element.name) }
            + map.inputs.enumerated().map { ("input[\($0.offset)].name", $0.element.name) }
            + map.readers.enumerated().flatMap { [("reader[\($0.offset)].d0", $0.element.d0), ("reader[\($0.offset)].d1", $0.element.d1)] }
        for (key, line) in owners {
            if line.isEmpty { throw fail(key, "may not be empty") }
            if let other = seen[line] { throw fail(key, "line \"\(line)\" is already used by \(other)") }
            seen[line] = key
        }
        var readerNames = Set<String>()
        for (i, r) in map.readers.enumerated() where !readerNames.insert(r.name).inserted {
            throw fail("reader[\(i)].name", "reader \"\(r.name)\" is declared twice")
        }
        return map
    }
}

/// Typed reads from TOMLKit tables with errors naming file and key.
struct TableReader {
    let file: String

    func fail(_ key: String, _ problem: String) -> DeviceError { .configuration(file: file, key: key, problem: problem) }
    func leaf(_ key: String) -> String { String(key.split(separator: ".").last ?? "") }

    func allow(_ table: TOMLTable, _ prefix: String, _ allowed: [String]) throws(DeviceError) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            throw fail(prefix.isEmpty ? key : "\(prefix).\(key)", "unknown key (known here: \(allowed.joined(separator: ", ")))")
        }
    }

    func tables(_ parent: TOMLTable, _ name: String) throws(DeviceError) -> [TOMLTable] {
        guard let value = parent[name] else { return [] }
        guard let array = value.array else { throw fail(name, "must be an array of tables ([[\(name)]])") }
        var out: [TOMLTable] = []
        for (i, item) in array.enumerated() {
            guard let t = item.table else { throw fail("\(name)[\(i)]", "must be a table") }
            out.append(t)
        }
        return out
    }

    func string(_ t: TOMLTable, _ key: String, required: Bool = false, default fallback: String = "") throws(DeviceError) -> String {
        guard let v = t[leaf(key)] else {
            if required { throw fail(key, "is required") }
            return fallback
        }
        guard let s = v.string else { throw fail(key, "must be a string, not \(v.type)") }
        return s
    }

    func optionalString(_ t: TOMLTable, _ key: String) throws(DeviceError) -> String? {
        guard t[leaf(key)] != nil else { return nil }
        return try string(t, key)
    }

    func bool(_ t: TOMLTable, _ key: String, default fallback: Bool) throws(DeviceError) -> Bool {
        guard let v = t[leaf(key)] else { return fallback }
        guard let b = v.bool else { throw fail(key, "must be true or false, not \(v.type)") }
        return b
    }

    func int(_ t: TOMLTable, _ key: String, default fallback: Int, range: ClosedRange<Int>) throws(DeviceError) -> Int {
        guard let v = t[leaf(key)] else { return fallback }
        guard let i = v.int else { throw fail(key, "must be an integer, not \(v.type)") }
        guard range.contains(i) else { throw fail(key, "\(i) is out of range \(range.lowerBound)…\(range.upperBound)") }
        return i
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ t: TOMLTable, _ key: String, default fallback: E?) throws(DeviceError) -> E where E.RawValue == String {
        guard t[leaf(key)] != nil else {
            if let fallback { return fallback }
            throw fail(key, "is required (one of \(E.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let raw = try string(t, key)
        guard let value = E(rawValue: raw) else {
            throw fail(key, "\"\(raw)\" is not one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}

/// Reads a whole text file with the C library (no Foundation in the device layer).
func readText(_ path: String) throws(DeviceError) -> String {
    guard let file = fopen(path, "rb") else {
        throw .configuration(file: path, key: "file", problem: "cannot be read: \(DeviceError.errnoText(errno))")
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        bytes += chunk[0..<n]
        if n < chunk.count { break }
    }
    return String(decoding: bytes, as: UTF8.self)
}

#if canImport(Glibc)
import Glibc
#endif
