import AccessCore
import AccessStore
import AccessTestSupport
import Testing

@Suite("Event log retention")
struct RetentionTests {
    func log(_ count: Int, startMicros: Int64 = 1_790_000_000_000_000, stepMicros: Int64 = 1_000_000) throws -> (TemporaryDirectory, AccessDatabase) {
        let dir = TemporaryDirectory()
        let db = try AccessDatabase(path: dir.file("access.db"))
        let events = (0..<count).map { i in
            AccessEvent(timeMicros: startMicros + Int64(i) * stepMicros, utcOffset: 28_800, type: .system, reason: .started, detail: [("n", .int(Int64(i)))])
        }
        try db.appendEvents(events)
        return (dir, db)
    }

    func pruneAll(_ db: AccessDatabase, _ retention: EventRetention, now: Int64 = 1_790_000_000_000_000) throws -> RetentionReport {
        var total = RetentionReport(deleted: 0, count: 0, deletedUnacknowledged: 0)
        for _ in 0..<1000 {
            let r = try db.pruneEvents(retention, nowMicros: now, chunk: 300)
            total.deleted += r.deleted
            total.deletedUnacknowledged += r.deletedUnacknowledged
            total.count = r.count
            if r.deleted == 0 { break }
        }
        return total
    }

    @Test func theOldestGoBeyondTheCountAndSerialsAreNeverReused() throws {
        let (_, db) = try log(2500)
        let report = try pruneAll(db, EventRetention(maxCount: 1000))
        #expect(report.deleted == 1500 && report.count == 1000)
        #expect(try db.eventCount() == 1000)
        let kept = try db.events(EventQuery(after: 0, limit: 5000))
        #expect(kept.first?.serial == 1501 && kept.last?.serial == 2500)
        let next = try db.appendEvents([AccessEvent(timeMicros: 1, utcOffset: 0, type: .system, reason: .stopped)])
        #expect(next.first?.serial == 2501)
    }

    @Test func eventsOlderThanTheAgeLimitGoAsAPrefix() throws {
        // 100 events a day apart; keep 30 days as seen from the last one.
        let (_, db) = try log(100, stepMicros: 86_400_000_000)
        let now: Int64 = 1_790_000_000_000_000 + 99 * 86_400_000_000
        let report = try pruneAll(db, EventRetention(maxCount: 1_000_000, maxAgeDays: 30), now: now)
        #expect(report.count == 31, "days 69…99 are within 30 days of day 99")
        #expect(try db.events(EventQuery(after: 0, limit: 1)).first?.detail.first?.1 == .int(69))
    }

    @Test func whatAnOutboxOwesIsKeptUntilTheCountLimitForcesIt() throws {
        let (_, db) = try log(2500, stepMicros: 86_400_000_000)
        try db.advanceOutbox("mqtt", to: 1200)
        let far: Int64 = 1_790_000_000_000_000 + 10_000 * 86_400_000_000
        // Everything is too old, but the broker has only acknowledged up to 1200.
        var report = try pruneAll(db, EventRetention(maxCount: 3000, maxAgeDays: 1), now: far)
        #expect(report.count == 1300 && report.deletedUnacknowledged == 0)
        // Over the count limit, the oldest go anyway, and it is reported.
        report = try pruneAll(db, EventRetention(maxCount: 1000, maxAgeDays: 0), now: far)
        #expect(report.count == 1000 && report.deletedUnacknowledged == 300)
    }
}
