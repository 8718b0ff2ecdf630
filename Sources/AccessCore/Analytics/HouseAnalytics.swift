/// 以房管人 analytics, computed incrementally: fed one durable event at a time (in serial order)
/// and the roster's facts, never rescanning the log.
///
/// Per house it keeps entries and exits per local day for the last 30 days, the distinct visitors
/// of 30 days and the distinct credentials of `max(7, distinct_credentials_days)` days (capped
/// lists of 32-bit key hashes with the last time each was used); per person the last granted
/// passage (time, portal, direction) and the recent late-night entries. From these it raises
/// four indicators, each with a stable key (kind, house, person) so it fires once and clears once:
///
/// - `alone_not_seen`: a person living alone (the only owner/family/tenant of a house, or flagged
///   `lives_alone`) with no granted passage for `alone_not_seen_hours`. Someone never seen counts
///   from when the analytics first watched them.
/// - `out_not_back`: a resident whose last passage was through an `out` portal, with nothing
///   since for `out_not_back_hours`. Any later passage (in, or a both-way portal) clears it.
/// - `crowded_house` (群租 suspicion): more than `distinct_credentials_max` distinct credentials
///   (residents' cards, PINs by person and plates, household plates; not visitor passes, not
///   staff) granted for one house within `distinct_credentials_days`.
/// - `late_night`: a resident's `late_night_entries` entries in the `late_night` window (local
///   time) within `late_night_days`; entries within 30 minutes of the last counted one are the
///   same return.
///
/// Time-based conditions are checked by `evaluate(now:)`, which the service calls every minute;
/// events clear what they resolve at once and raise crowded-house and late-night indicators as
/// they happen. Only granted `access` events count. Everything is integer µs since 1970 (UTC);
/// days are the gate's local days (each event's recorded offset, `zone` for now).
///
/// Memory stays bounded by the roster: one small entry per person seen, per house at most 30 day
/// buckets, `visitorCap` visitors and `credentialCap` credentials; old buckets and entries are
/// dropped as time passes. Counts saturate at the caps.
public struct HouseAnalytics: Sendable {
    public let thresholds: AnalyticsThresholds
    public let zone: ZoneRules
    public private(set) var roster: AnalyticsRoster
    /// The serial of the last event applied: events at or below it are ignored, so a page read
    /// again after a restart is never counted twice.
    public private(set) var appliedSerial: Int64 = 0

    struct Seen: Sendable, Equatable {
        var key: UInt32
        /// Seconds since 1970 of the last use.
        var at: UInt32
    }

    struct DayCount: Sendable, Equatable {
        /// Local days since 1970.
        var day: Int32
        var entries: UInt16
        var exits: UInt16
    }

    struct PersonState: Sendable {
        /// The last granted passage, µs; `.min`: never seen.
        var seenMicros: Int64 = .min
        var portal: Int32 = -1
        var direction: PortalDirection = .both
        /// The house the last passage was recorded for.
        var houseID: String = ""
        /// When an unseen person living alone was first watched, µs; `.min`: not set.
        var knownSince: Int64 = .min
        /// Counted late-night entries, oldest first, at most `lateNightEntries`.
        var lateNight: [Int64] = []
        /// `dirtyFlag`, and a bit per person indicator in force (`flag(kind)`), so that an
        /// event looks indicators up only when the person has one.
        var flags: UInt8 = 0

        var seen: Bool { seenMicros != .min }
    }

    struct HouseState: Sendable {
        /// Ascending by day, at most `dayWindow`.
        var days: [DayCount] = []
        var visitors: [Seen] = []
        var credentials: [Seen] = []
        /// Changed since the last snapshot.
        var dirty = false

        var isEmpty: Bool { days.isEmpty && visitors.isEmpty && credentials.isEmpty }
    }

    var persons: [String: PersonState] = [:]
    var houses: [String: HouseState] = [:]
    var portalNames: [String] = []
    var portalIndex: [String: Int32] = [:]
    var active: [String: Indicator] = [:]
    var pending: [IndicatorChange] = []
    /// Changes since the last snapshot: people and houses carry a dirty mark; what was removed
    /// and which indicators changed are listed here (both rare).
    var removedPersons: Set<String> = []
    var removedHouses: Set<String> = []
    var dirtyIndicators: Set<String> = []
    var unsaved = false

