import AccessCore

extension AccessDatabase {
    /// Builds the decision index from the roster in a handful of ordered scans (no query per
    /// person), so a million credentials load in seconds.
    public func loadRosterIndex(rules: SiteRules) throws -> RosterIndex {
        let peopleCount = Int(try connection.scalarInt("SELECT count(*) FROM people") ?? 0)
        let cardCount = Int(try connection.scalarInt("SELECT count(*) FROM credentials WHERE kind = 'card'") ?? 0)
        var builder = RosterIndex.Builder(rules: rules, expectedPeople: peopleCount, expectedCards: cardCount)
        return try connection.transaction(immediate: false) {
            for schedule in try schedules() { builder.addSchedule(schedule) }
            for group in try groups() { builder.addGroup(group) }

            let houses = try connection.statement("SELECT id, building, parking_spaces FROM houses ORDER BY id")
            while try houses.step() {
                builder.addHouse(id: houses.text(0), building: houses.text(1), parkingSpaces: houses.optionalInt(2).map(Int.init))
            }

            // People, their bindings and their groups, merged in person-id order.
            let people = try connection.statement("SELECT id, status, valid_from, valid_until FROM people ORDER BY id")
            let bindings = try connection.statement("SELECT person_id, house_id, role FROM person_houses ORDER BY person_id, position, house_id")
            let groups = try connection.statement("SELECT person_id, group_name FROM person_groups ORDER BY person_id")
            defer { bindings.reset(); groups.reset(); people.reset() }
            var bindingRow = try bindings.step()
            var groupRow = try groups.step()
            while try people.step() {
                let id = people.text(0)
                var personBindings: [HouseBinding] = []
                while bindingRow, !Self.utf8Less(id, bindings.text(0)) {
                    if bindings.text(0) == id {
                        personBindings.append(HouseBinding(houseID: bindings.text(1), role: Role(rawValue: bindings.text(2)) ?? .visitor))
                    }
                    bindingRow = try bindings.step()
                }
                var personGroups: [String] = []
                while groupRow, !Self.utf8Less(id, groups.text(0)) {
                    if groups.text(0) == id { personGroups.append(groups.text(1)) }
                    groupRow = try groups.step()
                }
                builder.addPerson(
                    id: id, status: PersonStatus(rawValue: people.text(1)) ?? .suspended,
                    validFrom: people.optionalInt(2), validUntil: people.optionalInt(3),
                    houses: personBindings, groups: personGroups
                )
            }

            let credentials = try connection.statement("SELECT kind, value, person_id, house_id, status, duress FROM credentials")
            while try credentials.step() {
                guard let kind = CredentialKind(rawValue: credentials.text(0)) else { continue }
                let owner: CredentialOwner = credentials.optionalText(2).map(CredentialOwner.person)
                    ?? credentials.optionalText(3).map(CredentialOwner.house) ?? .none
                builder.addCredential(kind: kind, value: credentials.text(1), owner: owner,
                                      status: CredentialStatus(rawValue: credentials.text(4)) ?? .revoked, duress: credentials.int(5) != 0)
            }
            // Revoked and used-up passes stay, so they are refused with their reason, not as unknown.
            for pass in try passes() { builder.addVisitorPass(pass) }
            return builder.finish()
        }
    }

    /// SQLite orders text by its bytes; Swift's `<` by Unicode rules. Merging needs SQLite's order.
    static func utf8Less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// A policy ready to decide: the index, the site rules, the pass-signing secret and the PIN key.
    public func loadPolicy(rules: SiteRules) throws -> AccessPolicy {
        AccessPolicy(rules: rules, roster: try loadRosterIndex(rules: rules), passCodes: VisitorPassCode(secret: try passSecret()),
                     pinKey: pinKey)
    }
}
