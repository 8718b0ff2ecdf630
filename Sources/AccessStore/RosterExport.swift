import AccessCore

extension AccessDatabase {
    /// Writes the roster as the import CSV (one row per person, their primary house), in
    /// person-id order, streaming: `emit` receives chunks of text.
    ///
    /// Only active cards and plates are written: a revoked card re-imported elsewhere must not
    /// come back to life. Household plates and PINs are not part of the CSV.
    public func exportRoster(zone: ZoneRules, emit: (String) -> Void) throws -> Int {
        let columns = RosterColumn.allCases.map(\.rawValue)
        var chunk = CSVWriter.line(columns)
        var count = 0
        try connection.transaction(immediate: false) {
            var houses: [String: House] = [:]
            for h in try self.houses() { houses[h.id] = h }
            let people = try connection.statement("""
                SELECT id, name, phone, status, valid_from, valid_until FROM people ORDER BY id
                """)
            let bindings = try connection.statement("SELECT person_id, house_id, role FROM person_houses ORDER BY person_id, position, house_id")
            let creds = try connection.statement("""
                SELECT person_id, kind, value FROM credentials
                WHERE person_id IS NOT NULL AND status = 'active' AND kind IN ('card', 'plate') ORDER BY person_id, kind, value
                """)
            let groups = try connection.statement("SELECT person_id, group_name FROM person_groups ORDER BY person_id, group_name")
            defer { people.reset(); bindings.reset(); creds.reset(); groups.reset() }
            var bRow = try bindings.step(), cRow = try creds.step(), gRow = try groups.step()
            while try people.step() {
                let id = people.text(0)
                var binding: (String, String)?
                while bRow, !Self.utf8Less(id, bindings.text(0)) {
                    if bindings.text(0) == id, binding == nil { binding = (bindings.text(1), bindings.text(2)) }
                    bRow = try bindings.step()
                }
                var cards: [String] = [], plates: [String] = []
                while cRow, !Self.utf8Less(id, creds.text(0)) {
                    if creds.text(0) == id { if creds.text(1) == "card" { cards.append(creds.text(2)) } else { plates.append(creds.text(2)) } }
                    cRow = try creds.step()
                }
                var groupNames: [String] = []
                while gRow, !Self.utf8Less(id, groups.text(0)) {
                    if groups.text(0) == id { groupNames.append(groups.text(1)) }
                    gRow = try groups.step()
                }
                guard let (houseID, role) = binding, let house = houses[houseID] else { continue }
                let from = people.optionalInt(4).map { ISO8601.formatBound($0, zone: zone, isUntil: false) } ?? ""
                let until = people.optionalInt(5).map { ISO8601.formatBound($0, zone: zone, isUntil: true) } ?? ""
                chunk += CSVWriter.line([
                    house.id, house.building, house.unit, house.floor, house.room, id, people.text(1), role, people.text(2),
                    from, until, cards.joined(separator: ";"), plates.joined(separator: ";"), groupNames.joined(separator: ";"),
                    people.text(3), house.parkingSpaces.map(String.init) ?? "",
                ])
                count += 1
                if chunk.utf8.count > 65_536 {
                    emit(chunk)
                    chunk = ""
                }
            }
        }
        emit(chunk)
        return count
    }
}