    static let dirtyFlag: UInt8 = 1
    static func flag(_ kind: IndicatorKind) -> UInt8 {
        switch kind {
        case .aloneNotSeen: return 2
        case .outNotBack: return 4
        case .lateNight: return 8
        case .crowdedHouse: return 0
        }
    }

    static let microsPerHour: Int64 = 3_600_000_000
    static let secondsPerDay: Int64 = 86_400

    public init(thresholds: AnalyticsThresholds = AnalyticsThresholds(), zone: ZoneRules, roster: AnalyticsRoster = AnalyticsRoster()) {
        self.thresholds = thresholds
        self.zone = zone
        self.roster = roster
    }

    // MARK: Events

    /// Applies one durable event. Events must come in serial order; one at or below
    /// `appliedSerial` is ignored.
    public mutating func record(_ event: AccessEvent) {
        guard event.serial > appliedSerial else { return }
        appliedSerial = event.serial
        guard event.type == .access, event.granted == true else { return }
        let t = event.timeMicros
        let seconds = Self.floorSeconds(t)
        let direction = event.direction ?? .both
        // Residents only: a night guard's shift is no concern of 以房管人.
        let resident = event.role?.isResident ?? false
        let late = direction == .in && resident && isLateNight(t, offset: event.utcOffset)

        let th = thresholds
        let retention = credentialRetentionDays
        if let houseID = event.houseID, !houseID.isEmpty {
            let day = Int32(clamping: Self.floorDiv(seconds + Int64(event.utcOffset), Self.secondsPerDay))
            let at = UInt32(clamping: seconds)
            var crowdedCount: Int?
            Self.update(&houses[houseID, default: HouseState()]) { h in
                h.dirty = true
                if direction != .both { Self.addPassage(&h.days, day: day, entry: direction == .in) }
                if event.role == .visitor {
                    let horizon = UInt32(clamping: seconds - Int64(AnalyticsThresholds.dayWindow) * Self.secondsPerDay)
                    Self.upsert(&h.visitors, key: Self.hash(Self.visitorKey(event)), at: at, cap: AnalyticsThresholds.visitorCap, horizon: horizon)
                } else if resident || event.role == nil {
                    // Residents' cards, PINs and plates, and the household's cars (no role);
                    // staff bound to the house (a management office) are not its occupants.
                    let horizon = UInt32(clamping: seconds - Int64(retention) * Self.secondsPerDay)
                    Self.upsert(&h.credentials, key: Self.hash(Self.credentialKey(event)), at: at, cap: th.credentialCap, horizon: horizon)
                    crowdedCount = h.credentials.count > th.distinctCredentialsMax
                        ? Self.count(h.credentials, after: seconds - Int64(th.distinctCredentialsDays) * Self.secondsPerDay) : nil
                }
            }
            if let n = crowdedCount, n > th.distinctCredentialsMax {
                fire(crowded(houseID, count: n, since: t))
            }
        }

        unsaved = true
        guard let personID = event.personID, !personID.isEmpty else { return }
        let portal = intern(event.portal ?? "")
        var lateCount = 0
        var lateSince: Int64 = 0
        var previousHouse = ""
        var inForce: UInt8 = 0
        Self.update(&persons[personID, default: PersonState()]) { p in
            previousHouse = p.houseID
            inForce = p.flags
            p.flags |= Self.dirtyFlag
            p.seenMicros = t
            p.portal = portal
            p.direction = direction
            p.houseID = event.houseID ?? ""
            if late {
                if let last = p.lateNight.last, t >= last, t - last < AnalyticsThresholds.lateNightMergeMicros {
                    // The same return: gate, then building door.
                } else {
                    p.lateNight.append(t)
                    if p.lateNight.count > th.lateNightEntries { p.lateNight.removeFirst(p.lateNight.count - th.lateNightEntries) }
                }
                let window = Int64(th.lateNightDays) * 86_400_000_000
                let inWindow = p.lateNight.filter { t - $0 < window }
                lateCount = inWindow.count
                if lateCount >= th.lateNightEntries { lateSince = inWindow[th.lateNightEntries - 1] }
            }
        }
        // What this passage resolves ends now.
        if inForce & Self.flag(.aloneNotSeen) != 0, let house = roster.livesAlone(personID) {
            clear(Indicator.key(.aloneNotSeen, house, personID), at: t)
        }
        if direction != .out, inForce & Self.flag(.outNotBack) != 0 {
            clear(Indicator.key(.outNotBack, personHouse(personID, fallback: previousHouse), personID), at: t)
        }
        if late, lateCount >= th.lateNightEntries, inForce & Self.flag(.lateNight) == 0 {
            fire(lateNightIndicator(personID, house: personHouse(personID, fallback: event.houseID ?? ""), count: lateCount, since: lateSince))
        }
    }

