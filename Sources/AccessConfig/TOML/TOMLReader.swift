import AccessCore
import AccessRuntime
import TOMLKit

/// A mistake in a configuration file (site config, board map, device map), as an installer reads
/// it: `FILE:LINE: key: problem`, the line left out when no line can be named.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var key: String
    public var problem: String

    public init(file: String, line: Int?, key: String, problem: String) {
        self.file = file
        self.line = line
        self.key = key
        self.problem = problem
    }

    public var description: String {
        "\(file)\(line.map { ":\($0)" } ?? ""): \(key): \(problem)"
    }
}

/// The one TOML reader: checks the text before toml++ sees it (it aborts the process on some
/// inputs), parses it, and offers typed reads whose errors name the file, the key's line, the
/// key and the problem. Keys are written in full (`portal[2].kind`, `flags.bits.fault`); the
/// table passed in is where the last component is looked up.
struct TOMLReader {
    let file: String
    let root: TOMLTable
    private let lines: KeyLines

    /// Reads and parses the file at `path`.
    static func load(path: String) throws(ConfigError) -> TOMLReader {
        let text: String
        do {
            text = try FileReader.text(path)
        } catch {
            throw ConfigError(file: path, line: nil, key: "file", problem: "cannot be read: \(error.reason)")
        }
        return try TOMLReader(text: text, file: path)
    }

    init(text: String, file: String) throws(ConfigError) {
        self.file = file
        if let (line, problem) = tomlTextProblem(in: text) {
            throw ConfigError(file: file, line: line, key: "syntax", problem: problem)
        }
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError(file: file, line: e.source.begin.line, key: "syntax", problem: e.description)
        } catch {
            throw ConfigError(file: file, line: nil, key: "syntax", problem: "\(error)")
        }
        lines = KeyLines(text: text)
    }

    /// The error for `key`, at the line of the key or of its nearest enclosing table.
    func error(_ key: String, _ problem: String) -> ConfigError {
        ConfigError(file: file, line: lines.line(of: key), key: key, problem: problem)
    }

    func line(of key: String) -> Int? { lines.line(of: key) }

    private func leaf(_ key: String) -> String { String(key.split(separator: ".").last ?? "") }

    /// Whether `table` holds the last component of `key`.
    func has(_ table: TOMLTable, _ key: String) -> Bool { table[leaf(key)] != nil }

    /// Refuses any key of `table` not in `allowed`; `prefix` is the table's own key.
    func allowOnly(_ table: TOMLTable, _ prefix: String, _ allowed: [String]) throws(ConfigError) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            let full = prefix.isEmpty ? key : "\(prefix).\(key)"
            throw error(full, "unknown key (known here: \(allowed.joined(separator: ", ")))")
        }
    }

    /// The table `key` (its last component looked up in `parent`), or nil when it is absent and
    /// not required.
    func table(_ parent: TOMLTable, _ key: String, required: Bool) throws(ConfigError) -> TOMLTable? {
        guard let value = parent[leaf(key)] else {
            if required { throw error(key, "the table [\(key)] is required") }
            return nil
        }
        guard let table = value.table else { throw error(key, "must be a table, not a \(value.type)") }
        return table
    }

    func requiredTable(_ parent: TOMLTable, _ key: String) throws(ConfigError) -> TOMLTable {
        guard let table = try table(parent, key, required: true) else { throw error(key, "the table [\(key)] is required") }
        return table
    }

    /// The array of tables `key` (`[[key]]`), empty when absent.
    func tables(_ parent: TOMLTable, _ key: String) throws(ConfigError) -> [TOMLTable] {
        guard let value = parent[leaf(key)] else { return [] }
        guard let array = value.array else { throw error(key, "must be an array of tables ([[\(key)]])") }
        var out: [TOMLTable] = []
        for (i, item) in array.enumerated() {
            guard let t = item.table else { throw error("\(key)[\(i)]", "must be a table") }
            out.append(t)
        }
        return out
    }

    /// A string; a required one may not be empty unless `allowEmpty`.
    func string(_ table: TOMLTable, _ key: String, required: Bool = false, allowEmpty: Bool = false,
                default fallback: String = "") throws(ConfigError) -> String {
        guard let value = table[leaf(key)] else {
            if required { throw error(key, "is required") }
            return fallback
        }
        guard let s = value.string else { throw error(key, "must be a string, not a \(value.type)") }
        if required && !allowEmpty && s.isEmpty { throw error(key, "may not be empty") }
        return s
    }

    /// A string, or nil when absent.
    func optionalString(_ table: TOMLTable, _ key: String) throws(ConfigError) -> String? {
        guard has(table, key) else { return nil }
        return try string(table, key, required: true)
    }

    func bool(_ table: TOMLTable, _ key: String, default fallback: Bool) throws(ConfigError) -> Bool {
        guard let value = table[leaf(key)] else { return fallback }
        guard let b = value.bool else { throw error(key, "must be true or false, not a \(value.type)") }
        return b
    }

    /// An integer within `range`; `fallback` when absent, required when `fallback` is nil.
    func int(_ table: TOMLTable, _ key: String, default fallback: Int?, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let value = table[leaf(key)] else {
            if let fallback { return fallback }
            throw error(key, "is required")
        }
        guard let i = value.int else { throw error(key, "must be an integer, not a \(value.type)") }
        guard range.contains(i) else { throw error(key, "\(i) is out of range \(range.lowerBound)…\(range.upperBound)") }
        return i
    }

    /// An array of strings, empty when absent.
    func strings(_ table: TOMLTable, _ key: String) throws(ConfigError) -> [String] {
        guard let value = table[leaf(key)] else { return [] }
        guard let array = value.array else { throw error(key, "must be an array of strings") }
        var out: [String] = []
        for item in array {
            guard let s = item.string else { throw error(key, "must be an array of strings") }
            out.append(s)
        }
        return out
    }

    /// One of `E`'s raw values; `fallback` when absent, required when `fallback` is nil.
    func enumeration<E: RawRepresentable & CaseIterable>(_ table: TOMLTable, _ key: String, default fallback: E?) throws(ConfigError) -> E
    where E.RawValue == String {
        let known = E.allCases.map(\.rawValue).joined(separator: ", ")
        guard has(table, key) else {
            if let fallback { return fallback }
            throw error(key, "is required (one of \(known))")
        }
        let raw = try string(table, key)
        guard let value = E(rawValue: raw) else { throw error(key, "\"\(raw)\" is not one of \(known)") }
        return value
    }
}

