import AccessConfig
import AccessControlProtocol
import AccessController
import AccessCore
import AccessRuntime
import AccessDevices
@_spi(Testing) import AccessStore
import AccessTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// A controller on the simulated board with a small roster, in a temporary directory.
final class Rig: @unchecked Sendable {
    static let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
    let dir = TemporaryDirectory("controller")
    let config: SiteConfig
    let controller: Controller
    let board: SimulatedBoard
    let db: AccessDatabase
    /// The controller's time: it moves only with `advance` (no ticker thread runs), unless the
    /// rig runs in real time.
    let clock = ManualClock(wallMicros: 1_790_000_000_000_000)

    /// `extra`: more TOML appended to the site file (lanes, fences, Modbus lines). `realTime`: the
    /// system clocks and the ticker thread, for devices that move in real time (the simulated
    /// barrier's travel, pollers).
    /// `b01Verify`: the building door's `verify` mode (its reader has a keypad). `b01Portal` and
    /// `b01Door`: more keys for the building door's portal and door tables.
    init(heldOpenSeconds: Int = 1, extra: String = "", realTime: Bool = false, b01Verify: String? = nil,
         b01Portal: String = "", b01Door: String = "", logger: Logger = Logger(label: "accessd.controller")) throws {
        let path = dir.write("site.toml", """
            [controller]
            id = "rig-1"
            [database]
            path = "\(dir.file("access.db"))"
            [board]
            map = "\(Rig.root)/Hardware/boards/sim.toml"
            simulated = true
            [control]
            socket = "\(dir.file("ctl.sock"))"
            [[portal]]
            id = "gate-in"
            readers = ["reader-north-in", "qr-north-in"]
            [[portal]]
            id = "gate-out"
            direction = "out"
            from_area = "community"
            to_area = "outside"
            readers = ["reader-north-out"]
            [[portal]]
            id = "b01-door"
            building = "B01"
            from_area = "community"
            to_area = "b01"
            readers = ["reader-b01"]
            \(b01Verify.map { "verify = \"\($0)\"" } ?? "")
            \(b01Portal)
            [[portal]]
            id = "lane-in"
            kind = "barrier"
            readers = ["lpr-in"]
            [[door]]
            id = "gate"
            portals = ["gate-in", "gate-out"]
            lock = "gate-north.lock"
            fail_safe = true
            contact = "gate-north.contact"
            exit = "gate-north.exit"
            [[door]]
            id = "b01"
            portals = ["b01-door"]
            lock = "b01.lock"
            contact = "b01.contact"
            held_open_seconds = \(heldOpenSeconds)
            \(b01Door)
            [linkage]
            fire = ["fire.alarm"]
            call = ["call.gate-north"]
            \(extra)
            """)
        config = try SiteConfig.load(path: path)
        db = try AccessDatabase(path: config.databasePath, pinKey: try Controller.loadPinKey(config))
        try db.saveSite(config.rules)
        try db.addHouse(House(id: "B01-0301", building: "B01"), operator: "t")
        try db.addPerson(Person(id: "P1", houses: [HouseBinding(houseID: "B01-0301", role: .owner)]), operator: "t")
        try db.addCredential(Credential(kind: .card, value: "6553701", owner: .person("P1")), operator: "t")
        try db.addCredential(Credential(kind: .plate, value: "京A12345", owner: .person("P1")), operator: "t")
        try db.addCredential(Credential(kind: .pin, value: "246810", owner: .person("P1")), operator: "t")
        let config = self.config
        let clock = self.clock
        controller = realTime ? try Controller(config: config, logger: logger)
            : try Controller(config: config, logger: logger, clock: clock, ticks: false)
        let map = try BoardMap.load(path: "\(Rig.root)/Hardware/boards/sim.toml")
        let controller = self.controller
        board = SimulatedBoard(map: map) { controller.handle($0) }
        try controller.attach(board: board)
        try controller.start()
    }

    deinit { controller.stop() }