    /// Checks every condition at `now` (µs): fires what holds and is not yet in force, clears what
    /// no longer holds, and drops day buckets and entries that have aged out.
    public mutating func evaluate(now: Int64) {
        let nowSeconds = Self.floorSeconds(now)
        // Keys of what holds now, and the indicators to raise (built only when not yet in force).
        var holds: Set<String> = []
        var raise: [Indicator] = []

        let aloneLimit = Int64(thresholds.aloneNotSeenHours) * Self.microsPerHour
        for (personID, house) in roster.alone where roster.watched(personID, at: nowSeconds) {
            let state = persons[personID]
            let base: Int64
            if let state, state.seen {
                base = state.seenMicros
            } else if let state, state.knownSince != .min {
                base = state.knownSince
            } else {
                Self.update(&persons[personID, default: PersonState()]) { p in
                    p.knownSince = now
                    p.flags |= Self.dirtyFlag
                }
                unsaved = true
                continue
            }
            guard now - base >= aloneLimit else { continue }
            let key = Indicator.key(.aloneNotSeen, house, personID)
            holds.insert(key)
            if active[key] == nil {
                raise.append(Indicator(kind: .aloneNotSeen, houseID: house, personID: personID, sinceMicros: base + aloneLimit, detail: [
                    ("last_seen", state.flatMap { $0.seen ? .string(ISO8601.format(micros: $0.seenMicros, zone: zone)) : nil } ?? .null),
                    ("threshold_hours", .int(thresholds.aloneNotSeenHours)),
                ]))
            }
        }

        let outLimit = Int64(thresholds.outNotBackHours) * Self.microsPerHour
        let lateWindow = Int64(thresholds.lateNightDays) * 86_400_000_000
        for (personID, p) in persons {
            if p.seen, p.direction == .out, now - p.seenMicros >= outLimit,
               roster.residentHouse(personID) != nil, roster.watched(personID, at: nowSeconds) {
                let house = personHouse(personID, fallback: p.houseID)
                let key = Indicator.key(.outNotBack, house, personID)
                holds.insert(key)
                if active[key] == nil {
                    raise.append(Indicator(kind: .outNotBack, houseID: house, personID: personID, sinceMicros: p.seenMicros + outLimit, detail: [
                        ("last_seen", .string(ISO8601.format(micros: p.seenMicros, zone: zone))),
                        ("portal", .string(portalName(p.portal))), ("threshold_hours", .int(thresholds.outNotBackHours)),
                    ]))
                }
            }
            if p.lateNight.count >= thresholds.lateNightEntries {
                let inWindow = p.lateNight.filter { now - $0 < lateWindow }
                if inWindow.count >= thresholds.lateNightEntries {
                    let house = personHouse(personID, fallback: p.houseID)
                    let key = Indicator.key(.lateNight, house, personID)
                    holds.insert(key)
                    if active[key] == nil {
                        raise.append(lateNightIndicator(personID, house: house, count: inWindow.count, since: inWindow[thresholds.lateNightEntries - 1]))
                    }
                }
            }
        }

        let credentialsAfter = nowSeconds - Int64(thresholds.distinctCredentialsDays) * Self.secondsPerDay
        for (houseID, h) in houses where h.credentials.count > thresholds.distinctCredentialsMax {
            let n = Self.count(h.credentials, after: credentialsAfter)
            if n > thresholds.distinctCredentialsMax {
                let key = Indicator.key(.crowdedHouse, houseID, nil)
                holds.insert(key)
                if active[key] == nil { raise.append(crowded(houseID, count: n, since: now)) }
            }
        }

        for key in active.keys.filter({ !holds.contains($0) }).sorted() { clear(key, at: now) }
        for indicator in raise.sorted(by: { $0.key < $1.key }) { fire(indicator) }
        prune(now: now)
    }

    /// The indicator changes since the last call, in the order they happened.
    public mutating func takeChanges() -> [IndicatorChange] {
        defer { pending.removeAll() }
        return pending
    }

