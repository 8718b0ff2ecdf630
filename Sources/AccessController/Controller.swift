import AccessConfig
import AccessCore
import AccessDevices
import AccessStore
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The controller: board events in, decisions, relays and durable events out.
///
/// The swipe path runs on the board's own thread under one lock: frame → decision (from the
/// in-memory index) → door state machine → relay, and only then the event is handed to the
/// `StoreWorker`, so the relay never waits for the disk. A ticker thread drives door timers and
/// reloads the roster when it changes.
public final class Controller: @unchecked Sendable {
    public let config: SiteConfig
    /// Prometheus metrics: decisions and events by reason, swipe → relay latency, devices, roster.
    public let metrics: ControllerMetrics
    /// Wakes readers of the event log when events become durable.
    public let feed: EventFeed
    let worker: StoreWorker
    /// Operational messages: portals, lines, devices and reasons; never credentials or people.
    let logger: Logger
    let state: Mutex<State>
    private var board: (any Board)?
    /// Barrier gates and fence hosts; nil until `attach`.
    private(set) var fieldDevices: FieldDevices?
    /// Fence sirens and lights by name.
    private(set) var fenceOutputs: [String: any OutputLine] = [:]
    /// The wall clock (CLOCK_REALTIME in µs); tests set it to play clock jumps.
    private let wallClock: @Sendable () -> Int64
    private let clock: Mutex<EventClock>
    private var ticker: pthread_t?
    private let running = Atomic<Bool>(false)
    /// Follows roster changes; created with the controller (its roster is the controller's first
    /// policy, loaded once) and used only by the ticker thread after `start`.
    private nonisolated(unsafe) let rosterWatcher: RosterWatcher

    struct DoorRuntime {
        var id: String
        var portals: [String]
        var machine: DoorStateMachine
        var lock: DoorLock
        var contact: String?
        var exitButton: String?
    }

    struct State {
        var policy: AccessPolicy
        var ledger: AntiPassbackLedger
        var doors: [DoorRuntime] = []
        /// Reader or lane name → portal id.
        var readerPortal: [String: String] = [:]
        /// Portal id → door index.
        var portalDoor: [String: Int] = [:]
        var fireActive = false
        var lanes: [LaneRuntime] = []
        var zones: [ZoneRuntime] = []
        /// PINs being typed, by reader.
        var pins: [String: PinEntry] = [:]
        /// Arm schedules found missing, warned about once.
        var warnedSchedules: Set<String> = []
        var counters = Counters()
        /// When `apply` last released a lock (monotonic ns): the end of the swipe → relay path.
        var lastRelease: UInt64 = 0
        /// The latest decision at each reader or lane (status, `sim` replies).
        var lastDecision: [String: Decision] = [:]
    }

    public struct Counters: Sendable, Equatable {
        public var decisions = 0
        public var granted = 0
        public var garbled = 0
        public var overruns = 0
    }

    /// Opens the roster and prepares the doors; `attach(board:)` then `start()` runs it.
    public init(config: SiteConfig, logger: Logger = Logger(label: "accessd.controller"),
                wallClock: @escaping @Sendable () -> Int64 = wallClockMicros) throws {
        self.config = config
        self.logger = logger
        self.wallClock = wallClock
        let metrics = ControllerMetrics()
        self.metrics = metrics
        let db = try AccessDatabase(path: config.databasePath)
        try db.saveSite(config.rules)
        // One load of the roster: the watcher's policy is also the controller's first one.
        let rosterWatcher = try RosterWatcher(path: config.databasePath, rules: config.rules)
        self.rosterWatcher = rosterWatcher
        let policy = rosterWatcher.policy
        let ledger = try db.antiPassbackLedger()
        clock = Mutex(EventClock(lastLoggedMicros: try db.lastEventTime() ?? 0, wall: wallClock(), mono: monotonicNanos()))
        var modes: [String: PortalMode] = [:]
        for portal in config.portals { modes[portal.id] = try db.portalMode(portal.id) }
        let feed = EventFeed(lastSerial: try db.lastEventSerial())
        self.feed = feed
        let zone = config.controller.timeZone
        worker = try StoreWorker(path: config.databasePath, retention: config.retention, makeEvent: { reason, detail in
            let now = AccessDatabase.nowMicros()
            return AccessEvent(timeMicros: now, utcOffset: zone.offset(at: now / 1_000_000), type: .alarm, reason: reason, detail: detail)
        }, onDurable: { [metrics, feed] events in
            metrics.recordDurable(events)
            if let last = events.last?.serial { feed.publish(last) }
        },
                                 onFailure: { [logger, metrics] error in
            metrics.recordStoreFailure()
            logger.error("event log write failed; the batch is kept and retried", metadata: ["error": "\(error)"])
        })
        metrics.recordRosterLoad(people: policy.roster.personCount, credentials: policy.roster.credentialCount)
        var s = State(policy: policy, ledger: ledger)
        for portal in config.portals { for reader in portal.readers { s.readerPortal[reader] = portal.id } }
        (s.lanes, s.zones) = Self.fieldRuntimes(config)
        state = Mutex(s)
        self.initialModes = modes
        releaseFreedHeap()  // what loading the roster left behind
    }

