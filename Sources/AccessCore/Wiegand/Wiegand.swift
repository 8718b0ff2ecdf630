/// Wiegand card formats. The card number is the frame's data bits (parity removed) read as one
/// unsigned integer, the decimal printed on most cards' data and what the roster stores.
public enum WiegandFormat: String, CaseIterable, Sendable {
    /// HID H10301: even parity, 8-bit facility, 16-bit card, odd parity.
    case bits26 = "26"
    /// 34-bit: even parity over the first 16 data bits, 32 data bits, odd parity over the last 16.
    case bits34 = "34"
    /// HID H10304: even parity over bits 2-19, 16-bit facility, 19-bit card, odd parity over bits 19-36.
    case bits37 = "37"
    /// Any length up to 64 bits, no parity: the bits are the number.
    case raw

    public var bitCount: Int? {
        switch self {
        case .bits26: return 26
        case .bits34: return 34
        case .bits37: return 37
        case .raw: return nil
        }
    }
}

/// A decoded card frame.
public struct WiegandFrame: Sendable, Equatable, Hashable {
    public var format: WiegandFormat
    public var bitCount: Int
    /// The bits as received, first bit most significant.
    public var bits: UInt64
    /// The data bits without parity.
    public var cardNumber: UInt64
    /// The facility code, for formats that have one.
    public var facility: UInt64?

    public init(format: WiegandFormat, bitCount: Int, bits: UInt64, cardNumber: UInt64, facility: UInt64?) {
        self.format = format
        self.bitCount = bitCount
        self.bits = bits
        self.cardNumber = cardNumber
        self.facility = facility
    }
}

/// A key from a Wiegand keypad (4-bit or 8-bit burst per key).
public enum KeypadKey: Sendable, Equatable, Hashable {
    case digit(UInt8)
    case star
    case hash

    init?(code: UInt64) {
        switch code {
        case 0...9: self = .digit(UInt8(code))
        case 10: self = .star
        case 11: self = .hash
        default: return nil
        }
    }
}

/// Why a frame was dropped.
public enum WiegandGarble: Sendable, Equatable, Hashable, CustomStringConvertible {
    case parity(bits: Int)
    case length(bits: Int)
    case keypadCheck(bits: UInt64)
    case overrun(bits: Int)
    /// The bits were not evenly spaced: a long pause inside the frame means it straddles two
    /// frames (an edge was lost), which parity alone does not always catch.
    case gap(bits: Int)

    public var description: String {
        switch self {
        case .parity(let n): return "parity error in a \(n)-bit frame"
        case .length(let n): return "\(n) bits match no configured format"
        case .keypadCheck(let b): return "8-bit key \(String(b, radix: 2)) fails its complement check"
        case .overrun(let n): return "edges lost while receiving (\(n) bits so far)"
        case .gap(let n): return "a pause inside a \(n)-bit frame: it straddles two frames"
        }
    }
}

/// What a reader produced.
public enum WiegandOutput: Sendable, Equatable {
    case card(WiegandFrame)
    case key(KeypadKey)
    case garbled(WiegandGarble)
}

/// Decodes complete bit strings. Pure: the assembler below decides where frames end.
public enum WiegandDecoder {
    /// Decodes `count` bits (first bit most significant) as `format`, or as any known length in
    /// auto mode (`format == nil`): 4 and 8 bits are keys, 26/34/37 are cards.
    public static func decode(bits: UInt64, count: Int, format: WiegandFormat?) -> WiegandOutput {
        if format == nil || format?.bitCount != count {
            // Keypads send 4 or 8 bits per key whatever the card format.
            if count == 4 { return KeypadKey(code: bits).map(WiegandOutput.key) ?? .garbled(.length(bits: count)) }
            if count == 8 {
                let high = bits >> 4
                let low = bits & 0xF
                guard high == (~low & 0xF), let key = KeypadKey(code: low) else { return .garbled(.keypadCheck(bits: bits)) }
                return .key(key)
            }
        }
        let chosen: WiegandFormat
        if let format {
            if format == .raw {
                guard count > 0, count <= 64 else { return .garbled(.length(bits: count)) }
                return .card(WiegandFrame(format: .raw, bitCount: count, bits: bits, cardNumber: bits, facility: nil))
            }
            guard format.bitCount == count else { return .garbled(.length(bits: count)) }
            chosen = format
        } else {
            guard let f = WiegandFormat.allCases.first(where: { $0.bitCount == count }) else { return .garbled(.length(bits: count)) }
            chosen = f
        }
        // Parity halves: (even-parity span, odd-parity span) as bit index ranges, bit 0 first.
        let evenSpan: ClosedRange<Int>
        let oddSpan: ClosedRange<Int>
        let facilityBits: Int?
        switch chosen {
        case .bits26: (evenSpan, oddSpan, facilityBits) = (0...12, 13...25, 8)
        case .bits34: (evenSpan, oddSpan, facilityBits) = (0...16, 17...33, nil)
        case .bits37: (evenSpan, oddSpan, facilityBits) = (0...18, 18...36, 16)
        case .raw: return .garbled(.length(bits: count))  // handled above
        }
        func bit(_ i: Int) -> UInt64 { (bits >> UInt64(count - 1 - i)) & 1 }
        let even = evenSpan.reduce(0) { $0 ^ bit($1) }
        let odd = oddSpan.reduce(0) { $0 ^ bit($1) }
        guard even == 0, odd == 1 else { return .garbled(.parity(bits: count)) }
        let data = (bits >> 1) & ((1 << UInt64(count - 2)) - 1)
        let facility = facilityBits.map { data >> UInt64(count - 2 - $0) }
        return .card(WiegandFrame(format: chosen, bitCount: count, bits: bits, cardNumber: data, facility: facility))
    }