    /// Replaces the roster facts (after a roster change); people and houses no longer on it are
    /// forgotten, and their indicators clear at the next `evaluate`.
    public mutating func setRoster(_ roster: AnalyticsRoster) {
        self.roster = roster
        for id in persons.keys.filter({ !roster.known($0) }) {
            persons[id] = nil
            removedPersons.insert(id)
            unsaved = true
        }
        for id in houses.keys.filter({ roster.house($0) == nil }) {
            houses[id] = nil
            removedHouses.insert(id)
            unsaved = true
        }
    }

    // MARK: Reading

    /// The summary of one house at `now` (µs), nil when the roster has no such house.
    public func summary(house id: String, now: Int64) -> HouseSummary? {
        guard let house = roster.house(id) else { return nil }
        let nowSeconds = Self.floorSeconds(now)
        let today = Self.floorDiv(nowSeconds + Int64(zone.offset(at: nowSeconds)), Self.secondsPerDay)
        let state = houses[id] ?? HouseState()
        var days: [HouseSummary.Day] = []
        for d in (today - Int64(AnalyticsThresholds.dayWindow) + 1)...today {
            let bucket = state.days.first { Int64($0.day) == d }
            days.append(.init(date: CivilDate(daysSinceEpoch: d), entries: Int(bucket?.entries ?? 0), exits: Int(bucket?.exits ?? 0)))
        }
        let residents = roster.members(ofHouse: id).map { m -> HouseSummary.Resident in
            let seen = persons[m.personID].flatMap { p in
                p.seen ? HouseSummary.LastSeen(micros: p.seenMicros, portal: portalName(p.portal), direction: p.direction) : nil
            }
            return .init(personID: m.personID, role: m.role, livesAlone: roster.livesAlone(m.personID) != nil, lastSeen: seen)
        }
        return HouseSummary(
            house: house, residents: residents, days: days,
            distinctVisitors30d: Self.count(state.visitors, after: nowSeconds - Int64(AnalyticsThresholds.dayWindow) * Self.secondsPerDay),
            distinctCredentials7d: Self.count(state.credentials, after: nowSeconds - 7 * Self.secondsPerDay),
            indicators: activeIndicators.filter { $0.houseID == id })
    }

    /// The indicators in force, oldest first.
    public var activeIndicators: [Indicator] {
        active.values.sorted { ($0.sinceMicros, $0.key) < ($1.sinceMicros, $1.key) }
    }

    /// How much state is held, for tests and metrics.
    public struct Footprint: Sendable, Equatable {
        public var people = 0
        public var houses = 0
        public var dayBuckets = 0
        public var maxDayBuckets = 0
        public var visitorEntries = 0
        public var credentialEntries = 0
        public var lateNightEntries = 0
    }

    public var footprint: Footprint {
        var f = Footprint()
        f.people = persons.count
        f.houses = houses.count
        for h in houses.values {
            f.dayBuckets += h.days.count
            f.maxDayBuckets = max(f.maxDayBuckets, h.days.count)
            f.visitorEntries += h.visitors.count
            f.credentialEntries += h.credentials.count
        }
        for p in persons.values { f.lateNightEntries += p.lateNight.count }
        return f
    }

    // MARK: Indicators

    mutating func fire(_ indicator: Indicator) {
        guard active[indicator.key] == nil else { return }
        active[indicator.key] = indicator
        if let person = indicator.personID { persons[person]?.flags |= Self.flag(indicator.kind) }
        dirtyIndicators.insert(indicator.key)
        unsaved = true
        pending.append(.fired(indicator))
    }

    mutating func clear(_ key: String, at micros: Int64) {
        guard let indicator = active.removeValue(forKey: key) else { return }
        if let person = indicator.personID { persons[person]?.flags &= ~Self.flag(indicator.kind) }
        dirtyIndicators.insert(key)
        unsaved = true
        pending.append(.cleared(indicator, atMicros: micros))
    }

    func crowded(_ houseID: String, count: Int, since: Int64) -> Indicator {
        Indicator(kind: .crowdedHouse, houseID: houseID, personID: nil, sinceMicros: since, detail: [
            ("distinct_credentials", .int(count)), ("days", .int(thresholds.distinctCredentialsDays)),
            ("threshold", .int(thresholds.distinctCredentialsMax)),
        ])
    }

