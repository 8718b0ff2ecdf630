import AccessController
import AccessConfig
import AccessCore
import AccessFleet
import AccessRuntime
import AccessStore
import Logging

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
    /// With a fleet: every controller's events from the community's stream (the serial the
    /// analytics keep is then the stream sequence), and each change raised once in the community.
    private let feed: FleetEventFeed?
    private let claims: IndicatorClaims?
    private let source: String

    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    init(path: String, thresholds: AnalyticsThresholds, zone: ZoneRules, fleet: (SiteConfig.Fleet, controllerID: String)? = nil,
         logger: Logger) throws {
        thread = try ThreadExecutor(threadName: "analytics")
        db = try AccessDatabase(path: path, create: false)
        self.thresholds = thresholds
        self.zone = zone
        analytics = HouseAnalytics(thresholds: thresholds, zone: zone)
        if let (config, id) = fleet {
            feed = FleetEventFeed(fleet: config, name: "accessd \(id) analytics", logger: logger)
            claims = IndicatorClaims(fleet: config, name: "accessd \(id) indicators")
            source = "fleet:" + config.community
        } else {
            feed = nil
            claims = nil
            source = "local"
        }
    }

    /// Whether the serial counts the community's events stream rather than the local log.
    nonisolated var isCommunityWide: Bool { source != "local" }

    deinit { thread.stop() }

    var appliedSerial: Int64 { analytics.appliedSerial }

    func start(nowMicros: Int64) throws -> (serial: Int64, restored: Bool, houses: Int, people: Int) {
        generation = try db.rosterGeneration()
        dataVersion = try db.dataVersion()
        let roster = try db.analyticsRoster()
        let state = try db.analyticsState(source: source)
        // Without a snapshot: the last 30 days of the log, or the whole stream (it keeps 30 days).
        let serial = try state.appliedSerial
            ?? (feed != nil ? 0 : db.serialBefore(micros: nowMicros - Int64(AnalyticsThresholds.dayWindow) * 86_400_000_000))
        analytics = HouseAnalytics(thresholds: thresholds, zone: zone, roster: roster, appliedSerial: serial, rows: state.rows)
        // People or houses removed while the service was down are forgotten now.
        analytics.setRoster(roster)
        savedSerial = state.appliedSerial ?? -1
        db.releaseMemory()
        releaseFreedHeap()  // the rows and temporary tables of the load
        return (serial, state.appliedSerial != nil, roster.houseCount, roster.personCount)
    }

    func applyPage(limit: Int) throws -> (count: Int, changes: [IndicatorChange]) {
        let page = try feed?.page(after: analytics.appliedSerial, limit: limit)
            ?? db.events(EventQuery(after: analytics.appliedSerial, limit: limit))
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
        try db.saveAnalyticsState(merged, source: source)
        unsaved.removeAll(keepingCapacity: true)
        savedSerial = snapshot.appliedSerial
    }

    /// The changes this controller is to raise: all of them alone; with a fleet, those it
    /// claimed first (the others are raised by the controller that did). Throws while the claim
    /// cannot be made; changes already claimed are then not claimed again.
    func claim(_ changes: [IndicatorChange]) throws -> [IndicatorChange] {
        guard let claims else { return changes }
        return try changes.filter { change in
            let i = change.indicator
            let what: String
            switch change {
            case .fired: what = "fired"
            case .cleared(_, let at): what = "cleared@\(at)"
            }
            return try claims.claim("\(what):\(i.key):\(i.sinceMicros)")
        }
    }

    func summary(house: String, nowMicros: Int64) -> HouseSummary? { analytics.summary(house: house, now: nowMicros) }

    func indicators() -> [Indicator] { analytics.activeIndicators }
}
