import AccessCore
import AccessStore
import ArgumentParser

/// What differs between the card, PIN and plate command families.
protocol CredentialKindTag {
    static var kind: CredentialKind { get }
    static var abstract: String { get }
    static var example: String { get }
    static var houseOwned: Bool { get }
}

enum CardTag: CredentialKindTag {
    static let kind = CredentialKind.card
    static let abstract = "Cards (Wiegand numbers, decimal)."
    static let example = "accessctl card add 10023456 --person P-1502-1"
    static let houseOwned = false
}

enum PinTag: CredentialKindTag {
    static let kind = CredentialKind.pin
    static let abstract = "Keypad PINs (4-8 digits; never printed)."
    static let example = "accessctl pin add 482913 --person P-1502-1"
    static let houseOwned = false
}

enum PlateTag: CredentialKindTag {
    static let kind = CredentialKind.plate
    static let abstract = "Licence plates for barrier lanes (a person's or a household's)."
    static let example = "accessctl plate add 京A12345 --house B03-U2-1502"
    static let houseOwned = true
}

typealias CardCommand = CredentialCommand<CardTag>
typealias PinCommand = CredentialCommand<PinTag>
typealias PlateCommand = CredentialCommand<PlateTag>

struct CredentialCommand<Tag: CredentialKindTag>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: Tag.kind.rawValue, abstract: Tag.abstract, discussion: "Example: \(Tag.example)",
            subcommands: [Add.self, Revoke.self, Resume.self, Blacklist.self, Remove.self, List.self, Show.self]
        )
    }

    static func label(_ value: String) -> String { Tag.kind == .pin ? "****" : value }

    static func report(_ value: String, _ verb: String, site: Site) throws {
        let normal = try site.db.storedValue(Tag.kind, value)
        if site.json {
            if let c = try site.db.credential(kind: Tag.kind, value: normal) { Say.json(RosterJSON.credential(c)) } else { Say.json(.object([(verb, .string(label(normal)))])) }
        } else {
            Say.line("\(verb) \(Tag.kind.rawValue) \(label(normal))")
        }
    }

    struct Add: SiteCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(abstract: "Give a \(Tag.kind.rawValue) to a person\(Tag.houseOwned ? " or a household" : "").", discussion: "Example: \(Tag.example)")
        }
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The value.") var value: String
        @Option(help: "The person it belongs to.") var person: String?
        @Option(help: "The household it belongs to (plates only).") var house: String?
        @Option(help: "A note (e.g. the car's make).") var note = ""
        @Flag(help: "A duress PIN: it opens as usual and raises a silent duress alarm (PINs only).") var duress = false

        func validate() throws {
            if (person == nil) == (house == nil) { throw ValidationError("give exactly one of --person or --house") }
            if house != nil && !Tag.houseOwned { throw ValidationError("--house is for plates only") }
            if duress && Tag.kind != .pin { throw ValidationError("--duress is for PINs only") }
        }

        func run(site: Site) throws {
            let owner: CredentialOwner = person.map(CredentialOwner.person) ?? house.map(CredentialOwner.house) ?? .none
            let credential = Credential(kind: Tag.kind, value: value, owner: owner, note: note, duress: duress)
            try site.changeRoster { db in try db.addCredential(credential, operator: site.operatorName) }
            try CredentialCommand.report(value, "added", site: site)
        }
    }

    struct Revoke: SiteCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Revoke a \(Tag.kind.rawValue) without deleting its owner.") }
        @OptionGroup var global: GlobalOptions
        @Argument var value: String
        @Flag(help: "Record it as lost rather than revoked.") var lost = false

        func run(site: Site) throws {
            try site.changeRoster { db in try db.setCredentialStatus(kind: Tag.kind, value: value, status: lost ? .lost : .revoked, operator: site.operatorName) }
            try CredentialCommand.report(value, lost ? "lost" : "revoked", site: site)
        }
    }

    struct Resume: SiteCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Make a revoked, lost or blacklisted \(Tag.kind.rawValue) active again.") }
        @OptionGroup var global: GlobalOptions
        @Argument var value: String

        func run(site: Site) throws {
            try site.changeRoster { db in try db.setCredentialStatus(kind: Tag.kind, value: value, status: .active, operator: site.operatorName) }
            try CredentialCommand.report(value, "resumed", site: site)
        }
    }

    struct Blacklist: SiteCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(abstract: "Blacklist a \(Tag.kind.rawValue) (布控): refused with an alarm, even if nobody owns it.")
        }
        @OptionGroup var global: GlobalOptions
        @Argument var value: String
        @Option(help: "Why (recorded with it).") var note: String?

        func run(site: Site) throws {
            try site.changeRoster { db in try db.setCredentialStatus(kind: Tag.kind, value: value, status: .blacklisted, note: note, operator: site.operatorName) }
            try CredentialCommand.report(value, "blacklisted", site: site)
        }
    }

    struct Remove: SiteCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Delete a \(Tag.kind.rawValue).") }
        @OptionGroup var global: GlobalOptions
        @Argument var value: String

        func run(site: Site) throws {
            try site.changeRoster { db in try db.removeCredential(kind: Tag.kind, value: value, operator: site.operatorName) }
            try CredentialCommand.report(value, "removed", site: site)
        }
    }

    struct List: SiteCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "List \(Tag.kind.rawValue)s.") }
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this person's.") var person: String?
        @Option(help: "Only this household's.") var house: String?
        @Option(help: "At most this many.") var limit = 1000
        @Option(help: "Skip this many.") var offset = 0

        func run(site: Site) throws {
            let list = try site.db.credentials(kind: Tag.kind, person: person, house: house, limit: limit, offset: offset)
            if site.json { return Say.json(.array(list.map(RosterJSON.credential))) }
            var table = TextTable(Tag.kind.rawValue.uppercased(), "OWNER", "STATUS", "NOTE")
            for c in list { table.add(CredentialCommand.label(c.value), AccessDatabase.describeOwner(c.owner), c.status.rawValue, c.note) }
            Say.line(table.render())
        }
    }

    struct Show: SiteCommand {
        static var configuration: CommandConfiguration { CommandConfiguration(abstract: "Show who a \(Tag.kind.rawValue) belongs to and its status.") }
        @OptionGroup var global: GlobalOptions
        @Argument var value: String

        func run(site: Site) throws {
            let normal = try site.db.storedValue(Tag.kind, value)
            guard let c = try site.db.credential(kind: Tag.kind, value: normal) else {
                throw RosterError.notFound(kind: Tag.kind.rawValue, id: CredentialCommand.label(normal))
            }
            if site.json { return Say.json(RosterJSON.credential(c)) }
            Say.line("\(Tag.kind.rawValue) \(CredentialCommand.label(c.value)): \(c.status.rawValue), belongs to \(AccessDatabase.describeOwner(c.owner))\(c.note.isEmpty ? "" : " (\(c.note))")")
        }
    }
}