    func lateNightIndicator(_ personID: String, house: String, count: Int, since: Int64) -> Indicator {
        Indicator(kind: .lateNight, houseID: house, personID: personID, sinceMicros: since, detail: [
            ("entries", .int(count)), ("days", .int(thresholds.lateNightDays)), ("window", .string(thresholds.lateNight.description)),
            ("threshold", .int(thresholds.lateNightEntries)),
        ])
    }

    /// The house a person's indicators are keyed by: their first resident house on the roster,
    /// else the house of their last passage.
    func personHouse(_ personID: String, fallback: String) -> String {
        roster.residentHouse(personID) ?? fallback
    }

    // MARK: Helpers

    var credentialRetentionDays: Int { max(7, thresholds.distinctCredentialsDays) }

    func isLateNight(_ micros: Int64, offset: Int) -> Bool {
        let local = Self.floorSeconds(micros) + Int64(offset)
        let second = local - Self.floorDiv(local, Self.secondsPerDay) * Self.secondsPerDay
        return thresholds.lateNight.contains(minuteOfDay: Int(second / 60))
    }

    mutating func intern(_ portal: String) -> Int32 {
        if let i = portalIndex[portal] { return i }
        let i = Int32(portalNames.count)
        portalNames.append(portal)
        portalIndex[portal] = i
        return i
    }

    func portalName(_ index: Int32) -> String { index >= 0 && Int(index) < portalNames.count ? portalNames[Int(index)] : "" }

    /// Drops what has aged out of every window (memory bound).
    mutating func prune(now: Int64) {
        let nowSeconds = Self.floorSeconds(now)
        let today = Self.floorDiv(nowSeconds + Int64(zone.offset(at: nowSeconds)), Self.secondsPerDay)
        let oldestDay = today - Int64(AnalyticsThresholds.dayWindow) + 1
        let visitorHorizon = UInt32(clamping: nowSeconds - Int64(AnalyticsThresholds.dayWindow) * Self.secondsPerDay)
        let credentialHorizon = UInt32(clamping: nowSeconds - Int64(credentialRetentionDays) * Self.secondsPerDay)
        var stale: [String] = []
        for (id, h) in houses
        where (h.days.first.map { Int64($0.day) < oldestDay } ?? false)
            || h.visitors.contains(where: { $0.at <= visitorHorizon }) || h.credentials.contains(where: { $0.at <= credentialHorizon }) {
            stale.append(id)
        }
        for id in stale {
            Self.update(&houses[id, default: HouseState()]) { h in
                h.dirty = true
                h.days.removeAll { Int64($0.day) < oldestDay }
                h.visitors.removeAll { $0.at <= visitorHorizon }
                h.credentials.removeAll { $0.at <= credentialHorizon }
            }
            if houses[id]?.isEmpty == true {
                houses[id] = nil
                removedHouses.insert(id)
            }
            unsaved = true
        }
        let lateWindow = Int64(thresholds.lateNightDays) * 86_400_000_000
        var lateStale: [String] = []
        for (id, p) in persons where p.lateNight.first.map({ now - $0 >= lateWindow }) ?? false { lateStale.append(id) }
        for id in lateStale {
            Self.update(&persons[id, default: PersonState()]) { p in
                p.lateNight.removeAll { now - $0 >= lateWindow }
                p.flags |= Self.dirtyFlag
            }
            unsaved = true
        }
    }

    /// Mutates a dictionary value in place (no copy of its arrays).
    static func update<T>(_ value: inout T, _ body: (inout T) -> Void) { body(&value) }

    static func addPassage(_ days: inout [DayCount], day: Int32, entry: Bool) {
        func bump(_ i: Int) {
            if entry { days[i].entries = days[i].entries &+ (days[i].entries == .max ? 0 : 1) } else {
                days[i].exits = days[i].exits &+ (days[i].exits == .max ? 0 : 1)
            }
        }
        let window = Int32(AnalyticsThresholds.dayWindow)
        if let last = days.last, last.day == day {
            bump(days.count - 1)
        } else if days.last.map({ day > $0.day }) ?? true {
            days.append(DayCount(day: day, entries: entry ? 1 : 0, exits: entry ? 0 : 1))
            let cut = days.firstIndex { $0.day > day - window } ?? days.count
            if cut > 0 { days.removeFirst(cut) }
        } else if let last = days.last, day > last.day - window {
            // An older day (the clock was set back): counted where it belongs.
            let i = days.firstIndex { $0.day >= day } ?? days.count
            if i < days.count, days[i].day == day { bump(i) } else {
                days.insert(DayCount(day: day, entries: entry ? 1 : 0, exits: entry ? 0 : 1), at: i)
            }
        }
    }

