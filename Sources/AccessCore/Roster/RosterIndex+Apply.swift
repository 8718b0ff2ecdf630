/// Changing the index record by record, so one changed person costs microseconds at a million
/// credentials instead of a full rebuild. The result decides exactly as a full build of the same
/// roster would (RosterIndexApplyTests compares them); only schedules and groups, which
/// everything refers to by position, still need a rebuild.
extension RosterIndex {
    static func isSorted(_ ids: some Sequence<String>) -> Bool {
        var previous: String?
        for id in ids {
            if let previous, !previous.utf8.lexicographicallyPrecedes(id.utf8) { return false }
            previous = id
        }
        return true
    }

    /// The residents of house `h`, in id order.
    func residents(of h: Int32) -> ArraySlice<Int32> {
        if !residentsOverride.isEmpty, let list = residentsOverride[h] { return list[...] }
        let i = Int(h)
        guard i + 1 < houseResidentStart.count else { return [] }
        return houseResidents[Int(houseResidentStart[i])..<Int(houseResidentStart[i + 1])]
    }

    /// Takes over the uses spent on `older`'s passes where they exceed this index's: a roster
    /// reloaded from the store may have been read before the store recorded the latest entries.
    mutating func keepSpentVisitorUses(from older: RosterIndex) {
        for (id, oldSlot) in older.passByID {
            guard let slot = passByID[id] else { continue }
            passes[Int(slot)].uses = max(passes[Int(slot)].uses, older.passes[Int(oldSlot)].uses)
        }
    }

    func personSlot(_ id: String) -> Int32? {
        if !addedPeople.isEmpty, let slot = addedPeople[id] { return slot }
        guard let slot = Self.search(id, count: sortedPeople, at: { people[$0].id }) else { return nil }
        return removedPeople.contains(slot) ? nil : slot
    }

    func houseSlot(_ id: String) -> Int32? {
        if !addedHouses.isEmpty, let slot = addedHouses[id] { return slot }
        guard let slot = Self.search(id, count: sortedHouses, at: { houses[$0].id }) else { return nil }
        return removedHouses.contains(slot) ? nil : slot
    }

