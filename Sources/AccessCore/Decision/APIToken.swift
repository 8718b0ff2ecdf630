import Crypto

/// Bearer tokens of the upstream API. Only a SHA-256 of a token is stored; a presented token is
/// hashed and compared with every stored hash in constant time, so neither the comparison nor
/// which token matched shows in the response time.
public enum APIToken {
    /// Tokens start with this, so they are recognisable in a secret scanner.
    public static let prefix = "cat_"

    /// The stored form: lowercase hex of SHA-256 over the token's UTF-8 bytes.
    public static func hash(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
        }.joined()
    }

    /// The name of the token whose hash matches, looking at every candidate whatever it finds.
    public static func match(_ token: String, among stored: [(name: String, hash: String)]) -> String? {
        let presented = Array(hash(token).utf8)
        var found: String?
        for candidate in stored {
            let bytes = Array(candidate.hash.utf8)
            var difference = UInt8(bytes.count == presented.count ? 0 : 1)
            for i in 0..<min(bytes.count, presented.count) { difference |= bytes[i] ^ presented[i] }
            if difference == 0 && found == nil { found = candidate.name }
        }
        return found
    }
}
