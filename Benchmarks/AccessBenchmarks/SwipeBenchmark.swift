// Swipe → relay on the simulated board: a `Controller` running Config/accessd-sim.toml's doors on a
// `SimulatedBoard` (Hardware/boards/sim.toml), its roster a 100,000-person synthetic import in a
// temporary SQLite database. Each iteration presents a granted card at a reader: the 26-bit
// Wiegand frame goes bit by bit through the board's real `EdgeProcessor`/`WiegandDecoder`, then
// `Controller.handle` → `AccessPolicy.decide` → door state machine → `DoorLock.release` → the
// output line. All of that is synchronous on the calling thread (the event is only queued for the
// store worker), so the lock line has changed when `swipe` returns; it is checked after every
// iteration, so the benchmark cannot pass without driving the relay.
//
// Two times per swipe: "Time (wall clock)" is the whole `swipe` call, and "Swipe to relay set (ns)"
// ends when the lock line is set (the board's output lines are wrapped to stamp the moment), before
// the controller builds the event and hands it to the store worker. Waking the worker can cost the
// calling thread its CPU on a busy or 2-core machine: that shows in the wall clock, not in the relay.
//
// Between iterations (not measured): the event log is flushed, so no disk write overlaps the
// next swipe, and the door is relocked with the operator command `close`. Iterations cycle over
// the four doors (gate-north from both its readers, b01, b02, b03) and a different person each
// time, chosen by a seeded generator.
//
// Allocations are counted process-wide (the malloc interposer) over the whole `swipe` call, so a
// sample also counts what the store worker allocates once `submit` has woken it, if that overlaps
// the end of the measured region: the lowest counts (p0-p25) are the swipe path's own.
//
// Run: swift package --scratch-path .build-figures --disable-sandbox benchmark --filter "Swipe.*"
import AccessConfig
import AccessController
import AccessCore
import AccessRuntime
import AccessDevices
import AccessStore
import AccessTestSupport
import Benchmark
import Glibc
import Synchronization

/// The repository root (this file is Benchmarks/AccessBenchmarks/SwipeBenchmark.swift).
let repositoryRoot = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")

/// A controller on the simulated board with a synthetic roster; stopped at teardown.
final class SwipeRig: @unchecked Sendable {
    struct Target {
        var reader: String
        var portal: String
        var lock: String
        /// The lock line's value once released: a fail-safe lock is de-energised to release.
        var releasedValue: Bool
        /// Cards of people granted at this reader.
        var cards: [UInt64]
    }

    let dir = TemporaryDirectory("bench-swipe")
    let controller: Controller
    let board: SimulatedBoard
    let stamping: StampingBoard
    let targets: [Target]
    var generator = SeededGenerator(seed: 20_261_123)
    var next = 0
    var swipes = 0

    /// Config/accessd-sim.toml with the database and socket moved, the board's and the Modbus
    /// devices' maps by absolute path, and the building doors named after SyntheticRoster's
    /// buildings (B001…), so their residents are granted there.
    init(people: Int) throws {
        guard var text = readTextFile("\(repositoryRoot)/Config/accessd-sim.toml") else {
            throw ControlError.unknown("cannot read \(repositoryRoot)/Config/accessd-sim.toml")
        }
        let edits = [
            ("path = \"var/sim/access.db\"", "path = \"\(dir.file("access.db"))\""),
            ("socket = \"var/sim/accessd.sock\"", "socket = \"\(dir.file("accessd.sock"))\""),
            ("map = \"Hardware/", "map = \"\(repositoryRoot)/Hardware/"),
            ("building = \"B01\"", "building = \"B001\""),
            ("building = \"B02\"", "building = \"B002\""),
            ("building = \"B03\"", "building = \"B003\""),
            // Building 3's door is card and PIN in the tour; here a card alone opens every door.
            ("verify = \"card_and_pin\"", "# verify = \"card_and_pin\""),
        ]
        for (old, new) in edits {
            guard text.contains(old) else { throw ControlError.unknown("Config/accessd-sim.toml no longer contains \(old)") }
            text = text.replacing(old, with: new)
        }
        let config = try SiteConfig.load(path: dir.write("accessd.toml", text))

        let db = try AccessDatabase(path: config.databasePath)
        try db.saveSite(config.rules)
        var reader = CSVReader(string: SyntheticRoster.csv(people: people))
        let report = try db.importRoster(&reader, options: ImportOptions(fileName: "people.csv", zone: config.rules.zone, operator: "bench"))
        precondition(report.added.count == people, "import added \(report.added.count) of \(people)")

        // SyntheticRoster.csv: person i has card 1_000_000 + i, lives in house i / 3 of building
        // i / 600 + 1 (200 houses a building) and is an owner, family member or tenant by i % 3.
        // Tenants' leases end (2027-06-30), so only owners and family are used.
        let everyone = (0..<people).filter { $0 % 3 != 2 }.map { 1_000_000 + UInt64($0) }
        func building(_ b: Int) -> [UInt64] {
            ((b - 1) * 600..<min(people, b * 600)).filter { $0 % 3 != 2 }.map { 1_000_000 + UInt64($0) }
        }
        var targets: [Target] = []
        for door in config.doors {
            let failSafe = door.failSafe
            for portalID in door.portals {
                guard let portal = config.portals.first(where: { $0.id == portalID }) else { continue }
                let cards: [UInt64]
                switch portal.building {
                case "": cards = everyone
                case "B001": cards = building(1)
                case "B002": cards = building(2)
                case "B003": cards = building(3)
                case let other: throw ControlError.unknown("no synthetic residents in building \(other)")
                }
                for reader in portal.readers {
                    targets.append(Target(reader: reader, portal: portalID, lock: door.lock, releasedValue: !failSafe, cards: cards))
                }
            }
        }
        precondition(targets.count == 5 && targets.allSatisfy { !$0.cards.isEmpty }, "expected 5 door readers with residents")
        self.targets = targets

        let map = try BoardMap.load(path: config.board?.map ?? "")
        let controller = try Controller(config: config)
        board = SimulatedBoard(map: map) { controller.handle($0) }
        stamping = StampingBoard(board)
        self.controller = controller
        try controller.attach(board: stamping)
        try controller.start()
        controller.flush()
    }

