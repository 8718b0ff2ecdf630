import AccessCore

extension HouseAnalytics {
    /// The rows changed since the last snapshot (`p:PERSON`, `h:HOUSE`, `i:INDICATOR_KEY`, each a
    /// JSON object), with `appliedSerial`. Persisted together, they let a restarted service go on
    /// from exactly that serial.
    public mutating func takeSnapshot() -> AnalyticsSnapshot {
        var upserts: [(key: String, value: String)] = []
        var deletions: [String] = []
        guard unsaved else { return AnalyticsSnapshot(appliedSerial: appliedSerial, upserts: [], deletions: []) }
        // Walked by index: no hashing, and the marks are reset in place.
        var i = persons.values.startIndex
        while i != persons.values.endIndex {
            if persons.values[i].flags & Self.dirtyFlag != 0 {
                persons.values[i].flags &= ~Self.dirtyFlag
                upserts.append(("p:" + persons.keys[i], encode(persons.values[i]).rendered()))
            }
            i = persons.values.index(after: i)
        }
        var j = houses.values.startIndex
        while j != houses.values.endIndex {
            if houses.values[j].dirty {
                houses.values[j].dirty = false
                upserts.append(("h:" + houses.keys[j], Self.encode(houses.values[j]).rendered()))
            }
            j = houses.values.index(after: j)
        }
        for id in removedPersons.sorted() where persons[id] == nil { deletions.append("p:" + id) }
        for id in removedHouses.sorted() where houses[id] == nil { deletions.append("h:" + id) }
        for key in dirtyIndicators.sorted() {
            if let i = active[key] { upserts.append(("i:" + key, Self.encode(i).rendered())) } else { deletions.append("i:" + key) }
        }
        removedPersons.removeAll()
        removedHouses.removeAll()
        dirtyIndicators.removeAll()
        unsaved = false
        return AnalyticsSnapshot(appliedSerial: appliedSerial, upserts: upserts, deletions: deletions)
    }

    /// Whether anything changed since the last snapshot (the serial aside).
    public var hasUnsavedState: Bool { unsaved }

    /// The state as persisted by `takeSnapshot`; rows it cannot read are skipped.
    public init(thresholds: AnalyticsThresholds = AnalyticsThresholds(), zone: ZoneRules, roster: AnalyticsRoster,
                appliedSerial: Int64, rows: [(key: String, value: String)]) {
        self.init(thresholds: thresholds, zone: zone, roster: roster)
        self.appliedSerial = appliedSerial
        for (key, value) in rows {
            guard let json = JSON.parse(value) else { continue }
            if key.hasPrefix("p:") {
                if let p = decodePerson(json) { persons[String(key.dropFirst(2))] = p }
            } else if key.hasPrefix("h:") {
                if let h = Self.decodeHouse(json) { houses[String(key.dropFirst(2))] = h }
            } else if key.hasPrefix("i:") {
                if let i = Self.decodeIndicator(json) { active[i.key] = i }
            }
        }
        for i in active.values { if let p = i.personID { persons[p]?.flags |= Self.flag(i.kind) } }
    }

    func encode(_ p: PersonState) -> JSON {
        var pairs: [(String, JSON)] = []
        if p.seen {
            pairs += [("t", .int(p.seenMicros)), ("p", .string(portalName(p.portal))), ("d", .string(p.direction.rawValue)),
                      ("h", .string(p.houseID))]
        }
        if p.knownSince != .min { pairs.append(("k", .int(p.knownSince))) }
        if !p.lateNight.isEmpty { pairs.append(("n", .array(p.lateNight.map { .int($0) }))) }
        return .object(pairs)
    }

    mutating func decodePerson(_ json: JSON) -> PersonState? {
        guard case .object = json else { return nil }
        var p = PersonState()
        if let t = json["t"]?.intValue {
            p.seenMicros = t
            p.portal = intern(json["p"]?.stringValue ?? "")
            p.direction = json["d"]?.stringValue.flatMap(PortalDirection.init(rawValue:)) ?? .both
            p.houseID = json["h"]?.stringValue ?? ""
        }
        if let k = json["k"]?.intValue { p.knownSince = k }
        if case .array(let items)? = json["n"] { p.lateNight = items.compactMap(\.intValue) }
        return p
    }

    static func encode(_ h: HouseState) -> JSON {
        .object([
            ("d", .array(h.days.map { [.int(Int64($0.day)), .int(Int64($0.entries)), .int(Int64($0.exits))] })),
            ("v", .array(h.visitors.map { [.int(Int64($0.key)), .int(Int64($0.at))] })),
            ("c", .array(h.credentials.map { [.int(Int64($0.key)), .int(Int64($0.at))] })),
        ])
    }

    static func decodeHouse(_ json: JSON) -> HouseState? {
        func rows(_ key: String, width: Int) -> [[Int64]] {
            guard case .array(let items)? = json[key] else { return [] }
            return items.compactMap { item in
                guard case .array(let cells) = item, cells.count == width else { return nil }
                let values = cells.compactMap(\.intValue)
                return values.count == width ? values : nil
            }
        }
        var h = HouseState()
        h.days = rows("d", width: 3).map { DayCount(day: Int32(clamping: $0[0]), entries: UInt16(clamping: $0[1]), exits: UInt16(clamping: $0[2])) }
        h.visitors = rows("v", width: 2).map { Seen(key: UInt32(truncatingIfNeeded: $0[0]), at: UInt32(clamping: $0[1])) }
        h.credentials = rows("c", width: 2).map { Seen(key: UInt32(truncatingIfNeeded: $0[0]), at: UInt32(clamping: $0[1])) }
        return h
    }

    static func encode(_ i: Indicator) -> JSON {
        .object([("kind", .string(i.kind.rawValue)), ("house", .string(i.houseID)), ("person", .string(i.personID)),
                 ("since", .int(i.sinceMicros)), ("detail", .object(i.detail))])
    }

    static func decodeIndicator(_ json: JSON) -> Indicator? {
        guard let kind = json["kind"]?.stringValue.flatMap(IndicatorKind.init(rawValue:)), let house = json["house"]?.stringValue,
              let since = json["since"]?.intValue else { return nil }
        var detail: [(String, JSON)] = []
        if case .object(let pairs)? = json["detail"] { detail = pairs }
        return Indicator(kind: kind, houseID: house, personID: json["person"]?.stringValue, sinceMicros: since, detail: detail)
    }
}
