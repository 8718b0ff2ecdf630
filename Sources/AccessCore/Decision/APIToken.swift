import Crypto

/// What a bearer token of the upstream API may do. Each route needs exactly one scope, so a plate
/// camera's token (`plates:write`) cannot open a door (`portals:command`).
public enum APIScope: String, CaseIterable, Sendable, Comparable {
    case eventsRead = "events:read"
    case analyticsRead = "analytics:read"
    case platesWrite = "plates:write"
    case portalsCommand = "portals:command"
    case metricsRead = "metrics:read"

    /// Parses a scope as written on the command line or in the database, naming the known ones.
    public static func parse(_ text: String) throws(APITokenError) -> APIScope {
        guard let scope = APIScope(rawValue: text) else { throw .unknownScope(text) }
        return scope
    }

    public static func < (a: APIScope, b: APIScope) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A problem with a token's definition, naming the value at fault.
public enum APITokenError: Error, Equatable, CustomStringConvertible {
    case unknownScope(String)
    case noScope

    public var description: String {
        switch self {
        case .unknownScope(let text):
            "scope \"\(text)\" is not one of \(APIScope.allCases.map(\.rawValue).joined(separator: ", "))"
        case .noScope:
            "a token needs at least one scope (\(APIScope.allCases.map(\.rawValue).joined(separator: ", ")))"
        }
    }
}

/// A live token as the API checks it: its name, its hash, what it may do and until when.
public struct APITokenGrant: Sendable, Equatable {
    public var name: String
    /// Lowercase hex of SHA-256 over the token.
    public var hash: String
    public var scopes: Set<APIScope>
    /// Microseconds since 1970 from which the token is refused; nil: it does not expire.
    public var expiresMicros: Int64?

    public init(name: String, hash: String, scopes: Set<APIScope>, expiresMicros: Int64? = nil) {
        self.name = name
        self.hash = hash
        self.scopes = scopes
        self.expiresMicros = expiresMicros
    }

    public func isExpired(atMicros now: Int64) -> Bool { expiresMicros.map { now >= $0 } ?? false }
}

/// Bearer tokens of the upstream API. Only a SHA-256 of a token is stored; a presented token is
/// hashed and compared with every stored hash in constant time, so neither the comparison nor
/// which token matched shows in the response time.
public enum APIToken {
    /// Tokens start with this, so they are recognisable in a secret scanner.
    public static let prefix = "cat_"

    /// The stored form: lowercase hex of SHA-256 over the token's UTF-8 bytes.
    public static func hash(_ token: String) -> String {
        Hex.encode(SHA256.hash(data: Array(token.utf8)))
    }

    /// The grant whose hash matches, looking at every candidate whatever it finds.
    public static func match(_ token: String, among stored: [APITokenGrant]) -> APITokenGrant? {
        let presented = Array(hash(token).utf8)
        var found: APITokenGrant?
        for candidate in stored {
            let bytes = Array(candidate.hash.utf8)
            var difference = UInt8(bytes.count == presented.count ? 0 : 1)
            for i in 0..<min(bytes.count, presented.count) { difference |= bytes[i] ^ presented[i] }
            if difference == 0 && found == nil { found = candidate }
        }
        return found
    }
}