    /// The next reader and a granted card there.
    func nextSwipe() -> (Target, UInt64) {
        let target = targets[next % targets.count]
        next += 1
        return (target, target.cards[Int.random(in: 0..<target.cards.count, using: &generator)])
    }

    /// Stops the controller and removes the temporary directory (the benchmark keeps the rig until
    /// the process exits, so `TemporaryDirectory`'s deinit would never run).
    func stop() {
        controller.flush()
        let granted = controller.counters.granted
        controller.stop()
        _ = system("rm -rf '\(dir.path)'")
        precondition(granted == swipes, "\(swipes) swipes but \(granted) grants")
    }
}

/// The simulated board with every output line stamped (CLOCK_MONOTONIC) when it is set.
final class StampingBoard: Board, @unchecked Sendable {
    final class Stamp: Sendable {
        let nanos = Atomic<UInt64>(0)
    }

    let inner: SimulatedBoard
    /// Output name → when it was last set; filled as the controller asks for its lines.
    private(set) var stamps: [String: Stamp] = [:]

    init(_ inner: SimulatedBoard) { self.inner = inner }

    var map: BoardMap { inner.map }

    func output(_ name: String) throws(DeviceError) -> any OutputLine {
        let stamp = stamps[name] ?? Stamp()
        stamps[name] = stamp
        return StampedOutput(inner: try inner.output(name), stamp: stamp)
    }

    func read(_ name: String) throws(DeviceError) -> Bool { try inner.read(name) }
    func start() throws(DeviceError) { try inner.start() }
    func close() { inner.close() }

    struct StampedOutput: OutputLine {
        let inner: any OutputLine
        let stamp: Stamp
        var name: String { inner.name }

        func set(_ active: Bool) throws(DeviceError) {
            try inner.set(active)
            stamp.nanos.store(monotonicNanos(), ordering: .relaxed)
        }
    }
}

let swipeToRelay = BenchmarkMetric.custom("Swipe to relay set (ns)", polarity: .prefersSmaller, useScalingFactor: false)

/// The rig lives from setup to teardown.
let swipeRig = Mutex<SwipeRig?>(nil)

func swipeBenchmarks() {
    Benchmark(
        "Swipe to relay, simulated board, 100k people",
        configuration: .init(metrics: [.wallClock, .mallocCountTotal, swipeToRelay], timeUnits: .microseconds,
                             warmupIterations: 100, maxDuration: .seconds(30), maxIterations: 5_000)
    ) { (benchmark: Benchmark, rig: SwipeRig) in
        for _ in benchmark.scaledIterations {
            let (target, card) = rig.nextSwipe()
            rig.controller.flush()  // no event write overlaps the measured swipe
            precondition(rig.board.outputs[target.lock] == !target.releasedValue, "\(target.lock) not locked before the swipe")
            guard let stamp = rig.stamping.stamps[target.lock] else { preconditionFailure("\(target.lock) was never bound") }
            benchmark.startMeasurement()
            let start = monotonicNanos()
            do {
                try rig.board.swipe(reader: target.reader, card: card)
            } catch {
                benchmark.stopMeasurement()
                preconditionFailure("swipe at \(target.reader) failed: \(error)")
            }
            benchmark.stopMeasurement()
            rig.swipes += 1
            let relaySet = stamp.nanos.load(ordering: .relaxed)
            precondition(relaySet > start, "card \(card) at \(target.reader): \(target.lock) was not set during the swipe")
            benchmark.measurement(swipeToRelay, Int(relaySet - start))
            precondition(rig.board.outputs[target.lock] == target.releasedValue,
                         "card \(card) at \(target.reader): \(target.lock) not released (\(String(describing: rig.controller.lastDecision(at: target.reader)?.reason)))")
            do {
                _ = try rig.controller.door(portal: target.portal, command: .close, operator: "bench")
            } catch {
                preconditionFailure("close \(target.portal): \(error)")
            }
        }
    } setup: {
        let rig = try SwipeRig(people: 100_000)
        swipeRig.withLock { $0 = rig }
        return rig
    } teardown: {
        swipeRig.withLock { rig in
            rig?.stop()
            rig = nil
        }
    }
}
