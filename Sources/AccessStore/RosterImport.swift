import AccessCore

/// How an import runs.
public struct ImportOptions: Sendable {
    /// The file name used in error messages (`FILE:LINE: column: problem`).
    public var fileName: String
    public var zone: ZoneRules
    public var dryRun = false
    /// Also remove people absent from the file.
    public var replace = false
    public var `operator`: String
    /// At most this many problems are listed; the count of the rest is given.
    public var maxListedProblems = 200

    public init(fileName: String, zone: ZoneRules, operator: String, dryRun: Bool = false, replace: Bool = false) {
        self.fileName = fileName
        self.zone = zone
        self.operator = `operator`
        self.dryRun = dryRun
        self.replace = replace
    }
}

/// What an import did (or, in a dry run, would do).
public struct ImportReport: Hashable, Sendable {
    public var rows = 0
    public var added: [String] = []
    public var updated: [String] = []
    public var unchanged = 0
    public var removed: [String] = []
    public var housesAdded: [String] = []
    public var housesUpdated: [String] = []
    public var dryRun = false
}

/// The import was refused; nothing changed. `problems` are formatted `FILE:LINE: column: problem`.
public struct ImportError: Error, Hashable, Sendable, CustomStringConvertible {
    public var problems: [String]
    public var unlisted: Int

    public var description: String {
        var lines = problems
        if unlisted > 0 { lines.append("… and \(unlisted) more problem(s)") }
        lines.append("import refused: \(problems.count + unlisted) problem(s); nothing was changed")
        return lines.joined(separator: "\n")
    }
}

extension AccessDatabase {
    /// Imports a roster CSV: an upsert by `person_id`, all rows or none.
    ///
    /// Rows are streamed into one transaction; any problem rolls everything back and every
    /// problem found is reported. `progress` is called now and then with the bytes read so far.
    public func importRoster(_ reader: inout CSVReader, options: ImportOptions, progress: ((Int) -> Void)? = nil) throws -> ImportReport {
        var run = ImportRun(db: self, options: options)
        // One large transaction: a 32 MiB page cache keeps it from spilling pages to the WAL
        // half-way (SQLite's default is 2 MiB). Back to the default afterwards.
        try connection.execute("PRAGMA cache_size = -32768")
        defer { try? connection.execute("PRAGMA cache_size = -2000") }
        // One transaction (a savepoint inside the fleet's change capture); a dry run rolls back.
        do {
            return try connection.transaction {
                try run.readAll(&reader, progress: progress)
                if !run.problems.isEmpty {
                    throw ImportError(problems: run.problems.sorted { $0.line < $1.line }.map { $0.described(file: options.fileName) },
                                      unlisted: run.unlisted)
                }
                run.report.dryRun = options.dryRun
                if options.dryRun { throw DryRunRollback(report: run.report) }
                let r = run.report
                try appendAudit(operator: options.operator, action: "import", target: options.fileName, before: nil, after: .object([
                    ("rows", .int(r.rows)), ("added", .int(r.added.count)), ("updated", .int(r.updated.count)),
                    ("unchanged", .int(r.unchanged)), ("removed", .int(r.removed.count)), ("houses_added", .int(r.housesAdded.count)),
                    ("replace", .bool(options.replace)),
                ]))
                try bumpRosterGeneration()
                return run.report
            }
        } catch let dryRun as DryRunRollback {
            return dryRun.report
        }
    }
}

/// Ends a dry run's transaction by rolling it back, with what it would have done.
private struct DryRunRollback: Error {
    var report: ImportReport
}

/// The state of one import while it streams.
struct ImportRun {
    let db: AccessDatabase
    let options: ImportOptions
    var report = ImportReport()
    var problems: [RosterIssue] = []
    var unlisted = 0
    var knownGroups: Set<String> = []
    var houses: [String: House] = [:]
    /// Person id → line, for duplicates and for credentials moved between people.
    var seenPeople: [String: Int] = [:]
    var cardsInFile: [String: Int] = [:]
    var platesInFile: [String: Int] = [:]
    /// Credentials taken from a person later in the file (or absent from it): checked at the end.
    var moved: [(kind: CredentialKind, value: String, from: String, line: Int)] = []

    init(db: AccessDatabase, options: ImportOptions) {
        self.db = db
        self.options = options
    }

