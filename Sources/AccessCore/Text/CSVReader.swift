/// A malformed CSV file.
public enum CSVError: Error, Equatable, Sendable, CustomStringConvertible {
    case unterminatedQuote(line: Int)
    case textAfterQuote(line: Int)
    case notUTF8(line: Int)

    public var line: Int {
        switch self {
        case .unterminatedQuote(let l), .textAfterQuote(let l), .notUTF8(let l): return l
        }
    }

    public var description: String {
        switch self {
        case .unterminatedQuote: return "a quoted field is never closed"
        case .textAfterQuote: return "text follows a closing quote (write \"\" for a quote inside a quoted field)"
        case .notUTF8: return "the line is not valid UTF-8"
        }
    }
}

/// One record with the physical line it starts on (1-based; a quoted field may span lines).
public struct CSVRecord: Equatable, Sendable {
    public var line: Int
    public var fields: [String]

    public init(line: Int, fields: [String]) {
        self.line = line
        self.fields = fields
    }
}

/// An RFC 4180 reader (commas, double-quoted fields with `""` escapes, LF or CRLF) that pulls
/// bytes in chunks, so a file of a million rows is never held in memory whole. A UTF-8 byte order
/// mark at the start is skipped; blank lines are skipped.
public struct CSVReader {
    private var read: (inout [UInt8]) throws -> Int
    private var buffer: [UInt8] = []
    private var position = 0
    private var exhausted = false
    private var line = 1
    private var atStart = true
    /// Bytes consumed so far, for progress reports.
    public private(set) var bytesConsumed: Int = 0

    /// Reads from a source that fills the buffer it is given and returns the count (0 at the end).
    public init(read: @escaping (inout [UInt8]) throws -> Int) {
        self.read = read
    }

    /// Reads from bytes in memory.
    public init(bytes: [UInt8]) {
        var pending: [UInt8]? = bytes
        self.init { buffer in
            guard let bytes = pending else { return 0 }
            pending = nil
            buffer = bytes
            return bytes.count
        }
    }

    public init(string: String) { self.init(bytes: Array(string.utf8)) }

    private mutating func nextByte() throws -> UInt8? {
        if position == buffer.count {
            if exhausted { return nil }
            buffer.removeAll(keepingCapacity: true)
            position = 0
            if try read(&buffer) == 0 || buffer.isEmpty {
                exhausted = true
                return nil
            }
        }
        let b = buffer[position]
        position += 1
        bytesConsumed += 1
        return b
    }

    private mutating func peekByte() throws -> UInt8? {
        guard let b = try nextByte() else { return nil }
        position -= 1
        bytesConsumed -= 1
        return b
    }

    /// The next record, or nil at the end of the input.
    public mutating func next() throws(CSVError) -> CSVRecord? {
        do {
            return try nextRecord()
        } catch let error as CSVError {
            throw error
        } catch {
            // The byte source failed; report it where the reader stood.
            throw .notUTF8(line: line)
        }
    }

    private mutating func nextRecord() throws -> CSVRecord? {
        if atStart {
            atStart = false
            if try peekByte() == 0xEF {
                // Skip a UTF-8 BOM if the next three bytes are one.
                _ = try nextByte()
                if try peekByte() == 0xBB { _ = try nextByte(); if try peekByte() == 0xBF { _ = try nextByte() } }
            }
        }
        while true {
            let startLine = line
            var fields: [String] = []
            var field: [UInt8] = []
            var sawAny = false
            var quoted = false
            var afterQuote = false
            loop: while let b = try nextByte() {
                sawAny = true
                if quoted {
                    if b == UInt8(ascii: "\"") {
                        if try peekByte() == UInt8(ascii: "\"") {
                            _ = try nextByte()
                            field.append(b)
                        } else {
                            quoted = false
                            afterQuote = true
                        }
                    } else {
                        if b == UInt8(ascii: "\n") { line += 1 }
                        field.append(b)
                    }
                    continue
                }
                switch b {
                case UInt8(ascii: ","):
                    fields.append(try string(field, line: startLine))
                    field.removeAll(keepingCapacity: true)
                    afterQuote = false
                case UInt8(ascii: "\n"):
                    line += 1
                    break loop
                case UInt8(ascii: "\r"):
                    if try peekByte() == UInt8(ascii: "\n") { continue }
                    field.append(b)
                case UInt8(ascii: "\""):
                    if field.isEmpty && !afterQuote { quoted = true } else { throw CSVError.textAfterQuote(line: startLine) }
                default:
                    if afterQuote { throw CSVError.textAfterQuote(line: startLine) }
                    field.append(b)
                }
            }
            if quoted { throw CSVError.unterminatedQuote(line: startLine) }
            if !sawAny { return nil }
            fields.append(try string(field, line: startLine))
            if fields.count == 1 && fields[0].isEmpty { continue }  // blank line
            return CSVRecord(line: startLine, fields: fields)
        }
    }

    private func string(_ bytes: [UInt8], line: Int) throws(CSVError) -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw .notUTF8(line: line) }
        return s
    }
}

/// Writes CSV fields, quoting only where needed.
public enum CSVWriter {
    public static func line(_ fields: [String]) -> String {
        fields.map { field in
            if field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || field.hasPrefix(" ") || field.hasSuffix(" ") {
                return "\"" + field.replacingAll("\"", with: "\"\"") + "\""
            }
            return field
        }.joined(separator: ",") + "\n"
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        out.reserveCapacity(utf8.count)
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}
