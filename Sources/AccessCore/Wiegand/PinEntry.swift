/// Keys from a reader's keypad assembled into a PIN, as keypad readers are used at gates: digits,
/// then `#` to submit; `*` clears. A pause longer than `timeoutNanos` between keys starts over,
/// so a half-typed PIN is never completed by the next person.
public struct PinEntry: Sendable, Equatable {
    public static let maxDigits = 12

    public enum Outcome: Sendable, Equatable {
        /// More keys are expected.
        case pending
        /// `#` after at least one digit: the PIN to decide on.
        case submitted(String)
        /// `*`, `#` with nothing typed, or too many digits: what was typed is dropped.
        case cleared
    }

    public let timeoutNanos: UInt64
    private var digits: [UInt8] = []
    private var lastKeyAt: UInt64 = 0

    public init(timeoutSeconds: Double = 10) { timeoutNanos = UInt64(timeoutSeconds * 1e9) }

    /// The digits typed so far (for tests; never logged).
    public var typed: Int { digits.count }

    public mutating func press(_ key: KeypadKey, at now: UInt64) -> Outcome {
        if !digits.isEmpty && now &- lastKeyAt > timeoutNanos { digits.removeAll() }
        lastKeyAt = now
        switch key {
        case .digit(let d):
            guard digits.count < Self.maxDigits else {
                digits.removeAll()
                return .cleared
            }
            digits.append(d)
            return .pending
        case .star:
            digits.removeAll()
            return .cleared
        case .hash:
            guard !digits.isEmpty else { return .cleared }
            defer { digits.removeAll() }
            return .submitted(String(decoding: digits.map { $0 + UInt8(ascii: "0") }, as: UTF8.self))
        }
    }
}
