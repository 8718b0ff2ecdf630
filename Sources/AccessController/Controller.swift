import AccessConfig
import AccessControlProtocol
import AccessCore
import AccessRuntime
import AccessDevices
import AccessStore
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension RuntimeClock {
    /// Both clocks at once, as the site reads them.
    func siteTime() -> SiteTime { SiteTime(mono: monotonicNanos(), wall: wallMicros()) }
}

/// The controller: a short interpreter around the site's state machine (`Site`). Each input
/// (a board event, an operator's command, a device's status, a tick) is stepped under one lock on
/// the thread that brought it; the effects are carried out in order of urgency: lock lines and
/// outputs first (the relay never waits), then field-device commands, then the events and records
/// go to the `StoreWorker`, which makes them durable on its own thread.
public final class Controller: @unchecked Sendable {
    public typealias Counters = Site.Counters

    public let config: SiteConfig
    /// Prometheus metrics: decisions and events by reason, swipe → relay latency, devices, roster.
    public let metrics: ControllerMetrics
    /// Wakes readers of the event log when events become durable.
    public let feed: EventFeed
    let worker: StoreWorker
    /// Operational messages: portals, lines, devices and reasons; never credentials or people.
    let logger: Logger
    private let site: Mutex<Site>
    /// Injected, so tests move time by hand.
    private let clock: any RuntimeClock
    /// Whether `start` runs the ticker thread (tests that move time by hand call `tick()`).
    private let ticks: Bool
    private var board: (any Board)?
    /// Barrier gates and fence hosts; nil until `attach`.
    private(set) var fieldDevices: FieldDevices?
    /// Each door's lock, in the layout's order.
    private var locks: [DoorLock] = []
    /// The board map's QR readers on a serial device (a simulated one is played by `sim qr`).
    private var qrReaders: [SerialQRReader] = []
    /// Fence sirens and lights, reader LEDs and beepers, the relays of barriers on dry contacts,
    /// by name.
    private var outputs: [String: any OutputLine] = [:]
    private var ticker: NamedThread?
    private let running = Atomic<Bool>(false)
    /// Wakes the ticker's sleep, so that `stop` does not wait out its 50 ms.
    private let tickerStop = StopSignal()
    /// Follows roster changes. Its lock also orders a full reload against change sets committed
    /// and applied in place (`changeRoster`), which the fleet client does from its own thread.
    private let rosterWatcher: Mutex<RosterWatcher>
    private var rosterError: String?
    private let initialModes: [String: PortalMode]
    /// Tells the fleet client's state (set by accessd when `[fleet]` is configured).
    private let fleetProbe = Mutex<(@Sendable () -> ControlStatus.Fleet)?>(nil)

    /// Signalled when a fence host has answered a reset.
    private let resets = Monitor()

    /// Opens the roster and prepares the site; `attach(board:)` then `start()` runs it.
    /// `ticks: false` leaves time to the caller (`tick()`), for tests with a hand-moved clock.
    public init(config: SiteConfig, logger: Logger = Logger(label: "accessd.controller"), clock: any RuntimeClock = SystemClock(),
                ticks: Bool = true) throws {
        self.config = config
        self.logger = logger
        self.clock = clock
        self.ticks = ticks
        let metrics = ControllerMetrics()
        self.metrics = metrics
        // The PIN key first: opening a database whose PINs are stored as typed hashes them with it.
        let pinKey = try Self.loadPinKey(config)
        let db = try AccessDatabase(path: config.databasePath, pinKey: pinKey)
        try db.saveSite(config.rules)
        let rosterWatcher = try RosterWatcher(path: config.databasePath, rules: config.rules, pinKey: pinKey)
        let policy = try rosterWatcher.load()
        self.rosterWatcher = Mutex(rosterWatcher)
        let eventClock = EventClock(lastLoggedMicros: try db.lastEventTime() ?? 0, wall: clock.wallMicros(), mono: clock.monotonicNanos())
        site = Mutex(Site(layout: config.layout, policy: policy, ledger: try db.antiPassbackLedger(), parking: try db.parkingLedger(),
                          clock: eventClock))
        var modes: [String: PortalMode] = [:]
        for portal in config.portals { modes[portal.id] = try db.portalMode(portal.id) }
        initialModes = modes
        let feed = EventFeed(lastSerial: try db.lastEventSerial())
        self.feed = feed
        let zone = config.controller.timeZone
        worker = try StoreWorker(path: config.databasePath, retention: config.retention, clock: clock, makeEvent: { reason, detail in
            let now = clock.wallMicros()
            return AccessEvent(timeMicros: now, utcOffset: zone.offset(at: now / 1_000_000), type: .alarm, reason: reason, detail: detail)
        }, onDurable: { [metrics, feed] events in
            metrics.recordDurable(events)
            if let last = events.last?.serial { feed.publish(last) }
        }, onFailure: { [logger, metrics] error in
            metrics.recordStoreFailure()
            logger.error("event log write failed; the batch is kept and retried", metadata: ["error": "\(error)"])
        })
        metrics.recordRosterLoad(people: policy.roster.personCount, credentials: policy.roster.credentialCount)
        releaseFreedHeap()  // what loading the roster left behind
    }