    func events() throws -> [AccessEvent] {
        controller.flush()
        return try db.events(EventQuery(after: 0, limit: 10_000))
    }

    /// Moves time on by `seconds` and lets the controller see it (timers, clock, roster).
    func advance(_ seconds: Double) {
        clock.advance(nanoseconds: UInt64(seconds * 1e9))
        controller.tick()
    }

    func reasons() throws -> [String] { try events().compactMap(\.reason?.rawValue) }

    /// Polls `condition` every 20 ms for up to `seconds`.
    func eventually(_ seconds: Double = 3, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(20_000)
        }
        return try condition()
    }
}

@Suite("Controller on the simulated board", .serialized)
struct ControllerTests {
    @Test func startsWithEveryLockInItsSafeState() throws {
        let rig = try Rig()
        // Fail-safe magnetic lock: energised (true) to hold the door; fail-secure strike: off.
        #expect(rig.board.outputs["gate-north.lock"] == true)
        #expect(rig.board.outputs["b01.lock"] == false)
        #expect(try rig.reasons().contains("started"))
        #expect(try !rig.reasons().contains("fire_alarm_cleared"), "initial input levels are not events")
    }

    @Test func aGrantedSwipeReleasesTheLockThenTheEventIsDurable() throws {
        let rig = try Rig()
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.board.outputs["b01.lock"] == true, "released at once")
        let access = try #require(try rig.events().first { $0.type == .access })
        #expect(access.granted == true && access.reason?.rawValue == "granted" && access.personID == "P1" && access.houseID == "B01-0301")
        #expect(access.portal == "b01-door" && access.credential == "6553701")
        #expect(try rig.reasons().contains("released"))
        // Relocks when the unlock time (5 s) has run out, or at once when the door opens and closes.
        try rig.board.setInput("b01.contact", active: true)
        try rig.board.setInput("b01.contact", active: false)
        #expect(rig.board.outputs["b01.lock"] == false)
    }

    @Test func deniedSwipesLeaveTheDoorLocked() throws {
        let rig = try Rig()
        try rig.board.swipe(reader: "reader-north-in", card: 424_242)
        #expect(rig.board.outputs["gate-north.lock"] == true)
        let access = try #require(try rig.events().first { $0.type == .access })
        #expect(access.granted == false && access.reason?.rawValue == "unknown_credential")
    }

    @Test func heldOpenAndForcedOpenAlarms() throws {
        let rig = try Rig(heldOpenSeconds: 1)
        try rig.board.setInput("b01.contact", active: true)  // opened while locked
        #expect(try rig.reasons().contains("forced_open"))
        rig.advance(0.9)
        #expect(try !rig.reasons().contains("held_open"))
        rig.advance(0.2)
        #expect(try rig.reasons().contains("held_open"))
        let alarm = try #require(try rig.events().first { $0.reason?.rawValue == "held_open" })
        #expect(alarm.type == .alarm)
    }

    @Test func aDoorLeftOpenAcrossARestartIsNotForcedAgain() throws {
        let rig = try Rig(heldOpenSeconds: 60)
        try rig.board.setInput("b01.contact", active: true)  // forced while running
        rig.controller.stop()
        // The same site started again with the door still open: the board reports it at start.
        let controller = try Controller(config: rig.config, ticks: false)
        let board = SimulatedBoard(map: try BoardMap.load(path: "\(Rig.root)/Hardware/boards/sim.toml")) { controller.handle($0) }
        try board.setInput("b01.contact", active: true)
        try controller.attach(board: board)
        try controller.start()
        try board.setInput("b01.contact", active: false)
        try board.setInput("b01.contact", active: true)  // forced again
        controller.stop()
        let reasons = try rig.db.events(EventQuery(after: 0, limit: 10_000)).compactMap(\.reason?.rawValue)
        #expect(reasons.filter { $0 == "forced_open" }.count == 2, "once before the restart, once after it: \(reasons)")
        #expect(reasons.filter { $0 == "opened" }.count == 3, "the open door found at start is recorded")
    }

    @Test func fireReleasesEscapeDoorsLatched() throws {
        let rig = try Rig()
        try rig.board.setInput("fire.alarm", active: true)
        #expect(rig.board.outputs["gate-north.lock"] == false, "fail-safe lock de-energised")
        #expect(rig.board.outputs["b01.lock"] == true, "fail-secure strike energised")
        try rig.board.setInput("fire.alarm", active: false)
        #expect(rig.board.outputs["b01.lock"] == true, "latched until reset")
        let reasons = try rig.reasons()
        #expect(reasons.contains("fire_alarm") && reasons.contains("fire_release"))
        _ = rig.controller.handleControl(.object([("op", "door"), ("portal", "b01-door"), ("command", "reset-alarm"), ("operator", "guard")]), caller: try .thisProcess())
        #expect(rig.board.outputs["b01.lock"] == false)
    }

    @Test func oneKeyCallRaisesAnUrgentAlarm() throws {
        let rig = try Rig()
        try rig.board.setInput("call.gate-north", active: true)
        let call = try #require(try rig.events().first { $0.reason?.rawValue == "one_key_call" })
        #expect(call.type == .alarm)
    }

    @Test func rosterChangesTakeEffectAtTheNextTickWithoutRestart() throws {
        let rig = try Rig()
        try rig.board.swipe(reader: "reader-b01", card: 777)
        #expect(rig.controller.lastDecision(at: "reader-b01")?.reason == .unknownCredential)
        let staff = try AccessDatabase(path: rig.config.databasePath)
        try staff.addCredential(Credential(kind: .card, value: "777", owner: .person("P1")), operator: "ops")
        // The ticker looks for roster changes every 250 ms; the card is shown again after the
        // repeat-read window (3 s), so it is a new read.
        rig.advance(3)
        try rig.board.swipe(reader: "reader-b01", card: 777)
        #expect(rig.controller.lastDecision(at: "reader-b01")?.reason == .granted, "a card added by accessctl opens the door")
    }

    /// The fleet client commits change sets and applies them in memory under the roster's lock:
    /// the ticker, which reloads the whole index when another connection changed the roster,
    /// neither waits for that commit nor reloads for it.
    @Test func changeSetsCommittedWhileTheTickerRunsAreAppliedInPlaceNotReloaded() throws {
        let rig = try Rig()
        func reloads() -> Int {
            let line = rig.controller.metrics.render().split(separator: "\n").first { $0.hasPrefix("access_roster_reloads_total ") }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? -1
        }
        let before = reloads()
        #expect(before >= 0)
        let fleet = try AccessDatabase(path: rig.config.databasePath, create: false)
        let origin = ChangeSet.Origin(user: "op", host: "office", command: "test")
        func changeSet(_ id: String, _ changes: [RosterChange]) -> ChangeSet {
            ChangeSet(community: "xfl", id: id, origin: origin, created: 1_790_000_000, changes: changes)
        }
        let ticked = DispatchSemaphore(value: 0)
        var tickedDuringTheCommit = false
        try rig.controller.changeRoster {
            let added = try fleet.apply(changeSet("a", [.putCredential(Credential(kind: .card, value: "777", owner: .person("P1")))]), sequence: 1)
            // Committed, not yet in memory: the ticker comes round now.
            Thread { rig.advance(3); ticked.signal() }.start()
            tickedDuringTheCommit = ticked.wait(timeout: .now() + 10) == .success
            let removed = try fleet.apply(changeSet("b", [.delete(.credential(.card, "6553701"))]), sequence: 2)
            return [added, removed].compactMap { $0 }
        }
        #expect(tickedDuringTheCommit, "the ticker did not wait for the fleet's commit")
        rig.advance(3)
        #expect(reloads() == before, "applied in place, not reloaded")
        try rig.board.swipe(reader: "reader-b01", card: 777)
        #expect(rig.controller.lastDecision(at: "reader-b01")?.reason == .granted)
        rig.advance(3)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.controller.lastDecision(at: "reader-b01")?.reason == .unknownCredential)

        // A group needs the index rebuilt: one reload, in the same hold of the roster.
        try rig.controller.changeRoster {
            [try fleet.apply(changeSet("c", [.putGroup(AccessGroup(name: "staff", portals: ["b01-door"], schedule: nil))]), sequence: 3)].compactMap { $0 }
        }
        #expect(reloads() == before + 1)
        rig.advance(3)
        #expect(reloads() == before + 1, "the ticker has nothing left to reload")
        // A change by anyone else (accessctl on this database) is still reloaded at the next tick.
        try rig.db.addCredential(Credential(kind: .card, value: "778", owner: .person("P1")), operator: "ops")
        rig.advance(3)
        #expect(reloads() == before + 2)
        try rig.board.swipe(reader: "reader-b01", card: 778)
        #expect(rig.controller.lastDecision(at: "reader-b01")?.reason == .granted)
    }

    @Test func controlSocketDoorCommandsAndSimulation() throws {
        let rig = try Rig()
        let server = try ControlServer(path: rig.dir.file("ctl.sock")) { rig.controller.handleControl($0, caller: $1) }
        defer { server.stop() }
        let socket = rig.dir.file("ctl.sock")
        let closed = try ControlClient.send(.object([("op", "door"), ("portal", "b01-door"), ("command", "always-closed"), ("operator", "zhang")]), to: socket)
        #expect(closed["ok"] == .bool(true))
        let swipe = try ControlClient.send(.object([("op", "sim.swipe"), ("reader", "reader-b01"), ("card", 6_553_701)]), to: socket)
        #expect(swipe["decision"]?["reason"] == .string("portal_locked"))
        let plate = try ControlClient.send(.object([("op", "sim.plate"), ("lane", "lpr-in"), ("plate", "京a 12345")]), to: socket)
        #expect(plate["decision"]?["granted"] == .bool(true))
        let outputs = try ControlClient.send(.object([("op", "sim.outputs")]), to: socket)
        #expect(outputs["outputs"]?["b01.lock"] == .int(0))
        let bad = try ControlClient.send(.object([("op", "sim.swipe"), ("reader", "nope"), ("card", 1)]), to: socket)
        #expect(bad["ok"] == .bool(false))
        rig.controller.flush()
        // Recorded as the Unix user the kernel names; the typed name is a note.
        let audit = try rig.db.audit(operator: try UnixUser.current().name)
        #expect(audit.map(\.action) == ["door.always-closed"])
        #expect(audit.map(\.note) == ["zhang"])
        #expect(try rig.db.portalMode("b01-door") == .alwaysClosed)
    }

    @Test func metricsCountDurableEventsByReasonAndTimeSwipeToRelay() throws {
        let rig = try Rig()
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        try rig.board.swipe(reader: "reader-north-in", card: 424_242)
        try rig.board.swipe(reader: "reader-north-in", card: 424_243)
        // Granted again while the lock is still released (after the repeat-read window): no relay
        // moves, so nothing is timed.
        rig.advance(3)
        #expect(rig.board.outputs["b01.lock"] == true)
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        rig.controller.flush()
        let text = rig.controller.metrics.render()
        #expect(text.contains(#"access_events_total{type="access",reason="granted"} 2"#), "\(text)")
        #expect(text.contains(#"access_events_total{type="access",reason="unknown_credential"} 2"#))
        #expect(text.contains("access_swipe_to_relay_seconds_count 1"), "only a grant that drove a relay is timed")
        #expect(text.contains("access_roster_people 1"))
        let latency = rig.controller.metrics.swipeToRelay
        #expect(latency.count == 1 && latency.p50 <= latency.max)
        #expect(latency.max < 1_000_000, "from the frame's last edge, in µs: \(latency)")
        // The same over the socket, as `accessctl metrics` and `status` read it.
        let server = try ControlServer(path: rig.dir.file("ctl.sock")) { rig.controller.handleControl($0, caller: $1) }
        defer { server.stop() }
        let metrics = try ControlClient.send(.object([("op", "metrics")]), to: rig.dir.file("ctl.sock"))
        #expect(metrics["text"]?.stringValue?.contains("access_events_total") == true)
        let status = try ControlClient.send(.object([("op", "status")]), to: rig.dir.file("ctl.sock"))
        #expect(status["swipe_to_relay_micros"]?["count"] == .int(1))
        #expect(status["decisions"] == .int(4) && status["granted"] == .int(2))
    }

    @Test func aPinTypedOnTheKeypadOpensTheDoorAndNeverReachesTheLog() throws {
        let rig = try Rig()
        try rig.board.keys(reader: "reader-b01", [.digit(2), .digit(4), .digit(6), .digit(8), .digit(1), .digit(0), .hash])
        #expect(rig.board.outputs["b01.lock"] == true)
        try rig.board.keys(reader: "reader-north-in", [.digit(1), .digit(2), .star, .digit(9), .digit(9), .digit(9), .digit(9), .hash])
        let access = try rig.events().filter { $0.type == .access }
        #expect(access.map(\.reason?.rawValue) == ["granted", "unknown_credential"])
        #expect(access.allSatisfy { $0.credentialKind == .pin && $0.credential == nil }, "a PIN is never logged")
    }

    @Test func clockJumpsAreEventsAndAnUnsetClockNeverWrites1970() throws {
        let rig = try Rig()
        let started = try #require(try rig.events().first { $0.reason == .started })

        rig.clock.setWall(micros: rig.clock.wallMicros() + 3_600_000_000)  // an NTP step of an hour
        rig.controller.tick()
        let jump = try #require(try rig.events().first { $0.reason == .clockJump })
        // Measured against the monotonic clock, which stood still.
        #expect(jump.detail.first { $0.0 == "jump_seconds" }?.1 == .int(3600))

        rig.clock.setWall(micros: 5_000_000)  // the RTC battery died: 1970
        rig.controller.tick()
        #expect(try rig.reasons().contains("clock_unset"))
        rig.clock.advance(by: .seconds(10))
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        let access = try #require(try rig.events().last { $0.type == .access })
        #expect(access.reason == .clockUnset && access.granted == false, "no time-based decision on an unset clock")
        #expect(access.timeMicros == started.timeMicros + 3_610_000_000, "the last good time carries on, never 1970")

        rig.clock.advance(by: .seconds(3))  // the card is shown again after the repeat-read window
        rig.clock.setWall(micros: 1_790_003_700_000_000)  // NTP is back
        rig.controller.tick()
        #expect(try rig.reasons().contains("clock_set"))
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(try rig.events().last { $0.type == .access }?.reason == .granted)
        #expect(try rig.events().allSatisfy { $0.timeMicros >= 1_577_836_800_000_000 }, "no event before 2020")
    }

    @Test func stoppingReturnsDoorsToTheirSafeStateAndWritesEverything() throws {
        let rig = try Rig()
        try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
        #expect(rig.board.outputs["b01.lock"] == true)
        rig.controller.stop()
        // Every line de-energised: the fail-secure strike locks, the fail-safe magnetic lock releases.
        #expect(rig.board.outputs["b01.lock"] == false)
        #expect(rig.board.outputs["gate-north.lock"] == false)
        let reasons = try rig.db.events(EventQuery(after: 0, limit: 100)).compactMap(\.reason?.rawValue)
        #expect(reasons.last == "stopped")
        #expect(reasons.contains("granted"))
    }
}