    mutating func problem(_ line: Int, _ column: String, _ text: String) {
        if problems.count < options.maxListedProblems {
            problems.append(RosterIssue(line: line, column: column, problem: text))
        } else {
            unlisted += 1
        }
    }

    mutating func readAll(_ reader: inout CSVReader, progress: ((Int) -> Void)?) throws {
        let first: CSVRecord?
        do {
            first = try reader.next()
        } catch {
            // A header that cannot be read (not UTF-8, an open quote) is a problem of the file.
            problem(error.line, "header", error.description)
            return
        }
        guard let header = first else {
            problem(1, "header", "the file is empty (expected a header row)")
            return
        }
        let schema: RosterCSVSchema
        do {
            schema = try RosterCSVSchema(header: header, zone: options.zone)
        } catch {
            problems.append(error)
            return
        }
        knownGroups = Set(try db.groups().map(\.name))
        for house in try db.houses() { houses[house.id] = house }

        while true {
            let record: CSVRecord
            do {
                guard let next = try reader.next() else { break }
                record = next
            } catch {
                problem(error.line, "row", error.description)
                break  // the rest of the file cannot be framed reliably
            }
            report.rows += 1
            switch schema.row(record) {
            case .failure(let issues):
                for issue in issues.issues { problem(issue.line, issue.column, issue.problem) }
                // Still note the person, so duplicates and --replace see it.
                if let index = schema.columns.firstIndex(of: .personID), index < record.fields.count {
                    seenPeople[record.fields[index].trimmingSpaces] = record.line
                }
            case .success(let row):
                try apply(row)
            }
            if report.rows % 2000 == 0 { progress?(reader.bytesConsumed) }
        }
        progress?(reader.bytesConsumed)
        try finish()
    }

    mutating func apply(_ row: RosterRow) throws {
        if let first = seenPeople[row.personID] {
            return problem(row.line, "person_id", "\"\(row.personID)\" is already on line \(first)")
        }
        seenPeople[row.personID] = row.line

        // The house: created the first time it appears, updated when the row says otherwise.
        if var house = houses[row.houseID] {
            let before = house
            if let v = row.building, !v.isEmpty { house.building = v }
            if let v = row.unit { house.unit = v }
            if let v = row.floor { house.floor = v }
            if let v = row.room { house.room = v }
            if let v = row.parkingSpaces { house.parkingSpaces = v }
            if house != before {
                try db.saveHouse(house)
                try db.appendAudit(operator: options.operator, action: "house.edit", target: house.id,
                                   before: RosterJSON.house(before), after: RosterJSON.house(house))
                houses[house.id] = house
                report.housesUpdated.append(house.id)
            }
        } else {
            guard let building = row.building, !building.isEmpty else {
                return problem(row.line, "building", "house \"\(row.houseID)\" is new, so its building is required")
            }
            let house = House(id: row.houseID, building: building, unit: row.unit ?? "", floor: row.floor ?? "", room: row.room ?? "",
                              parkingSpaces: row.parkingSpaces ?? nil)
            try db.saveHouse(house)
            try db.appendAudit(operator: options.operator, action: "house.add", target: house.id, before: nil, after: RosterJSON.house(house))
            houses[house.id] = house
            report.housesAdded.append(house.id)
        }

        for group in row.groups ?? [] where !knownGroups.contains(group) {
            problem(row.line, "groups", "no group \"\(group)\" (create it with `accessctl group add`)")
        }

        let existing = try db.person(row.personID)
        let existingCredentials = existing == nil ? [] : try db.credentials(person: row.personID)
        var person = existing ?? Person(id: row.personID, houses: [])
        let role = row.role ?? existing?.houses.first { $0.houseID == row.houseID }?.role ?? existing?.houses.first?.role
        guard let role else { return problem(row.line, "role", "is required for a new person") }
        person.houses = [HouseBinding(houseID: row.houseID, role: role)]
        if let v = row.name { person.name = v }
        if let v = row.phone { person.phone = v }
        if let v = row.status { person.status = v }
        if let v = row.validFrom { person.validFrom = v }
        if let v = row.validUntil { person.validUntil = v }
        if let v = row.groups { person.groups = v.sorted() }
        if let from = person.validFrom, let until = person.validUntil, from >= until {
            return problem(row.line, "valid_until", "is not after valid_from")
        }

        var credentials = existingCredentials
        if let cards = row.cards {
            credentials = try claim(.card, cards.map { String($0) }, for: row.personID, line: row.line, current: credentials)
        }
        if let plates = row.plates {
            credentials = try claim(.plate, plates, for: row.personID, line: row.line, current: credentials)
        }
        guard problems.isEmpty else { return }  // later writes could only add confusing errors

        let before = existing.map { RosterJSON.person($0, credentials: existingCredentials) }
        let after = RosterJSON.person(person, credentials: credentials)
        if before == after {
            report.unchanged += 1
            return
        }
        try db.savePerson(person, isNew: existing == nil, referencesChecked: true)
        try syncCredentials(of: row.personID, from: existingCredentials, to: credentials)
        try db.appendAudit(operator: options.operator, action: existing == nil ? "person.add" : "person.edit",
                           target: row.personID, before: before, after: after)
        if existing == nil { report.added.append(row.personID) } else { report.updated.append(row.personID) }
    }

