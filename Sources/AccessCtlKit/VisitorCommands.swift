import AccessCore
import AccessStore
import ArgumentParser

struct VisitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "visitor",
        abstract: "Visitor passes bound to a host house, with a window and a number of uses.",
        discussion: """
            A pass opens the community's shared portals and the host's building (or the portals given), \
            by QR code and, if a plate is given, by plate at the barrier. Entries use it up; exits do not.
            Example: accessctl visitor issue --house B01-U1-0301 --name 王芳 --plate 京B67890 --hours 4 --uses 2
            """,
        subcommands: [Issue.self, List.self, Show.self, Revoke.self]
    )

    struct Issue: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a pass and print its QR code.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The host house.") var house: String
        @Option(help: "The visitor's name.") var name: String
        @Option(help: "The visitor's phone (optional).") var phone = ""
        @Option(help: "The visitor's car, for the barrier.") var plate: String?
        @Option(help: "Valid from (default: now).") var from: String?
        @Option(help: "Valid until (a date means the whole day).") var until: String?
        @Option(help: "Valid for this many hours from the start (default 4, when no --until).") var hours: Int?
        @Option(help: "Number of entries allowed.") var uses = 1
        @Option(name: .customLong("portal"), help: "Only these portals (repeatable).") var portals: [String] = []
        @Flag(help: "Draw dark modules (for a light terminal background).") var invert = false

        func validate() throws {
            if until != nil && hours != nil { throw ValidationError("give --until or --hours, not both") }
            if let hours, !(1...24 * 366).contains(hours) { throw ValidationError("--hours must be 1…8784") }
        }

        func run(site: Site) throws {
            let start = try from.map { try site.instant($0, option: "--from") } ?? Site.now()
            let end = try until.map { try site.instant($0, option: "--until", until: true) } ?? start + Int64(hours ?? 4) * 3600
            let pass = try site.changeRoster { db in try db.issuePass(houseID: house, visitorName: name, phone: phone, plate: plate, validFrom: start,
                                             validUntil: end, maxUses: uses, portals: portals, operator: site.operatorName) }
            try VisitorCommand.print(pass, site: site, invert: invert, verb: "issued")
        }
    }

    struct List: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "List passes, newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this house's.") var house: String?
        @Flag(help: "Only passes still usable now.") var active = false
        @Option(help: "At most this many.") var limit = 100

        func run(site: Site) throws {
            let passes = try site.db.passes(house: house, activeAt: active ? Site.now() : nil, limit: limit)
            if site.json { return Say.json(.array(passes.map { RosterJSON.pass($0, zone: site.zone) })) }
            var table = TextTable("PASS", "HOUSE", "VISITOR", "PLATE", "UNTIL", "USES", "STATUS")
            for p in passes {
                table.add(p.id, p.houseID, p.visitorName, p.plate ?? "", site.format(p.validUntil), "\(p.uses)/\(p.maxUses)", p.status.rawValue)
            }
            Say.line(table.render())
        }
    }

    struct Show: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Show a pass and its QR code again.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        @Flag(help: "Draw dark modules (for a light terminal background).") var invert = false

        func run(site: Site) throws {
            guard let pass = try site.db.pass(id) else { throw RosterError.notFound(kind: "visitor pass", id: id) }
            try VisitorCommand.print(pass, site: site, invert: invert, verb: nil)
        }
    }

    struct Revoke: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a pass before it expires.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String

        func run(site: Site) throws {
            try site.changeRoster { db in try db.revokePass(id, operator: site.operatorName) }
            if site.json, let pass = try site.db.pass(id) { Say.json(RosterJSON.pass(pass, zone: site.zone)) } else { Say.line("revoked visitor pass \(id)") }
        }
    }

    static func print(_ pass: VisitorPass, site: Site, invert: Bool, verb: String?) throws {
        let code = VisitorPassCode(secret: try site.db.passSecret()).encode(passID: pass.id, expires: pass.validUntil)
        if site.json {
            guard case .object(var pairs) = RosterJSON.pass(pass, zone: site.zone) else { return }
            pairs.append(("qr", .string(code)))
            return Say.json(.object(pairs))
        }
        if let verb { Say.line("\(verb) visitor pass \(pass.id)") }
        Say.line("visitor:  \(pass.visitorName)\(pass.phone.isEmpty ? "" : "  \(pass.phone)")")
        Say.line("host:     \(pass.houseID)")
        if let plate = pass.plate { Say.line("plate:    \(plate)") }
        Say.line("valid:    \(site.format(pass.validFrom)) … \(site.format(pass.validUntil))")
        Say.line("uses:     \(pass.uses) of \(pass.maxUses)\(pass.status == .revoked ? "  (revoked)" : "")")
        Say.line("portals:  \(pass.portals.isEmpty ? "shared portals and the host's building" : pass.portals.joined(separator: ", "))")
        Say.line("code:     \(code)")
        if let qr = QRMatrix(text: code) { Console.current.out(qr.terminalText(inverted: invert)) }
    }
}
