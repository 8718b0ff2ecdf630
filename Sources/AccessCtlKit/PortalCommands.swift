import AccessCore
import AccessStore
import ArgumentParser

extension PortalMode: ExpressibleByArgument {}

struct PortalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portal",
        abstract: "Doors, barrier lanes and fence zones from the site description.",
        subcommands: [List.self, Mode.self]
    )

    struct List: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "List portals with their mode and reader names.")
        @OptionGroup var global: GlobalOptions

        func run(site: Site) throws {
            let portals = site.rules.portals
            if site.json {
                return Say.json(.array(try portals.map { p in
                    let mode = try site.db.portalMode(p.id)
                    return .object([
                        ("id", .string(p.id)), ("kind", .string(p.kind.rawValue)), ("direction", .string(p.direction.rawValue)),
                        ("building", .string(p.building)), ("from_area", .string(p.fromArea)), ("to_area", .string(p.toArea)),
                        ("state", .object([("mode", .string(mode.rawValue))])), ("readers", .strings(p.readers)),
                    ])
                }))
            }
            var table = TextTable("PORTAL", "KIND", "DIRECTION", "AREAS", "BUILDING", "MODE", "READERS")
            for p in portals {
                table.add(p.id, p.kind.rawValue, p.direction.rawValue, "\(p.fromArea) → \(p.toArea)", p.building,
                          try site.db.portalMode(p.id).rawValue, p.readers.joined(separator: " "))
            }
            Say.line(table.render())
        }
    }

    struct Mode: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a portal's standing mode: normal, always-open or always-closed.",
            discussion: "In always-closed every credential is refused with portal_locked. Example: accessctl portal mode b01-door always-closed"
        )
        @OptionGroup var global: GlobalOptions
        @Argument var portal: String
        @Argument var mode: PortalMode

        func run(site: Site) throws {
            guard site.rules.portal(portal) != nil else { throw DecisionError.unknownPortal(portal) }
            try site.db.setPortalMode(portal, mode, operator: site.operatorName)
            if site.json { Say.json(.object([("portal", .string(portal)), ("mode", .string(mode.rawValue))])) } else { Say.line("portal \(portal) is now \(mode.rawValue)") }
        }
    }
}