    /// Binds the doors to the board's lines; throws naming any line the board lacks.
    public func attach(board: any Board) throws {
        let inputs = Set(board.map.inputs.map(\.name))
        let readers = board.map.readerNames
        var locks: [DoorLock] = []
        for door in config.doors {
            locks.append(DoorLock(output: try board.output(door.lock), failSafe: door.failSafe))
            for line in [door.contact, door.exitButton].compactMap({ $0 }) where !inputs.contains(line) {
                throw DeviceError.unknownName(kind: "input (door \(door.id))", name: line)
            }
            for portal in door.portals {
                for reader in config.portals.first(where: { $0.id == portal })?.readers ?? [] where !readers.contains(reader) {
                    throw DeviceError.unknownName(kind: "reader (portal \(portal))", name: reader)
                }
            }
        }
        for line in config.linkage.fire + config.linkage.call + config.linkage.tamper where !inputs.contains(line) {
            throw DeviceError.unknownName(kind: "input (linkage)", name: line)
        }
        if let (key, problem) = config.barrierLineProblems(board.map, mapFile: config.board?.map ?? "the board map").first {
            throw DeviceError.configuration(file: config.source, key: key, problem: problem)
        }
        // A reader's own tamper switch latches its alarm; the same line as a site-wide tamper
        // input would be two alarms for one cover.
        let readerLines = board.map.siteReaders
        for reader in readerLines {
            if let line = reader.tamper, config.linkage.tamper.contains(line) {
                throw DeviceError.configuration(file: config.source, key: "linkage.tamper",
                                                problem: "\(line) is reader \(reader.name)'s tamper input in the board map: remove it here")
            }
        }
        site.withLock { $0.bind(readers: readerLines) }
        var outputs: [String: any OutputLine] = [:]
        for name in site.withLock({ $0.layout.outputs }) { outputs[name] = try board.output(name) }
        self.outputs = outputs
        self.locks = locks
        fieldDevices = try FieldDevices(config: config)
        qrReaders = try board.map.qrReaders.filter { $0.device != nil }.map { reader throws(DeviceError) in
            try SerialQRReader(reader: reader) { [weak self] in self?.handle($0) }
        }
        self.board = board
    }

    /// Safe state first (every lock to its locked state), then the operator modes, then the board.
    public func start() throws {
        perform(.start(modes: initialModes))
        running.store(true, ordering: .releasing)
        try board?.start()
        for reader in qrReaders { try reader.start() }
        fieldDevices?.start(self)
        if ticks { ticker = try NamedThread.start(name: "ticker") { self.tickLoop() } }  // ends at stop()
    }