    private static func search(_ id: String, count: Int, at: (Int) -> String) -> Int32? {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            let candidate = at(mid)
            if candidate == id { return Int32(mid) }
            if candidate.utf8.lexicographicallyPrecedes(id.utf8) { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    /// Whether a delta changes what everything refers to by position (schedules, groups), so
    /// only a full rebuild can take it.
    public static func needsRebuild(_ delta: [RosterChange]) -> Bool {
        delta.contains { change in
            switch change.key {
            case .schedule, .group: return true
            default: return false
            }
        }
    }

    /// Which of several passes naming one plate opens for it depends on the order a full build
    /// adds them; such rare changes are left to a full build rather than guessed.
    func touchesSharedVisitorPlate(_ delta: [RosterChange]) -> Bool {
        func shared(_ plate: String?, besides slot: Int32?) -> Bool {
            guard let plate, let slots = passPlates[plate] else { return false }
            return slots.contains { $0 != slot }
        }
        for change in delta {
            switch change {
            case .putVisitorPass(let pass):
                let slot = passByID[pass.id]
                if shared(pass.plate, besides: slot) { return true }
                if let slot, let old = plateOf(pass: slot), shared(old, besides: slot) { return true }
            case .delete(.visitorPass(let id)):
                if let slot = passByID[id], let old = plateOf(pass: slot), shared(old, besides: slot) { return true }
            case .delete(.credential(.plate, let plate)):
                if (passPlates[plate]?.count ?? 0) > 1 { return true }
            case .putCredential(let credential) where credential.kind == .plate:
                if (passPlates[credential.value]?.count ?? 0) > 1 { return true }
            default:
                continue
            }
        }
        return false
    }

    private func plateOf(pass slot: Int32) -> String? {
        passPlates.first { $0.value.contains(slot) }?.key
    }

    /// Applies records' new states (a change set's delta, cascades included). Returns false,
    /// changing nothing, when the delta needs a full rebuild (`needsRebuild`, or a visitor plate
    /// that several passes name).
    public mutating func apply(_ delta: [RosterChange], rules: SiteRules) -> Bool {
        if Self.needsRebuild(delta) || touchesSharedVisitorPlate(delta) { return false }
        for change in delta {
            switch change {
            case .putSchedule, .putGroup, .delete(.schedule), .delete(.group):
                return false  // refused above
            case .putHouse(let house):
                let spaces = Int32(clamping: house.parkingSpaces ?? -1)
                if let slot = houseSlot(house.id) {
                    houses[Int(slot)].building = house.building
                    houses[Int(slot)].parkingSpaces = spaces
                } else if let slot = Self.search(house.id, count: sortedHouses, at: { houses[$0].id }) {
                    removedHouses.remove(slot)
                    houses[Int(slot)].building = house.building
                    houses[Int(slot)].parkingSpaces = spaces
                } else {
                    addedHouses[house.id] = Int32(houses.count)
                    houses.append(HouseEntry(id: house.id, building: house.building, parkingSpaces: spaces))
                }
            case .delete(.house(let id)):
                guard let slot = houseSlot(id) else { continue }
                if addedHouses.removeValue(forKey: id) == nil { removedHouses.insert(slot) }
            case .putPerson(let person):
                putPerson(person)
            case .delete(.person(let id)):
                guard let slot = personSlot(id) else { continue }
                let old = people[Int(slot)]
                garbage += Int(old.bindingCount) + Int(old.groupCount)
                people[Int(slot)].bindingCount = 0
                people[Int(slot)].groupCount = 0
                people[Int(slot)].status = .suspended
                if addedPeople.removeValue(forKey: id) != nil {
                    people[Int(slot)].id = ""  // an appended slot is found by the map only
                } else {
                    removedPeople.insert(slot)
                }
                updateResidents(of: residentHouses(old), slot: slot, nowResidentOf: [])
            case .putCredential(let credential):
                putCredential(credential)
            case .delete(.credential(let kind, let value)):
                removeCredential(kind: kind, value: value)
            case .putVisitorPass(let pass):
                putPass(pass, rules: rules)
            case .delete(.visitorPass(let id)):
                guard let slot = passByID.removeValue(forKey: id) else { continue }
                if let plate = plateOf(pass: slot) {
                    passPlates.removeValue(forKey: plate)  // it was the only pass naming it
                    if case .pass(slot)? = plates[plate]?.owner { plates.removeValue(forKey: plate) }
                }
                passes[Int(slot)].status = .revoked
            }
        }
        return true
    }

    private func residentHouses(_ entry: PersonEntry) -> Set<Int32> {
        var out: Set<Int32> = []
        for b in Int(entry.bindingStart)..<Int(entry.bindingStart + Int32(entry.bindingCount)) where bindings[b].role.isResident {
            out.insert(bindings[b].house)
        }
        return out
    }

    private mutating func putPerson(_ person: Person) {
        let bindingStart = Int32(bindings.count)
        for binding in person.houses.prefix(Int(UInt8.max)) {
            if let h = houseSlot(binding.houseID) { bindings.append(BindingEntry(house: h, role: binding.role)) }
        }
        let groupStart = Int32(personGroups.count)
        for name in Set(person.groups).sorted().prefix(Int(UInt8.max)) {
            if let g = groupByName[name] { personGroups.append(g) }
        }
        let entry = PersonEntry(
            id: person.id, validFrom: person.validFrom ?? .min, validUntil: person.validUntil ?? .max,
            bindingStart: bindingStart, groupStart: groupStart,
            bindingCount: UInt8(Int32(bindings.count) - bindingStart), groupCount: UInt8(Int32(personGroups.count) - groupStart),
            status: person.status
        )
        var oldHouses: Set<Int32> = []
        let slot: Int32
        if let existing = personSlot(person.id) {
            slot = existing
            let old = people[Int(slot)]
            garbage += Int(old.bindingCount) + Int(old.groupCount)
            oldHouses = residentHouses(old)
        } else if let revived = Self.search(person.id, count: sortedPeople, at: { people[$0].id }) {
            slot = revived
            removedPeople.remove(slot)
        } else {
            slot = Int32(people.count)
            people.append(entry)
            addedPeople[person.id] = slot
        }
        people[Int(slot)] = entry
        updateResidents(of: oldHouses.union(residentHouses(entry)), slot: slot, nowResidentOf: residentHouses(entry))
    }

    /// Rewrites the resident lists of `houses` for person `slot`, keeping each in id order as a
    /// full build would.
    private mutating func updateResidents(of houses: Set<Int32>, slot: Int32, nowResidentOf: Set<Int32>) {
        for h in houses {
            var list = Array(residents(of: h)).filter { $0 != slot }
            if nowResidentOf.contains(h) {
                let id = people[Int(slot)].id
                let at = list.firstIndex { id.utf8.lexicographicallyPrecedes(people[Int($0)].id.utf8) } ?? list.count
                list.insert(slot, at: at)
            }
            residentsOverride[h] = list
        }
    }

    private mutating func putCredential(_ credential: Credential) {
        let owner: Owner
        switch credential.owner {
        case .person(let id):
            guard let p = personSlot(id) else { return removeCredential(kind: credential.kind, value: credential.value) }
            owner = .person(p)
        case .house(let id):
            guard let h = houseSlot(id) else { return removeCredential(kind: credential.kind, value: credential.value) }
            owner = .house(h)
        case .none:
            owner = .none
        }
        let entry = CredentialEntry(owner: owner, status: credential.status, duress: credential.duress)
        switch credential.kind {
        case .card: if let number = UInt64(credential.value) { cards[number] = entry }
        case .pin: if let digest = PinDigest(hex: credential.value) { pins[digest] = entry }
        case .plate: plates[credential.value] = entry
        case .qr: break
        }
    }

    private mutating func removeCredential(kind: CredentialKind, value: String) {
        switch kind {
        case .card: if let number = UInt64(value) { cards.removeValue(forKey: number) }
        case .pin: if let digest = PinDigest(hex: value) { pins.removeValue(forKey: digest) }
        case .plate:
            plates.removeValue(forKey: value)
            // A visitor's plate the resident's had hidden opens again for its pass.
            if let p = passPlates[value]?.first, passes[Int(p)].status == .active { plates[value] = CredentialEntry(owner: .pass(p), status: .active) }
        case .qr: break
        }
    }

    private mutating func putPass(_ pass: VisitorPass, rules: SiteRules) {
        guard let house = houseSlot(pass.houseID) else { return }
        var portals: [Bool] = []
        if !pass.portals.isEmpty {
            portals = [Bool](repeating: false, count: rules.portals.count)
            for id in pass.portals { if let i = rules.portalIndex[id] { portals[i] = true } }
        }
        let entry = PassEntry(
            id: pass.id, house: house, validFrom: pass.validFrom, validUntil: pass.validUntil,
            maxUses: Int32(clamping: pass.maxUses), uses: Int32(clamping: pass.uses), status: pass.status, portals: portals
        )
        let slot: Int32
        if let existing = passByID[pass.id] {
            slot = existing
            // Uses only grow: an entry spent here may not have reached the change set yet.
            var entry = entry
            entry.uses = max(entry.uses, passes[Int(slot)].uses)
            passes[Int(slot)] = entry
        } else {
            slot = Int32(passes.count)
            passes.append(entry)
            passByID[pass.id] = slot
        }
        if let oldPlate = plateOf(pass: slot), oldPlate != pass.plate {
            passPlates.removeValue(forKey: oldPlate)  // no other pass names it (checked before)
            if case .pass(slot)? = plates[oldPlate]?.owner { plates.removeValue(forKey: oldPlate) }
        }
        guard let plate = pass.plate else { return }
        passPlates[plate] = [slot]
        if pass.status == .active {
            if plates[plate] == nil { plates[plate] = CredentialEntry(owner: .pass(slot), status: .active) }
        } else if case .pass(slot)? = plates[plate]?.owner {
            plates.removeValue(forKey: plate)
        }
    }
}

extension AccessPolicy {
    /// Applies a change set's delta to the roster in place; false when it needs a full rebuild.
    public mutating func apply(_ delta: [RosterChange]) -> Bool {
        roster.apply(delta, rules: rules)
    }

    /// Counts a use of pass `id` spent elsewhere (another gate of the fleet); false when this
    /// roster has no such pass.
    public mutating func recordPassUse(_ id: String) -> Bool {
        guard let slot = roster.passByID[id] else { return false }
        roster.passes[Int(slot)].uses &+= 1
        return true
    }

    /// Signs and checks visitor QR codes with `secret` from now on (the fleet's community secret).
    public mutating func usePassSecret(_ secret: [UInt8]) {
        passCodes = VisitorPassCode(secret: secret)
    }

    /// Hashes typed PINs with `key` from now on (the fleet's community key).
    public mutating func usePinKey(_ key: PinKey?) {
        pinKey = key
    }

    /// The uses counted against pass `id` here, nil when there is no such pass.
    public func passUses(_ id: String) -> Int? {
        roster.passByID[id].map { Int(roster.passes[Int($0)].uses) }
    }
}
