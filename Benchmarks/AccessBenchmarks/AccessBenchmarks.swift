// Benchmarks for the numbers product.md sets: one decision at 1,000,000 credentials (p99 ≤ 20 µs),
// a 100,000-person CSV import (≤ 10 s), the resident memory of the loaded index, and swipe → relay
// through a Controller on the simulated board (SwipeBenchmark.swift).
// Run: swift package --disable-sandbox benchmark   (see README for the figures)
import AccessCore
import AccessStore
import AccessTestSupport
import Benchmark
import Glibc

/// glibc's `malloc_trim` (in <malloc.h>, which the Glibc module does not export).
@_silgen_name("malloc_trim") func mallocTrim(_ pad: Int) -> Int32

/// Resident set size of this process, from /proc/self/statm (second field, in pages), after
/// returning free heap pages to the system so that memory freed earlier is not counted as reused.
func residentBytes() -> Int {
    _ = mallocTrim(0)
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    guard fgets(&line, Int32(line.count), f) != nil else { return 0 }
    let fields = String(cString: line).split(separator: " ").compactMap { Int($0) }
    return fields.count >= 2 ? fields[1] * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

let monday10 = Fixtures.at("2026-11-23T10:00")

let benchmarks: @Sendable () -> Void = {
    let rules = Fixtures.rules()

    Benchmark(
        "Decision, card, 1M credentials",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .nanoseconds,
                             warmupIterations: 1000, maxDuration: .seconds(10), maxIterations: 2_000_000)
    ) { (benchmark: Benchmark, policy: AccessPolicy) in
        var generator = SystemRandomNumberGenerator()
        for _ in benchmark.scaledIterations {
            let card = 1_000_000 + UInt64.random(in: 0..<1_000_000, using: &generator)
            let request = DecisionRequest(portal: "b01-door", credential: .card(card), at: monday10)
            blackHole(try? policy.decide(request))
        }
    } setup: {
        AccessPolicy(rules: rules, roster: SyntheticRoster.index(people: 1_000_000, rules: rules))
    }

    Benchmark(
        "Decision, visitor QR (HMAC), 1M credentials",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal], timeUnits: .nanoseconds,
                             warmupIterations: 1000, maxDuration: .seconds(5), maxIterations: 500_000)
    ) { (benchmark: Benchmark, setup: (AccessPolicy, String)) in
        let (policy, code) = setup
        for _ in benchmark.scaledIterations {
            blackHole(try? policy.decide(DecisionRequest(portal: "gate-in", credential: .qr(code), at: monday10)))
        }
    } setup: {
        let secret = Array("benchmark-secret-0123456789abcdef".utf8)
        let pass = VisitorPass(id: "VPASS", houseID: "H0", visitorName: "v", validFrom: monday10 - 3600, validUntil: monday10 + 3600, maxUses: 1)
        let index = SyntheticRoster.index(people: 1_000_000, rules: rules, passes: [pass])
        let policy = AccessPolicy(rules: rules, roster: index, passCodes: VisitorPassCode(secret: secret))
        return (policy, VisitorPassCode(secret: secret).encode(passID: pass.id, expires: pass.validUntil))
    }

    // ACCESS_BENCH_IMPORT_PEOPLE sets the file's size (default 100,000; 1,000,000 for the large site).
    let importPeople = getenv("ACCESS_BENCH_IMPORT_PEOPLE").flatMap { Int(String(cString: $0)) } ?? 100_000
    Benchmark(
        "Import \(importPeople / 1000)k people from CSV",
        configuration: .init(metrics: [.wallClock, .peakMemoryResidentDelta], timeUnits: .milliseconds,
                             warmupIterations: 0, maxDuration: .seconds(120), maxIterations: 3)
    ) { (benchmark: Benchmark, dir: TemporaryDirectory) in
        for iteration in benchmark.scaledIterations {
            let path = dir.file("import-\(iteration)-\(UInt32.random(in: 0...UInt32.max)).db")
            do {
                let db = try AccessDatabase(path: path)
                try db.saveSite(rules)
                guard let file = fopen(dir.file("people.csv"), "rb") else { return }
                defer { fclose(file) }
                var reader = CSVReader { buffer in
                    buffer = [UInt8](repeating: 0, count: 262_144)
                    let n = fread(&buffer, 1, buffer.count, file)
                    buffer.removeSubrange(n...)
                    return n
                }
                benchmark.startMeasurement()
                let report = try db.importRoster(&reader, options: ImportOptions(fileName: "people.csv", zone: rules.zone, operator: "bench"))
                benchmark.stopMeasurement()
                precondition(report.added.count == importPeople, "import added \(report.added.count)")
            } catch {
                benchmark.error("import failed: \(error)")
            }
            unlink(path)
            unlink(path + "-wal")
            unlink(path + "-shm")
        }
    } setup: {
        let dir = TemporaryDirectory("bench-import")
        dir.write("people.csv", SyntheticRoster.csv(people: importPeople))
        return dir
    }

    Benchmark(
        "Index load from SQLite, 100k people",
        configuration: .init(metrics: [.wallClock, .custom("index resident KB", polarity: .prefersSmaller, useScalingFactor: false)],
                             timeUnits: .milliseconds, warmupIterations: 0, maxDuration: .seconds(60), maxIterations: 5)
    ) { (benchmark: Benchmark, db: BenchDatabase) in
        for _ in benchmark.scaledIterations {
            let before = residentBytes()
            benchmark.startMeasurement()
            let index = try? db.loadRosterIndex(rules: rules)
            benchmark.stopMeasurement()
            benchmark.measurement(.custom("index resident KB", polarity: .prefersSmaller, useScalingFactor: false), (residentBytes() - before) / 1024)
            blackHole(index)
        }
    } setup: {
        let dir = TemporaryDirectory("bench-index")
        let db = try AccessDatabase(path: dir.file("index.db"))
        try db.saveSite(rules)
        var reader = CSVReader(string: SyntheticRoster.csv(people: 100_000))
        _ = try db.importRoster(&reader, options: ImportOptions(fileName: "people.csv", zone: rules.zone, operator: "bench"))
        return BenchDatabase(db: db, dir: dir)
    }

    Benchmark(
        "Index resident memory, 1M people and cards",
        configuration: .init(metrics: [.wallClock, .custom("index resident KB", polarity: .prefersSmaller, useScalingFactor: false)],
                             timeUnits: .milliseconds, warmupIterations: 0, maxDuration: .seconds(60), maxIterations: 3)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            let before = residentBytes()
            let index = SyntheticRoster.index(people: 1_000_000, rules: rules)
            benchmark.measurement(.custom("index resident KB", polarity: .prefersSmaller, useScalingFactor: false), (residentBytes() - before) / 1024)
            blackHole(index)
        }
    }

    swipeBenchmarks()
    eventLogBenchmarks()
    analyticsBenchmarks()
    rosterChangeBenchmarks()
}

/// Keeps the temporary directory alive as long as the database that lives in it.
final class BenchDatabase: @unchecked Sendable {
    let db: AccessDatabase
    let dir: TemporaryDirectory
    init(db: AccessDatabase, dir: TemporaryDirectory) {
        self.db = db
        self.dir = dir
    }

    func loadRosterIndex(rules: SiteRules) throws -> RosterIndex { try db.loadRosterIndex(rules: rules) }
}
