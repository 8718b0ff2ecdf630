import AccessAnalytics
import AccessConfig
import AccessController
import AccessCore
import AccessRuntime
import AccessStore
import AccessTestSupport
import AccessUpstream
import Foundation
import Logging
import Synchronization
import Testing

/// The analytics service against a real controller and SQLite file (the `APISite` of
/// HTTPAPITests.swift: house B01-0301 whose only resident is P1, card 6553701, plate 京A12345),
/// and its HTTP routes over a real socket.
@Suite("以房管人 analytics service and API", .serialized)
struct AnalyticsServiceTests {
    /// A clock tests move: the wall clock plus an offset.
    final class TestClock: Sendable {
        let offset = Mutex<Int64>(0)
        func now() -> Int64 { wallClockMicros() + offset.withLock { $0 } }
        func advance(hours: Int64) { offset.withLock { $0 += hours * 3_600_000_000 } }
        func reset() { offset.withLock { $0 = 0 } }
    }

    static var quiet: Logger {
        var logger = Logger(label: "test.analytics")
        logger.logLevel = .critical
        return logger
    }

    static var tuning: AnalyticsService.Tuning {
        var t = AnalyticsService.Tuning()
        t.evaluateInterval = .seconds(3600)  // tests evaluate by hand (evaluateNow)
        t.snapshotInterval = .seconds(3600)
        t.pollInterval = .milliseconds(50)
        return t
    }

    static func service(_ controller: Controller, clock: TestClock = TestClock(), thresholds: AnalyticsThresholds? = nil) throws -> AnalyticsService {
        try AnalyticsService(controller: controller, thresholds: thresholds, tuning: tuning, logger: quiet, now: { clock.now() })
    }

