import Crypto

/// The text a visitor's QR code carries: `CA1.<pass id>.<expiry>.<signature>`.
///
/// The signature is an HMAC-SHA256 (truncated to 128 bits) over the rest with the controller's
/// secret, so a code cannot be forged or its expiry moved; uses are counted against the pass in
/// the roster, so a copied code cannot be used more often than the pass allows.
public struct VisitorPassCode: Sendable {
    static let prefix = "CA1"
    private let secret: [UInt8]

    public init(secret: [UInt8]) { self.secret = secret }

    /// Residents' codes, signed with the same community secret.
    public var residentCodes: ResidentQRCode { ResidentQRCode(secret: secret) }

    /// The code for a pass that expires at `expires`.
    public func encode(passID: String, expires: UnixSeconds) -> String {
        let body = "\(Self.prefix).\(passID).\(expires)"
        return body + "." + Self.hex(signature(body))
    }

    /// The pass id and expiry, or nil when the code is malformed or its signature is wrong.
    public func verify(_ code: String) -> (passID: String, expires: UnixSeconds)? {
        let parts = code.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.prefix, !parts[1].isEmpty,
              let expires = UnixSeconds(parts[2]), let presented = Self.unhex(parts[3]) else { return nil }
        let expected = signature("\(parts[0]).\(parts[1]).\(parts[2])")
        return Self.constantTimeEqual(presented, expected) ? (String(parts[1]), expires) : nil
    }

    /// Whether two signatures are equal, comparing every byte whatever the first difference.
    static func constantTimeEqual(_ presented: [UInt8], _ expected: [UInt8]) -> Bool {
        guard presented.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(presented, expected) { difference |= a ^ b }
        return difference == 0
    }

    private func signature(_ body: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: secret))).prefix(16).map { $0 }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ text: Substring) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: return c - 48
            case 97...102: return c - 87
            default: return nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
