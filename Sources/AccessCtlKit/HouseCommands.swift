import AccessCore
import AccessStore
import ArgumentParser

struct HouseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "house",
        abstract: "Dwellings (以房管人): community / building / unit / floor / room.",
        subcommands: [Add.self, Edit.self, Remove.self, List.self, Show.self]
    )

    struct Place: ParsableArguments {
        @Option(help: "Building, e.g. B03.") var building: String?
        @Option(help: "Unit within the building.") var unit: String?
        @Option(help: "Floor.") var floor: String?
        @Option(help: "Room number.") var room: String?
        @Option(help: "Parking spaces: at most this many of the house's cars inside at once, or none (no limit).")
        var parkingSpaces: String?

        /// nil: not given; `.some(nil)`: none.
        func spaces() throws -> Int?? {
            guard let text = parkingSpaces else { return nil }
            if text == "none" { return .some(nil) }
            guard let n = Int(text), (0...10_000).contains(n) else {
                throw ValidationError("--parking-spaces: \"\(text)\" is not a number of spaces (0-10000) or none")
            }
            return n
        }
    }

    struct Add: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Add a house.", discussion: "Example: accessctl house add B03-U2-1502 --building B03 --unit 2 --floor 15 --room 1502 --parking-spaces 1")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The stable house id, e.g. B03-U2-1502.") var id: String
        @OptionGroup var place: Place

        func run(site: Site) throws {
            guard let building = place.building else { throw ValidationError("--building is required") }
            let house = House(id: id, building: building, unit: place.unit ?? "", floor: place.floor ?? "", room: place.room ?? "",
                              parkingSpaces: try place.spaces() ?? nil)
            try site.changeRoster { db in try db.addHouse(house, operator: site.operatorName) }
            if site.json { Say.json(RosterJSON.house(house)) } else { Say.line("added house \(id)") }
        }
    }

    struct Edit: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Change a house's place.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String
        @OptionGroup var place: Place

        func run(site: Site) throws {
            let spaces = try place.spaces()
            try site.changeRoster { db in try db.editHouse(id, operator: site.operatorName) { house in
                if let v = spaces { house.parkingSpaces = v }
                if let v = place.building { house.building = v }
                if let v = place.unit { house.unit = v }
                if let v = place.floor { house.floor = v }
                if let v = place.room { house.room = v }
            } }
            let house = try site.db.house(id)
            if site.json, let house { Say.json(RosterJSON.house(house)) } else { Say.line("updated house \(id)") }
        }
    }

    struct Remove: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a house that nobody lives in any more.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String

        func run(site: Site) throws {
            try site.changeRoster { db in try db.removeHouse(id, operator: site.operatorName) }
            if site.json { Say.json(.object([("removed", .string(id))])) } else { Say.line("removed house \(id)") }
        }
    }

    struct List: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "List houses.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this building.") var building: String?
        @Option(help: "At most this many.") var limit = 1000
        @Option(help: "Skip this many.") var offset = 0

        func run(site: Site) throws {
            let houses = try site.db.houses(building: building, limit: limit, offset: offset)
            if site.json { return Say.json(.array(houses.map(RosterJSON.house))) }
            var table = TextTable("HOUSE", "BUILDING", "UNIT", "FLOOR", "ROOM")
            for h in houses { table.add(h.id, h.building, h.unit, h.floor, h.room) }
            Say.line(table.render())
        }
    }

    struct Show: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Show a house with its people, plates and visitor passes.")
        @OptionGroup var global: GlobalOptions
        @Argument var id: String

        func run(site: Site) throws {
            guard let house = try site.db.house(id) else { throw RosterError.notFound(kind: "house", id: id) }
            let people = try site.db.people(house: id)
            let plates = try site.db.credentials(house: id)
            let passes = try site.db.passes(house: id, limit: 20)
            if site.json {
                return Say.json(.object([
                    ("house", RosterJSON.house(house)),
                    ("people", .array(people.map { p in
                        .object([("id", .string(p.id)), ("name", .string(p.name)), ("role", .string(p.houses.first { $0.houseID == id }?.role.rawValue)),
                                 ("status", .string(p.status.rawValue))])
                    })),
                    ("plates", .array(plates.map(RosterJSON.credential))),
                    ("visitor_passes", .array(passes.map { RosterJSON.pass($0, zone: site.zone) })),
                ]))
            }
            Say.line("house \(house.id): building \(house.building), unit \(house.unit), floor \(house.floor), room \(house.room)"
                     + (house.parkingSpaces.map { ", \($0) parking space\($0 == 1 ? "" : "s")" } ?? ""))
            var table = TextTable("PERSON", "NAME", "ROLE", "STATUS")
            for p in people { table.add(p.id, p.name, p.houses.first { $0.houseID == id }?.role.rawValue ?? "", p.status.rawValue) }
            Say.line(table.render())
            for plate in plates { Say.line("household plate \(plate.value) (\(plate.status.rawValue))") }
            for pass in passes { Say.line("visitor pass \(pass.id): \(pass.visitorName), until \(site.format(pass.validUntil)), \(pass.uses)/\(pass.maxUses) uses, \(pass.status.rawValue)") }
        }
    }
}