    /// Waits until the service has applied every durable event.
    static func settle(_ site: APISite, _ service: AnalyticsService) async throws {
        site.controller.flush()
        let target = site.controller.feed.lastSerial
        let deadline = ContinuousClock.now + .seconds(30)  // generous: a loaded CI machine once took over 10 s
        while await service.appliedSerial < target {
            guard ContinuousClock.now < deadline else { Issue.record("analytics stuck at \(await service.appliedSerial) < \(target)"); return }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    static func events(_ site: APISite, reason: String) throws -> [AccessEvent] {
        site.controller.flush()
        return try site.db.events(EventQuery(after: 0, limit: 100_000)).filter { $0.reason?.rawValue == reason }
    }

    @Test func anIndicatorIsRaisedInTheLogServedAndCleared() async throws {
        let clock = TestClock()
        let site = try await APISite(analytics: { try Self.service($0, clock: clock) })
        let service = try #require(site.analytics)
        try site.board.swipe(reader: "reader-b01", card: 6_553_701)
        try await Self.settle(site, service)
        let settled = site.controller.feed.lastSerial

        let summary = try await site.request("/api/v1/houses/B01-0301/summary")
        #expect(summary.status == 200, "\(summary.body)")
        let json = try #require(summary.json)
        #expect(json["house_id"] == "B01-0301" && json["building"] == "B01")
        let resident = try #require(json["residents"]?.items?.first)
        #expect(resident["person_id"] == "P1" && resident["role"] == "owner" && resident["lives_alone"] == .bool(true))
        #expect(resident["last_seen"]?["portal"] == "b01-door" && resident["last_seen"]?["direction"] == "in")
        #expect(json["entries_30d"] == 1 && json["exits_30d"] == 0 && json["days"]?.items?.count == 30)
        #expect(json["distinct_visitors_30d"] == 0 && json["distinct_credentials_7d"] == 1)
        #expect(json["indicators"] == .array([]))
        #expect((json["as_of_serial"]?.intValue ?? 0) >= settled, "computed from every event up to the swipe")
        #expect(try await site.request("/api/v1/indicators").json?["indicators"] == .array([]))

        // Two days without a passage: 关爱独居老人.
        clock.advance(hours: 49)
        try await service.evaluateNow()
        let alarms = try Self.events(site, reason: "indicator_alone_not_seen")
        #expect(alarms.count == 1)
        let alarm = try #require(alarms.first)
        #expect(alarm.type == .alarm && alarm.houseID == "B01-0301" && alarm.personID == "P1")
        #expect(JSON.object(alarm.detail)["indicator"] == "alone_not_seen:B01-0301:P1")
        let listed = try await site.request("/api/v1/indicators")
        #expect(listed.status == 200)
        let indicator = try #require(listed.json?["indicators"]?.items?.first)
        #expect(indicator["key"] == "alone_not_seen:B01-0301:P1" && indicator["kind"] == "alone_not_seen")
        #expect(indicator["house_id"] == "B01-0301" && indicator["person_id"] == "P1" && indicator["since"]?.stringValue != nil)
        #expect(indicator["detail"]?["threshold_hours"] == 48)
        #expect(try await site.request("/api/v1/houses/B01-0301/summary").json?["indicators"]?.items?.count == 1)
        try await service.evaluateNow()
        #expect(try Self.events(site, reason: "indicator_alone_not_seen").count == 1, "raised once")

        // P1 comes by: the indicator ends at once, with an event.
        clock.reset()
        try site.board.swipe(reader: "reader-b01", card: 6_553_701)
        try await Self.settle(site, service)
        let deadline = ContinuousClock.now + .seconds(10)
        while try Self.events(site, reason: "indicator_cleared").isEmpty && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let cleared = try #require(try Self.events(site, reason: "indicator_cleared").first)
        #expect(cleared.type == .system && cleared.houseID == "B01-0301" && cleared.personID == "P1")
        #expect(cleared.serial > alarm.serial)
        #expect(try await site.request("/api/v1/indicators").json?["indicators"] == .array([]))
        #expect(try await site.request("/api/v1/houses/B01-0301/summary").json?["entries_30d"] == 2)
    }

    @Test func theRoutesNeedATokenAnUnknownHouseIs404AndNoAnalyticsIs503() async throws {
        let site = try await APISite(analytics: { try Self.service($0) })
        for path in ["/api/v1/houses/B01-0301/summary", "/api/v1/indicators"] {
            #expect(try await site.request(path, token: .some(nil)).status == 401, "\(path)")
            #expect(try await site.request(path + "?colour=red").status == 400, "\(path)")
        }
        let unknown = try await site.request("/api/v1/houses/B09-9999/summary")
        #expect(unknown.status == 404 && unknown.json?["error"]?.stringValue?.contains("B09-9999") == true)

        let bare = try await APISite()
        for path in ["/api/v1/houses/B01-0301/summary", "/api/v1/indicators"] {
            let reply = try await bare.request(path)
            #expect(reply.status == 503 && reply.json?["error"] != nil, "\(path): \(reply.body)")
        }
    }

    @Test func aRestartGoesOnFromThePersistedSerialWithoutCountingTwice() async throws {
        let site = try await APISite()
        let first = try Self.service(site.controller)
        let run = Task { try await first.run() }
        for _ in 0..<3 { try site.board.swipe(reader: "reader-b01", card: 6_553_701) }
        try await Self.settle(site, first)
        #expect(try await first.summaryJSON(house: "B01-0301")?["entries_30d"] == 3)
        run.cancel()
        try await run.value
        let applied = await first.appliedSerial
        let state = try site.db.analyticsState()
        #expect(state.appliedSerial == applied, "the snapshot is written at stop, with its serial")
        #expect(Set(state.rows.map(\.key)).isSuperset(of: ["p:P1", "h:B01-0301"]))

        // Events written while the analytics are down are applied once after the restart.
        for _ in 0..<2 { try site.board.swipe(reader: "reader-b01", card: 6_553_701) }
        site.controller.flush()
        let second = try Self.service(site.controller)
        let rerun = Task { try await second.run() }
        try await Self.settle(site, second)
        #expect(try await second.summaryJSON(house: "B01-0301")?["entries_30d"] == 5, "3 restored + 2 read, none twice")
        rerun.cancel()
        try await rerun.value
    }

    @Test func aFirstStartReadsOnlyTheLast30Days() async throws {
        let dir = TemporaryDirectory("analytics-first")
        let config = try SiteConfig.load(path: dir.write("site.toml", """
            [controller]
            id = "a-1"
            [database]
            path = "\(dir.file("access.db"))"
            [[portal]]
            id = "b01-door"
            building = "B01"
            """))
        let db = try AccessDatabase(path: config.databasePath)
        try db.saveSite(config.rules)
        try db.addHouse(House(id: "B01-0301", building: "B01"), operator: "t")
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "B01-0301", role: .owner)]), operator: "t")
        try db.addCredential(Credential(kind: .card, value: "6553701", owner: .person("P1")), operator: "t")
        // A log from before the analytics existed: P1's passages 40 and 2 days ago, as the controller logs them.
        let policy = try db.loadPolicy(rules: config.rules)
        let portal = try #require(config.rules.portal("b01-door"))
        func swipe(daysAgo: Int64) throws -> AccessEvent {
            let at = wallClockMicros() - daysAgo * 86_400_000_000
            let decision = try policy.decide(DecisionRequest(portal: "b01-door", credential: .card(6_553_701), at: at / 1_000_000))
            return AccessEvent(decision: decision, presented: .card(6_553_701), portal: portal, timeMicros: at, zone: config.controller.timeZone)
        }
        try db.appendEvents([try swipe(daysAgo: 40), try swipe(daysAgo: 2)])
        let controller = try Controller(config: config)
        let service = try Self.service(controller)
        let run = Task { try await service.run() }
        let deadline = ContinuousClock.now + .seconds(10)
        while await service.appliedSerial < 2 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let summary = try #require(try await service.summaryJSON(house: "B01-0301"))
        #expect(summary["entries_30d"] == 1, "only the passage of 2 days ago was read")
        #expect(summary["residents"]?.items?.first?["last_seen"]?["portal"] == "b01-door")
        // P1 was last seen two days ago and lives alone: raised at the first evaluation, as event 3,
        // which the service then reads like any other.
        while await service.appliedSerial < 3 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        controller.flush()
        #expect(try db.events(EventQuery(after: 2, limit: 10)).map(\.reason) == [.indicatorAloneNotSeen])
        run.cancel()
        try await run.value
        #expect(try db.analyticsState().appliedSerial == 3, "written at stop")
    }

    @Test func rosterChangesReachTheAnalytics() async throws {
        let clock = TestClock()
        let site = try await APISite(analytics: { try Self.service($0, clock: clock) })
        let service = try #require(site.analytics)
        try site.board.swipe(reader: "reader-b01", card: 6_553_701)
        try await Self.settle(site, service)
        clock.advance(hours: 49)
        try await service.evaluateNow()
        #expect(try await service.indicators().map(\.key) == ["alone_not_seen:B01-0301:P1"])
        // P1 is no longer alone: a family member moves in.
        try site.db.addPerson(Person(id: "P2", houses: [HouseBinding(houseID: "B01-0301", role: .family)]), operator: "t")
        let deadline = ContinuousClock.now + .seconds(10)
        while try await service.summaryJSON(house: "B01-0301")?["residents"]?.items?.count != 2 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let summary = try #require(try await site.request("/api/v1/houses/B01-0301/summary").json)
        #expect(summary["residents"]?.items?.map { $0["person_id"]?.stringValue } == ["P1", "P2"])
        #expect(summary["residents"]?.items?.map { $0["lives_alone"] } == [.bool(false), .bool(false)])
        try await service.evaluateNow()
        #expect(try await service.indicators().isEmpty)
        let cleared = try Self.events(site, reason: "indicator_cleared")
        #expect(cleared.count == 1 && JSON.object(cleared[0].detail)["indicator"] == "alone_not_seen:B01-0301:P1")
    }

    @Test func theSnapshotTableAndItsRows() throws {
        let dir = TemporaryDirectory("analytics-store")
        let db = try AccessDatabase(path: dir.file("a.db"))
        #expect(try db.analyticsState().appliedSerial == nil && db.analyticsState().rows.isEmpty)
        try db.saveAnalyticsState(AnalyticsSnapshot(appliedSerial: 42, upserts: [("p:P1", "{\"t\":1}"), ("h:H1", "{}")], deletions: []))
        try db.saveAnalyticsState(AnalyticsSnapshot(appliedSerial: 43, upserts: [("p:P1", "{\"t\":2}")], deletions: ["h:H1"]))
        let state = try db.analyticsState()
        #expect(state.appliedSerial == 43)
        #expect(state.rows.map(\.key) == ["p:P1"] && state.rows.map(\.value) == ["{\"t\":2}"])
        // Roster facts in three scans.
        try db.addHouse(House(id: "H1", building: "B01", room: "101"), operator: "t")
        try db.addHouse(House(id: "H2", building: "B01"), operator: "t")
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "H1", role: .owner)]), operator: "t")
        try db.addPerson(Person(id: "P2", livesAlone: true, houses: [HouseBinding(houseID: "H2", role: .owner)]), operator: "t")
        try db.addPerson(Person(id: "P3", houses: [HouseBinding(houseID: "H2", role: .tenant), HouseBinding(houseID: "H1", role: .visitor)]), operator: "t")
        let roster = try db.analyticsRoster()
        #expect(roster.houseCount == 2 && roster.personCount == 3)
        #expect(roster.house("H1")?.room == "101")
        #expect(roster.livesAlone("P1") == "H1", "the only resident of H1 (P3 is a visitor there)")
        #expect(roster.livesAlone("P2") == "H2", "flagged, though P3 lives there too")
        #expect(roster.livesAlone("P3") == nil)
        // Where a first start begins: the serial before the first event of the window.
        let now = wallClockMicros()
        let stored = try db.appendEvents([AccessEvent(timeMicros: now - 50 * 86_400_000_000, utcOffset: 0, type: .system, reason: .started),
                                          AccessEvent(timeMicros: now, utcOffset: 0, type: .system, reason: .stopped)])
        #expect(try db.serialBefore(micros: now - 30 * 86_400_000_000) == stored[1].serial - 1)
        #expect(try db.serialBefore(micros: now + 1) == stored[1].serial)
    }

    @Test func theAnalyticsTableOfTheSiteConfig() throws {
        let dir = TemporaryDirectory("analytics-config")
        let base = """
            [controller]
            id = "c1"
            [database]
            path = "/tmp/x.db"
            [[portal]]
            id = "gate-in"

            """
        let defaults = try SiteConfig.load(path: dir.write("a.toml", base))
        #expect(defaults.analytics == SiteConfig.Analytics())
        #expect(defaults.analytics.thresholds.aloneNotSeenHours == 48 && defaults.analytics.thresholds.lateNight.description == "00:00-05:00")
        let tuned = try SiteConfig.load(path: dir.write("b.toml", base + """
            [analytics]
            alone_not_seen_hours = 72
            out_not_back_hours = 24
            distinct_credentials_days = 3
            distinct_credentials_max = 5
            late_night = "23:30-04:00"
            late_night_entries = 4
            late_night_days = 10
            """))
        let t = tuned.analytics.thresholds
        #expect(tuned.analytics.enabled && t.aloneNotSeenHours == 72 && t.outNotBackHours == 24)
        #expect(t.distinctCredentialsDays == 3 && t.distinctCredentialsMax == 5)
        #expect(t.lateNight == LateNightWindow(startMinute: 23 * 60 + 30, endMinute: 240) && t.lateNightEntries == 4 && t.lateNightDays == 10)
        #expect(try SiteConfig.load(path: dir.write("c.toml", base + "[analytics]\nenabled = false\n")).analytics.enabled == false)
        for (text, expected) in [
            ("[analytics]\nlate_night = \"25:00-05:00\"\n", "8: analytics.late_night: \"25:00-05:00\" is not a local time window"),
            ("[analytics]\nalone_not_seen_hours = 0\n", "8: analytics.alone_not_seen_hours: 0 is out of range 1…8760"),
            ("[analytics]\n\ndistinct_credentials_max = \"8\"\n", "9: analytics.distinct_credentials_max: must be an integer"),
            ("[analytics]\nhours = 3\n", "8: analytics.hours: unknown key"),
        ] {
            do {
                _ = try SiteConfig.load(path: dir.write("bad.toml", base + text))
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".hasPrefix(dir.file("bad.toml") + ":" + expected), "\(error)")
            }
        }
    }
}

extension JSON {
    var items: [JSON]? {
        if case .array(let items) = self { return items }
        return nil
    }
}
