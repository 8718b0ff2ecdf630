import AccessAnalytics
import AccessCore
import AccessTestSupport
import Glibc
import Testing

/// A community whose events are made as the controller makes them: the real decision engine on a
/// roster index, then `AccessEvent(decision:…)`, numbered in order like the log numbers them.
struct AnalyticsCommunity {
    static let zone = Fixtures.shanghai
    static let secret: [UInt8] = Array("analytics-secret-0123456789abcdef".utf8)
    let policy: AccessPolicy
    let roster: AnalyticsRoster
    let houses: [House]
    let people: [Person]
    var serial: Int64 = 0

    /// H-ALONE (B01): P-ALONE owner, alone. H-FAM (B01): P-OWN owner, P-FAM family, P-TEN tenant,
    /// visitor passes V1, V2. H-CROWD (B02): 12 tenants, cards 3000…3011. H-NEW (B02): P-NEW owner,
    /// never seen. Cards: P-ALONE 1001, P-OWN 1002, P-FAM 1003, P-TEN 1004; P-OWN's PIN 135790.
    init(extraPeople: [Person] = []) {
        let rules = Fixtures.rules(zone: Self.zone)
        houses = [House(id: "H-ALONE", building: "B01", unit: "1", floor: "3", room: "301"),
                  House(id: "H-FAM", building: "B01", unit: "1", floor: "4", room: "401"),
                  House(id: "H-CROWD", building: "B02", unit: "2", floor: "1", room: "101"),
                  House(id: "H-NEW", building: "B02", unit: "2", floor: "2", room: "201")]
        var people = [
            Person(id: "P-ALONE", houses: [HouseBinding(houseID: "H-ALONE", role: .owner)]),
            Person(id: "P-OWN", houses: [HouseBinding(houseID: "H-FAM", role: .owner)]),
            Person(id: "P-FAM", houses: [HouseBinding(houseID: "H-FAM", role: .family)]),
            Person(id: "P-TEN", houses: [HouseBinding(houseID: "H-FAM", role: .tenant)]),
            Person(id: "P-NEW", houses: [HouseBinding(houseID: "H-NEW", role: .owner)]),
        ]
        people += (0..<12).map { Person(id: "P-C\($0)", houses: [HouseBinding(houseID: "H-CROWD", role: .tenant)]) }
        people += extraPeople
        self.people = people
        var b = RosterIndex.Builder(rules: rules)
        for h in houses { b.addHouse(id: h.id, building: h.building) }
        for p in people { b.addPerson(p) }
        for (i, id) in ["P-ALONE", "P-OWN", "P-FAM", "P-TEN"].enumerated() {
            b.addCredential(Credential(kind: .card, value: String(1001 + i), owner: .person(id)))
        }
        b.addCredential(Credential(kind: .pin, value: Fixtures.pin("135790"), owner: .person("P-OWN")))
        b.addCredential(Credential(kind: .plate, value: "京A12345", owner: .house("H-FAM")))
        for i in 0..<12 { b.addCredential(Credential(kind: .card, value: String(3000 + i), owner: .person("P-C\(i)"))) }
        let start = Fixtures.at("2026-01-01T00:00")
        for pass in ["V1", "V2"] {
            b.addVisitorPass(VisitorPass(id: pass, houseID: "H-FAM", visitorName: "v", validFrom: start, validUntil: start + 400 * 86_400, maxUses: 1000))
        }
        policy = AccessPolicy(rules: rules, roster: b.finish(), passCodes: VisitorPassCode(secret: Self.secret), pinKey: Fixtures.pinKey)
        roster = Self.analyticsRoster(houses: houses, people: people)
    }

    static func analyticsRoster(houses: [House], people: [Person]) -> AnalyticsRoster {
        AnalyticsRoster(
            houses: houses,
            members: people.flatMap { p in p.houses.map { AnalyticsRoster.Member(houseID: $0.houseID, personID: p.id, role: $0.role) } },
            people: Dictionary(uniqueKeysWithValues: people.map {
                ($0.id, AnalyticsRoster.PersonFacts(active: $0.status == .active, validUntil: $0.validUntil, livesAlone: $0.livesAlone))
            }))
    }

