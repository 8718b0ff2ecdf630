import AccessController
import AccessCore
import AccessRuntime
import AccessStore

/// The engine, its database connection and the snapshot bookkeeping, on their own thread.
actor AnalyticsEngine {
    private let thread: ThreadExecutor
    private let db: AccessDatabase
    private let thresholds: AnalyticsThresholds
    private let zone: ZoneRules
    private var analytics: HouseAnalytics
    private var dataVersion: Int64 = -1
    private var generation: Int64 = -1
    /// Snapshot rows taken but not yet written (a failed write is retried with the next one):
    /// key → value, nil for a deletion.
    private var unsaved: [String: String?] = [:]
    private var savedSerial: Int64 = -1
    /// The latest event time applied, µs: indicator events are never stamped before it.
    private(set) var lastEventMicros: Int64 = 0

    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    init(path: String, thresholds: AnalyticsThresholds, zone: ZoneRules) throws {
        thread = try ThreadExecutor(threadName: "analytics")
        db = try AccessDatabase(path: path, create: false)
        self.thresholds = thresholds
        self.zone = zone
        analytics = HouseAnalytics(thresholds: thresholds, zone: zone)
    }

    deinit { thread.stop() }

    var appliedSerial: Int64 { analytics.appliedSerial }

    func start(nowMicros: Int64) throws -> (serial: Int64, restored: Bool, houses: Int, people: Int) {
        generation = try db.rosterGeneration()
        dataVersion = try db.dataVersion()
        let roster = try db.analyticsRoster()
        let state = try db.analyticsState()
        let serial = try state.appliedSerial
            ?? db.serialBefore(micros: nowMicros - Int64(AnalyticsThresholds.dayWindow) * 86_400_000_000)
        analytics = HouseAnalytics(thresholds: thresholds, zone: zone, roster: roster, appliedSerial: serial, rows: state.rows)
        // People or houses removed while the service was down are forgotten now.
        analytics.setRoster(roster)
        savedSerial = state.appliedSerial ?? -1
        db.releaseMemory()
        releaseFreedHeap()  // the rows and temporary tables of the load
        return (serial, state.appliedSerial != nil, roster.houseCount, roster.personCount)
    }

    func applyPage(limit: Int) throws -> (count: Int, changes: [IndicatorChange]) {
        let page = try db.events(EventQuery(after: analytics.appliedSerial, limit: limit))
        for event in page {
            analytics.record(event)
            lastEventMicros = max(lastEventMicros, event.timeMicros)
        }
        return (page.count, analytics.takeChanges())
    }

    /// Reloads the roster facts when the roster changed (another connection committed and the
    /// roster generation moved); true when it did.
    func refreshRoster() throws -> Bool {
        let version = try db.dataVersion()
        guard version != dataVersion else { return false }
        dataVersion = version
        let current = try db.rosterGeneration()
        guard current != generation else { return false }
        generation = current
        analytics.setRoster(try db.analyticsRoster())
        db.releaseMemory()
        releaseFreedHeap()
        return true
    }

    func evaluate(nowMicros: Int64) -> [IndicatorChange] {
        analytics.evaluate(now: nowMicros)
        return analytics.takeChanges()
    }

    /// Writes what changed since the last snapshot with the applied serial, in one transaction.
    func persist() throws {
        let snapshot = analytics.takeSnapshot()
        for key in snapshot.deletions { unsaved[key] = .some(nil) }
        for (key, value) in snapshot.upserts { unsaved[key] = .some(value) }
        guard !unsaved.isEmpty || snapshot.appliedSerial != savedSerial else { return }
        var merged = AnalyticsSnapshot(appliedSerial: snapshot.appliedSerial, upserts: [], deletions: [])
        for (key, value) in unsaved {
            if let value { merged.upserts.append((key, value)) } else { merged.deletions.append(key) }
        }
        try db.saveAnalyticsState(merged)
        unsaved.removeAll(keepingCapacity: true)
        savedSerial = snapshot.appliedSerial
    }

    func summary(house: String, nowMicros: Int64) -> HouseSummary? { analytics.summary(house: house, now: nowMicros) }

    func indicators() -> [Indicator] { analytics.activeIndicators }
}