    /// The frame a reader sends for a card number (for the simulated board and tests): parity
    /// computed, data bits from `cardNumber`. Nil when the number does not fit the format.
    public static func encode(cardNumber: UInt64, format: WiegandFormat) -> (bits: UInt64, count: Int)? {
        guard let count = format.bitCount else {
            let width = max(1, 64 - cardNumber.leadingZeroBitCount)
            return (cardNumber, width)
        }
        let dataBits = count - 2
        guard cardNumber < (1 << UInt64(dataBits)) else { return nil }
        var bits = cardNumber << 1
        func bit(_ i: Int) -> UInt64 { (bits >> UInt64(count - 1 - i)) & 1 }
        let (evenSpan, oddSpan): (ClosedRange<Int>, ClosedRange<Int>)
        switch format {
        case .bits26: (evenSpan, oddSpan) = (1...12, 13...24)
        case .bits34: (evenSpan, oddSpan) = (1...16, 17...32)
        case .bits37: (evenSpan, oddSpan) = (1...18, 18...35)
        case .raw: return nil
        }
        let even = evenSpan.reduce(0) { $0 ^ bit($1) }
        let odd = oddSpan.reduce(0) { $0 ^ bit($1) }
        bits |= even << UInt64(count - 1)
        bits |= odd ^ 1
        return (bits, count)
    }

    /// The 8-bit burst a keypad sends for a key.
    public static func encode(key: KeypadKey) -> (bits: UInt64, count: Int) {
        let code: UInt64
        switch key {
        case .digit(let d): code = UInt64(d)
        case .star: code = 10
        case .hash: code = 11
        }
        return (((~code & 0xF) << 4) | code, 8)
    }
}

/// Assembles edges into frames, as a value: feed it each bit with the time of its falling edge,
/// and the time when nothing arrived for a while; it returns what completed.
///
/// A reader whose format is configured completes its frame on the bit count, at once. In auto
/// mode (or for a keypad burst) a frame ends after `silenceNanos` without an edge (ESPHome uses
/// 100 ms; real readers send bits 1-2 ms apart, so 25 ms is plenty and quicker).
///
/// Bits are ordered by their edge times, not by arrival: D0 and D1 are separate lines whose
/// events can reach the reader of their queues out of order, and two swapped neighbouring bits
/// keep the parity, so arrival order could decode a wrong card.
public struct WiegandAssembler: Sendable {
    public let format: WiegandFormat?
    public let silenceNanos: UInt64
    private var edges: [(nanos: UInt64, bit: UInt8)] = []
    /// The time of the latest edge (kept after a frame completes, for latency reports).
    public private(set) var lastEdge: UInt64 = 0
    private var damaged = false

    public init(format: WiegandFormat?, silenceNanos: UInt64 = 25_000_000) {
        self.format = format
        self.silenceNanos = silenceNanos
        edges.reserveCapacity(64)
    }

    /// When `silence(now:)` should be called next, if a frame is pending.
    public var deadline: UInt64? { !edges.isEmpty || damaged ? lastEdge + silenceNanos : nil }

    /// A bit arrived (0 on D0, 1 on D1) with its edge time. Returns what completed, if anything:
    /// a pending frame that went silent first, then possibly this frame at its bit count.
    public mutating func bit(_ value: UInt8, at nanos: UInt64) -> [WiegandOutput] {
        var out: [WiegandOutput] = []
        if !edges.isEmpty || damaged, nanos >= lastEdge &+ silenceNanos, let pending = finish() {
            out.append(pending)
        }
        edges.append((nanos, value & 1))
        lastEdge = max(lastEdge, nanos)
        if let expected = format?.bitCount, edges.count == expected, !damaged {
            if let done = finish() { out.append(done) }
        }
        return out
    }

    /// Edges were lost (the kernel queue overflowed): the frame in progress cannot be trusted.
    public mutating func overrun(at nanos: UInt64) {
        damaged = true
        lastEdge = max(lastEdge, nanos)
    }

    /// Call at or after `deadline`: completes the pending frame if the line has been silent long enough.
    public mutating func silence(now nanos: UInt64) -> WiegandOutput? {
        guard let deadline, nanos >= deadline else { return nil }
        return finish()
    }

    private mutating func finish() -> WiegandOutput? {
        let count = edges.count
        defer {
            edges.removeAll(keepingCapacity: true)
            damaged = false
        }
        if damaged { return .garbled(.overrun(bits: count)) }
        if count == 0 { return nil }
        if count > 64 { return .garbled(.length(bits: count)) }
        edges.sort { $0.nanos < $1.nanos }
        // A reader's bits come evenly spaced (1-2 ms); frames are at least the silence apart.
        for (a, b) in zip(edges, edges.dropFirst()) where b.nanos - a.nanos > silenceNanos / 2 {
            return .garbled(.gap(bits: count))
        }
        var bits: UInt64 = 0
        for edge in edges { bits = bits << 1 | UInt64(edge.bit) }
        return WiegandDecoder.decode(bits: bits, count: count, format: format)
    }
}
