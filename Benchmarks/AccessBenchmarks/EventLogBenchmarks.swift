// The event log's figures (product.md): durable append with group commit (≥ 50,000 events/s, each
// acknowledged only once committed), one event's commit latency (≤ 10 ms), and a poll page of
// 1,000 events from a large log (≤ 50 ms at 10,000,000). ACCESS_BENCH_EVENTS sets the log size
// for the poll benchmark (default 1,000,000; 10,000,000 takes a few minutes to build).
import AccessController
import AccessCore
import AccessRuntime
import AccessDevices
import AccessStore
import AccessTestSupport
import Benchmark
import Glibc

/// Events made durable per second over a whole batch (submit of the first → flush of the last).
let appendedPerSecond = BenchmarkMetric.custom("Events durable per second", polarity: .prefersLarger, useScalingFactor: false)

func eventLogBenchmarks() {
    func event(_ i: Int) -> AccessEvent {
        AccessEvent(timeMicros: 1_790_000_000_000_000 + Int64(i) * 1000, utcOffset: 28_800, type: .access, portal: "b01-door",
                    direction: .in, credentialKind: .card, credential: String(1_000_000 + i % 100_000),
                    personID: "P\(i % 100_000)", houseID: "H\(i % 30_000)", role: .owner, granted: true, reason: .granted,
                    detail: [("reader", .string("reader-b01"))])
    }

    Benchmark(
        "Event append, group commit, 100k single-event submits",
        configuration: .init(metrics: [.wallClock, appendedPerSecond], timeUnits: .milliseconds, warmupIterations: 0,
                             maxDuration: .seconds(60), maxIterations: 5)
    ) { (benchmark: Benchmark, setup: WriterBench) in
        let worker = setup.worker
        let events = (0..<100_000).map(event)
        let start = monotonicNanos()
        benchmark.startMeasurement()
        // Each event is its own job, as swipes arrive; the writer commits whatever has queued
        // in one transaction, and `flush` returns once all are durable.
        for e in events { worker.submit([.event(e)]) }
        worker.flush()
        benchmark.stopMeasurement()
        let elapsed = monotonicNanos() - start
        benchmark.measurement(appendedPerSecond, Int(UInt64(events.count) * 1_000_000_000 / max(elapsed, 1)))
    } setup: {
        try WriterBench("bench-append")
    }

    Benchmark(
        "Event append, one event until durable",
        configuration: .init(metrics: [.wallClock], timeUnits: .microseconds, warmupIterations: 10,
                             maxDuration: .seconds(10), maxIterations: 1000)
    ) { (benchmark: Benchmark, setup: WriterBench) in
        let worker = setup.worker
        for i in benchmark.scaledIterations {
            worker.submit([.event(event(i))])
            worker.flush()
        }
    } setup: {
        try WriterBench("bench-one")
    }

    let logSize = getenv("ACCESS_BENCH_EVENTS").flatMap { Int(String(cString: $0)) } ?? 1_000_000
    Benchmark(
        "Event poll, page of 1000, log of \(logSize) events",
        configuration: .init(metrics: [.wallClock], timeUnits: .milliseconds, warmupIterations: 5,
                             maxDuration: .seconds(20), maxIterations: 200)
    ) { (benchmark: Benchmark, bench: BenchDatabase) in
        var generator = SystemRandomNumberGenerator()
        for _ in benchmark.scaledIterations {
            let after = Int64.random(in: 0..<Int64(logSize - 1000), using: &generator)
            let page = try bench.db.events(EventQuery(after: after, limit: 1000))
            precondition(page.count == 1000 && page.first?.serial == after + 1, "a full page in order")
            blackHole(page)
        }
    } setup: {
        let dir = TemporaryDirectory("bench-poll")
        let db = try AccessDatabase(path: dir.file("access.db"))
        var i = 0
        while i < logSize {
            let n = min(20_000, logSize - i)
            try db.appendEvents((i..<(i + n)).map(event))
            i += n
        }
        return BenchDatabase(db: db, dir: dir)
    }
}

/// A store writer on a fresh database file, stopped when the benchmark lets go of it.
final class WriterBench: @unchecked Sendable {
    let dir: TemporaryDirectory
    let worker: StoreWorker

    init(_ name: String) throws {
        dir = TemporaryDirectory(name)
        _ = try AccessDatabase(path: dir.file("access.db"))
        worker = try StoreWorker(path: dir.file("access.db"))
    }

    deinit { worker.stop() }
}
