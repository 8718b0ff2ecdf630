import AccessCore
import AccessStore
import ArgumentParser

struct GroupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "Access groups: which portals, and when (a schedule).",
        subcommands: [Add.self, Edit.self, Remove.self, List.self, Show.self]
    )

    struct Add: SiteCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a group.",
            discussion: "Example: accessctl group add cleaners --portal gate-north-in --portal b01-door --schedule workdays"
        )
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Option(name: .customLong("portal"), help: "A portal the group opens (repeatable).") var portals: [String] = []
        @Option(help: "Restrict the group to a schedule.") var schedule: String?

        func run(site: Site) throws {
            guard !portals.isEmpty else { throw ValidationError("give at least one --portal") }
            try site.changeRoster { db in try db.saveGroup(AccessGroup(name: name, portals: portals, schedule: schedule), isNew: true, operator: site.operatorName) }
            try GroupCommand.show(name, site: site, verb: "added")
        }
    }

    struct Edit: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Change a group's portals or schedule.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Option(name: .customLong("add-portal"), help: "Add a portal (repeatable).") var add: [String] = []
        @Option(name: .customLong("remove-portal"), help: "Remove a portal (repeatable).") var remove: [String] = []
        @Option(help: "Set the schedule.") var schedule: String?
        @Flag(name: .customLong("no-schedule"), help: "Allow at all times.") var noSchedule = false

        func run(site: Site) throws {
            guard var group = try site.db.group(name) else { throw RosterError.notFound(kind: "group", id: name) }
            group.portals = Array(Set(group.portals).union(add).subtracting(remove)).sorted()
            if noSchedule { group.schedule = nil } else if let schedule { group.schedule = schedule }
            try site.changeRoster { db in try db.saveGroup(group, isNew: false, operator: site.operatorName) }
            try GroupCommand.show(name, site: site, verb: "updated")
        }
    }

    struct Remove: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a group nobody belongs to.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        func run(site: Site) throws {
            try site.changeRoster { db in try db.removeGroup(name, operator: site.operatorName) }
            if site.json { Say.json(.object([("removed", .string(name))])) } else { Say.line("removed group \(name)") }
        }
    }

    struct List: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "List groups.")
        @OptionGroup var global: GlobalOptions
        func run(site: Site) throws {
            let groups = try site.db.groups()
            if site.json { return Say.json(.array(groups.map(RosterJSON.group))) }
            var table = TextTable("GROUP", "SCHEDULE", "PORTALS")
            for g in groups { table.add(g.name, g.schedule ?? "always", g.portals.joined(separator: " ")) }
            Say.line(table.render())
        }
    }

    struct Show: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Show a group.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        func run(site: Site) throws { try GroupCommand.show(name, site: site, verb: nil) }
    }

    static func show(_ name: String, site: Site, verb: String?) throws {
        guard let g = try site.db.group(name) else { throw RosterError.notFound(kind: "group", id: name) }
        if site.json { return Say.json(RosterJSON.group(g)) }
        if let verb { return Say.line("\(verb) group \(name)") }
        Say.line("group \(g.name): \(g.portals.joined(separator: ", ")); schedule: \(g.schedule ?? "always")")
    }
}

