import AccessConfig
import AccessController
import AccessCore
import AccessRuntime
import AccessStore
import Logging
import ServiceLifecycle
import Synchronization

// 以房管人 analytics in accessd.
//
// The service follows the durable event log by serial, like the HTTP long-poll and the MQTT
// publisher: it waits on the controller's `EventFeed`, reads pages of events after the last one it
// applied with its own SQLite connection, and feeds them to `HouseAnalytics` one by one. Every
// minute it evaluates the time-based indicators (not seen, out and not back); when an indicator
// fires or clears it appends an event through the controller (`alarm` `indicator_KIND`, or `system`
// `indicator_cleared`, with house_id, person_id and detail), so those events take their serials in
// the one log and go upstream like every other.
//
// With `[fleet]` the analytics are the community's: the events come from the community's events
// stream (every controller's, in stream order; the serial kept is the stream sequence), so a
// resident who leaves by one gate and comes back by another is seen coming back, and the house
// summaries count every gate. Every controller computes the same changes; the first to claim a
// change in the bucket `access_COMMUNITY_indicators` logs it, so each fires once per community.
// While the cluster cannot be reached the analytics wait (the gate does not).
//
// Persistence: a snapshot of what changed (table `analytics_state`) and the serial it was taken
// at are written in one transaction every 30 s, after indicator changes and at stop. On start the
// snapshot is loaded and only events after its serial are read. Without a snapshot (first start)
// only the last 30 days of the log are read. An indicator event is made durable before the
// snapshot that records the indicator, so a crash between them raises it again after the restart
// (at least once, never lost).
//
// Threads: the SQLite calls and the engine run on the analytics' own thread (an actor on an
// `ThreadExecutor`), never on the cooperative pool; the HTTP API's summary and indicator reads
// are served by the same actor, between pages. Waiting for the controller's writer to make
// indicator events durable happens on a second thread, so the API never waits for the disk.

/// The analytics as a swift-service-lifecycle service; the HTTP API reads summaries and
/// indicators from it.
public final class AnalyticsService: Service, Sendable {
    /// Timings; tests shorten them.
    public struct Tuning: Sendable {
        /// How often time-based indicators are evaluated.
        public var evaluateInterval: Duration = .seconds(60)
        /// How often the snapshot is written (when anything changed).
        public var snapshotInterval: Duration = .seconds(30)
        /// How often the roster generation is checked when no event wakes the service.
        public var pollInterval: Duration = .seconds(1)
        public var pageSize = 1000

        public init() {}
    }

    let controller: Controller
    let engine: AnalyticsEngine
    let durability: DurabilityWaiter
    let logger: Logger
    let tuning: Tuning
    let now: @Sendable () -> Int64
    let zone: ZoneRules
    private let started = Atomic<Bool>(false)

    /// - Parameters:
    ///   - controller: whose log is followed and through which indicator events are appended.
    ///   - thresholds: the indicators' thresholds (`config.analytics.thresholds` by default).
    ///   - now: the wall clock in µs since 1970 (tests move it by hand).
    public init(controller: Controller, thresholds: AnalyticsThresholds? = nil, tuning: Tuning = Tuning(),
                logger: Logger = Logger(label: "accessd.analytics"), now: @escaping @Sendable () -> Int64 = wallClockMicros) throws {
        self.controller = controller
        self.logger = logger
        self.tuning = tuning
        self.now = now
        zone = controller.config.controller.timeZone
        engine = try AnalyticsEngine(path: controller.config.databasePath,
                                     thresholds: thresholds ?? controller.config.analytics.thresholds, zone: zone,
                                     fleet: controller.config.fleet.map { ($0, controller.config.controller.id) }, logger: logger)
        durability = try DurabilityWaiter()
    }