    /// Records a use of `key` at `at`: updates its time, or adds it after dropping entries at or
    /// before `horizon` and, when full, the least recently used.
    static func upsert(_ list: inout [Seen], key: UInt32, at: UInt32, cap: Int, horizon: UInt32) {
        if let i = list.firstIndex(where: { $0.key == key }) {
            list[i].at = max(list[i].at, at)
            return
        }
        if list.count >= cap / 2 { list.removeAll { $0.at <= horizon } }
        if list.count >= cap, let oldest = list.indices.min(by: { list[$0].at < list[$1].at }) { list.remove(at: oldest) }
        list.append(Seen(key: key, at: at))
    }

    static func count(_ list: [Seen], after seconds: Int64) -> Int {
        let horizon = UInt32(clamping: seconds)
        return list.reduce(0) { $0 + ($1.at > horizon ? 1 : 0) }
    }

    /// A visitor: the person when the roster knows them, else the pass.
    static func visitorKey(_ e: AccessEvent) -> String {
        if let p = e.personID { return "person:" + p }
        for (key, value) in e.detail where key == "visitor_pass" { if let pass = value.stringValue { return "pass:" + pass } }
        return "credential:\(e.credentialKind?.rawValue ?? "?"):\(e.credential ?? "")"
    }

    /// A credential as used: kind and value; a PIN (never recorded) stands for its person.
    static func credentialKey(_ e: AccessEvent) -> String {
        "\(e.credentialKind?.rawValue ?? "?"):\(e.credential ?? "person:" + (e.personID ?? ""))"
    }

    /// FNV-1a, 32 bits: stable across runs, so hashes can be persisted.
    static func hash(_ text: String) -> UInt32 {
        var h: UInt32 = 2_166_136_261
        for byte in text.utf8 {
            h ^= UInt32(byte)
            h = h &* 16_777_619
        }
        return h
    }

    static func floorSeconds(_ micros: Int64) -> Int64 { floorDiv(micros, 1_000_000) }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }
}

// MARK: - Snapshot

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

// MARK: - Thresholds, roster facts, indicators, summaries

/// When each indicator fires (`[analytics]` in the site TOML).
public struct AnalyticsThresholds: Sendable, Equatable {
    /// A person living alone not seen (no granted passage) for this long: 关爱独居老人.
    public var aloneNotSeenHours: Int = 48
    /// A resident whose last passage was out, not back for this long: 外出未归.
    public var outNotBackHours: Int = 72
    /// The window over which distinct credentials of one house are counted (群租 suspicion).
    public var distinctCredentialsDays: Int = 7
    /// More distinct credentials than this within the window fires the indicator.
    public var distinctCredentialsMax: Int = 8
    /// Local wall-clock window counted as late night, minutes since midnight; `start > end`
    /// crosses midnight (e.g. 23:00-05:00).
    public var lateNight: LateNightWindow = LateNightWindow(startMinute: 0, endMinute: 300)
    /// This many late-night entries within `lateNightDays` fires the indicator.
    public var lateNightEntries: Int = 3
    public var lateNightDays: Int = 7

    public init() {}

    /// Holds per house at most this many distinct credentials (at least one more than the
    /// threshold, so the indicator can always fire); counts saturate there.
    public var credentialCap: Int { max(64, distinctCredentialsMax + 1) }
    /// Distinct visitors kept per house over 30 days; the count saturates there.
    public static let visitorCap = 128
    /// Days of per-day entry and exit counts kept per house.
    public static let dayWindow = 30
    /// Late-night entries closer than this to the previous counted one are one return (the
    /// community gate and the building door a minute later are the same coming home).
    public static let lateNightMergeMicros: Int64 = 30 * 60 * 1_000_000
}

/// A span of the local day in minutes, `[start, end)`, which may cross midnight.
public struct LateNightWindow: Sendable, Equatable, CustomStringConvertible {
    public var startMinute: Int
    public var endMinute: Int

