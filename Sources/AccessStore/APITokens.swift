import AccessCore

/// A token as listed (never its value).
public struct APITokenInfo: Sendable, Equatable {
    public var name: String
    public var createdMicros: Int64
    public var createdBy: String
    public var revokedMicros: Int64?
}

extension AccessDatabase {
    /// Makes a token named `name` and returns it: the only time it is ever shown.
    public func addAPIToken(name: String, operator who: String, nowMicros: Int64) throws -> String {
        if let problem = RosterCSVSchema.identifierProblem(name) { throw RosterError.invalid(field: "token name", value: name, problem: problem) }
        let token = APIToken.prefix + Self.randomHex(bytes: 24)
        try connection.transaction {
            if try connection.scalarText("SELECT name FROM api_tokens WHERE name = ?", [.text(name)]) != nil {
                throw RosterError.alreadyExists(kind: "token", id: name)
            }
            try connection.run("INSERT INTO api_tokens (name, sha256, created_us, created_by) VALUES (?, ?, ?, ?)",
                               [.text(name), .text(APIToken.hash(token)), .int(nowMicros), .text(who)])
            try appendAudit(operator: who, action: "token.add", target: name, before: nil, after: nil)
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
        let s = try connection.statement("SELECT name, created_us, created_by, revoked_us FROM api_tokens ORDER BY name")
        var out: [APITokenInfo] = []
        while try s.step() {
            out.append(APITokenInfo(name: s.text(0), createdMicros: s.int(1), createdBy: s.text(2), revokedMicros: s.isNull(3) ? nil : s.int(3)))
        }
        return out
    }

    /// Every live token's hash, for the API's constant-time check.
    public func apiTokenHashes() throws -> [(name: String, hash: String)] {
        let s = try connection.statement("SELECT name, sha256 FROM api_tokens WHERE revoked_us IS NULL")
        var out: [(String, String)] = []
        while try s.step() { out.append((s.text(0), s.text(1))) }
        return out
    }
}
