import AccessCore

/// 以房管人 analytics, computed incrementally: fed one durable event at a time (in serial order)
/// and the roster's facts, never rescanning the log.
///
/// Per house it keeps entries and exits per local day for the last 30 days, the distinct visitors
/// of 30 days and the distinct credentials of `max(7, distinct_credentials_days)` days (capped
/// lists of 32-bit key hashes with the last time each was used); per person the last granted
/// passage (time, portal, direction) and the recent late-night entries. From these its rules
/// (`AloneNotSeenRule`, `OutNotBackRule`, `CrowdedHouseRule`, `LateNightRule`: one per
/// `IndicatorKind`) raise indicators, each with a stable key (kind, house, person) so it fires
/// once and clears once.
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
    public internal(set) var appliedSerial: Int64 = 0

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
                fire(CrowdedHouseRule.indicator(self, houseID, count: n, since: t))
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
            if late { (lateCount, lateSince) = LateNightRule.count(&p.lateNight, at: t, thresholds: th) }
        }
        // What this passage resolves ends now (the flags say whether anything is in force).
        if inForce & Self.flag(.aloneNotSeen) != 0 { AloneNotSeenRule.passage(&self, personID: personID, at: t) }
        if inForce & Self.flag(.outNotBack) != 0 {
            OutNotBackRule.passage(&self, personID: personID, direction: direction, previousHouse: previousHouse, at: t)
        }
        if late, lateCount >= th.lateNightEntries, inForce & Self.flag(.lateNight) == 0 {
            fire(LateNightRule.indicator(self, personID, house: personHouse(personID, fallback: event.houseID ?? ""), count: lateCount, since: lateSince))
        }
    }

    /// Every indicator kind's rule, asked in turn by `evaluate(now:)`.
    static let rules: [any IndicatorRule.Type] = [AloneNotSeenRule.self, OutNotBackRule.self, LateNightRule.self, CrowdedHouseRule.self]

    /// Checks every condition at `now` (µs): fires what holds and is not yet in force, clears what
    /// no longer holds, and drops day buckets and entries that have aged out.
    public mutating func evaluate(now: Int64) {
        // Keys of what holds now, and the indicators to raise (built only when not yet in force).
        var holds: Set<String> = []
        var raise: [Indicator] = []
        for rule in Self.rules { rule.evaluate(&self, now: now, holds: &holds, raise: &raise) }
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