@Suite("accessd process")
struct AccessdProcessTests {
    @Test func runsTheSimulatedBoardAndStopsCleanlyOnSIGTERM() throws {
        let rig = try Rig()
        rig.controller.stop()  // the process below takes over the same database
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessd")
        try #require(FileManager.default.isExecutableFile(atPath: binary.path))
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--config", rig.config.source]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let socket = rig.dir.file("ctl.sock")
        // The socket file appears at bind(), a moment before listen(): wait for an answer.
        #expect(rig.eventually(10) { (try? ControlClient.send(.object([("op", "status")]), to: socket)) != nil })
        let reply = try ControlClient.send(.object([("op", "sim.swipe"), ("reader", "reader-b01"), ("card", 6_553_701)]), to: socket)
        #expect(reply["decision"]?["granted"] == .bool(true))
        let perms = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
        #expect(perms == 0o660)
        kill(process.processIdentifier, SIGTERM)
        #expect(rig.eventually(10) { !process.isRunning })
        #expect(process.terminationStatus == 0)
        #expect(!FileManager.default.fileExists(atPath: socket), "socket removed at stop")
        let log = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("stopped: doors in their safe state"))
        let reasons = try rig.db.events(EventQuery(after: 0, limit: 100)).compactMap(\.reason?.rawValue)
        #expect(reasons.suffix(3).contains("granted") && reasons.last == "stopped")
    }
}