struct ScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Week plans (up to 8 segments a day), holidays and dated exceptions, in the community's time zone.",
        discussion: """
            Segments are DAYS HH:MM-HH:MM with the end exclusive; DAYS is mon…sun, a range (mon-fri), \
            a list (sat,sun), daily, or hol for holidays. Example:
              accessctl schedule add workdays --segment "mon-fri 07:00-19:00" --segment "sat 09:00-12:00"
              accessctl schedule holiday add workdays 2026-10-01
            """,
        subcommands: [Add.self, Edit.self, Remove.self, List.self, Show.self, Holiday.self, Exception.self]
    )

    struct Add: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Create a schedule.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Option(name: .customLong("segment"), help: "DAYS HH:MM-HH:MM (repeatable).") var segments: [String] = []

        func run(site: Site) throws {
            guard !segments.isEmpty else { throw ValidationError("give at least one --segment") }
            try site.changeRoster { db in try db.saveSchedule(try Schedule(name: name, specs: segments), isNew: true, operator: site.operatorName) }
            try ScheduleCommand.show(name, site: site, verb: "added")
        }
    }

    struct Edit: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Replace a schedule's segments (holidays and exceptions are kept).")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        @Option(name: .customLong("segment"), help: "DAYS HH:MM-HH:MM (repeatable).") var segments: [String] = []

        func run(site: Site) throws {
            guard let old = try site.db.schedule(name) else { throw RosterError.notFound(kind: "schedule", id: name) }
            var schedule = try Schedule(name: name, specs: segments)
            schedule.holidays = old.holidays
            schedule.exceptions = old.exceptions
            try site.changeRoster { db in try db.saveSchedule(schedule, isNew: false, operator: site.operatorName) }
            try ScheduleCommand.show(name, site: site, verb: "updated")
        }
    }

    struct Remove: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a schedule no group uses.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        func run(site: Site) throws {
            try site.changeRoster { db in try db.removeSchedule(name, operator: site.operatorName) }
            if site.json { Say.json(.object([("removed", .string(name))])) } else { Say.line("removed schedule \(name)") }
        }
    }

    struct List: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "List schedules.")
        @OptionGroup var global: GlobalOptions
        func run(site: Site) throws {
            let schedules = try site.db.schedules()
            if site.json { return Say.json(.array(schedules.map(RosterJSON.schedule))) }
            var table = TextTable("SCHEDULE", "SEGMENTS", "HOLIDAYS", "EXCEPTIONS")
            for s in schedules { table.add(s.name, s.specs.joined(separator: "; "), String(s.holidays.count), String(s.exceptions.count)) }
            Say.line(table.render())
        }
    }

    struct Show: SiteCommand {
        static let configuration = CommandConfiguration(abstract: "Show a schedule.")
        @OptionGroup var global: GlobalOptions
        @Argument var name: String
        func run(site: Site) throws { try ScheduleCommand.show(name, site: site, verb: nil) }
    }

    struct Holiday: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Holiday dates: the schedule's `hol` segments apply (none: closed).",
            subcommands: [DateAdd.self, DateRemove.self]
        )
        struct DateAdd: SiteCommand {
            static let configuration = CommandConfiguration(commandName: "add", abstract: "Mark a date as a holiday.")
            @OptionGroup var global: GlobalOptions
            @Argument var name: String
            @Argument(help: "YYYY-MM-DD") var date: String
            func run(site: Site) throws {
                let day = try ScheduleCommand.date(date)
                try ScheduleCommand.change(name, site: site) { $0.holidays.insert(day) }
            }
        }
        struct DateRemove: SiteCommand {
            static let configuration = CommandConfiguration(commandName: "remove", abstract: "Unmark a holiday.")
            @OptionGroup var global: GlobalOptions
            @Argument var name: String
            @Argument(help: "YYYY-MM-DD") var date: String
            func run(site: Site) throws {
                let day = try ScheduleCommand.date(date)
                try ScheduleCommand.change(name, site: site) { $0.holidays.remove(day) }
            }
        }
    }

    struct Exception: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Dated exceptions that replace the plan for one day.",
            subcommands: [DateAdd.self, DateRemove.self]
        )
        struct DateAdd: SiteCommand {
            static let configuration = CommandConfiguration(
                commandName: "add", abstract: "Set the plan for one date; with no --segment the day is closed.",
                discussion: "Example: accessctl schedule exception add workdays 2026-12-24 --segment 07:00-12:00"
            )
            @OptionGroup var global: GlobalOptions
            @Argument var name: String
            @Argument(help: "YYYY-MM-DD") var date: String
            @Option(name: .customLong("segment"), help: "HH:MM-HH:MM (repeatable).") var segments: [String] = []
            func run(site: Site) throws {
                let day = try ScheduleCommand.date(date)
                let ranges = try segments.map { try MinuteRange.parse(Substring($0)) }.sorted()
                guard ranges.count <= Schedule.maxSegmentsPerDay else {
                    throw ScheduleError.tooManySegments(day: date, count: ranges.count)
                }
                for (a, b) in zip(ranges, ranges.dropFirst()) where b.start < a.end {
                    throw ScheduleError.overlapping(day: date, a.description, b.description)
                }
                try ScheduleCommand.change(name, site: site) { $0.exceptions[day] = ranges }
            }
        }
        struct DateRemove: SiteCommand {
            static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a dated exception.")
            @OptionGroup var global: GlobalOptions
            @Argument var name: String
            @Argument(help: "YYYY-MM-DD") var date: String
            func run(site: Site) throws {
                let day = try ScheduleCommand.date(date)
                try ScheduleCommand.change(name, site: site) { $0.exceptions[day] = nil }
            }
        }
    }

    static func date(_ text: String) throws -> CivilDate {
        guard let date = CivilDate(iso: text) else { throw ValidationError("\"\(text)\" is not a date (YYYY-MM-DD)") }
        return date
    }

    static func change(_ name: String, site: Site, _ body: (inout Schedule) -> Void) throws {
        guard var schedule = try site.db.schedule(name) else { throw RosterError.notFound(kind: "schedule", id: name) }
        body(&schedule)
        try site.changeRoster { db in try db.saveSchedule(schedule, isNew: false, operator: site.operatorName) }
        try show(name, site: site, verb: "updated")
    }

    static func show(_ name: String, site: Site, verb: String?) throws {
        guard let s = try site.db.schedule(name) else { throw RosterError.notFound(kind: "schedule", id: name) }
        if site.json { return Say.json(RosterJSON.schedule(s)) }
        if let verb { return Say.line("\(verb) schedule \(name)") }
        Say.line("schedule \(s.name) (\(site.zone.identifier))")
        for spec in s.specs { Say.line("  \(spec)") }
        if !s.holidays.isEmpty { Say.line("  holidays: \(s.holidays.sorted().map(\.description).joined(separator: ", "))") }
        for (date, ranges) in s.exceptions.sorted(by: { $0.key < $1.key }) {
            Say.line("  \(date): \(ranges.isEmpty ? "closed" : ranges.map(\.description).joined(separator: ", "))")
        }
    }
}
