import AccessCore
import AccessStore
import ArgumentParser

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Bearer tokens for the upstream HTTP API (only a hash is stored).",
        discussion: """
            Scopes: \(APIScope.allCases.map(\.rawValue).joined(separator: ", ")).
            Examples:
              accessctl token add camera-lane-in --scope plates:write --json   prints {"name": …, "token": "cat_…", …} once
              accessctl token add platform --scope events:read --scope analytics:read --expires 90d
              accessctl token list
              accessctl token revoke platform
            """,
        subcommands: [Add.self, List.self, Revoke.self]
    )

    struct Add: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a token; it is printed once and never again.",
            discussion: "Without --scope the token gets every scope; name the scopes it needs instead.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "A name for whoever uses it, e.g. platform.") var name: String
        @Option(name: .customLong("scope"), help: ArgumentHelp("What it may do (repeatable): \(APIScope.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "scope"))
        var scopes: [String] = []
        @Option(help: ArgumentHelp("Refused from then on: a day (the whole day counts), a date-time, or a span such as 90d or 12h.", valueName: "when"))
        var expires: String?

        func run(site: Site) throws {
            let chosen: Set<APIScope>
            do {
                chosen = scopes.isEmpty ? Set(APIScope.allCases) : Set(try scopes.map { text throws(APITokenError) in try APIScope.parse(text) })
            } catch {
                throw CLIError("--scope: \(error)")
            }
            let now = AccessDatabase.nowMicros()
            let expiresMicros = try expires.map { try Self.expiry($0, site: site, nowMicros: now) }
            let token = try site.db.addAPIToken(name: name, scopes: chosen, expiresMicros: expiresMicros, operator: site.operatorName, nowMicros: now)
            let scopeList = chosen.sorted().map(\.rawValue)
            if site.json {
                return Say.json(.object([("name", .string(name)), ("token", .string(token)), ("scopes", .array(scopeList.map { .string($0) })),
                                         ("expires", .string(expiresMicros.map { ISO8601.format(micros: $0, zone: site.zone) }))]))
            }
            Say.line(token)
            Say.warn("token \(name) (\(scopeList.joined(separator: " "))): keep it now, it cannot be shown again")
        }

        /// `--expires`: `90d`/`12h` from now, else a day (refused from the next midnight) or a date-time.
        static func expiry(_ text: String, site: Site, nowMicros: Int64) throws -> Int64 {
            if let unit = text.last, unit == "d" || unit == "h", let count = Int64(text.dropLast()) {
                guard count > 0, count <= 36_500 * 24 else { throw CLIError("--expires: \"\(text)\" must be a positive span, e.g. 90d or 12h") }
                return nowMicros + count * (unit == "d" ? 86_400 : 3_600) * 1_000_000
            }
            let micros = try site.instant(text, option: "--expires", until: true) * 1_000_000
            guard micros > nowMicros else { throw CLIError("--expires: \"\(text)\" is not in the future") }
            return micros
        }
    }

    struct List: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Tokens by name: scopes, creation, expiry and last use (never their values).")
        @OptionGroup var global: GlobalOptions

        func run(site: Site) throws {
            let tokens = try site.db.apiTokens()
            let zone = site.rules.zone
            func time(_ micros: Int64?) -> String? { micros.map { ISO8601.format(micros: $0, zone: zone) } }
            if site.json {
                return Say.json(.array(tokens.map { t in
                    .object([("name", .string(t.name)), ("scopes", .array(t.scopes.sorted().map { .string($0.rawValue) })),
                             ("predates_scopes", .bool(t.predatesScopes)),
                             ("created", .string(time(t.createdMicros))), ("created_by", .string(t.createdBy)),
                             ("expires", .string(time(t.expiresMicros))), ("last_used", .string(time(t.lastUsedMicros)))])
                }))
            }
            var table = TextTable("NAME", "SCOPES", "CREATED", "BY", "EXPIRES", "LAST USED")
            for t in tokens {
                let scopes = t.predatesScopes ? "all (made before scopes)" : t.scopes.sorted().map(\.rawValue).joined(separator: " ")
                table.add(t.name, scopes, time(t.createdMicros) ?? "-", t.createdBy, time(t.expiresMicros) ?? "never", time(t.lastUsedMicros) ?? "never")
            }
            Say.line(table.render())
        }
    }

    struct Revoke: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token: the API refuses it from the next request on.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String

        func run(site: Site) throws {
            try site.db.revokeAPIToken(name: name, operator: site.operatorName, nowMicros: AccessDatabase.nowMicros())
            if site.json { return Say.json(.object([("name", .string(name)), ("revoked", true)])) }
            Say.line("token \(name) revoked")
        }
    }
}
