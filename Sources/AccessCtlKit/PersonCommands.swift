import AccessCore
import AccessStore
import ArgumentParser

extension Role: ExpressibleByArgument {}
extension PersonStatus: ExpressibleByArgument {}

struct PersonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "person",
        abstract: "People bound to houses, with a role, a status and a validity window.",
        subcommands: [Add.self, Edit.self, Suspend.self, Resume.self, Blacklist.self, Remove.self, List.self, Show.self, QR.self]
    )

    struct Add: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a person to a house.",
            discussion: """
                Example: accessctl person add P-1502-1 --house B03-U2-1502 --role tenant --name 张伟 \
                --valid-until 2027-06-30 --card 10023456
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The stable person id.") var id: String
        @Option(help: "The house the person belongs to.") var house: String
        @Option(help: "owner, family, tenant, staff or visitor.") var role: Role
        @Option(help: "Display name.") var name = ""
        @Option(help: "Phone number (optional).") var phone = ""
        @Option(name: .customLong("valid-from"), help: "First valid day or date-time (default: now).") var validFrom: String?
        @Option(name: .customLong("valid-until"), help: "Last valid day (inclusive) or date-time (default: unbounded).") var validUntil: String?
        @Option(name: .customLong("group"), help: "Access group (repeatable); none: the defaults for the role and building.") var groups: [String] = []
        @Flag(name: .customLong("lives-alone"), help: "Flag for the 关爱独居老人 indicator.") var livesAlone = false
        @Option(name: .customLong("card"), help: "A card number to issue (repeatable).") var cards: [String] = []
        @Option(name: .customLong("plate"), help: "A licence plate to register (repeatable).") var plates: [String] = []

        func run(site: Site) throws {
            let person = Person(
                id: id, name: name, phone: phone,
                validFrom: try validFrom.map { try site.instant($0, option: "--valid-from") },
                validUntil: try validUntil.map { try site.instant($0, option: "--valid-until", until: true) },
                livesAlone: livesAlone, houses: [HouseBinding(houseID: house, role: role)], groups: groups
            )
            // Normalise first, so a bad card or plate refuses the whole command before anything is written.
            let credentials = try cards.map { Credential(kind: .card, value: try AccessDatabase.normalise(.card, $0), owner: .person(id)) }
                + plates.map { Credential(kind: .plate, value: try AccessDatabase.normalise(.plate, $0), owner: .person(id)) }
            // One transaction here, one change set in the fleet.
            try site.changeRoster { db in
                try db.transaction {
                    try db.addPerson(person, operator: site.operatorName)
                    for c in credentials { try db.addCredential(c, operator: site.operatorName) }
                }
            }
            try PersonCommand.show(id, site: site, verb: "added")
        }
    }

    struct Edit: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a person.",
            discussion: "An empty --valid-from or --valid-until removes that bound; --default-groups clears explicit groups."
        )
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        @Option(help: "Display name.") var name: String?
        @Option(help: "Phone number.") var phone: String?
        @Option(help: "Move the person to this house (their primary house).") var house: String?
        @Option(help: "The role in the primary house.") var role: Role?
        @Option(name: .customLong("add-house"), help: "Also bind to HOUSE:ROLE (repeatable).") var addHouses: [String] = []
        @Option(name: .customLong("remove-house"), help: "Unbind from a house (repeatable).") var removeHouses: [String] = []
        @Option(name: .customLong("valid-from")) var validFrom: String?
        @Option(name: .customLong("valid-until")) var validUntil: String?
        @Option(name: .customLong("group"), help: "Replace the explicit groups (repeatable).") var groups: [String] = []
        @Flag(name: .customLong("default-groups"), help: "Use the defaults for the role and building.") var defaultGroups = false
        @Option(name: .customLong("lives-alone"), help: "true or false.") var livesAlone: Bool?

        func run(site: Site) throws {
            let from = try validFrom.map { $0.isEmpty ? nil : try site.instant($0, option: "--valid-from") }
            let until = try validUntil.map { $0.isEmpty ? nil : try site.instant($0, option: "--valid-until", until: true) }
            var extra: [HouseBinding] = []
            for spec in addHouses {
                let parts = spec.split(separator: ":")
                guard parts.count == 2, let r = Role(rawValue: String(parts[1])) else {
                    throw ValidationError("--add-house: \"\(spec)\" is not HOUSE:ROLE (e.g. B01-U1-0301:family)")
                }
                extra.append(HouseBinding(houseID: String(parts[0]), role: r))
            }
            try site.changeRoster { db in try db.editPerson(id, operator: site.operatorName) { p in
                if let name { p.name = name }
                if let phone { p.phone = phone }
                if let from { p.validFrom = from }
                if let until { p.validUntil = until }
                if let livesAlone { p.livesAlone = livesAlone }
                if let house {
                    let keepRole = role ?? p.houses.first?.role ?? .owner
                    p.houses.removeAll { $0.houseID == house }
                    if p.houses.isEmpty { p.houses = [HouseBinding(houseID: house, role: keepRole)] } else { p.houses[0] = HouseBinding(houseID: house, role: keepRole) }
                } else if let role, !p.houses.isEmpty {
                    p.houses[0].role = role
                }
                for b in extra { p.houses.removeAll { $0.houseID == b.houseID }; p.houses.append(b) }
                p.houses.removeAll { removeHouses.contains($0.houseID) }
                if defaultGroups { p.groups = [] } else if !groups.isEmpty { p.groups = groups }
            } }
            try PersonCommand.show(id, site: site, verb: "updated")
        }
    }

    struct Suspend: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Suspend a person: every credential is refused with `suspended`.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run(site: Site) throws { try PersonCommand.setStatus(id, .suspended, action: "person.suspend", site: site) }
    }

    struct Resume: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Make a suspended or blacklisted person active again.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run(site: Site) throws { try PersonCommand.setStatus(id, .active, action: "person.resume", site: site) }
    }

    struct Blacklist: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Blacklist a person (布控): refused everywhere with an alarm.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run(site: Site) throws { try PersonCommand.setStatus(id, .blacklisted, action: "person.blacklist", site: site) }
    }

    struct Remove: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a person and their credentials (events stay).")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run(site: Site) throws {
            try site.changeRoster { db in try db.removePerson(id, operator: site.operatorName) }
            if site.json { Say.json(.object([("removed", .string(id))])) } else { Say.line("removed person \(id)") }
        }
    }

    struct List: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "List people.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only people of this house.") var house: String?
        @Option(help: "Only this status.") var status: PersonStatus?
        @Option(help: "At most this many.") var limit = 1000
        @Option(help: "Skip this many.") var offset = 0

        func run(site: Site) throws {
            let people = try site.db.people(house: house, status: status, limit: limit, offset: offset)
            if site.json {
                return Say.json(.array(try people.map { RosterJSON.person($0, credentials: try site.db.credentials(person: $0.id), zone: site.zone) }))
            }
            var table = TextTable("PERSON", "NAME", "HOUSE", "ROLE", "STATUS", "VALID UNTIL")
            for p in people {
                table.add(p.id, p.name, p.houses.first?.houseID ?? "", p.houses.first?.role.rawValue ?? "", p.status.rawValue,
                          site.formatBound(p.validUntil, until: true))
            }
            Say.line(table.render())
        }
    }

    struct Show: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Show a person with houses, groups and credentials.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        func run(site: Site) throws { try PersonCommand.show(id, site: site, verb: nil) }
    }

    struct QR: SiteCommand {
        static let configuration = CommandConfiguration(
            commandName: "qr",
            abstract: "Make a resident's short-lived QR code (valid 60 s), as the community app shows it.",
            discussion: """
                The code is signed with the community secret and verified offline at the gate; it opens what the \
                person's card would. API/resident-qr.md gives the algorithm, for a platform to make the same codes.
                Example: accessctl person qr P0001 --json
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The person id.") var id: String
        @Flag(help: "Draw dark modules (for a light terminal background).") var invert = false

        func run(site: Site) throws {
            guard try site.db.person(id) != nil else { throw RosterError.notFound(kind: "person", id: id) }
            let expires = Site.now() + ResidentQRCode.lifetimeSeconds
            let code = ResidentQRCode(secret: try site.db.passSecret()).encode(personID: id, expires: expires)
            if site.json {
                return Say.json(.object([("code", .string(code)), ("person_id", .string(id)),
                                         ("expires", .string(ISO8601.format(expires, zone: site.zone))),
                                         ("valid_seconds", .int(ResidentQRCode.lifetimeSeconds))]))
            }
            Say.line("person:   \(id)")
            Say.line("valid:    until \(site.format(expires)) (\(ResidentQRCode.lifetimeSeconds) s)")
            Say.line("code:     \(code)")
            if let qr = QRMatrix(text: code) { Console.current.out(qr.terminalText(inverted: invert)) }
        }
    }

    static func setStatus(_ id: String, _ status: PersonStatus, action: String, site: Site) throws {
        try site.changeRoster { db in try db.editPerson(id, action: action, operator: site.operatorName) { $0.status = status } }
        try show(id, site: site, verb: status.rawValue == "active" ? "resumed" : status.rawValue)
    }

    static func show(_ id: String, site: Site, verb: String?) throws {
        guard let p = try site.db.person(id) else { throw RosterError.notFound(kind: "person", id: id) }
        let credentials = try site.db.credentials(person: id)
        if site.json { return Say.json(RosterJSON.person(p, credentials: credentials, zone: site.zone)) }
        if let verb { return Say.line("\(verb) person \(id)") }
        Say.line("person \(p.id)  \(p.name)")
        Say.line("  status:   \(p.status.rawValue)")
        Say.line("  houses:   \(p.houses.map { "\($0.houseID) (\($0.role.rawValue))" }.joined(separator: ", "))")
        Say.line("  valid:    \(p.validFrom.map { site.format($0) } ?? "always") … \(p.validUntil.map { site.format($0) } ?? "no end")")
        Say.line("  groups:   \(p.groups.isEmpty ? "defaults for the role and building" : p.groups.joined(separator: ", "))")
        if !p.phone.isEmpty { Say.line("  phone:    \(p.phone)") }
        if p.livesAlone { Say.line("  lives alone (关爱独居老人)") }
        for c in credentials { Say.line("  \(c.kind.rawValue): \(c.kind == .pin ? "****" : c.value) (\(c.status.rawValue))") }
    }
}
