/// Bytes from a serial QR reader cut into codes, as a value the reader's thread owns. A reader
/// sends each code as printable ASCII ended by CR, LF or CR LF; anything else on the line (noise
/// on a long RS-485 run, a reader set to another code page, a half line after a replug) makes the
/// whole line garbled, never a shorter code. A line longer than `maxLength` is dropped whole
/// without being buffered.
public struct QRLineAssembler: Sendable, Equatable {
    public enum Output: Sendable, Equatable {
        case code(String)
        /// Why the line was dropped (never its content: it may be someone's credential).
        case garbled(String)
    }

    public let maxLength: Int
    private var line: [UInt8] = []
    /// The first non-printable byte of the line, if any.
    private var badByte: UInt8?
    /// Bytes of the current line beyond what is kept.
    private var overflow = 0

    public init(maxLength: Int) { self.maxLength = maxLength }

    /// Takes bytes as they were read; the lines they complete, in order. Empty lines are skipped.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Output] {
        var out: [Output] = []
        for byte in bytes {
            switch byte {
            case 0x0A, 0x0D:
                if let done = endLine() { out.append(done) }
            default:
                if line.count + overflow >= maxLength {
                    overflow += 1
                } else {
                    line.append(byte)
                    if badByte == nil, !(0x20...0x7E).contains(byte) { badByte = byte }
                }
            }
        }
        return out
    }

    /// Forgets a half-read line (the reader was unplugged, or the port reopened).
    public mutating func reset() {
        line.removeAll(keepingCapacity: true)
        badByte = nil
        overflow = 0
    }

    private mutating func endLine() -> Output? {
        defer { reset() }
        if overflow > 0 { return .garbled("line longer than \(maxLength) bytes (\(line.count + overflow))") }
        if let badByte { return .garbled("non-printable byte 0x\(String(badByte, radix: 16, uppercase: true)) in a \(line.count)-byte line") }
        if line.isEmpty { return nil }
        return .code(String(decoding: line, as: UTF8.self))
    }
}
