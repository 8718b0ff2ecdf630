// The 以房管人 analytics engine (AccessAnalytics/HouseAnalytics.swift): how many durable
// events a second it absorbs with a roster of 100,000 people, and what its state costs in memory
// after 30 days of traffic. Registered by calling `analyticsBenchmarks()` from `benchmarks`
// (AccessBenchmarks.swift); run with `swift package --disable-sandbox benchmark --filter "Analytics.*"`.
import AccessAnalytics
import AccessCore
import AccessTestSupport
import Benchmark

/// 100,000 people, three to a house (owner, family, tenant; every tenth house a single owner),
/// and a day's worth of access events as the controller logs them: residents in and out at the
/// gates and building doors, visitors on passes, the odd denial.
struct AnalyticsWorkload: Sendable {
    let roster: AnalyticsRoster
    let events: [AccessEvent]
    let start: Int64

    init(people: Int = 100_000, events count: Int = 200_000) {
        let zone = Fixtures.shanghai
        var houses: [House] = []
        var members: [AnalyticsRoster.Member] = []
        var facts: [String: AnalyticsRoster.PersonFacts] = [:]
        var houseOf: [String] = []
        var person = 0
        var h = 0
        while person < people {
            let id = "B\(h / 200 + 1)-\(h % 200)"
            houses.append(House(id: id, building: "B\(h / 200 + 1)"))
            let size = h % 10 == 0 ? 1 : 3
            for (k, role) in [Role.owner, .family, .tenant].prefix(size).enumerated() where person < people {
                let pid = "P\(person)"
                members.append(.init(houseID: id, personID: pid, role: role))
                facts[pid] = .init(active: true, validUntil: nil, livesAlone: k == 0 && size == 1)
                houseOf.append(id)
                person += 1
            }
            h += 1
        }
        roster = AnalyticsRoster(houses: houses, members: members, people: facts)
        start = Fixtures.at("2026-11-01T06:00", zone: zone) * 1_000_000
        var generator = SeededGenerator(seed: 5)
        let portals: [(String, PortalDirection)] = [("gate-in", .in), ("gate-out", .out), ("b01-door", .in), ("lane-in", .in), ("lane-out", .out), ("gym", .both)]
        var out: [AccessEvent] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            let p = Int.random(in: 0..<people, using: &generator)
            let (portal, direction) = portals[Int.random(in: 0..<portals.count, using: &generator)]
            let t = start + Int64(i) * 432_000  // a day spread over `count` events
            if i % 20 == 0 {
                let pass = "V\(Int.random(in: 0..<5_000, using: &generator))"
                out.append(AccessEvent(timeMicros: t, utcOffset: 28_800, type: .access, portal: portal, direction: direction,
                                       credentialKind: .qr, credential: pass, houseID: houseOf[p], role: .visitor, granted: true,
                                       reason: .granted, detail: [("visitor_pass", .string(pass)), ("reader", "r")]))
            } else {
                let granted = i % 50 != 0
                out.append(AccessEvent(timeMicros: t, utcOffset: 28_800, type: .access, portal: portal, direction: direction,
                                       credentialKind: .card, credential: String(1_000_000 + p), personID: "P\(p)", houseID: houseOf[p],
                                       role: .owner, granted: granted, reason: granted ? .granted : .noRight, detail: [("reader", "r")]))
            }
        }
        events = out
    }

    /// Event `n` of an endless stream: the day's events again and again, a day later each round.
    func event(_ n: Int) -> AccessEvent {
        var e = events[n % events.count]
        e.serial = Int64(n + 1)
        e.timeMicros += Int64(n / events.count) * 86_400_000_000
        return e
    }
}

func analyticsBenchmarks() {
    Benchmark(
        "Analytics, events absorbed, 100,000 people",
        configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], timeUnits: .nanoseconds,
                             warmupIterations: 10_000, maxDuration: .seconds(10), maxIterations: 2_000_000)
    ) { (benchmark: Benchmark, workload: AnalyticsWorkload) in
        var engine = HouseAnalytics(zone: Fixtures.shanghai, roster: workload.roster)
        benchmark.startMeasurement()
        for n in benchmark.scaledIterations { engine.record(workload.event(n)) }
        benchmark.stopMeasurement()
        blackHole(engine.appliedSerial)
    } setup: {
        AnalyticsWorkload()
    }

    Benchmark(
        "Analytics state, 100,000 people, 30 days of 200,000 events a day",
        configuration: .init(metrics: [.wallClock, .peakMemoryResident], timeUnits: .milliseconds, warmupIterations: 0, maxIterations: 1)
    ) { (benchmark: Benchmark, workload: AnalyticsWorkload) in
        let before = residentBytes()
        var engine = HouseAnalytics(zone: Fixtures.shanghai, roster: workload.roster)
        for n in 0..<(30 * workload.events.count) {
            engine.record(workload.event(n))
            if n % workload.events.count == 0 { engine.evaluate(now: workload.event(n).timeMicros) }
        }
        let f = engine.footprint
        print("analytics state: +\((residentBytes() - before) / 1_048_576) MB resident; \(f.people) people, \(f.houses) houses, "
              + "\(f.dayBuckets) day buckets, \(f.visitorEntries) visitors, \(f.credentialEntries) credentials")
        blackHole(engine)
    } setup: {
        AnalyticsWorkload()
    }
}