/// Where each key of a TOML text stands, e.g. `portal[1].kind` → line 23, found by reading
/// table headers and `key =` lines (TOMLKit reports positions only for syntax errors).
struct KeyLines {
    private var lines: [String: Int] = [:]

    init(text: String) {
        var table = ""
        var arrayCounts: [String: Int] = [:]
        var inMultiline = false
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = n + 1
            let line = raw.trimming(charactersIn: " \t\r")
            let quotes = line.components(of: "\"\"\"") + line.components(of: "'''")
            if inMultiline {
                if quotes % 2 == 1 { inMultiline = false }
                continue
            }
            if line.hasPrefix("[[") {
                let name = line.dropFirst(2).prefix { $0 != "]" }.trimming(charactersIn: " \t")
                let index = arrayCounts[name, default: 0]
                arrayCounts[name] = index + 1
                table = "\(name)[\(index)]"
                record(table, lineNumber)
            } else if line.hasPrefix("[") {
                table = line.dropFirst().prefix { $0 != "]" }.trimming(charactersIn: " \t")
                record(table, lineNumber)
            } else if let eq = line.firstIndex(of: "="), !line.hasPrefix("#") {
                let key = line[..<eq].trimming(charactersIn: " \t\"'")
                record(table.isEmpty ? key : "\(table).\(key)", lineNumber)
                if quotes % 2 == 1 { inMultiline = true }
            }
        }
    }

    private mutating func record(_ key: String, _ line: Int) {
        if lines[key] == nil { lines[key] = line }
    }

    /// The line of a key, or of the nearest enclosing table that has one.
    func line(of key: String) -> Int? {
        var k = Substring(key)
        while !k.isEmpty {
            if let l = lines[String(k)] { return l }
            guard let dot = k.lastIndex(of: ".") else { break }
            k = k[..<dot]
        }
        return nil
    }
}

extension StringProtocol {
    func components(of needle: String) -> Int {
        guard !needle.isEmpty else { return 0 }
        var count = 0
        var rest = Substring(self)
        while let r = rest.firstRange(of: needle) {
            count += 1
            rest = rest[r.upperBound...]
        }
        return count
    }
}
