/// The roster as decisions read it: compact arrays and hash maps, built from the store and
/// replaced whole when the roster changes, so a swipe never touches the disk.
///
/// People are held as fixed-size entries that point into shared arrays of bindings and groups,
/// which keeps a million credentials within a few tens of megabytes.
public struct RosterIndex: Sendable {
    enum Owner: Hashable, Sendable {
        case person(Int32)
        case house(Int32)
        case pass(Int32)
        case none
    }

    struct CredentialEntry: Sendable {
        var owner: Owner
        var status: CredentialStatus
        /// A duress PIN: decided as the person's, with a silent alarm.
        var duress = false
    }

    struct PersonEntry: Sendable {
        var id: String
        var validFrom: Int64
        var validUntil: Int64
        var bindingStart: Int32
        var groupStart: Int32
        var bindingCount: UInt8
        var groupCount: UInt8
        var status: PersonStatus
    }

    struct BindingEntry: Sendable {
        var house: Int32
        var role: Role
    }

    struct HouseEntry: Sendable {
        var id: String
        var building: String
        /// -1: no limit.
        var parkingSpaces: Int32 = -1
    }

    struct GroupEntry: Sendable {
        var name: String
        /// Indexed by portal index: whether the group includes that portal.
        var portals: [Bool]
        /// Index into `schedules`, or -1 for always.
        var schedule: Int32
    }

    struct PassEntry: Sendable {
        var id: String
        var house: Int32
        var validFrom: Int64
        var validUntil: Int64
        var maxUses: Int32
        var uses: Int32
        var status: VisitorPass.Status
        /// Indexed by portal index; empty: the defaults (shared portals and the host's building).
        var portals: [Bool]
    }

    var people: [PersonEntry] = []
    var bindings: [BindingEntry] = []
    var personGroups: [Int32] = []
    var personByID: [String: Int32] = [:]
    var houses: [HouseEntry] = []
    var houseByID: [String: Int32] = [:]
    /// Residents of each house, flattened: `houseResidents[houseResidentStart[h]..<houseResidentStart[h+1]]`.
    var houseResidentStart: [Int32] = []
    var houseResidents: [Int32] = []
    var cards: [UInt64: CredentialEntry] = [:]
    /// PINs by their keyed hash: the typed digits are hashed with the site's key and looked up.
    var pins: [PinDigest: CredentialEntry] = [:]
    var plates: [String: CredentialEntry] = [:]
    var groups: [GroupEntry] = []
    var groupByName: [String: Int32] = [:]
    var schedules: [Schedule] = []
    var passes: [PassEntry] = []
    var passByID: [String: Int32] = [:]
    /// Group indices each role gets by default.
    var roleDefaults: [Role: [Int32]] = [:]

    // What incremental changes (RosterIndex+Apply.swift) keep beside the packed arrays. A full
    // build leaves them empty: people and houses are then found by binary search, as the
    // builder adds them in id order.
    /// `people[0..<sortedPeople]` are in id order (UTF-8 bytes, SQLite's order).
    var sortedPeople = 0
    /// `houses[0..<sortedHouses]` are in id order.
    var sortedHouses = 0
    /// Slots appended since the build, by id.
    var addedPeople: [String: Int32] = [:]
    var addedHouses: [String: Int32] = [:]
    /// Slots whose record was deleted; found by nobody.
    var removedPeople: Set<Int32> = []
    var removedHouses: Set<Int32> = []
    /// Residents of houses whose residents changed since the build (replaces the packed list).
    var residentsOverride: [Int32: [Int32]] = [:]
    /// Visitor passes' plates: plate → the slots of the passes that name it, so that a plate
    /// given back finds its pass, and a plate two passes share is known.
    var passPlates: [String: [Int32]] = [:]
    /// Binding and group entries no person points at any more (reclaimed by the next full build).
    public internal(set) var garbage = 0

    public var personCount: Int { people.count }

    /// A schedule by name (fence zones arm by schedule), nil when there is none.
    public func schedule(named name: String) -> Schedule? { schedules.first { $0.name == name } }
    public var credentialCount: Int { cards.count + pins.count + plates.count + passes.count }

