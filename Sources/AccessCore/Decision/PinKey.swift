import Crypto

/// A PIN as the roster keeps it: HMAC-SHA256 of the digits under the site's PIN key, never the
/// digits. 32 bytes held as four words, so the keypad's dictionary keys are fixed-size values
/// and two digests are compared in constant time (every word, whatever the first difference).
public struct PinDigest: Hashable, Sendable, CustomStringConvertible {
    let w0, w1, w2, w3: UInt64

    init(bytes: some Collection<UInt8>) {
        var words: [UInt64] = [0, 0, 0, 0]
        for (i, b) in bytes.prefix(32).enumerated() { words[i / 8] = words[i / 8] << 8 | UInt64(b) }
        (w0, w1, w2, w3) = (words[0], words[1], words[2], words[3])
    }

    /// The stored spelling: 64 lowercase hex digits; nil for anything else (a PIN as typed).
    public init?(hex: String) {
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }),
              let bytes = Hex.decode(hex) else { return nil }
        self.init(bytes: bytes)
    }

    public var hex: String {
        Hex.encode([w0, w1, w2, w3].flatMap { w in (0..<8).reversed().map { UInt8(truncatingIfNeeded: w >> ($0 * 8)) } })
    }

    /// Never the digest itself: it identifies a PIN wherever the same key is used.
    public var description: String { "PinDigest(****)" }

    public static func == (a: PinDigest, b: PinDigest) -> Bool {
        ((a.w0 ^ b.w0) | (a.w1 ^ b.w1) | (a.w2 ^ b.w2) | (a.w3 ^ b.w3)) == 0
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0)
        hasher.combine(w1)
    }

    /// Whether `value` is a PIN's stored form rather than the digits as typed.
    public static func isStored(_ value: String) -> Bool { PinDigest(hex: value) != nil }
}

/// The site's PIN key: 32 random bytes kept in a file outside the database (`[security]
/// pin_key_file`; with `[fleet]`, the community's). Without it a copied database yields no PIN:
/// every stored value is a keyed hash, and 10^8 guesses need the key to test.
public struct PinKey: Sendable, Equatable {
    public static let byteCount = 32
    /// The key itself, for its file and the fleet's copy; never print it.
    public let bytes: [UInt8]

    /// Nil unless `bytes` is exactly `byteCount` long.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    /// The keyed hash of `pin` (the digits as typed, already validated by the caller).
    public func digest(_ pin: String) -> PinDigest {
        PinDigest(bytes: Array(HMAC<SHA256>.authenticationCode(for: Array(pin.utf8), using: SymmetricKey(data: bytes))))
    }

    /// `digest(pin)` in its stored spelling.
    public func hash(_ pin: String) -> String { digest(pin).hex }

    /// The key as lowercase hex (its file's contents, and the fleet's copy); never print it.
    public var hex: String { Hex.encode(bytes) }

    public static func == (a: PinKey, b: PinKey) -> Bool { VisitorPassCode.constantTimeEqual(a.bytes, b.bytes) }
}
