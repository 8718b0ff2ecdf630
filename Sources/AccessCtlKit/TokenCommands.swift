import AccessCore
import AccessStore
import ArgumentParser

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Bearer tokens for the upstream HTTP API (only a hash is stored).",
        discussion: """
            Examples:
              accessctl token add platform --json      prints {"name": "platform", "token": "cat_…"} once
              accessctl token list
              accessctl token revoke platform
            """,
        subcommands: [Add.self, List.self, Revoke.self]
    )

    struct Add: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Make a token; it is printed once and never again.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "A name for whoever uses it, e.g. platform.") var name: String

        func run(site: Site) throws {
            let token = try site.db.addAPIToken(name: name, operator: site.operatorName, nowMicros: AccessDatabase.nowMicros())
            if site.json { return Say.json(.object([("name", .string(name)), ("token", .string(token))])) }
            Say.line(token)
            Say.warn("token \(name): keep it now, it cannot be shown again")
        }
    }

    struct List: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Tokens by name and when they were made (never their values).")
        @OptionGroup var global: GlobalOptions

        func run(site: Site) throws {
            let tokens = try site.db.apiTokens()
            let zone = site.rules.zone
            if site.json {
                return Say.json(.array(tokens.map { t in
                    .object([("name", .string(t.name)), ("created", .string(ISO8601.format(micros: t.createdMicros, zone: zone))),
                             ("created_by", .string(t.createdBy))])
                }))
            }
            var table = TextTable("NAME", "CREATED", "BY")
            for t in tokens { table.add(t.name, ISO8601.format(micros: t.createdMicros, zone: zone), t.createdBy) }
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