    private let initialModes: [String: PortalMode]

    /// Binds the doors to the board's lines; throws naming any line the board lacks.
    public func attach(board: any Board) throws {
        var doors: [DoorRuntime] = []
        let inputs = Set(board.map.inputs.map(\.name))
        let readers = Set(board.map.readers.map(\.name))
        for door in config.doors {
            let lock = DoorLock(output: try board.output(door.lock), failSafe: door.failSafe)
            for line in [door.contact, door.exitButton].compactMap({ $0 }) where !inputs.contains(line) {
                throw DeviceError.unknownName(kind: "input (door \(door.id))", name: line)
            }
            for portal in door.portals {
                for reader in config.portals.first(where: { $0.id == portal })?.readers ?? [] where !readers.contains(reader) {
                    throw DeviceError.unknownName(kind: "reader (portal \(portal))", name: reader)
                }
            }
            let machine = DoorStateMachine(config: DoorConfig(
                unlockSeconds: door.unlockSeconds, heldOpenSeconds: door.heldOpenSeconds, hasContact: door.contact != nil,
                escapeRoute: door.escapeRoute, releasedWhenStopped: door.failSafe))
            doors.append(DoorRuntime(id: door.id, portals: door.portals, machine: machine, lock: lock,
                                     contact: door.contact, exitButton: door.exitButton))
        }
        for line in config.linkage.fire + config.linkage.call + config.linkage.tamper where !inputs.contains(line) {
            throw DeviceError.unknownName(kind: "input (linkage)", name: line)
        }
        var outputs: [String: any OutputLine] = [:]
        for name in Set(config.fenceZones.flatMap(\.outputs)) { outputs[name] = try board.output(name) }
        fenceOutputs = outputs
        fieldDevices = try FieldDevices(config: config)
        self.board = board
        state.withLock { s in
            s.doors = doors
            for (i, door) in doors.enumerated() { for portal in door.portals { s.portalDoor[portal] = i } }
        }
    }