    public init(startMinute: Int, endMinute: Int) {
        self.startMinute = startMinute
        self.endMinute = endMinute
    }

    /// Parses `HH:MM-HH:MM` (24:00 allowed as the end; a start after the end crosses midnight).
    public static func parse(_ text: String) -> LateNightWindow? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let start = clock(parts[0]), let end = clock(parts[1]), start != end, start < 1440 else { return nil }
        return LateNightWindow(startMinute: start, endMinute: end)
    }

    static func clock(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard bytes.count == 5, bytes[2] == UInt8(ascii: ":"),
              let h = CivilDate.digits(bytes[0..<2]), let m = CivilDate.digits(bytes[3..<5]), m < 60,
              h < 24 || (h == 24 && m == 0) else { return nil }
        return h * 60 + m
    }

    public func contains(minuteOfDay m: Int) -> Bool {
        startMinute < endMinute ? (m >= startMinute && m < endMinute) : (m >= startMinute || m < endMinute)
    }

    public var description: String { "\(MinuteRange.clock(startMinute))-\(MinuteRange.clock(endMinute))" }
}

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
    private(set) var alone: [String: String] = [:]

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
    func watched(_ personID: String, at now: UnixSeconds) -> Bool {
        guard let p = personIndex(personID) else { return false }
        return personInfo[p].active && now < personInfo[p].validUntil
    }

    func known(_ personID: String) -> Bool { personIndex(personID) != nil }

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

/// The indicators the controller raises.
public enum IndicatorKind: String, CaseIterable, Sendable, Codable {
    case aloneNotSeen = "alone_not_seen"
    case outNotBack = "out_not_back"
    case crowdedHouse = "crowded_house"
    case lateNight = "late_night"

    /// The reason of the `alarm` event raised when it fires.
    public var alarmReason: EventReason {
        switch self {
        case .aloneNotSeen: return .indicatorAloneNotSeen
        case .outNotBack: return .indicatorOutNotBack
        case .crowdedHouse: return .indicatorCrowdedHouse
        case .lateNight: return .indicatorLateNight
        }
    }
}

/// An indicator in force. Its key (kind, house, person) is stable: it fires once and clears once.
public struct Indicator: Sendable, Hashable {
    public var kind: IndicatorKind
    public var houseID: String
    public var personID: String?
    /// When the condition began (µs): the moment the threshold was crossed.
    public var sinceMicros: Int64
    /// Facts for the platform: last seen, counts, thresholds.
    public var detail: [(String, JSON)]

    public init(kind: IndicatorKind, houseID: String, personID: String?, sinceMicros: Int64, detail: [(String, JSON)] = []) {
        self.kind = kind
        self.houseID = houseID
        self.personID = personID
        self.sinceMicros = sinceMicros
        self.detail = detail
    }

    /// `KIND:HOUSE:PERSON` (roster ids never contain `:`); the person part is empty for house indicators.
    public var key: String { Self.key(kind, houseID, personID) }

    static func key(_ kind: IndicatorKind, _ house: String, _ person: String?) -> String {
        "\(kind.rawValue):\(house):\(person ?? "")"
    }

    /// As the HTTP API serves it.
    public func json(zone: ZoneRules) -> JSON {
        .object([
            ("key", .string(key)), ("kind", .string(kind.rawValue)), ("house_id", .string(houseID)),
            ("person_id", .string(personID)), ("since", .string(ISO8601.format(micros: sinceMicros, zone: zone))),
            ("detail", .object(detail)),
        ])
    }

    public static func == (a: Indicator, b: Indicator) -> Bool {
        a.key == b.key && a.sinceMicros == b.sinceMicros && JSON.object(a.detail) == JSON.object(b.detail)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(key) }
}

/// An indicator starting or ending; the service turns each into an event.
public enum IndicatorChange: Sendable, Equatable {
    case fired(Indicator)
    /// Ended at `atMicros` (µs): the condition no longer holds.
    case cleared(Indicator, atMicros: Int64)

    public var indicator: Indicator {
        switch self {
        case .fired(let i), .cleared(let i, _): return i
        }
    }