    /// Whether a person is in a group: one of their own groups, or, when they have none, of
    /// their role's default groups (the same groups their rights come from).
    public func person(_ id: String, isInGroup name: String) -> Bool {
        guard let p = personSlot(id), let g = groupByName[name] else { return false }
        let person = people[Int(p)]
        if person.groupCount > 0 {
            return personGroups[Int(person.groupStart)..<Int(person.groupStart + Int32(person.groupCount))].contains(g)
        }
        return bindings[Int(person.bindingStart)..<Int(person.bindingStart + Int32(person.bindingCount))]
            .contains { roleDefaults[$0.role]?.contains(g) == true }
    }

    /// The empty roster: every credential is unknown.
    public init() {}

    /// A house's parking spaces; nil when it has no limit or is not on the roster.
    public func parkingSpaces(house id: String) -> Int? {
        guard let slot = houseSlot(id) else { return nil }
        let spaces = houses[Int(slot)].parkingSpaces
        return spaces < 0 ? nil : Int(spaces)
    }

    /// The keys anti-passback tracks a person by: the person, and each plate of theirs (a plate
    /// is tracked as the car, `plate:PLATE`); nil when the person is not on the roster.
    public func antiPassbackSubjects(person id: String) -> [String]? {
        guard let slot = personSlot(id) else { return nil }
        let plates = self.plates.compactMap { plate, entry -> String? in
            if case .person(let owner) = entry.owner, owner == slot { return "plate:" + plate }
            return nil
        }
        return ["person:" + id] + plates.sorted()
    }
}

extension RosterIndex {
    /// Builds an index row by row, so a large roster is never held twice in full.
    ///
    /// Call order: schedules, groups, houses, people, credentials and passes (each may refer only
    /// to what came before), then `finish()`. References to unknown names are dropped: the store
    /// has already refused them, and a portal removed from the configuration must not break start-up.
    public struct Builder: Sendable {
        var index: RosterIndex
        let rules: SiteRules
        var scheduleByName: [String: Int32] = [:]

        public init(rules: SiteRules, expectedPeople: Int = 0, expectedCards: Int = 0) {
            self.rules = rules
            var index = RosterIndex()
            index.people.reserveCapacity(expectedPeople)
            index.personByID.reserveCapacity(expectedPeople)
            index.bindings.reserveCapacity(expectedPeople)
            index.cards.reserveCapacity(expectedCards)
            self.index = index
        }

        public mutating func addSchedule(_ schedule: Schedule) {
            scheduleByName[schedule.name] = Int32(index.schedules.count)
            index.schedules.append(schedule)
        }

        public mutating func addGroup(_ group: AccessGroup) {
            var portals = [Bool](repeating: false, count: rules.portals.count)
            for id in group.portals { if let i = rules.portalIndex[id] { portals[i] = true } }
            let schedule = group.schedule.flatMap { scheduleByName[$0] } ?? -1
            index.groupByName[group.name] = Int32(index.groups.count)
            index.groups.append(GroupEntry(name: group.name, portals: portals, schedule: schedule))
        }

        public mutating func addHouse(id: String, building: String, parkingSpaces: Int? = nil) {
            index.houseByID[id] = Int32(index.houses.count)
            index.houses.append(HouseEntry(id: id, building: building, parkingSpaces: Int32(clamping: parkingSpaces ?? -1)))
        }

        public mutating func addPerson(
            id: String, status: PersonStatus, validFrom: UnixSeconds?, validUntil: UnixSeconds?,
            houses: [HouseBinding], groups: [String]
        ) {
            let bindingStart = Int32(index.bindings.count)
            for binding in houses.prefix(Int(UInt8.max)) {
                if let h = index.houseByID[binding.houseID] {
                    index.bindings.append(BindingEntry(house: h, role: binding.role))
                }
            }
            let groupStart = Int32(index.personGroups.count)
            for name in groups.prefix(Int(UInt8.max)) {
                if let g = index.groupByName[name] { index.personGroups.append(g) }
            }
            let entry = PersonEntry(
                id: id, validFrom: validFrom ?? .min, validUntil: validUntil ?? .max,
                bindingStart: bindingStart, groupStart: groupStart,
                bindingCount: UInt8(Int32(index.bindings.count) - bindingStart),
                groupCount: UInt8(Int32(index.personGroups.count) - groupStart),
                status: status
            )
            index.personByID[id] = Int32(index.people.count)
            index.people.append(entry)
        }