    static func micros(_ local: String) -> Int64 { Fixtures.at(local, zone: zone) * 1_000_000 }

    /// The event the controller logs for `credential` at `portal` at local time `local`.
    mutating func pass(_ credential: PresentedCredential, _ portal: String, _ local: String) -> AccessEvent {
        pass(credential, portal, micros: Self.micros(local))
    }

    mutating func pass(_ credential: PresentedCredential, _ portal: String, micros: Int64) -> AccessEvent {
        let request = DecisionRequest(portal: portal, credential: credential, at: micros / 1_000_000)
        let decision = try! policy.decide(request)  // allowed: every portal used here is in the fixture
        var event = AccessEvent(decision: decision, presented: credential, portal: policy.rules.portal(portal)!,  // allowed: as above
                                timeMicros: micros, zone: Self.zone)
        serial += 1
        event.serial = serial
        return event
    }

    func qr(_ pass: String) -> PresentedCredential {
        .qr(VisitorPassCode(secret: Self.secret).encode(passID: pass, expires: Fixtures.at("2027-12-31T00:00")))
    }

    func engine(_ thresholds: AnalyticsThresholds = AnalyticsThresholds()) -> HouseAnalytics {
        HouseAnalytics(thresholds: thresholds, zone: Self.zone, roster: roster)
    }
}

extension HouseAnalytics {
    mutating func record(_ events: [AccessEvent]) { for e in events { record(e) } }
}

@Suite("以房管人 analytics engine")
struct AnalyticsEngineTests {
    static let hour: Int64 = 3_600_000_000
    static let day: Int64 = 24 * hour

    @Test func summaryCountsPassagesLastSeenAndDistinctVisitors() throws {
        var c = AnalyticsCommunity()
        var a = c.engine()
        a.record([
            c.pass(.card(1002), "gate-in", "2026-11-22T08:00"),   // P-OWN in
            c.pass(.card(1002), "b01-door", "2026-11-22T08:01"),  // in (building door)
            c.pass(.card(1002), "gate-out", "2026-11-23T09:00"),  // out
            c.pass(.card(1003), "gate-in", "2026-11-23T10:00"),   // P-FAM in
            c.pass(.pin("135790"), "gate-in", "2026-11-23T11:00"),
            c.pass(.plate("京A12345"), "lane-in", "2026-11-23T12:00"),  // the household car
            c.pass(.card(1004), "gym", "2026-11-23T13:00"),       // both-way: seen, not counted
            c.pass(.card(1003), "b02-door", "2026-11-23T14:00"),  // denied (no right): nothing
            c.pass(c.qr("V1"), "gate-in", "2026-11-23T15:00"),
            c.pass(c.qr("V1"), "gate-out", "2026-11-23T16:00"),
            c.pass(c.qr("V2"), "gate-in", "2026-11-23T17:00"),
            c.pass(.card(9999), "gate-in", "2026-11-23T18:00"),   // unknown card: nothing
        ])
        let now = AnalyticsCommunity.micros("2026-11-23T20:00")
        let s = try #require(a.summary(house: "H-FAM", now: now))
        #expect(s.house.room == "401" && s.house.building == "B01")
        #expect(s.residents.map(\.personID) == ["P-OWN", "P-FAM", "P-TEN"])
        #expect(s.residents.map(\.role) == [.owner, .family, .tenant])
        let own = try #require(s.residents[0].lastSeen)
        #expect(own == .init(micros: AnalyticsCommunity.micros("2026-11-23T11:00"), portal: "gate-in", direction: .in), "the PIN is P-OWN's")
        #expect(s.residents[1].lastSeen?.portal == "gate-in", "a denied swipe is not a passage")
        #expect(s.residents[2].lastSeen?.direction == .both)
        #expect(s.days.count == 30 && s.days.last?.date == CivilDate(year: 2026, month: 11, day: 23))
        #expect(s.days[28] == .init(date: CivilDate(year: 2026, month: 11, day: 22)!, entries: 2, exits: 0))
        #expect(s.days[29] == .init(date: CivilDate(year: 2026, month: 11, day: 23)!, entries: 5, exits: 2))
        #expect(s.entries30d == 7 && s.exits30d == 2)
        #expect(s.distinctVisitors30d == 2, "V1 twice, V2 once")
        #expect(s.distinctCredentials7d == 5, "cards 1002, 1003, 1004, P-OWN's PIN, the household plate")
        #expect(a.summary(house: "NOPE", now: now) == nil)
        let alone = try #require(a.summary(house: "H-ALONE", now: now))
        #expect(alone.residents.map(\.livesAlone) == [true] && alone.residents[0].lastSeen == nil && alone.entries30d == 0)

        let json = s.json(zone: AnalyticsCommunity.zone)
        #expect(json["entries_30d"] == 7 && json["exits_30d"] == 2 && json["balance_30d"] == 5)
        #expect(json["residents"]?.arrayValue?.first?["last_seen"]?["time"] == "2026-11-23T11:00:00.000000+08:00")
        #expect(json["residents"]?.arrayValue?.last?["last_seen"]?["direction"] == .null, "both-way portals have no direction")
        #expect(json["days"]?.arrayValue?.count == 30)
        #expect(json["distinct_visitors_30d"] == 2 && json["distinct_credentials_7d"] == 5)
    }

