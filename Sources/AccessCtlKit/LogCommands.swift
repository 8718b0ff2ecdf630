import AccessCore
import AccessStore
import ArgumentParser
import Glibc

extension EventType: ExpressibleByArgument {}

struct EventsCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Query the event log (oldest first), page by serial, or follow it live.",
        discussion: """
            Examples:
              accessctl events --since 2026-11-01 --house B01-U1-0301
              accessctl events --after 1200 --limit 100 --json      # next page: --after next_after
              accessctl events --follow
            """
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only events after this serial (with --follow, default: from now on).") var after: Int64?
    @Option(help: "At most this many (1-10000).") var limit = 100
    @Option(help: "From this time (ISO 8601).") var since: String?
    @Option(help: "Before this time.") var until: String?
    @Option(help: "Only this portal.") var portal: String?
    @Option(help: "Only this house.") var house: String?
    @Option(help: "Only this person.") var person: String?
    @Option(help: "Only this type: access, door, barrier, fence, alarm, system, operator.") var type: EventType?
    @Flag(help: "Keep printing new events as they are recorded (Ctrl-C to stop).") var follow = false

    func validate() throws {
        if !(1...10_000).contains(limit) { throw ValidationError("--limit must be 1…10000") }
        if let after, after < 0 { throw ValidationError("--after must be a serial ≥ 0, not \(after)") }
    }

    func run(site: Site) throws {
        var query = EventQuery(after: after ?? 0, limit: limit)
        query.sinceMicros = try since.map { try site.instant($0, option: "--since") * 1_000_000 }
        query.untilMicros = try until.map { try site.instant($0, option: "--until") * 1_000_000 }
        query.portal = portal
        query.houseID = house
        query.personID = person
        query.type = type
        let controller = site.rules.controllerID
        if follow {
            // `--after 0` follows from the first event; no cursor at all means from now on.
            if after == nil && since == nil { query.after = try site.db.lastEventSerial() }
            while true {
                let page = try site.db.events(query)
                for e in page { print(e, site: site, controller: controller) }
                if let last = page.last { query.after = last.serial } else { usleep(200_000) }
            }
        }
        var page = try site.db.events({ var q = query; q.limit = limit + 1; return q }())
        let more = page.count > limit
        if more { page.removeLast() }
        let next = page.last?.serial ?? query.after
        if site.json {
            return Say.json(.object([("events", .array(page.map { $0.json(controllerID: controller) })), ("next_after", .int(next)), ("more", .bool(more))]))
        }
        if page.isEmpty { return Say.line("no events") }
        for e in page { print(e, site: site, controller: controller) }
        if more { Say.line("… more: --after \(next)") }
    }

    func print(_ e: AccessEvent, site: Site, controller: String) {
        if site.json { return Say.json(e.json(controllerID: controller)) }
        let time = ISO8601.format(micros: e.timeMicros, zone: .fixed(offsetSeconds: e.utcOffset)).prefix(19)
        let outcome = e.granted.map { $0 ? "granted" : "denied" }
        let credential = [e.credentialKind?.rawValue, e.credential].compactMap { $0 }.joined(separator: " ")
        let who = [e.personID, e.houseID, e.role?.rawValue].compactMap { $0 }.joined(separator: " ")
        let parts = [String(e.serial), String(time), e.type.rawValue, e.portal, outcome, e.reason?.rawValue, credential, who]
        Say.line(parts.compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "  "))
    }
}

struct AuditCommand: SiteCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Who changed what, and when: every roster and door command.",
        discussion: "Example: accessctl audit --since 2026-11-01 --by alice   (--by: the Unix user who made the change)"
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "Only entries after this id.") var after: Int64 = 0
    @Option(help: "From this time (ISO 8601).") var since: String?
    @Option(help: "Before this time.") var until: String?
    @Option(name: .customLong("by"), help: "Only this operator.") var by: String?
    @Option(help: "Only changes to this id (person, house, card …).") var target: String?
    @Option(help: "At most this many.") var limit = 100
    @Flag(help: "Show the before and after records.") var verbose = false

    func run(site: Site) throws {
        let entries = try site.db.audit(after: after, since: try since.map { try site.instant($0, option: "--since") * 1_000_000 },
                                        until: try until.map { try site.instant($0, option: "--until") * 1_000_000 },
                                        operator: by, target: target, limit: limit)
        if site.json { return Say.json(.array(entries.map { $0.json(zone: site.zone) })) }
        if entries.isEmpty { return Say.line("no audit entries") }
        for a in entries {
            Say.line("\(a.id)  \(ISO8601.format(micros: a.timeMicros, zone: site.zone).prefix(19))  \(OperatorIdentity(user: a.operator, note: a.note).recorded)  \(a.action)  \(a.target)")
            if verbose {
                if let before = a.before { Say.line("    before: \(before)") }
                if let after = a.after { Say.line("    after:  \(after)") }
            }
        }
    }
}

struct DatabaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "The database file: what it holds, a full consistency check, and the logs' hash chains.",
        subcommands: [Info.self, Check.self, Verify.self]
    )

    struct Info: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Schema version, counts and roster generation.")
        @OptionGroup var global: GlobalOptions
        func run(site: Site) throws {
            let counts = try site.db.tableCounts()
            let info: [(String, JSON)] = [
                ("path", .string(site.db.path)), ("schema_version", .int(AccessDatabase.schemaVersion)),
                ("controller_id", .string(site.rules.controllerID)), ("time_zone", .string(site.zone.identifier)),
                ("roster_generation", .int(try site.db.rosterGeneration())), ("last_event_serial", .int(try site.db.lastEventSerial())),
            ] + counts.map { ($0.table, JSON.int($0.rows)) }
            if site.json { return Say.json(.object(info)) }
            for (k, v) in info { Say.line("\(k): \(v.rendered().trimming(charactersIn: "\""))") }
        }
    }

    struct Check: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Run SQLite's integrity check over the whole file.")
        @OptionGroup var global: GlobalOptions
        func run(site: Site) throws {
            try site.db.integrityCheck()
            if site.json { Say.json(.object([("ok", .bool(true))])) } else { Say.line("ok: \(site.db.path) is intact") }
        }
    }

    struct Verify: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the event and audit logs' hash chains: exit 0 when intact, 1 naming the first serial deleted, altered or reordered.",
            discussion: """
                Every hash is recomputed from what is stored. Events removed by retention are not a break: the
                kept log's chain starts where retention left it. Entries stored before the chain existed are
                counted as unchained.
                """)
        @OptionGroup var global: GlobalOptions
        func run(site: Site) throws {
            let reports = [try site.db.verifyEventChain(), try site.db.verifyAuditChain()]
            let intact = reports.allSatisfy(\.isIntact)
            if site.json {
                Say.json(.object([("ok", .bool(intact))] + reports.map { ($0.log, $0.json) }))
            } else {
                for r in reports {
                    let unchained = r.unchained > 0 ? " (\(r.unchained) from before the chain)" : ""
                    Say.line("\(r.log): \(r.firstBreak.map { "BROKEN at \($0)" } ?? "intact"), \(r.checked) checked\(unchained)")
                }
            }
            if let broken = reports.first(where: { !$0.isIntact }), let first = broken.firstBreak {
                throw CLIError("\(broken.log == "events" ? "event" : "audit") chain broken: \(first)")
            }
        }
    }
}