/// A datagram socket standing in for systemd's notification socket.
final class NotifySocket: @unchecked Sendable {
    let path: String
    let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(rc == 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Every datagram that has arrived, one string each.
    func drain() -> [String] {
        var out: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return out }
            out.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
    }
}

@Suite("accessd under systemd")
struct SystemdTests {
    @Test func notifiesReadinessFeedsTheWatchdogAndSaysWhenStopping() throws {
        let rig = try Rig()
        rig.controller.stop()
        let notify = try NotifySocket(path: rig.dir.file("notify.sock"))
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessd")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--config", rig.config.source]
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notify.path
        environment["WATCHDOG_USEC"] = "200000"  // a ping every 100 ms
        process.environment = environment
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        var messages: [String] = []
        #expect(rig.eventually(10) {
            messages += notify.drain()
            return messages.contains { $0.hasPrefix("READY=1") } && messages.filter { $0 == "WATCHDOG=1" }.count >= 3
        }, "READY then watchdog pings: \(messages)")
        kill(process.processIdentifier, SIGTERM)
        #expect(rig.eventually(10) { !process.isRunning })
        messages += notify.drain()
        // Pings may go on while stopping (systemd's watchdog still runs then); STOPPING follows READY.
        let ready = messages.firstIndex { $0.hasPrefix("READY=1") }
        let stopping = messages.firstIndex(of: "STOPPING=1")
        #expect(ready != nil && stopping != nil && stopping! > ready!, "\(messages)")
    }
}

