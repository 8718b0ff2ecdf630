import AccessCore

/// A token as listed (never its value).
public struct APITokenInfo: Sendable, Equatable {
    public var name: String
    public var createdMicros: Int64
    public var createdBy: String
    public var revokedMicros: Int64?
    /// The token's scopes; every scope for a token made before scopes existed.
    public var scopes: Set<APIScope>
    /// True for a token made before scopes existed: it keeps every scope until rotated.
    public var predatesScopes: Bool
    public var expiresMicros: Int64?
    /// When the API last accepted it (to the minute); nil: never.
    public var lastUsedMicros: Int64?
}

extension AccessDatabase {
    /// Makes a token named `name` with `scopes`, refused from `expiresMicros` on when given, and
    /// returns it: the only time it is ever shown.
    public func addAPIToken(name: String, scopes: Set<APIScope> = Set(APIScope.allCases), expiresMicros: Int64? = nil,
                            operator who: String, nowMicros: Int64) throws -> String {
        if let problem = RosterCSVSchema.identifierProblem(name) { throw RosterError.invalid(field: "token name", value: name, problem: problem) }
        if scopes.isEmpty { throw RosterError.invalid(field: "scope", value: "", problem: APITokenError.noScope.description) }
        if let expiresMicros, expiresMicros <= nowMicros {
            throw RosterError.invalid(field: "expires", value: String(expiresMicros), problem: "is not in the future")
        }
        let token = APIToken.prefix + Hex.random(bytes: 24)
        let scopeText = Self.scopeText(scopes)
        try connection.transaction {
            if try connection.scalarText("SELECT name FROM api_tokens WHERE name = ?", [.text(name)]) != nil {
                throw RosterError.alreadyExists(kind: "token", id: name)
            }
            try connection.run("""
                INSERT INTO api_tokens (name, sha256, created_us, created_by, scopes, expires_us) VALUES (?, ?, ?, ?, ?, ?)
                """, [.text(name), .text(APIToken.hash(token)), .int(nowMicros), .text(who), .text(scopeText), .optional(expiresMicros)])
            var after: [(String, JSON)] = [("scopes", .array(scopes.sorted().map { .string($0.rawValue) }))]
            if let expiresMicros { after.append(("expires_us", .int(expiresMicros))) }
            try appendAudit(operator: who, action: "token.add", target: name, before: nil, after: .object(after))
        }
        return token
    }

    /// Revokes a token for good; the name may then be used again.
    public func revokeAPIToken(name: String, operator who: String, nowMicros: Int64) throws {
        try connection.transaction {
            guard try connection.scalarText("SELECT name FROM api_tokens WHERE name = ?", [.text(name)]) != nil else {
                throw RosterError.notFound(kind: "token", id: name)
            }
            try connection.run("DELETE FROM api_tokens WHERE name = ?", [.text(name)])
            try appendAudit(operator: who, action: "token.revoke", target: name, before: nil, after: nil)
        }
    }

    public func apiTokens() throws -> [APITokenInfo] {
        let s = try connection.statement("""
            SELECT name, created_us, created_by, revoked_us, scopes, expires_us, last_used_us FROM api_tokens ORDER BY name
            """)
        var out: [APITokenInfo] = []
        while try s.step() {
            let scopes = s.optionalText(4)
            out.append(APITokenInfo(name: s.text(0), createdMicros: s.int(1), createdBy: s.text(2), revokedMicros: s.optionalInt(3),
                                    scopes: Self.scopes(scopes), predatesScopes: scopes == nil,
                                    expiresMicros: s.optionalInt(5), lastUsedMicros: s.optionalInt(6)))
        }
        return out
    }

    /// Every live token's hash, scopes and expiry, for the API's constant-time check.
    public func apiTokenGrants() throws -> [APITokenGrant] {
        let s = try connection.statement("SELECT name, sha256, scopes, expires_us FROM api_tokens WHERE revoked_us IS NULL")
        var out: [APITokenGrant] = []
        while try s.step() {
            out.append(APITokenGrant(name: s.text(0), hash: s.text(1), scopes: Self.scopes(s.optionalText(2)), expiresMicros: s.optionalInt(3)))
        }
        return out
    }

    /// Records that the API accepted the token `name` at `atMicros` (the caller keeps this to
    /// about once a minute per token: each is a durable write).
    public func recordAPITokenUse(name: String, atMicros: Int64) throws(StoreError) {
        try connection.run("UPDATE api_tokens SET last_used_us = ?1 WHERE name = ?2 AND (last_used_us IS NULL OR last_used_us < ?1)",
                           [.int(atMicros), .text(name)])
    }

    static func scopeText(_ scopes: Set<APIScope>) -> String { scopes.sorted().map(\.rawValue).joined(separator: " ") }

    /// The stored scopes; NULL (a token made before scopes) means every scope. Unknown words
    /// (written by a newer build) grant nothing.
    static func scopes(_ text: String?) -> Set<APIScope> {
        guard let text else { return Set(APIScope.allCases) }
        return Set(text.split(separator: " ").compactMap { APIScope(rawValue: String($0)) })
    }
}
