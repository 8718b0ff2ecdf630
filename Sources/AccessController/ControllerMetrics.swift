import AccessControlProtocol
import AccessCore
import CoreMetrics
import Prometheus
import Synchronization

/// The controller's Prometheus metrics, recorded through swift-metrics.
///
/// Each controller owns its registry (no process-wide bootstrap), so tests and benchmarks can run
/// several controllers in one process; `render()` gives the Prometheus text format that
/// `accessctl metrics` and the upstream `/metrics` route serve. Labels are bounded sets (event
/// types and reasons, portal ids, device names): never people or credentials.
public final class ControllerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let swipeToRelayTimer: CoreMetrics.Timer
    private let storeFailures: CoreMetrics.Counter
    private let rosterReloads: CoreMetrics.Counter
    private let rosterChanges: CoreMetrics.Counter
    private let fleetConnected: CoreMetrics.Gauge
    private let fleetApplied: CoreMetrics.Gauge
    private let fleetLag: CoreMetrics.Gauge
    private let fleetStuck: CoreMetrics.Gauge
    private let fleetEventsBacklog: CoreMetrics.Gauge
    private let rosterPeople: CoreMetrics.Gauge
    private let rosterCredentials: CoreMetrics.Gauge
    /// Counters by (type, reason), made on first use: the set is bounded by the reasons the code knows.
    private let eventCounters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let deviceGauges = Mutex<[String: CoreMetrics.Gauge]>([:])
    /// The latest swipe → relay latencies, for percentiles in `status` (Prometheus has the histogram).
    private let recent = Mutex(LatencyWindow(capacity: 4096))

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // A relay within a few milliseconds is the goal: buckets resolve the sub-millisecond range.
        factory.durationHistogramBuckets["access_swipe_to_relay_seconds"] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        ]
        self.factory = factory
        swipeToRelayTimer = Timer(label: "access_swipe_to_relay_seconds", factory: factory)
        storeFailures = Counter(label: "access_event_store_failures_total", factory: factory)
        rosterReloads = Counter(label: "access_roster_reloads_total", factory: factory)
        rosterChanges = Counter(label: "access_roster_change_sets_total", factory: factory)
        fleetConnected = CoreMetrics.Gauge(label: "access_fleet_connected", factory: factory)
        fleetApplied = CoreMetrics.Gauge(label: "access_fleet_applied_sequence", factory: factory)
        fleetLag = CoreMetrics.Gauge(label: "access_fleet_lag", factory: factory)
        fleetStuck = CoreMetrics.Gauge(label: "access_fleet_stuck", factory: factory)
        fleetEventsBacklog = CoreMetrics.Gauge(label: "access_fleet_events_backlog", factory: factory)
        rosterPeople = Gauge(label: "access_roster_people", factory: factory)
        rosterCredentials = Gauge(label: "access_roster_credentials", factory: factory)
    }

    /// Events once they are durable in the log, by type and reason (decisions are `access` events).
    func recordDurable(_ events: [AccessEvent]) {
        eventCounters.withLock { counters in
            for event in events {
                let reason = event.reason?.rawValue ?? ""
                let key = event.type.rawValue + "\u{1F}" + reason
                let counter = counters[key] ?? {
                    let made = Counter(label: "access_events_total", dimensions: [("type", event.type.rawValue), ("reason", reason)],
                                       factory: factory)
                    counters[key] = made
                    return made
                }()
                counter.increment()
            }
        }
    }

    /// From the frame's last edge (kernel timestamp) to the lock relay set.
    func recordSwipeToRelay(nanos: UInt64) {
        swipeToRelayTimer.recordNanoseconds(Int64(clamping: nanos))
        recent.withLock { $0.append(nanos) }
    }

    func recordStoreFailure() { storeFailures.increment() }

    /// The fleet client's state, as gauges (read when status or metrics are asked for).
    func recordFleet(_ fleet: ControlStatus.Fleet) {
        fleetConnected.record(fleet.connected ? 1 : 0)
        fleetApplied.record(fleet.applied)
        fleetLag.record(fleet.lag)
        fleetStuck.record(fleet.stuck == nil ? 0 : 1)
        fleetEventsBacklog.record(fleet.eventsBacklog)
    }

    /// A fleet change set applied to the roster in memory.
    func recordRosterChange() { rosterChanges.increment() }

    func recordRosterLoad(people: Int, credentials: Int) {
        rosterReloads.increment()
        rosterPeople.record(people)
        rosterCredentials.record(credentials)
    }

    /// 1 while a Modbus device answers, 0 while it does not.
    func recordDevice(_ name: String, online: Bool) {
        let gauge = deviceGauges.withLock { gauges in
            gauges[name] ?? {
                let made = Gauge(label: "access_device_online", dimensions: [("device", name)], factory: factory)
                gauges[name] = made
                return made
            }()
        }
        gauge.record(online ? 1 : 0)
    }

    /// Percentiles of the latest swipe → relay latencies.
    public var swipeToRelay: LatencySummary { recent.withLock { $0.summary() } }

    /// Every metric in the Prometheus text exposition format.
    public func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// Percentiles over a window of latencies, in microseconds.
public struct LatencySummary: Sendable, Equatable {
    public var count: Int
    public var p50: Int
    public var p99: Int
    public var max: Int
}

/// The last `capacity` samples, overwritten in a ring.
struct LatencyWindow {
    private var samples: [UInt64] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func append(_ nanos: UInt64) {
        if samples.count < capacity { samples.append(nanos) } else { samples[next] = nanos }
        next = (next + 1) % capacity
    }

    func summary() -> LatencySummary {
        guard !samples.isEmpty else { return LatencySummary(count: 0, p50: 0, p99: 0, max: 0) }
        let sorted = samples.sorted()
        func at(_ q: Double) -> Int { Int(sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q + 0.5))] / 1000) }
        return LatencySummary(count: sorted.count, p50: at(0.5), p99: at(0.99), max: Int(sorted.last! / 1000))
    }
}