@Suite("Shipped configurations")
struct ShippedConfigTests {
    @Test func theRealBoardConfigBindsToTheRaspberryPiMap() throws {
        let dir = TemporaryDirectory("real-config")
        var text = try #require(readFile(Rig.root + "/Config/accessd.toml"))
        text = text.replacingOccurrences(of: "/var/lib/accessd/access.db", with: dir.file("access.db"))
            .replacingOccurrences(of: "/usr/share/communityaccess/devices/", with: Rig.root + "/Hardware/devices/")
        let config = try SiteConfig.load(path: dir.write("accessd.toml", text))
        let map = try BoardMap.load(path: Rig.root + "/Hardware/boards/rpi4-relay-hat.toml")
        let controller = try Controller(config: config)
        let board = SimulatedBoard(map: map) { controller.handle($0) }
        try controller.attach(board: board)  // every lock, contact, button and reader line exists
        #expect(config.doors.map(\.lock) == ["GPIO5", "GPIO6"])
        #expect(config.barriers.map(\.portal) == ["lane-north-in", "lane-north-out"])
        #expect(config.fenceZones.map(\.zone) == [1, 2] && config.fenceZones[1].emergency)
        controller.stop()
    }

    func readFile(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
}

@Suite("Store worker")
struct StoreWorkerTests {
    @Test func aFailedWriteIsRetriedNeverDropped() throws {
        let dir = TemporaryDirectory("worker")
        let path = dir.file("w.db")
        let db = try AccessDatabase(path: path)
        try db.failEventAppends(true)
        let worker = try StoreWorker(path: path)
        func event(_ reason: EventReason) -> StoreWorker.Job {
            .event(AccessEvent(timeMicros: 1_795_363_200_000_000, utcOffset: 28_800, type: .system, reason: reason))
        }
        worker.submit([event(.opened), event(.closed)])
        let deadline = monotonicSeconds() + 5
        while worker.failures.load(ordering: .relaxed) < 2 && monotonicSeconds() < deadline { usleep(10_000) }
        #expect(worker.failures.load(ordering: .relaxed) >= 2)
        #expect(worker.lastError.withLock { $0 }?.contains("injected failure") == true)
        #expect(try db.events(EventQuery()).isEmpty)
        worker.submit([event(.released)])
        try db.failEventAppends(false)
        worker.flush()
        #expect(try db.events(EventQuery()).compactMap(\.reason) == [.opened, .closed, .released])
        worker.stop()
    }