    /// The person's credentials of `kind` become exactly `values`; a value owned by someone
    /// else is refused unless that person is moved in this same file.
    mutating func claim(_ kind: CredentialKind, _ values: [String], for personID: String, line: Int, current: [Credential]) throws -> [Credential] {
        let column = kind == .card ? "cards" : "plates"
        var result = current.filter { $0.kind != kind }
        for value in values {
            if let other = kind == .card ? cardsInFile[value] : platesInFile[value] {
                problem(line, column, "\(kind.rawValue) \(value) is also listed on line \(other)")
                continue
            }
            if kind == .card { cardsInFile[value] = line } else { platesInFile[value] = line }
            if let mine = current.first(where: { $0.kind == kind && $0.value == value }) {
                result.append(mine)  // kept with its status (a lost card stays lost)
                continue
            }
            if let owned = try db.credential(kind: kind, value: value) {
                switch owned.owner {
                case .person(let other) where other != personID:
                    if seenPeople[other] != nil {
                        problem(line, column, "\(kind.rawValue) \(value) belongs to person \(other) (line \(seenPeople[other] ?? 0))")
                        continue
                    }
                    moved.append((kind, value, other, line))
                case .house(let house):
                    problem(line, column, "\(kind.rawValue) \(value) belongs to house \(house)")
                    continue
                case .none:
                    problem(line, column, "\(kind.rawValue) \(value) is on the blacklist")
                    continue
                default:
                    break
                }
            }
            result.append(Credential(kind: kind, value: value, owner: .person(personID)))
        }
        return result
    }

    func syncCredentials(of personID: String, from old: [Credential], to new: [Credential]) throws {
        for c in old where !new.contains(where: { $0.kind == c.kind && $0.value == c.value }) {
            try db.connection.run("DELETE FROM credentials WHERE kind = ? AND value = ?", [.text(c.kind.rawValue), .text(c.value)])
        }
        for c in new where !old.contains(where: { $0.kind == c.kind && $0.value == c.value }) {
            // A value taken over from someone later in the file changes owner (checked in `finish`).
            try db.connection.run("""
                INSERT INTO credentials (kind, value, person_id, status, note) VALUES (?, ?, ?, 'active', '')
                ON CONFLICT (kind, value) DO UPDATE SET person_id = excluded.person_id, house_id = NULL,
                    status = 'active', note = ''
                """, [.text(c.kind.rawValue), .text(c.value), .text(personID)])
        }
    }

    mutating func finish() throws {
        for m in moved where seenPeople[m.from] == nil && !options.replace {
            problem(m.line, m.kind == .card ? "cards" : "plates",
                    "\(m.kind.rawValue) \(m.value) belongs to person \(m.from), who is not in this file (remove it from them first, or use --replace)")
        }
        guard problems.isEmpty, options.replace else { return }
        let s = try db.connection.statement("SELECT id FROM people ORDER BY id")
        var absent: [String] = []
        while try s.step() {
            if seenPeople[s.text(0)] == nil { absent.append(s.text(0)) }
        }
        for id in absent {
            let before = try db.personJSON(id)
            try db.connection.run("DELETE FROM people WHERE id = ?", [.text(id)])
            try db.appendAudit(operator: options.operator, action: "person.remove", target: id, before: before, after: nil)
            report.removed.append(id)
        }
    }
}