    /// Safe state first (every lock to its stopped state), then the operator modes, then the board.
    public func start() throws {
        let now = monotonicNow()
        var events: [AccessEvent] = []
        try state.withLock { s throws in
            for i in s.doors.indices {
                try apply(s.doors[i].machine.start(), door: i, &s, &events)
                // A door's mode is that of its first portal, as operators last set it.
                let mode = s.doors[i].portals.compactMap { initialModes[$0] }.first ?? .normal
                if mode != .normal {
                    let command: DoorCommand = mode == .alwaysOpen ? .alwaysOpen : .alwaysClosed
                    try apply(s.doors[i].machine.handle(.command(command), at: now), door: i, &s, &events)
                }
            }
            for i in s.lanes.indices {
                let mode = initialModes[s.lanes[i].portal] ?? .normal
                if mode != .normal { laneCommand(i, mode == .alwaysOpen ? .alwaysOpen : .alwaysClosed, now: now, &s, &events) }
            }
            for i in s.zones.indices { applyZone(s.zones[i].machine.start(), zone: i, &s, &events) }
        }
        events.insert(systemEvent("started", [("controller", .string(config.controller.id))]), at: 0)
        if !clock.withLock({ $0.trusted }) {
            logger.warning("the wall clock is not set: time-based decisions are refused until it is")
            events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .alarm, reason: "clock_unset",
                                      detail: [("wall_clock_micros", .int(wallClock()))]))
        }
        worker.submit(events.map { .event($0) })
        running.store(true, ordering: .releasing)
        try board?.start()
        fieldDevices?.start(self)
        ticker = try startThread { self.tickLoop() }  // ends at stop()
    }

    /// Stops the ticker, returns doors to their safe state, releases the board and writes every
    /// pending event.
    public func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        if let ticker { pthread_join(ticker, nil) }
        ticker = nil
        fieldDevices?.stop()
        var events: [AccessEvent] = []
        state.withLock { s in
            for i in s.doors.indices { try? apply(s.doors[i].machine.stop(), door: i, &s, &events) }
        }
        board?.close()
        events.append(systemEvent("stopped", []))
        worker.submit(events.map { .event($0) })
        worker.stop()
    }

    public var counters: Counters { state.withLock { $0.counters } }

    /// Event-log writes that failed and were retried (a busy or full disk).
    public var storeFailures: Int { worker.failures.load(ordering: .relaxed) }

    /// Waits until every event so far is durable (tests, shutdown).
    public func flush() { worker.flush() }

    // MARK: Board events

    /// Called by the board on its own thread, in order.
    public func handle(_ event: BoardEvent) {
        let now = monotonicNow()
        var events: [AccessEvent] = []
        var jobs: [StoreWorker.Job] = []
        state.withLock { s in
            switch event {
            case .card(let reader, let frame, let lastEdge):
                // Only a swipe that drove a lock counts (not one at a door already open); the time
                // is taken when the line was set, before the event is built.
                let releasesBefore = s.lastRelease
                decide(.card(frame.cardNumber), reader: reader, now: now, &s, &events, &jobs)
                if s.lastRelease != releasesBefore, s.lastRelease >= lastEdge {
                    metrics.recordSwipeToRelay(nanos: s.lastRelease - lastEdge)
                }
            case .key(let reader, let key, _):
                var entry = s.pins[reader] ?? PinEntry()
                let outcome = entry.press(key, at: now)
                s.pins[reader] = entry
                if case .submitted(let pin) = outcome { decide(.pin(pin), reader: reader, now: now, &s, &events, &jobs) }
            case .garbled(let reader, let reason):
                s.counters.garbled += 1
                logger.notice("garbled frame dropped", metadata: ["reader": "\(reader)", "problem": "\(reason)"])
                events.append(systemEvent("garbled_frame", [("reader", .string(reader)), ("problem", .string(reason.description))]))
            case .overrun(let line):
                s.counters.overruns += 1
                logger.warning("GPIO edge queue overrun: edges may be lost", metadata: ["line": "\(line)"])
                events.append(systemEvent("gpio_overrun", [("line", .string(line))]))
            case .input(let line, let active, _):
                input(line, active: active, now: now, &s, &events)
            case .device(let name, let online):
                metrics.recordDevice(name, online: online)
                if online { logger.info("device online", metadata: ["device": "\(name)"]) } else {
                    logger.warning("device offline", metadata: ["device": "\(name)"])
                }
                events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: online ? .system : .alarm,
                                          reason: online ? "device_online" : "device_offline", detail: [("device", .string(name))]))
            }
        }
        worker.submit(jobs + events.map { .event($0) })
    }

    /// A credential from a reader or a plate camera: decide, drive the door, record.
    @discardableResult
    private func decide(_ credential: PresentedCredential, reader: String, now: UInt64, _ s: inout State,
                        _ events: inout [AccessEvent], _ jobs: inout [StoreWorker.Job]) -> Decision? {
        guard let portalID = s.readerPortal[reader], let portal = config.rules.portal(portalID) else {
            events.append(systemEvent("unbound_reader", [("reader", .string(reader))]))
            return nil
        }
        let micros = eventMicros()
        let door = s.portalDoor[portalID]
        let lane = s.lanes.firstIndex { $0.portal == portalID }
        let mode = door.map { s.doors[$0].machine.mode } ?? lane.map { s.lanes[$0].mode } ?? .normal
        let request = DecisionRequest(portal: portalID, credential: credential, at: micros / 1_000_000,
                                      clockTrusted: clock.withLock { $0.trusted }, portalMode: mode)
        guard let decision = try? s.policy.decide(request, ledger: s.ledger) else { return nil }
        s.counters.decisions += 1
        s.lastDecision[reader] = decision
        if decision.granted {
            s.counters.granted += 1
            if let door { try? apply(s.doors[door].machine.handle(.granted, at: now), door: door, &s, &events) }
            if let lane { applyLane(s.lanes[lane].machine.handle(.granted, at: now), lane: lane, &s, &events) }
            if let subject = decision.subject {
                s.ledger.recordPassage(subject: subject, portal: portal, at: request.at)
                if portal.direction != .both { jobs.append(.passage(subject: subject, area: portal.toArea, at: request.at)) }
            }
            if decision.consumesVisitorUse, let pass = decision.visitorPassID { jobs.append(.passUse(pass)) }
        }
        var event = AccessEvent(decision: decision, presented: credential, portal: portal, timeMicros: micros, zone: config.controller.timeZone)
        event.detail.append(("reader", .string(reader)))
        events.insert(event, at: 0)
        if decision.alarm {
            events.append(AccessEvent(timeMicros: micros, utcOffset: event.utcOffset, type: .alarm, portal: portalID,
                                      personID: decision.personID, houseID: decision.houseID, reason: "blacklisted_credential"))
        }
        return decision
    }

    private func input(_ line: String, active: Bool, now: UInt64, _ s: inout State, _ events: inout [AccessEvent]) {
        if let i = s.doors.firstIndex(where: { $0.contact == line }) {
            try? apply(s.doors[i].machine.handle(.contact(open: active), at: now), door: i, &s, &events)
        } else if let i = s.doors.firstIndex(where: { $0.exitButton == line }), active {
            try? apply(s.doors[i].machine.handle(.exitButton, at: now), door: i, &s, &events)
        } else if config.linkage.fire.contains(line) {
            // The board reports every input at start: only a change is an event.
            guard active != s.fireActive else { return }
            s.fireActive = active
            events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .alarm,
                                      reason: active ? "fire_alarm" : "fire_alarm_cleared", detail: [("line", .string(line))]))
            for i in s.doors.indices { try? apply(s.doors[i].machine.handle(.fire(active: active), at: now), door: i, &s, &events) }
            for i in s.lanes.indices { applyLane(s.lanes[i].machine.handle(.fire(active: active), at: now), lane: i, &s, &events) }
        } else if config.linkage.call.contains(line), active {
            events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .alarm, reason: "one_key_call",
                                      detail: [("line", .string(line)), ("urgent", true)]))
        } else if config.linkage.tamper.contains(line), active {
            events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .alarm, reason: "tamper",
                                      detail: [("line", .string(line))]))
        }
    }

    /// Drives the lock at once and turns door events into log events.
    func apply(_ actions: [DoorAction], door i: Int, _ s: inout State, _ events: inout [AccessEvent]) throws {
        for action in actions {
            switch action {
            case .lock(let released):
                do {
                    try s.doors[i].lock.release(released)
                    if released { s.lastRelease = monotonicNow() }
                } catch {
                    logger.error("relay failed", metadata: ["door": "\(s.doors[i].id)", "error": "\(error)"])
                    events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .alarm, portal: s.doors[i].portals.first,
                                              reason: "relay_failed", detail: [("door", .string(s.doors[i].id)), ("error", .string(error.description))]))
                }
            case .event(let e):
                events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: e.isAlarm ? .alarm : .door,
                                          portal: s.doors[i].portals.first, reason: e.rawValue, detail: [("door", .string(s.doors[i].id))]))
            }
        }
    }

    // MARK: Timers and roster

    private func tickLoop() {
        let watcher = rosterWatcher
        var refreshError: String?
        var nextRefresh: UInt64 = 0
        // The watchdog is fed from this loop, which takes the controller's lock: a controller
        // that hangs stops feeding it and systemd restarts it.
        let watchdog = SystemdNotifier.watchdogPingNanos
        var nextPing: UInt64 = 0
        while running.load(ordering: .acquiring) {
            let now = monotonicNow()
            if let watchdog, now >= nextPing {
                nextPing = now + watchdog
                SystemdNotifier.notify("WATCHDOG=1")
            }
            var events: [AccessEvent] = []
            let wall = wallClock()
            if let change = clock.withLock({ $0.observe(wall: wall, mono: now) }) { events.append(clockEvent(change)) }
            let trusted = clock.withLock { $0.trusted }
            let nextDoor: UInt64? = state.withLock { s in
                for i in s.doors.indices where (s.doors[i].machine.nextDeadline ?? .max) <= now {
                    try? apply(s.doors[i].machine.handle(.tick, at: now), door: i, &s, &events)
                }
                tickField(now: now, wallSeconds: wall / 1_000_000, clockTrusted: trusted, &s, &events)
                return (s.doors.compactMap { $0.machine.nextDeadline } + s.lanes.compactMap { $0.machine.nextDeadline }).min()
            }
            worker.submit(events.map { .event($0) })
            // Roster changes take effect within 250 ms (the bar is 1 s).
            if now >= nextRefresh {
                nextRefresh = now + 250_000_000
                let reloaded: Bool
                do {
                    reloaded = try watcher.refresh()
                    refreshError = nil
                } catch {
                    reloaded = false
                    // Said once per distinct failure: the gate goes on with the roster it has.
                    if refreshError != "\(error)" {
                        refreshError = "\(error)"
                        logger.error("roster reload failed; deciding from the roster loaded before", metadata: ["error": "\(error)"])
                    }
                }
                if reloaded {
                    let policy = watcher.policy
                    state.withLock { $0.policy = policy }
                    releaseFreedHeap()  // the old index, and what building the new one left
                    metrics.recordRosterLoad(people: policy.roster.personCount, credentials: policy.roster.credentialCount)
                    logger.info("roster reloaded", metadata: ["people": "\(policy.roster.personCount)", "credentials": "\(policy.roster.credentialCount)"])
                }
            }
            let wake = min(nextDoor ?? .max, nextRefresh, monotonicNow() + 50_000_000)
            let sleepFor = wake > monotonicNow() ? wake - monotonicNow() : 0
            if sleepFor > 0 { usleep(useconds_t(min(sleepFor / 1000, 50_000))) }
        }
    }

    // MARK: Helpers

    func offset() -> Int { config.controller.timeZone.offset(at: eventMicros() / 1_000_000) }

    /// An event's time: the wall clock when it is set; while it is not (before 2020), the last
    /// time known good plus the monotonic time since, so the log never shows 1970.
    func eventMicros() -> Int64 {
        let wall = wallClock()
        return clock.withLock { $0.eventMicros(wall: wall, mono: monotonicNanos()) }
    }

    func systemEvent(_ reason: String, _ detail: [(String, JSON)]) -> AccessEvent {
        AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .system, reason: reason, detail: detail)
    }

    // MARK: Operator and simulation commands

    /// A door command from an operator (through the control socket).
    public func door(portal: String, command: DoorCommand, operator who: String) throws -> [String: Bool] {
        let now = monotonicNow()
        var events: [AccessEvent] = []
        var jobs: [StoreWorker.Job] = []
        let result: [String: Bool] = try state.withLock { s throws in
            if let lane = s.lanes.firstIndex(where: { $0.portal == portal }) {
                laneCommand(lane, command, now: now, &s, &events)
                let mode: PortalMode? = [.alwaysOpen, .alwaysClosed, .normal].contains(command) ? s.lanes[lane].mode : nil
                jobs.append(.operatorCommand(portals: [portal], action: "barrier.\(command.rawValue)", mode: mode, operator: who))
                return ["locked": s.lanes[lane].machine.lockedMode]
            }
            if let zone = s.zones.firstIndex(where: { $0.portal == portal }) {
                guard command == .resetAlarm else { throw ControlError.unknown("portal \(portal) is a fence zone: use accessctl fence arm|disarm|reset") }
                fieldDevices?.send(.reset(zone: s.zones[zone].zone), to: s.zones[zone].device)
                jobs.append(.operatorCommand(portals: [portal], action: "fence.reset", mode: nil, operator: who))
                return ["armed": s.zones[zone].machine.armed]
            }
            guard let i = s.portalDoor[portal] else { throw ControlError.unknown("portal \(portal) has no door, lane or fence zone") }
            try apply(s.doors[i].machine.handle(.command(command), at: now), door: i, &s, &events)
            jobs.append(.operatorCommand(portals: s.doors[i].portals, action: "door.\(command.rawValue)", mode: s.doors[i].machine.mode, operator: who))
            return ["released": s.doors[i].machine.released]
        }
        events.insert(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .operator, portal: portal,
                                  reason: command.rawValue, detail: [("operator", .string(who))]), at: 0)
        worker.submit(jobs + events.map { .event($0) })
        return result
    }

    /// A plate read from a lane's camera (or `accessctl sim plate`); nil when the lane is unknown.
    public func plate(lane: String, plate: String) -> Decision? {
        var events: [AccessEvent] = []
        var jobs: [StoreWorker.Job] = []
        let decision = state.withLock { s in decide(.plate(plate), reader: lane, now: monotonicNow(), &s, &events, &jobs) }
        worker.submit(jobs + events.map { .event($0) })
        return decision
    }

    /// The board, for simulation commands.
    public var attachedBoard: (any Board)? { board }

    public func lastDecision(at reader: String) -> Decision? { state.withLock { $0.lastDecision[reader] } }

    /// Each door's mode and lock state.
    public var doorStates: [(id: String, mode: PortalMode, released: Bool, fire: Bool)] {
        state.withLock { s in s.doors.map { ($0.id, $0.machine.mode, $0.machine.released, $0.machine.fireLatched) } }
    }

    /// Appends events raised outside the controller (the analytics' indicators) through the
    /// store worker, so their serials stay in the one log; durable once `flush()` returns.
    public func record(_ events: [AccessEvent]) {
        worker.submit(events.map { .event($0) })
    }
}

/// A control request that cannot be carried out.
public enum ControlError: Error, CustomStringConvertible {
    case unknown(String)
    case malformed(String)

    public var description: String {
        switch self {
        case .unknown(let s): return s
        case .malformed(let s): return "malformed request: \(s)"
        }
    }
}