    func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

@Suite("The relay never waits for the disk")
struct DiskIndependenceTests {
    @Test func aSwipeDuringALongImportOpensAtOnceAndItsEventLandsAfterwards() throws {
        let rig = try Rig()
        // Staff's long import: a write transaction held for 6 s (longer than SQLite's 5 s busy timeout).
        let importer = try AccessDatabase(path: rig.config.databasePath)
        try importer.transaction {  // BEGIN IMMEDIATE: the write lock, held until it returns
            try rig.board.swipe(reader: "reader-b01", card: 6_553_701)
            #expect(rig.board.outputs["b01.lock"] == true, "the lock released while the database was locked")
            #expect(rig.controller.lastDecision(at: "reader-b01")?.granted == true)
            usleep(6_000_000)
        }
        rig.controller.flush()
        let access = try #require(try rig.db.events(EventQuery(after: 0, limit: 100)).first { $0.type == .access })
        #expect(access.granted == true && access.personID == "P1", "the event was kept and written once the lock was gone")
        #expect(rig.controller.storeFailures >= 1, "the first write timed out on the lock and was retried")
    }
}

@Suite("Event log retention in the writer")
struct WriterRetentionTests {
    @Test func aLogNearingItsLimitRaisesAnAlarmOnceAndIsPruned() throws {
        let dir = TemporaryDirectory("retention")
        let path = dir.file("access.db")
        _ = try AccessDatabase(path: path)
        // Maintenance runs when asked (an hour apart on its own), so the test needs no waiting.
        let worker = try StoreWorker(path: path, retention: EventRetention(maxCount: 100), maintenanceSeconds: 3600)
        func event(_ i: Int) -> StoreWorker.Job { .event(AccessEvent(timeMicros: 1_790_000_000_000_000 + Int64(i), utcOffset: 0, type: .system, reason: .started)) }
        worker.submit((0..<95).map(event))
        worker.flush()
        let db = try AccessDatabase(path: path)
        worker.maintainNow()
        #expect(try db.events(EventQuery(after: 0, limit: 1000)).filter { $0.reason == .eventLogNearlyFull }.count == 1)
        worker.submit((95..<400).map(event))
        worker.flush()
        worker.maintainNow()
        #expect(try db.eventCount() <= 100, "pruned to the limit")
        worker.maintainNow()
        #expect(try db.events(EventQuery(after: 0, limit: 1000)).filter { $0.reason?.rawValue == "event_log_nearly_full" }.count <= 1, "raised once while it stays full")
        worker.stop()
    }
}

/// The real accessd on a rig, for the tests that take the controller out of the process.
extension Rig {
    /// The real accessd on this rig's site and database (the rig's own controller stopped
    /// first), answering on its control socket.
    func startAccessd() throws -> Process {
        controller.stop()
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("accessd")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--config", config.source]
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        #expect(eventually(10) { (try? control([("op", "status")])) != nil })
        return process
    }

    func stopAccessd(_ process: Process) {
        kill(process.processIdentifier, SIGTERM)
        #expect(eventually(10) { !process.isRunning })
    }

    func control(_ request: [(String, JSON)]) throws -> JSON {
        try ControlClient.send(.object(request), to: dir.file("ctl.sock"))
    }
}