    /// Loads the snapshot (or, the first time, finds the start of the last 30 days), then follows
    /// the log until cancelled or shut down gracefully, and writes the snapshot at the end.
    /// A failure never ends the service (that would stop accessd's doors with it): it is logged
    /// and the step is tried again.
    public func run() async throws {
        while true {
            do {
                let start = try await engine.start(nowMicros: now())
                logger.info("analytics started", metadata: [
                    "after_serial": "\(start.serial)", "snapshot": "\(start.restored ? "restored" : "none: reading the last 30 days")",
                    "houses": "\(start.houses)", "people": "\(start.people)",
                ])
                break
            } catch {
                logger.error("analytics cannot start; retrying in 5 s", metadata: ["error": "\(error)"])
                do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) } } catch { return }
            }
        }
        started.store(true, ordering: .releasing)
        do {
            try await cancelWhenGracefulShutdown { try await self.follow() }
        } catch is CancellationError {}
        do {
            try await engine.persist()
            let serial = await engine.appliedSerial
            logger.info("analytics stopped, snapshot written", metadata: ["serial": "\(serial)"])
        } catch {
            logger.error("analytics snapshot failed at stop; events since the last one are read again at start",
                         metadata: ["error": "\(error)"])
        }
    }

    private func follow() async throws {
        let clock = ContinuousClock()
        var nextEvaluate = clock.now
        var nextSnapshot = clock.now + tuning.snapshotInterval
        // Changes taken from the engine but not yet in the log: kept across a failed step, since
        // the engine reports each change once.
        var changes: [IndicatorChange] = []
        while !Task.isCancelled {
            do {
                // Read what is durable, a page at a time (HTTP reads go in between pages).
                while !Task.isCancelled {
                    let page = try await engine.applyPage(limit: tuning.pageSize)
                    changes += page.changes
                    if page.count < tuning.pageSize { break }
                }
                if try await engine.refreshRoster() { logger.info("analytics roster reloaded") }
                if clock.now >= nextEvaluate {
                    nextEvaluate = clock.now + tuning.evaluateInterval
                    changes += await evaluate()
                }
                if !changes.isEmpty {
                    let raised = changes
                    changes = []
                    do {
                        try await raise(raised)
                    } catch {
                        changes = raised + changes  // claimed ones are not raised twice
                        throw error
                    }
                    nextSnapshot = clock.now + tuning.snapshotInterval
                } else if clock.now >= nextSnapshot {
                    nextSnapshot = clock.now + tuning.snapshotInterval
                    try await engine.persist()
                }
            } catch {
                logger.error("analytics step failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: tuning.pollInterval)
                continue
            }
            let wake = min(nextEvaluate, nextSnapshot, clock.now + tuning.pollInterval)
            if engine.isCommunityWide {
                // Other controllers' events arrive by the stream: look again soon.
                let soon = min(wake, clock.now + .milliseconds(250))
                if soon > clock.now { try? await Task.sleep(until: soon, clock: clock) }
            } else {
                let applied = await engine.appliedSerial
                if wake > clock.now { await controller.feed.wait(after: applied, timeout: wake - clock.now) }
            }
        }
    }

    /// Evaluates the time-based indicators at the wall clock's now; nothing while the clock is
    /// unset (before 2020), when "not seen for 48 hours" cannot be judged.
    private func evaluate() async -> [IndicatorChange] {
        let t = now()
        guard t >= Self.clockSetMicros else { return [] }
        return await engine.evaluate(nowMicros: t)
    }

    static let clockSetMicros: Int64 = 1_577_836_800_000_000  // 2020-01-01T00:00:00Z

    /// Appends an event per change through the controller, waits until they are durable, then
    /// writes the snapshot that records them.
    private func raise(_ changes: [IndicatorChange]) async throws {
        let t = max(now(), await engine.lastEventMicros)
        let mine = try await engine.claim(changes)
        controller.record(mine.map { $0.event(zone: zone, nowMicros: t) })
        await durability.flush(controller)
        for change in changes {
            // Kinds and counts only: logs never name people or houses.
            let by: Logger.MetadataValue = mine.contains(change) ? "this controller" : "another controller"
            switch change {
            case .fired(let i): logger.notice("indicator raised", metadata: ["kind": "\(i.kind.rawValue)", "by": by])
            case .cleared(let i, _): logger.info("indicator cleared", metadata: ["kind": "\(i.kind.rawValue)", "by": by])
            }
        }
        try await engine.persist()
    }

    // MARK: Reading (HTTP API, tests)

    /// A house's summary as the API serves it, nil when there is no such house. Throws while the
    /// service has not started.
    public func summaryJSON(house: String) async throws -> JSON? {
        guard started.load(ordering: .acquiring) else { throw AnalyticsNotReady() }
        let t = now()
        guard var json = await engine.summary(house: house, nowMicros: t)?.json(zone: zone) else { return nil }
        if case .object(var pairs) = json {
            pairs.append(("as_of_serial", .int(await engine.appliedSerial)))
            json = .object(pairs)
        }
        return json
    }

    /// The indicators in force, oldest first.
    public func indicators() async throws -> [Indicator] {
        guard started.load(ordering: .acquiring) else { throw AnalyticsNotReady() }
        return await engine.indicators()
    }

    /// The serial of the last event applied.
    public var appliedSerial: Int64 { get async { await engine.appliedSerial } }

    /// Evaluates now, raises what changed and writes the snapshot (tests; the service does this
    /// every minute by itself).
    public func evaluateNow() async throws {
        let changes = await evaluate()
        if !changes.isEmpty { try await raise(changes) }
    }
}