        public mutating func addPerson(_ person: Person) {
            addPerson(
                id: person.id, status: person.status, validFrom: person.validFrom, validUntil: person.validUntil,
                houses: person.houses, groups: person.groups
            )
        }

        public mutating func addCredential(kind: CredentialKind, value: String, owner: CredentialOwner, status: CredentialStatus,
                                           duress: Bool = false) {
            let ref: Owner
            switch owner {
            case .person(let id):
                guard let p = index.personByID[id] else { return }
                ref = .person(p)
            case .house(let id):
                guard let h = index.houseByID[id] else { return }
                ref = .house(h)
            case .none:
                ref = .none
            }
            let entry = CredentialEntry(owner: ref, status: status, duress: duress)
            switch kind {
            case .card:
                if let number = UInt64(value) { index.cards[number] = entry }
            case .pin: if let digest = PinDigest(hex: value) { index.pins[digest] = entry }  // digits as typed are never keyed
            case .plate: index.plates[value] = entry
            case .qr: break  // QR codes are visitor passes, added with `addVisitorPass`.
            }
        }

        public mutating func addCredential(_ credential: Credential) {
            addCredential(kind: credential.kind, value: credential.value, owner: credential.owner, status: credential.status,
                          duress: credential.duress)
        }

        public mutating func addVisitorPass(_ pass: VisitorPass) {
            guard let house = index.houseByID[pass.houseID] else { return }
            var portals: [Bool] = []
            if !pass.portals.isEmpty {
                portals = [Bool](repeating: false, count: rules.portals.count)
                for id in pass.portals { if let i = rules.portalIndex[id] { portals[i] = true } }
            }
            let p = Int32(index.passes.count)
            index.passes.append(PassEntry(
                id: pass.id, house: house, validFrom: pass.validFrom, validUntil: pass.validUntil,
                maxUses: Int32(clamping: pass.maxUses), uses: Int32(clamping: pass.uses), status: pass.status, portals: portals
            ))
            index.passByID[pass.id] = p
            if let plate = pass.plate { index.passPlates[plate, default: []].append(p) }
            if let plate = pass.plate, pass.status == .active {
                // A resident's or blacklisted plate wins over a visitor's temporary one.
                if index.plates[plate] == nil { index.plates[plate] = CredentialEntry(owner: .pass(p), status: .active) }
            }
        }

        /// Completes the index: resolves role defaults and the residents of each house.
        public mutating func finish() -> RosterIndex {
            for (role, names) in rules.defaultGroups {
                index.roleDefaults[role] = names.compactMap { index.groupByName[$0] }
            }
            var counts = [Int32](repeating: 0, count: index.houses.count + 1)
            for person in index.people {
                for b in person.bindingStart..<(person.bindingStart + Int32(person.bindingCount))
                where index.bindings[Int(b)].role.isResident {
                    counts[Int(index.bindings[Int(b)].house) + 1] += 1
                }
            }
            for h in 0..<index.houses.count { counts[h + 1] += counts[h] }
            var residents = [Int32](repeating: 0, count: Int(counts.last ?? 0))
            var fill = counts
            for (p, person) in index.people.enumerated() {
                for b in person.bindingStart..<(person.bindingStart + Int32(person.bindingCount))
                where index.bindings[Int(b)].role.isResident {
                    let h = Int(index.bindings[Int(b)].house)
                    residents[Int(fill[h])] = Int32(p)
                    fill[h] += 1
                }
            }
            index.houseResidentStart = counts
            index.houseResidents = residents
            // Decisions never look people or houses up by id; only building does. Free the maps:
            // incremental changes find a record by binary search when the builder was given them
            // in id order (the store does), else they keep the map.
            if RosterIndex.isSorted(index.people.lazy.map(\.id)) {
                index.sortedPeople = index.people.count
                index.personByID = [:]
            } else {
                index.addedPeople = index.personByID
                index.personByID = [:]
            }
            if RosterIndex.isSorted(index.houses.lazy.map(\.id)) {
                index.sortedHouses = index.houses.count
                index.houseByID = [:]
            } else {
                index.addedHouses = index.houseByID
                index.houseByID = [:]
            }
            return index
        }
    }
}