    /// The event for the log: an `alarm` (`indicator_KIND`) when it fires, a `system`
    /// `indicator_cleared` when it ends, with the house, the person and the detail.
    public func event(zone: ZoneRules, nowMicros: Int64) -> AccessEvent {
        let i = indicator
        var detail: [(String, JSON)] = [("indicator", .string(i.key)), ("kind", .string(i.kind.rawValue)),
                                        ("since", .string(ISO8601.format(micros: i.sinceMicros, zone: zone)))]
        detail += i.detail.filter { pair in !detail.contains { $0.0 == pair.0 } }
        let offset = zone.offset(at: Self.floorSeconds(nowMicros))
        switch self {
        case .fired:
            return AccessEvent(timeMicros: nowMicros, utcOffset: offset, type: .alarm, personID: i.personID, houseID: i.houseID,
                               reason: i.kind.alarmReason, detail: detail)
        case .cleared(_, let at):
            detail.append(("cleared_at", .string(ISO8601.format(micros: at, zone: zone))))
            return AccessEvent(timeMicros: nowMicros, utcOffset: offset, type: .system, personID: i.personID, houseID: i.houseID,
                               reason: .indicatorCleared, detail: detail)
        }
    }

    static func floorSeconds(_ micros: Int64) -> Int64 { micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000 }
}

/// One house as the API serves it: who lives there, when each was last seen, passages per day
/// over the last 30 days, distinct visitors and credentials, indicators in force.
public struct HouseSummary: Sendable {
    public struct Resident: Sendable {
        public var personID: String
        public var role: Role
        public var livesAlone: Bool
        public var lastSeen: LastSeen?
    }

    public struct LastSeen: Sendable, Equatable {
        public var micros: Int64
        public var portal: String
        public var direction: PortalDirection

        public init(micros: Int64, portal: String, direction: PortalDirection) {
            self.micros = micros
            self.portal = portal
            self.direction = direction
        }
    }

    public struct Day: Sendable, Equatable {
        public var date: CivilDate
        public var entries: Int
        public var exits: Int

        public init(date: CivilDate, entries: Int, exits: Int) {
            self.date = date
            self.entries = entries
            self.exits = exits
        }
    }

    public var house: House
    public var residents: [Resident]
    /// The last 30 local days, oldest first, today last.
    public var days: [Day]
    public var entries30d: Int { days.reduce(0) { $0 + $1.entries } }
    public var exits30d: Int { days.reduce(0) { $0 + $1.exits } }
    public var distinctVisitors30d: Int
    /// Distinct credentials (cards, PINs by person, plates) used for the house in the last 7 days.
    public var distinctCredentials7d: Int
    public var indicators: [Indicator]

    public func json(zone: ZoneRules) -> JSON {
        .object([
            ("house_id", .string(house.id)), ("building", .string(house.building)), ("unit", .string(house.unit)),
            ("floor", .string(house.floor)), ("room", .string(house.room)),
            ("residents", .array(residents.map { r in
                .object([
                    ("person_id", .string(r.personID)), ("role", .string(r.role.rawValue)), ("lives_alone", .bool(r.livesAlone)),
                    ("last_seen", r.lastSeen.map { seen in
                        .object([("time", .string(ISO8601.format(micros: seen.micros, zone: zone))), ("portal", .string(seen.portal)),
                                 ("direction", .string(seen.direction == .both ? nil : seen.direction.rawValue))])
                    } ?? .null),
                ])
            })),
            ("entries_30d", .int(entries30d)), ("exits_30d", .int(exits30d)), ("balance_30d", .int(entries30d - exits30d)),
            ("days", .array(days.map { .object([("date", .string($0.date.description)), ("entries", .int($0.entries)), ("exits", .int($0.exits))]) })),
            ("distinct_visitors_30d", .int(distinctVisitors30d)), ("distinct_credentials_7d", .int(distinctCredentials7d)),
            ("indicators", .array(indicators.map { $0.json(zone: zone) })),
        ])
    }
}

/// The changes to persist since the last snapshot: rows of `key → value` text to write, keys to
/// delete, and the serial of the last event applied (stored with them, in one transaction).
public struct AnalyticsSnapshot: Sendable {
    public var appliedSerial: Int64
    public var upserts: [(key: String, value: String)]
    public var deletions: [String]

    public init(appliedSerial: Int64, upserts: [(key: String, value: String)], deletions: [String]) {
        self.appliedSerial = appliedSerial
        self.upserts = upserts
        self.deletions = deletions
    }

    public var isEmpty: Bool { upserts.isEmpty && deletions.isEmpty }
}
