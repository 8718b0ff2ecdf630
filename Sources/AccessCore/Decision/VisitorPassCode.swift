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
        return body + "." + Hex.encode(signature(body))
    }

    /// The pass id and expiry, or nil when the code is malformed or its signature is wrong.
    public func verify(_ code: String) -> (passID: String, expires: UnixSeconds)? {
        let parts = code.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.prefix, !parts[1].isEmpty,
              let expires = UnixSeconds(parts[2]), let presented = Hex.decode(parts[3], lowercaseOnly: true) else { return nil }
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
}