    /// Stops the ticker, returns doors to their safe state, releases the board and writes every
    /// pending event.
    public func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        tickerStop.stop()
        ticker?.join()
        ticker = nil
        fieldDevices?.stop()
        for reader in qrReaders { reader.stop() }
        perform(.stop)
        board?.close()
        worker.stop()
    }

    public var counters: Counters { site.withLock { $0.counters } }

    /// Event-log writes that failed and were retried (a busy or full disk).
    public var storeFailures: Int { worker.failures.load(ordering: .relaxed) }

    /// Waits until every event so far is durable (tests, shutdown).
    public func flush() { worker.flush() }

    // MARK: The interpreter

    /// Steps the site and carries out what it asks; `read` looks at the site afterwards, under the
    /// same lock. `swipeEdge`: the card's last bit edge, to time swipe → relay.
    @discardableResult
    func perform(_ input: SiteInput, swipeEdge: MonotonicNanos? = nil) -> [SiteEffect] {
        perform(input, swipeEdge: swipeEdge) { _ in () }.effects
    }

    func perform<T>(_ input: SiteInput, swipeEdge: MonotonicNanos? = nil, read: (inout Site) -> T) -> (effects: [SiteEffect], value: T) {
        let (effects, value): ([SiteEffect], T) = site.withLock { site in
            var failures: [(door: Int, error: String)] = []
            var outputFailures: [(line: String, error: String)] = []
            let now = clock.siteTime()
            var jobs: [StoreWorker.Job] = []  // relay failures, logged after the step's own events
            var releasedAt: UInt64?
            // Lines are driven the moment the site decides them, before it builds any event.
            let effects = site.step(input, at: now) { effect in
                switch effect {
                case .lock(let door, let released):
                    do {
                        try locks[door].release(released)
                        // The board stamps edges on the machine's monotonic clock: so is this.
                        if released { releasedAt = monotonicNanos() }
                    } catch {
                        failures.append((door, "\(error)"))  // logged after the step: the site holds the door's id
                    }
                case .output(let name, let on):
                    do {
                        try outputs[name]?.set(on)
                    } catch {
                        logger.error("output failed", metadata: ["line": "\(name)", "error": "\(error)"])
                        outputFailures.append((name, "\(error)"))
                    }
                default: break
                }
            }
            for (door, error) in failures {
                let id = site.layout.doors[door].id
                logger.error("relay failed", metadata: ["door": "\(id)", "error": "\(error)"])
                jobs.append(.event(site.event(.alarm, .relayFailed, now, portal: site.layout.doors[door].portals.first,
                                              detail: [("door", .string(id)), ("error", .string(error))])))
            }
            for (name, error) in outputFailures {
                jobs.append(.event(site.event(.alarm, .relayFailed, now, detail: [("line", .string(name)), ("error", .string(error))])))
            }
            // Only a swipe that drove a lock counts, timed when the line was set.
            if let swipeEdge, let releasedAt, releasedAt >= swipeEdge { metrics.recordSwipeToRelay(nanos: releasedAt - swipeEdge) }
            // Under the lock still, so commands reach each device and events reach the log in the
            // order the site produced them.
            var records: [StoreWorker.Job] = []
            var events: [StoreWorker.Job] = []
            for effect in effects {
                switch effect {
                case .command(let command, let device): fieldDevices?.send(command, to: device)
                case .log(let event): events.append(.event(event))
                case .record(let record): records.append(.record(record))
                default: break
                }
            }
            worker.submit(records + events + jobs)
            return (effects, read(&site))
        }
        for case .notice(let notice) in effects { log(notice) }
        for case .log(let event) in effects { logEvent(event) }
        if case .fenceResetDone = input { resets.locked { resets.broadcast() } }
        return (effects, value)
    }

    private func log(_ notice: SiteNotice) {
        switch notice {
        case .garbledFrame(let reader, let problem):
            logger.notice("garbled frame dropped", metadata: ["reader": "\(reader)", "problem": "\(problem)"])
        case .gpioOverrun(let line):
            logger.warning("GPIO edge queue overrun: edges may be lost", metadata: ["line": "\(line)"])
        case .deviceOnline(let device, let online):
            if online { logger.info("device online", metadata: ["device": "\(device)"]) } else {
                logger.warning("device offline", metadata: ["device": "\(device)"])
            }
        case .deviceCommandFailed(let device, let command, let error):
            logger.error("device command failed", metadata: ["device": "\(device)", "command": "\(command)", "error": "\(error)"])
        case .armScheduleMissing(let schedule, let portal):
            logger.warning("fence arm schedule not found; the zone keeps its state", metadata: ["schedule": "\(schedule)", "portal": "\(portal)"])
        case .planScheduleMissing(let schedule, let door):
            logger.warning("door-status plan's schedule not found; the door is not held open", metadata: ["schedule": "\(schedule)", "door": "\(door)"])
        case .clock(.set):
            logger.notice("the wall clock is set: time-based decisions resume")
        case .clock(.jump(let from, let to)):
            logger.warning("the wall clock jumped", metadata: ["seconds": "\((to - from) / 1_000_000)"])
        case .clock(.lost):
            logger.error("the wall clock fell back before 2020: time-based decisions are refused until it is set")
        case .clockUnsetAtStart:
            logger.warning("the wall clock is not set: time-based decisions are refused until it is")
        }
    }

    // MARK: Board events

    /// Called by the board on its own thread, in order.
    public func handle(_ event: BoardEvent) {
        switch event {
        case .card(let reader, let frame, let lastEdge):
            perform(.credential(reader: reader, .card(frame.cardNumber)), swipeEdge: lastEdge)
        case .key(let reader, let key, _): perform(.key(reader: reader, key))
        case .garbled(let reader, let reason): perform(.garbled(reader: reader, problem: reason.description))
        case .overrun(let line): perform(.overrun(line: line))
        case .qr(let reader, let code): perform(.credential(reader: reader, .qr(code)))
        case .garbledLine(let reader, let problem): perform(.garbled(reader: reader, problem: problem))
        case .input(let line, let active, _): perform(.input(line: line, active: active))
        case .device(let name, let online):
            metrics.recordDevice(name, online: online)
            perform(.deviceOnline(device: name, online: online))
        }
    }

    /// What the field devices report (`FieldDevices` calls this on its own thread).
    func report(_ input: SiteInput) {
        if case .deviceOnline(let name, let online) = input { metrics.recordDevice(name, online: online) }
        perform(input)
    }

    // MARK: Time and roster

    /// Door and lane timers, arm schedules, the wall clock watched; then the roster reloaded if
    /// it changed. The ticker calls it; tests with a hand-moved clock call it themselves.
    public func tick() {
        perform(.tick)
        refreshRoster()
    }

    private func refreshRoster() {
        // Skipped while the fleet client holds the roster (`changeRoster`): it is committing
        // change sets it applies in memory itself, and the ticker must not wait on a long one.
        _ = rosterWatcher.withLockIfAvailable { watcher in
            let reloaded: AccessPolicy?
            do {
                reloaded = try watcher.refresh()
                rosterError = nil
            } catch {
                reloaded = nil
                // Said once per distinct failure: the gate goes on with the roster it has.
                if rosterError != "\(error)" {
                    rosterError = "\(error)"
                    logger.error("roster reload failed; deciding from the roster loaded before", metadata: ["error": "\(error)"])
                }
            }
            guard let policy = reloaded else { return }
            install(policy, "roster reloaded")
        }
    }

    /// Puts a freshly loaded roster in force (with the roster lock held).
    private func install(_ policy: AccessPolicy, _ message: Logger.Message) {
        perform(.roster(policy))
        releaseFreedHeap()  // the old index, and what building the new one left
        metrics.recordRosterLoad(people: policy.roster.personCount, credentials: policy.roster.credentialCount)
        logger.info(message, metadata: ["people": "\(policy.roster.personCount)", "credentials": "\(policy.roster.credentialCount)"])
    }

    /// Lets `status`, `/healthz` and the metrics tell the fleet client's state.
    public func setFleetProbe(_ probe: @escaping @Sendable () -> ControlStatus.Fleet) {
        fleetProbe.withLock { $0 = probe }
    }

    /// The fleet client's state now; nil without `[fleet]`.
    public func fleetStatus() -> ControlStatus.Fleet? {
        guard let probe = fleetProbe.withLock({ $0 }) else { return nil }
        let status = probe()
        metrics.recordFleet(status)
        return status
    }

    /// Runs `commit`, which writes change sets to this controller's database (the fleet client,
    /// on its own thread), then applies what it returns to the roster in memory, record by
    /// record: the gate decides on it as soon as this returns. The roster is held throughout, so
    /// the ticker's reload never sees the commit before the change sets reach memory (it would
    /// rebuild the whole index for what is about to be changed in place). A snapshot, or a change
    /// that needs the whole index rebuilt (schedules, groups), is one full reload here.
    public func changeRoster(_ commit: () throws -> [AccessDatabase.AppliedChangeSet]) throws {
        try rosterWatcher.withLock { watcher in
            let applied = try commit()
            var reload = false
            for change in applied {
                // The gate decides between change sets (the site's lock is let go each time).
                if change.replacedWhole || !site.withLock({ $0.applyRoster(change.delta) }) {
                    reload = true
                    break
                }
                watcher.acknowledge(generation: change.generation)
                metrics.recordRosterChange()
            }
            guard reload else { return }
            do {
                // Reads the database as committed, so it holds the change sets after this one too.
                install(try watcher.load(), "roster reloaded for a change set")
                metrics.recordRosterChange()
            } catch {
                // The gate keeps the roster it had; the next tick retries the full reload.
                logger.error("roster reload after a change set failed; retrying", metadata: ["error": "\(error)"])
                rosterError = "\(error)"
            }
        }
    }

    /// Uses of visitor passes spent at other gates of the fleet: `commit` writes them to the
    /// database, then they are counted in memory, both under the roster lock so that a reload
    /// neither misses nor doubles them.
    public func recordFleetPassUses(_ passIDs: [String], commit: () throws -> Void) throws {
        try rosterWatcher.withLock { _ in
            try commit()
            if !passIDs.isEmpty { site.withLock { $0.recordPassUses(passIDs) } }
        }
    }

    /// The site's PIN key from its file, made (32 random bytes, mode 0640) when there is none.
    public static func loadPinKey(_ config: SiteConfig) throws -> PinKey {
        let bytes = try SecretFile.loadOrCreateKey(config.pinKeyPath, bytes: PinKey.byteCount)
        guard let key = PinKey(bytes: bytes) else {
            throw SecretFileError(path: config.pinKeyPath, problem: "is not a \(PinKey.byteCount)-byte key")
        }
        return key
    }

    /// Typed PINs are hashed with `key` from now on (the fleet's community key, already written
    /// to the key file): by the roster in memory and by every roster loaded later.
    public func usePinKey(_ key: PinKey) {
        rosterWatcher.withLock { watcher in
            watcher.usePinKey(key)
            site.withLock { $0.usePinKey(key) }
        }
    }

    /// The visitor-pass secret in the database changed (the fleet's community secret): check
    /// codes with it from now on.
    public func passSecretChanged() {
        rosterWatcher.withLock { watcher in
            do {
                let secret = try AccessDatabase(path: config.databasePath, create: false).passSecret()
                site.withLock { $0.usePassSecret(secret) }
            } catch {
                logger.error("visitor-pass secret not reloaded", metadata: ["error": "\(error)"])
            }
        }
    }

    private func tickLoop() {
        var nextRefresh: UInt64 = 0
        // The watchdog is fed from this loop, which takes the controller's lock: a controller
        // that hangs stops feeding it and systemd restarts it.
        let watchdog = SystemdNotifier.watchdogPingNanos
        var nextPing: UInt64 = 0
        while running.load(ordering: .acquiring) {
            let now = clock.monotonicNanos()
            if let watchdog, now >= nextPing {
                nextPing = now + watchdog
                SystemdNotifier.notify("WATCHDOG=1")
            }
            let (_, nextTimer) = perform(.tick) { $0.nextDeadline }
            // Roster changes take effect within 250 ms (the bar is 1 s).
            if now >= nextRefresh {
                nextRefresh = now + 250_000_000
                refreshRoster()
            }
            let wake = min(nextTimer ?? .max, nextRefresh, clock.monotonicNanos() + 50_000_000)
            let current = clock.monotonicNanos()
            if wake > current { _ = tickerStop.sleep(for: .nanoseconds(min(wake - current, 50_000_000))) }
        }
    }

    // MARK: Operator and simulation commands

    /// A door's or a lane's command from an operator (`reset-alarm` also at a fence zone); the
    /// portal's state afterwards. Throws when the portal has nothing to command or refuses.
    public func door(portal: String, command: DoorCommand, operator who: String) throws(ControlError) -> [String: Bool] {
        try reply(perform(.portalCommand(portal: portal, command, operator: who)), fenceReset: nil)
    }

    /// A fence zone command from an operator. A reset waits (up to 3 s) for the host to clear its
    /// latch, so the answer says whether the alarm is gone.
    public func fence(portal: String, command: FenceCommand, operator who: String) throws(ControlError) -> [String: Bool] {
        try reply(perform(.fenceCommand(portal: portal, command, operator: who)), fenceReset: command == .reset ? portal : nil)
    }

    private func reply(_ effects: [SiteEffect], fenceReset portal: String?) throws(ControlError) -> [String: Bool] {
        for case .reply(let reply) in effects {
            switch reply {
            case .unknownPortal(let why), .notFound(let why): throw .unknown(why)
            case .refused(let why): throw .refused(why)
            case .done(let state):
                guard let portal else { return state }
                let deadline = clock.monotonicNanos() + 3_000_000_000
                return resets.locked {
                    while let zone = zoneState(portal), zone.pending, clock.monotonicNanos() < deadline { resets.wait(until: deadline) }
                    guard let zone = zoneState(portal) else { return state }
                    return ["armed": zone.armed, "alarm": zone.alarm, "pending": zone.pending]
                }
            }
        }
        throw .unknown("no reply")
    }

    private func zoneState(_ portal: String) -> (armed: Bool, alarm: Bool, pending: Bool)? {
        site.withLock { site in
            site.zones.first { $0.layout.portal == portal }.map { ($0.machine.armed, !$0.machine.latched.isEmpty, $0.resetPending) }
        }
    }

    /// Clears a reader's latched tamper alarm (when its switch is back); whether the alarm is
    /// still latched. Throws for a reader without a tamper input.
    public func reader(_ reader: String, command: ReaderCommand, operator who: String) throws(ControlError) -> [String: Bool] {
        try reply(perform(.readerCommand(reader: reader, command, operator: who)), fenceReset: nil)
    }

    /// Clears a person's anti-passback state at every portal; whether any was recorded. Throws
    /// for a person not on the roster.
    public func resetAntiPassback(person: String, operator who: String) throws(ControlError) -> [String: Bool] {
        try reply(perform(.antiPassbackReset(person: person, operator: who)), fenceReset: nil)
    }

    /// Each reader with a tamper input, its portal and whether its alarm is latched.
    public var readerStates: [(reader: String, portal: String?, tamper: Bool)] {
        site.withLock { s in
            s.layout.readers.filter { $0.tamper != nil }.map { ($0.name, s.portal(ofReader: $0.name), s.tamperLatched.contains($0.name)) }
        }
    }

    /// Cars counted inside by parking key, with each key's spaces: the keys with cars inside, and
    /// the visitors' when they have a limit.
    public var parkingStates: [(key: String, inside: Int, spaces: Int?)] {
        site.withLock { s in
            var keys = Set(s.parking.counts.keys)
            if s.policy.rules.visitorParkingSpaces != nil { keys.insert(ParkingLedger.visitors) }
            return keys.sorted().map { ($0, s.parking.inside($0), s.policy.parkingSpaces($0)) }
        }
    }

    /// A plate read from a lane's camera (or `accessctl sim plate`); nil when the lane is unknown.
    public func plate(lane: String, plate: String) -> Decision? {
        perform(.credential(reader: lane, .plate(plate))) { $0.portal(ofReader: lane) == nil ? nil : $0.lastDecision[lane] }.value
    }

    /// A QR reader's scan on the simulated board (`accessctl sim qr`); the decision, nil when
    /// the line was no code.
    public func simulatedQR(reader: String, code: String) throws -> Decision? {
        guard let board = board as? SimulatedBoard else {
            throw ControlError.unknown("accessd is driving real hardware, not the simulated board")
        }
        let before = counters.decisions
        try board.qr(reader: reader, code: code)
        return counters.decisions > before ? lastDecision(at: reader) : nil
    }

    /// The board, for simulation commands.
    public var attachedBoard: (any Board)? { board }

    public func lastDecision(at reader: String) -> Decision? { site.withLock { $0.lastDecision[reader] } }

    /// Each door's mode and lock state.
    public var doorStates: [(id: String, mode: PortalMode, released: Bool, fire: Bool)] {
        site.withLock { s in s.doors.map { ($0.layout.id, $0.machine.mode, $0.machine.released, $0.machine.fireLatched) } }
    }

    /// Lane and zone state, for `status`.
    public var fieldStates: (lanes: [(portal: String, position: String, loop: Bool, locked: Bool)],
                             zones: [(portal: String, armed: Bool, latched: [String])]) {
        site.withLock { s in
            (s.lanes.map { ($0.layout.portal, $0.machine.position.rawValue, $0.machine.loopOccupied, $0.machine.lockedMode) },
             s.zones.map { ($0.layout.portal, $0.machine.armed, $0.machine.latched.sorted().map(\.rawValue)) })
        }
    }

    /// The in-memory gate of a `simulated` Modbus line (simulation and tests).
    public func simulatedGate(_ device: String) -> SimulatedBarrierGate? { fieldDevices?.simulatedGates[device] }

    /// The in-memory fence host of a `simulated` Modbus line.
    public func simulatedFenceHost(_ device: String) -> SimulatedFenceHost? { fieldDevices?.simulatedHosts[device] }

    /// Appends events raised outside the controller (the analytics' indicators) through the
    /// store worker, so their serials stay in the one log; durable once `flush()` returns.
    public func record(_ events: [AccessEvent]) {
        worker.submit(events.map { .event($0) })
        for event in events { logEvent(event) }
    }

    /// One log line an event, after the lines were driven: its type, portal, reason and outcome,
    /// as fields of their own in the journal (`PORTAL=`, `REASON=` …). Never the credential, the
    /// person, the house or the event's detail (an operator's name, a plate): those stay in the
    /// event log, for those allowed to read it.
    func logEvent(_ event: AccessEvent) {
        var metadata: Logger.Metadata = ["type": "\(event.type.rawValue)"]
        if let portal = event.portal { metadata["portal"] = "\(portal)" }
        if let reason = event.reason { metadata["reason"] = "\(reason.rawValue)" }
        if let granted = event.granted { metadata["granted"] = "\(granted)" }
        if let direction = event.direction { metadata["direction"] = "\(direction.rawValue)" }
        if let kind = event.credentialKind { metadata["credential_kind"] = "\(kind.rawValue)" }
        let what = [event.type.rawValue, event.reason?.rawValue, event.portal.map { "at \($0)" }].compactMap { $0 }
        logger.log(level: event.type == .alarm ? .warning : .info, "\(what.joined(separator: " "))", metadata: metadata)
    }
}

/// A control request that cannot be carried out.
public enum ControlError: Error, CustomStringConvertible {
    case unknown(String)
    case malformed(String)
    /// Understood, and refused (an emergency zone cannot be disarmed …).
    case refused(String)

    public var description: String {
        switch self {
        case .unknown(let s): return s
        case .malformed(let s): return "malformed request: \(s)"
        case .refused(let s): return "refused: \(s)"
        }
    }
}
