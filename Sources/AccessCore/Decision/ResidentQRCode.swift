import Crypto

/// The short-lived code a resident's phone shows at a gate (the community app's "open by QR"):
/// `CAR1.<person id>.<expiry>.<signature>`, where the signature is the first 16 bytes of
/// HMAC-SHA256 over `CAR1.<person id>.<expiry>` with the community secret visitor passes use,
/// in lowercase hex. `API/resident-qr.md` publishes the algorithm with a test vector, so a
/// platform can make the codes; a gate verifies them offline.
///
/// A code lives at most `lifetimeSeconds`; a gate refuses a signed code whose expiry lies further
/// ahead than that plus `clockSkewSeconds`, so a leaked secret's codes or a platform's mistake
/// cannot make a long-lived one.
public struct ResidentQRCode: Sendable {
    static let prefix = "CAR1"
    /// How long a code made by `accessctl person qr` is valid.
    public static let lifetimeSeconds: Int64 = 60
    /// How far the platform's clock may run ahead of the gate's.
    public static let clockSkewSeconds: Int64 = 30

    /// What a verified code says; whether it is still valid is for the decision (`check`).
    public struct Verified: Sendable, Equatable {
        public var personID: String
        public var expires: UnixSeconds

        public init(personID: String, expires: UnixSeconds) {
            self.personID = personID
            self.expires = expires
        }
    }

    private let secret: [UInt8]

    public init(secret: [UInt8]) { self.secret = secret }

    /// Whether `code` is meant to be a resident code (it may still be forged).
    public static func looksLikeResidentCode(_ code: String) -> Bool { code.hasPrefix(prefix + ".") }

    /// The code for `personID`, valid until `expires`.
    public func encode(personID: String, expires: UnixSeconds) -> String {
        let body = "\(Self.prefix).\(personID).\(expires)"
        return body + "." + Hex.encode(signature(body))
    }

    /// The person and expiry, or nil when the code is malformed or its signature is wrong. The
    /// person id may itself hold dots: the expiry and signature are the last two fields.
    public func verify(_ code: String) -> Verified? {
        guard Self.looksLikeResidentCode(code), let signatureDot = code.lastIndex(of: ".") else { return nil }
        let body = code[..<signatureDot]
        guard let expiryDot = body.lastIndex(of: "."), expiryDot > code.index(code.startIndex, offsetBy: Self.prefix.count) else {
            return nil
        }
        let person = body[body.index(code.startIndex, offsetBy: Self.prefix.count + 1)..<expiryDot]
        guard !person.isEmpty, let expires = UnixSeconds(body[body.index(after: expiryDot)...]),
              let presented = Hex.decode(code[code.index(after: signatureDot)...], lowercaseOnly: true) else { return nil }
        guard VisitorPassCode.constantTimeEqual(presented, signature(String(body))) else { return nil }
        return Verified(personID: String(person), expires: expires)
    }

    private func signature(_ body: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: secret)).prefix(16))
    }
}