    @Test func aloneNotSeenFiresOnceAndClearsWhenSeen() throws {
        var c = AnalyticsCommunity()
        var a = c.engine()
        let t = AnalyticsCommunity.micros("2026-11-20T08:00")
        a.record(c.pass(.card(1001), "gate-out", micros: t))
        a.evaluate(now: t)  // P-NEW (never seen) is watched from now
        a.evaluate(now: t + 47 * Self.hour)
        #expect(a.takeChanges().isEmpty)
        a.evaluate(now: t + 48 * Self.hour)
        let fired = a.takeChanges()
        #expect(fired.count == 2)
        let alone = try #require(fired.first { $0.indicator.personID == "P-ALONE" })
        guard case .fired(let i) = alone else { Issue.record("not fired: \(alone)"); return }
        #expect(i.kind == .aloneNotSeen && i.houseID == "H-ALONE" && i.key == "alone_not_seen:H-ALONE:P-ALONE")
        #expect(i.sinceMicros == t + 48 * Self.hour)
        #expect(fired.contains { $0 == .fired(Indicator(kind: .aloneNotSeen, houseID: "H-NEW", personID: "P-NEW",
                                                          sinceMicros: t + 48 * Self.hour, detail: $0.indicator.detail)) },
                "never seen: counted from when the analytics first watched P-NEW")
        a.evaluate(now: t + 60 * Self.hour)
        #expect(a.takeChanges().isEmpty, "fires once")
        #expect(a.activeIndicators.count == 2)
        // Still out (72 h not reached): not also out_not_back yet; P-ALONE comes back.
        a.record(c.pass(.card(1001), "gate-in", micros: t + 61 * Self.hour))
        #expect(a.takeChanges() == [.cleared(i, atMicros: t + 61 * Self.hour)])
        a.evaluate(now: t + 62 * Self.hour)
        #expect(a.takeChanges().isEmpty)
        #expect(a.activeIndicators.map(\.personID) == ["P-NEW"])

        let event = IndicatorChange.fired(i).event(zone: AnalyticsCommunity.zone, nowMicros: t + 48 * Self.hour)
        #expect(event.type == .alarm && event.reason?.rawValue == "indicator_alone_not_seen")
        #expect(event.houseID == "H-ALONE" && event.personID == "P-ALONE")
        let cleared = IndicatorChange.cleared(i, atMicros: t).event(zone: AnalyticsCommunity.zone, nowMicros: t)
        #expect(cleared.type == .system && cleared.reason?.rawValue == "indicator_cleared")
        #expect(JSON.object(cleared.detail)["indicator"] == "alone_not_seen:H-ALONE:P-ALONE")
    }

    @Test func outNotBackFiresAndClearsOnTheWayBack() throws {
        var c = AnalyticsCommunity()
        var a = c.engine()
        let t = AnalyticsCommunity.micros("2026-11-20T08:00")
        a.record([c.pass(.card(1002), "gate-out", micros: t),                 // P-OWN out
                  c.pass(.card(1003), "gate-out", micros: t),                 // P-FAM out …
                  c.pass(.card(1003), "gate-in", micros: t + 5 * Self.hour)])  // … and back
        a.evaluate(now: t + 71 * Self.hour)
        #expect(!a.takeChanges().contains { $0.indicator.kind == .outNotBack })
        a.evaluate(now: t + 72 * Self.hour)
        let changes = a.takeChanges().filter { $0.indicator.kind == .outNotBack }
        #expect(changes.count == 1)
        guard case .fired(let i)? = changes.first else { Issue.record("\(changes)"); return }
        #expect(i.key == "out_not_back:H-FAM:P-OWN" && i.sinceMicros == t + 72 * Self.hour)
        #expect(JSON.object(i.detail)["portal"] == "gate-out")
        a.record(c.pass(.card(1002), "b01-door", micros: t + 80 * Self.hour))
        #expect(a.takeChanges() == [.cleared(i, atMicros: t + 80 * Self.hour)])
        a.evaluate(now: t + 200 * Self.hour)
        #expect(!a.takeChanges().contains { $0.indicator.kind == .outNotBack })
    }

    @Test func crowdedHouseFiresOnTheNinthCredentialAndClearsWhenTheyAgeOut() throws {
        var c = AnalyticsCommunity()
        var a = c.engine()
        let t = AnalyticsCommunity.micros("2026-11-20T08:00")
        for _ in 0..<20 { a.record(c.pass(.card(3000), "gate-in", micros: t)) }
        for i in 1..<8 { a.record(c.pass(.card(UInt64(3000 + i)), "gate-in", micros: t + Int64(i) * Self.hour)) }
        #expect(a.takeChanges().isEmpty, "8 distinct credentials is the limit, not over it")
        a.record(c.pass(.card(3008), "gate-in", micros: t + 8 * Self.hour))
        let fired = a.takeChanges()
        #expect(fired.count == 1)
        guard case .fired(let i)? = fired.first else { Issue.record("\(fired)"); return }
        #expect(i.key == "crowded_house:H-CROWD:" && i.personID == nil && i.sinceMicros == t + 8 * Self.hour)
        #expect(JSON.object(i.detail)["distinct_credentials"] == 9)
        a.record(c.pass(.card(3009), "gate-in", micros: t + 9 * Self.hour))
        #expect(a.takeChanges().isEmpty, "fires once")
        #expect(a.summary(house: "H-CROWD", now: t + 10 * Self.hour)?.distinctCredentials7d == 10)
        // A week on, the first uses leave the window: 9 (3001…3009) still over the limit, then 8.
        a.evaluate(now: t + 7 * Self.day + 30 * 60_000_000)
        #expect(a.takeChanges().isEmpty, "3000 has aged out, 9 remain")
        a.evaluate(now: t + 7 * Self.day + Self.hour)
        let cleared = a.takeChanges()
        #expect(cleared.count == 1 && cleared.first?.indicator.key == i.key)
        if case .cleared(_, let at)? = cleared.first { #expect(at == t + 7 * Self.day + Self.hour) } else { Issue.record("\(cleared)") }

        var configured = AnalyticsThresholds()
        configured.distinctCredentialsMax = 3
        configured.distinctCredentialsDays = 1
        var b = c.engine(configured)
        for i in 0..<4 { b.record(c.pass(.card(UInt64(3000 + i)), "gate-in", micros: t + Int64(i) * 2 * Self.day)) }
        #expect(b.takeChanges().isEmpty, "one a day over a one-day window")
        for i in 4..<8 { b.record(c.pass(.card(UInt64(3000 + i)), "gate-in", micros: t + 10 * Self.day)) }
        #expect(b.takeChanges().map(\.indicator.kind) == [.crowdedHouse])
    }

    @Test func lateNightEntriesFireAndClear() throws {
        var c = AnalyticsCommunity()
        var a = c.engine()
        for night in ["2026-11-20", "2026-11-21"] {
            a.record([c.pass(.card(1004), "gate-in", "\(night)T01:10"),
                      c.pass(.card(1004), "b01-door", "\(night)T01:12"),    // the same return
                      c.pass(.card(1004), "gate-out", "\(night)T02:00")])   // an exit: not an entry
        }
        a.record(c.pass(.card(1004), "gate-in", "2026-11-21T23:30"))       // not late night by default
        a.record(c.pass(.card(1004), "gate-in", "2026-11-22T05:00"))       // the window ends at 05:00
        #expect(a.takeChanges().isEmpty)
        a.record(c.pass(.card(1004), "gate-in", "2026-11-24T04:59"))
        let fired = a.takeChanges()
        guard case .fired(let i)? = fired.first, fired.count == 1 else { Issue.record("\(fired)"); return }
        #expect(i.key == "late_night:H-FAM:P-TEN" && i.sinceMicros == AnalyticsCommunity.micros("2026-11-24T04:59"))
        #expect(JSON.object(i.detail)["entries"] == 3 && JSON.object(i.detail)["window"] == "00:00-05:00")
        a.evaluate(now: AnalyticsCommunity.micros("2026-11-26T12:00"))
        #expect(!a.takeChanges().contains { $0.indicator.kind == .lateNight }, "three within the last 7 days")
        a.evaluate(now: AnalyticsCommunity.micros("2026-11-27T01:11"))
        let cleared = a.takeChanges().filter { $0.indicator.kind == .lateNight }
        #expect(cleared.count == 1, "the 20th's entry is more than 7 days old")
        if case .cleared? = cleared.first {} else { Issue.record("\(cleared)") }

        var crossing = AnalyticsThresholds()
        crossing.lateNight = try #require(LateNightWindow.parse("23:00-05:00"))
        crossing.lateNightEntries = 2
        var b = c.engine(crossing)
        b.record([c.pass(.card(1003), "gate-in", "2026-11-20T23:30"), c.pass(.card(1003), "gate-in", "2026-11-21T00:30")])
        #expect(b.takeChanges().map(\.indicator.key) == ["late_night:H-FAM:P-FAM"])
    }

    @Test func staffAreNotOccupants() throws {
        var a = AnalyticsCommunity().engine()
        let t = AnalyticsCommunity.micros("2026-11-20T02:00")  // late night
        for i in 0..<20 {
            // As the controller logs a granted card of staff bound to the house (a management office).
            a.record(AccessEvent(serial: Int64(i + 1), timeMicros: t + Int64(i) * Self.day / 4, utcOffset: 28_800, type: .access,
                                 portal: "gate-in", direction: .in, credentialKind: .card, credential: String(5000 + i % 10),
                                 personID: "S\(i % 2)", houseID: "H-CROWD", role: .staff, granted: true, reason: .granted))
        }
        a.evaluate(now: t + 5 * Self.day)
        #expect(a.takeChanges().isEmpty, "ten staff cards, night shifts: neither crowded nor late")
        let s = try #require(a.summary(house: "H-CROWD", now: t + 5 * Self.day))
        #expect(s.distinctCredentials7d == 0 && s.entries30d == 20)
    }

    @Test func lateNightWindowsParse() {
        #expect(LateNightWindow.parse("00:00-05:00") == LateNightWindow(startMinute: 0, endMinute: 300))
        #expect(LateNightWindow.parse("23:00-05:00")?.contains(minuteOfDay: 23 * 60 + 59) == true)
        #expect(LateNightWindow.parse("23:00-05:00")?.contains(minuteOfDay: 5 * 60) == false)
        #expect(LateNightWindow.parse("22:00-24:00")?.description == "22:00-24:00")
        for bad in ["", "0:00-05:00", "05:00-05:00", "24:00-05:00", "00:00-25:00", "00:00", "ab:cd-ef:gh"] {
            #expect(LateNightWindow.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func rosterChangesEndWhatNoLongerApplies() throws {
        var c = AnalyticsCommunity()
        var a = c.engine()
        let t = AnalyticsCommunity.micros("2026-11-20T08:00")
        a.record(c.pass(.card(1001), "gate-in", micros: t))
        a.evaluate(now: t)
        a.evaluate(now: t + 49 * Self.hour)
        #expect(a.activeIndicators.map(\.key) == ["alone_not_seen:H-ALONE:P-ALONE", "alone_not_seen:H-NEW:P-NEW"])
        // A second resident moves in: P-ALONE no longer lives alone; P-NEW is removed.
        var people = c.people.filter { $0.id != "P-NEW" }
        people.append(Person(id: "P-MATE", houses: [HouseBinding(houseID: "H-ALONE", role: .family)]))
        a.setRoster(AnalyticsCommunity.analyticsRoster(houses: c.houses, people: people))
        _ = a.takeChanges()
        a.evaluate(now: t + 50 * Self.hour)
        #expect(Set(a.takeChanges().map(\.indicator.key)) == ["alone_not_seen:H-ALONE:P-ALONE", "alone_not_seen:H-NEW:P-NEW"])
        #expect(a.activeIndicators.isEmpty)
        #expect(a.summary(house: "H-ALONE", now: t)?.residents.map(\.livesAlone) == [false, false])

        // Flagged lives_alone counts too, in a house with others; suspended people are not watched.
        var flagged = c.people
        flagged[2].livesAlone = true  // P-FAM
        flagged[0].status = .suspended  // P-ALONE
        var b = HouseAnalytics(zone: AnalyticsCommunity.zone, roster: AnalyticsCommunity.analyticsRoster(houses: c.houses, people: flagged))
        b.record(c.pass(.card(1003), "gate-in", micros: t))
        b.evaluate(now: t)
        b.evaluate(now: t + 48 * Self.hour)
        #expect(Set(b.takeChanges().map(\.indicator.key)) == ["alone_not_seen:H-FAM:P-FAM", "alone_not_seen:H-NEW:P-NEW"])
    }

    @Test func aRestoredSnapshotGoesOnWithoutCountingTwice() throws {
        var c = AnalyticsCommunity()
        let t = AnalyticsCommunity.micros("2026-11-20T08:00")
        var events: [AccessEvent] = []
        for i in 0..<40 {
            let at = t + Int64(i) * 5 * Self.hour
            events.append(c.pass(.card(UInt64(3000 + i % 12)), i % 2 == 0 ? "gate-in" : "gate-out", micros: at))
            events.append(c.pass(.card(1002), i % 3 == 0 ? "gate-out" : "gate-in", micros: at + 1))
            events.append(c.pass(c.qr(i % 4 == 0 ? "V1" : "V2"), "gate-in", micros: at + 2))
            events.append(c.pass(.card(1004), "gate-in", micros: at - at % Self.day + Self.hour))  // 01:00 UTC = 09:00 local
        }
        var reference = c.engine()
        reference.record(Array(events[..<90]))
        reference.evaluate(now: t + 100 * Self.hour)
        reference.record(Array(events[90...]))
        reference.evaluate(now: t + 210 * Self.hour)
        _ = reference.takeChanges()

        var first = c.engine()
        first.record(Array(events[..<90]))
        first.evaluate(now: t + 100 * Self.hour)
        _ = first.takeChanges()
        let snapshot = first.takeSnapshot()
        #expect(snapshot.appliedSerial == 90 && !snapshot.upserts.isEmpty)
        // The restarted engine is fed from the start again (a page reread): nothing counts twice.
        var restored = HouseAnalytics(zone: AnalyticsCommunity.zone, roster: c.roster, appliedSerial: snapshot.appliedSerial, rows: snapshot.upserts)
        #expect(restored.activeIndicators == first.activeIndicators)
        restored.record(events)
        restored.evaluate(now: t + 210 * Self.hour)
        _ = restored.takeChanges()
        let now = t + 211 * Self.hour
        for house in ["H-FAM", "H-CROWD", "H-ALONE"] {
            #expect(restored.summary(house: house, now: now)?.json(zone: AnalyticsCommunity.zone)
                    == reference.summary(house: house, now: now)?.json(zone: AnalyticsCommunity.zone), "\(house)")
        }
        #expect(restored.activeIndicators.map(\.key) == reference.activeIndicators.map(\.key))
        #expect(restored.summary(house: "H-FAM", now: now)?.entries30d ?? 0 > 0)

        // Deltas: a second snapshot carries only what changed, and deletions of what is gone.
        var d = c.engine()
        d.record(Array(events[..<4]))
        _ = d.takeSnapshot()
        d.record(c.pass(.card(1003), "gate-in", micros: t + 1))
        let delta = d.takeSnapshot()
        #expect(delta.upserts.map(\.key) == ["p:P-FAM", "h:H-FAM"])
        #expect(d.takeSnapshot().isEmpty)
        d.setRoster(AnalyticsCommunity.analyticsRoster(houses: c.houses, people: c.people.filter { $0.id != "P-FAM" }))
        #expect(d.takeSnapshot().deletions == ["p:P-FAM"])
    }

    @Test func memoryStaysBounded() throws {
        var c = AnalyticsCommunity()
        var a = c.engine()
        let t = AnalyticsCommunity.micros("2026-10-01T12:00")
        for day in 0..<60 {
            a.record(c.pass(.card(1002), day % 2 == 0 ? "gate-in" : "gate-out", micros: t + Int64(day) * Self.day))
        }
        var f = a.footprint
        #expect(f.maxDayBuckets == 30, "older day buckets are dropped as new days come")
        let s = try #require(a.summary(house: "H-FAM", now: t + 59 * Self.day))
        #expect(s.entries30d == 15 && s.exits30d == 15)

        // 500 distinct visitors and 200 distinct plates: capped lists.
        var b = c.engine()
        var serial: Int64 = 0
        for i in 0..<500 {
            serial += 1
            b.record(AccessEvent(serial: serial, timeMicros: t + Int64(i) * 1_000_000, utcOffset: 28_800, type: .access, portal: "gate-in",
                                 direction: .in, credentialKind: .qr, credential: "PASS\(i)", houseID: "H-FAM", role: .visitor,
                                 granted: true, reason: .granted, detail: [("visitor_pass", .string("PASS\(i)"))]))
        }
        for i in 0..<200 {
            serial += 1
            b.record(AccessEvent(serial: serial, timeMicros: t + Int64(i) * 1_000_000, utcOffset: 28_800, type: .access, portal: "lane-in",
                                 direction: .in, credentialKind: .plate, credential: "京A\(10_000 + i)", houseID: "H-CROWD",
                                 granted: true, reason: .granted))
        }
        f = b.footprint
        #expect(f.visitorEntries == AnalyticsThresholds.visitorCap)
        #expect(f.credentialEntries == AnalyticsThresholds().credentialCap)
        #expect(b.summary(house: "H-FAM", now: t + Self.day)?.distinctVisitors30d == AnalyticsThresholds.visitorCap, "saturates at the cap")
        // 31 days on, everything has aged out and the houses' state is gone.
        b.evaluate(now: t + 31 * Self.day)
        f = b.footprint
        #expect(f.houses == 0 && f.visitorEntries == 0 && f.credentialEntries == 0 && f.dayBuckets == 0)
        #expect(b.takeSnapshot().deletions.contains("h:H-FAM"))
    }

    /// Not a timed assertion: prints how many events a second the engine absorbs.
    @Test func throughputFigure() throws {
        var c = AnalyticsCommunity()
        let base = AnalyticsCommunity.micros("2026-11-01T00:00")
        var events: [AccessEvent] = []
        let cards: [UInt64] = [1001, 1002, 1003, 1004] + (0..<12).map { UInt64(3000 + $0) }
        let portals = ["gate-in", "gate-out", "b01-door", "b02-door", "lane-in"]
        for i in 0..<20_000 {
            events.append(c.pass(.card(cards[i % cards.count]), portals[i % portals.count], micros: base + Int64(i) * 60_000_000))
        }
        // 1,000,000 events: the template's 20,000 repeated with fresh serials and times 20,000 minutes later each round.
        var a = c.engine()
        let rounds = 50
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let start = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        var serial: Int64 = 0
        for round in 0..<rounds {
            let shift = Int64(round) * 20_000 * 60_000_000
            for var e in events {
                serial += 1
                e.serial = serial
                e.timeMicros += shift
                a.record(e)
            }
            a.evaluate(now: base + shift + 20_000 * 60_000_000)
            _ = a.takeChanges()
        }
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let seconds = Double(Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec) - start) / 1e9
        let total = rounds * events.count
        print("analytics engine: \(total) events in \(seconds) s = \(Int(Double(total) / seconds)) events/s (evaluate every 20,000)")
        #expect(a.appliedSerial == Int64(total))
    }
}

extension JSON {
    var arrayValue: [JSON]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
