/// What the analytics need from the roster: houses, who is bound to each with which role, and
/// whether each person is active. Rebuilt whole when the roster changes.
///
/// Held as sorted arrays searched by id (about 70 bytes a person), not hash maps: for 100,000
/// people this is a few megabytes, and only summaries and indicator checks look anything up.
public struct AnalyticsRoster: Sendable {
    public struct Member: Sendable, Hashable {
        public var houseID: String
        public var personID: String
        public var role: Role
        public init(houseID: String, personID: String, role: Role) {
            self.houseID = houseID
            self.personID = personID
            self.role = role
        }
    }

    /// A person's standing: only active people within their validity are watched.
    public struct PersonFacts: Sendable, Hashable {
        public var active: Bool
        /// Seconds; nil: unbounded (a lease's end for tenants).
        public var validUntil: UnixSeconds?
        /// Flagged in the roster as living alone (`lives_alone`).
        public var livesAlone: Bool
        public init(active: Bool = true, validUntil: UnixSeconds? = nil, livesAlone: Bool = false) {
            self.active = active
            self.validUntil = validUntil
            self.livesAlone = livesAlone
        }
    }

    struct PersonInfo: Sendable {
        var validUntil: UnixSeconds
        /// Index into `houseList` of the first house as owner, family or tenant; -1: none.
        var residentHouse: Int32
        var active: Bool
        var livesAloneFlag: Bool
    }

    struct Binding: Sendable {
        var person: Int32
        var role: Role
    }

    /// Sorted by id, with `personInfo` alongside.
    private(set) var personIDs: [String] = []
    private(set) var personInfo: [PersonInfo] = []
    /// Sorted by id; the members of house `h` are `bindings[bindingStart[h]..<bindingStart[h + 1]]`.
    private(set) var houseList: [House] = []
    private(set) var bindingStart: [Int32] = [0]
    private(set) var bindings: [Binding] = []
    /// People who live alone, with the house they live alone in: the only resident (owner,
    /// family, tenant) of a house, or flagged `lives_alone` (their first resident house).
    public private(set) var alone: [String: String] = [:]

    public init() {}

    /// `members` in the roster's order (a person's first house first); members of unknown houses
    /// are dropped, people absent from `people` count as active.
    public init(houses: [House], members: [Member], people: [String: PersonFacts]) {
        var ids = Set(people.keys)
        for m in members { ids.insert(m.personID) }
        personIDs = ids.sorted()
        ids = []
        personInfo = personIDs.map { id in
            let f = people[id] ?? PersonFacts()
            return PersonInfo(validUntil: f.validUntil ?? .max, residentHouse: -1, active: f.active, livesAloneFlag: f.livesAlone)
        }
        var seenHouses = Set<String>()
        houseList = houses.filter { seenHouses.insert($0.id).inserted }.sorted { $0.id < $1.id }
        seenHouses = []
        // Bindings grouped by house, each group in the input order (a counting sort).
        var located: [(house: Int32, binding: Binding)] = []
        located.reserveCapacity(members.count)
        var counts = [Int32](repeating: 0, count: houseList.count + 1)
        for m in members {
            guard let h = houseIndex(m.houseID), let p = personIndex(m.personID) else { continue }
            located.append((Int32(h), Binding(person: Int32(p), role: m.role)))
            counts[h + 1] += 1
            if m.role.isResident, personInfo[p].residentHouse < 0 { personInfo[p].residentHouse = Int32(h) }
        }
        for h in 0..<houseList.count { counts[h + 1] += counts[h] }
        bindingStart = counts
        var fill = counts
        bindings = [Binding](repeating: Binding(person: 0, role: .owner), count: located.count)
        for (h, b) in located {
            bindings[Int(fill[Int(h)])] = b
            fill[Int(h)] += 1
        }
        for h in houseList.indices {
            var residents = self.members(of: h).lazy.filter { $0.role.isResident }.makeIterator()
            if let only = residents.next(), residents.next() == nil {
                let id = personIDs[Int(only.person)]
                if alone[id] == nil { alone[id] = houseList[h].id }  // houses in id order: the first one
            }
        }
        for (p, info) in personInfo.enumerated() where info.livesAloneFlag && info.residentHouse >= 0 && alone[personIDs[p]] == nil {
            alone[personIDs[p]] = houseList[Int(info.residentHouse)].id
        }
    }

    public var houseCount: Int { houseList.count }
    public var personCount: Int { personIDs.count }
    public func house(_ id: String) -> House? { houseIndex(id).map { houseList[$0] } }
    public func livesAlone(_ personID: String) -> String? { alone[personID] }

    /// The person's first house as owner, family or tenant.
    public func residentHouse(_ personID: String) -> String? {
        guard let p = personIndex(personID), personInfo[p].residentHouse >= 0 else { return nil }
        return houseList[Int(personInfo[p].residentHouse)].id
    }

    /// Everyone bound to a house, with their role, in the roster's order.
    public func members(ofHouse id: String) -> [(personID: String, role: Role)] {
        guard let h = houseIndex(id) else { return [] }
        return members(of: h).map { (personIDs[Int($0.person)], $0.role) }
    }

    func members(of h: Int) -> ArraySlice<Binding> { bindings[Int(bindingStart[h])..<Int(bindingStart[h + 1])] }

    /// Whether a person is on the roster, active, and (at `now`, seconds) within their validity.
    public func watched(_ personID: String, at now: UnixSeconds) -> Bool {
        guard let p = personIndex(personID) else { return false }
        return personInfo[p].active && now < personInfo[p].validUntil
    }

    /// Whether the roster has this person at all.
    public func known(_ personID: String) -> Bool { personIndex(personID) != nil }

    func personIndex(_ id: String) -> Int? { Self.search(personIDs, id) { $0 } }
    func houseIndex(_ id: String) -> Int? { Self.search(houseList, id) { $0.id } }

    static func search<T>(_ list: [T], _ id: String, _ key: (T) -> String) -> Int? {
        var low = 0
        var high = list.count
        while low < high {
            let mid = (low + high) / 2
            let k = key(list[mid])
            if k == id { return mid }
            if k < id { low = mid + 1 } else { high = mid }
        }
        return nil
    }
}
