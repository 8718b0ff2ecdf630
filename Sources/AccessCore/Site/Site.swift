/// A whole site as a value: its doors, barrier lanes and fence zones, the PINs being typed, the
/// anti-passback ledger, the portals' modes and the event clock. Feed it an input with the time,
/// and carry out the effects it returns; nothing here reads a clock, touches a line or a disk.
public struct Site: Sendable {
    /// A door and its state machine.
    public struct Door: Sendable {
        public let layout: SiteLayout.Door
        public internal(set) var machine: DoorStateMachine
        /// Its door-status plan, if it has one.
        public internal(set) var plan: DoorPlan?
    }

    /// A barrier lane and its state machine.
    public struct Lane: Sendable {
        public let layout: SiteLayout.Lane
        public internal(set) var machine: BarrierLaneStateMachine
        public internal(set) var mode: PortalMode = .normal
        /// Its relays and input lines, for a lane on dry contacts.
        public internal(set) var contacts: DryContactBarrier?
    }

    /// A fence zone and its state machine.
    public struct Zone: Sendable {
        public let layout: SiteLayout.Zone
        public internal(set) var machine: FenceZoneStateMachine
        /// The arm schedule's state when last looked at: the zone follows its changes only, so an
        /// operator's arm or disarm holds until the schedule next changes.
        var scheduleActive: Bool?
        /// A reset was sent to the host and its answer is awaited.
        public internal(set) var resetPending = false
    }

    /// Decisions and frames counted since start.
    public struct Counters: Sendable, Equatable {
        public var decisions = 0
        public var granted = 0
        public var garbled = 0
        public var overruns = 0
    }

    public private(set) var layout: SiteLayout
    public private(set) var policy: AccessPolicy
    public private(set) var ledger: AntiPassbackLedger
    /// Vehicles inside by house and for the visitors (parking spaces).
    public private(set) var parking: ParkingLedger
    public private(set) var doors: [Door]
    public private(set) var lanes: [Lane]
    public private(set) var zones: [Zone]
    public private(set) var clock: EventClock
    public private(set) var counters = Counters()
    /// The latest decision at each reader or lane.
    public private(set) var lastDecision: [String: Decision] = [:]
    private var pins: [String: PinEntry] = [:]
    /// Each reader's wrong-attempt count, lockout and last read.
    public private(set) var readerGuards: [String: ReaderGuard] = [:]
    /// Card and PIN: the readers whose card was accepted and whose holder's PIN is awaited.
    private var awaitingPin: [String: AwaitingPin] = [:]
    /// Multi-card portals: the grants collected toward the next opening.
    public private(set) var multiCards: [String: MultiCardCollection] = [:]

    /// A card accepted at a card-and-PIN portal, until its holder's PIN comes or time runs out.
    struct AwaitingPin: Sendable {
        var request: DecisionRequest
        var decision: Decision
        var deadline: MonotonicNanos
    }
    private var fireActive = false
    /// Each reader's LED and beeper pattern, by reader name (readers with either line).
    public private(set) var signals: [String: ReaderSignalStateMachine] = [:]
    /// Readers whose tamper switch is active now, and those whose tamper alarm is latched until
    /// an operator resets it.
    private var tamperActive: Set<String> = []
    public private(set) var tamperLatched: Set<String> = []
    /// Tamper line → reader.
    private var readerTamper: [String: String] = [:]
    private var warnedSchedules: Set<String> = []
    private let readerPortal: [String: String]
    private let portalDoor: [String: Int]
    /// For each door, the other doors of its interlock groups.
    private let interlockedWith: [Int: [Int]]
    private let portalLane: [String: Int]
    private let portalZone: [String: Int]

    /// `clock`: the event clock as the log left it (its newest time is the floor while the wall
    /// clock is unset).
    public init(layout: SiteLayout, policy: AccessPolicy, ledger: AntiPassbackLedger = AntiPassbackLedger(),
                parking: ParkingLedger = ParkingLedger(), clock: EventClock) {
        self.parking = parking
        self.layout = layout
        self.policy = policy
        self.ledger = ledger
        self.clock = clock
        doors = layout.doors.map { door in
            Door(layout: door, machine: DoorStateMachine(config: door.config),
                 plan: door.normallyOpenSchedule.map { DoorPlan(schedule: $0, firstCardGroup: door.firstCardGroup) })
        }
        lanes = layout.lanes.map {
            Lane(layout: $0, machine: BarrierLaneStateMachine(config: $0.config), contacts: $0.contacts.map(DryContactBarrier.init))
        }
        zones = layout.zones.map {
            Zone(layout: $0, machine: FenceZoneStateMachine(zone: $0.zone, emergency: $0.emergency, armed: $0.armed))
        }
        var readers: [String: String] = [:]
        for portal in layout.rules.portals { for reader in portal.readers { readers[reader] = portal.id } }
        readerPortal = readers
        var byPortal: [String: Int] = [:]
        for (i, door) in layout.doors.enumerated() { for portal in door.portals { byPortal[portal] = i } }
        portalDoor = byPortal
        var interlocked: [Int: [Int]] = [:]
        let doorIndex = Dictionary(layout.doors.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        for group in layout.interlocks {
            let members = group.compactMap { doorIndex[$0] }
            for door in members { interlocked[door, default: []] += members.filter { $0 != door } }
        }
        interlockedWith = interlocked
        portalLane = Dictionary(layout.lanes.enumerated().map { ($1.portal, $0) }, uniquingKeysWith: { a, _ in a })
        portalZone = Dictionary(layout.zones.enumerated().map { ($1.portal, $0) }, uniquingKeysWith: { a, _ in a })
        indexReaders()
    }

    /// Takes the readers' LED, beeper and tamper lines (the board map's, known once the board is
    /// attached), before the site starts.
    public mutating func bind(readers: [SiteLayout.Reader]) {
        layout.readers = readers
        indexReaders()
    }

    private mutating func indexReaders() {
        signals = [:]
        readerTamper = [:]
        for reader in layout.readers {
            if reader.led != nil || reader.beeper != nil { signals[reader.name] = ReaderSignalStateMachine() }
            if let line = reader.tamper { readerTamper[line] = reader.name }
        }
    }

    /// When `tick` must come next for a door's or a lane's timer, if one runs.
    public var nextDeadline: MonotonicNanos? {
        (doors.compactMap(\.machine.nextDeadline) + lanes.compactMap(\.machine.nextDeadline) + lanes.compactMap(\.contacts?.nextDeadline)
            + awaitingPin.values.map(\.deadline) + signals.values.compactMap(\.nextDeadline)).min()
    }

    /// The portal a reader or lane camera belongs to.
    public func portal(ofReader reader: String) -> String? { readerPortal[reader] }

    /// Takes one input at `now`; the effects, in order.
    public mutating func step(_ input: SiteInput, at now: SiteTime) -> [SiteEffect] {
        step(input, at: now) { _ in }
    }

    /// The same, handing each `lock` and `output` effect to `drive` the moment it arises, before
    /// the rest of the step (the events) is built: the relay waits for nothing but the decision.
    /// Those effects are in the returned list too.
    public mutating func step(_ input: SiteInput, at now: SiteTime, driving drive: (SiteEffect) -> Void) -> [SiteEffect] {
        withoutActuallyEscaping(drive) { drive in
            var out = EffectList(drive: drive)
            take(input, now, &out)
            return out.effects
        }
    }

    private mutating func take(_ input: SiteInput, _ now: SiteTime, _ out: inout EffectList) {
        switch input {
        case .start(let modes): start(modes: modes, now, &out)
        case .stop:
            for i in doors.indices { door(i, doors[i].machine.stop(), now, &out) }
            for i in lanes.indices { contactOutputs(lanes[i].contacts?.end() ?? [], &out) }
            out.append(.log(event(.system, .stopped, now)))
        case .credential(let reader, let credential):
            decide(credential, reader: reader, now, &out)
        case .key(let reader, let key):
            var entry = pins[reader] ?? PinEntry(timeoutSeconds: layout.pinTimeoutSeconds)
            let outcome = entry.press(key, at: now.mono)
            pins[reader] = entry
            if case .submitted(let pin) = outcome { decide(.pin(pin), reader: reader, now, &out) }
        case .garbled(let reader, let problem):
            counters.garbled += 1
            out.append(.notice(.garbledFrame(reader: reader, problem: problem)))
            out.append(.log(event(.system, .garbledFrame, now, detail: [("reader", .string(reader)), ("problem", .string(problem))])))
        case .overrun(let line):
            counters.overruns += 1
            out.append(.notice(.gpioOverrun(line: line)))
            out.append(.log(event(.system, .gpioOverrun, now, detail: [("line", .string(line))])))
        case .input(let line, let active):
            self.input(line, active: active, now, &out)
        case .deviceOnline(let device, let online):
            deviceOnline(device, online, now, &out)
        case .barrierStatus(let device, let position, let loopOccupied, let fault):
            for i in lanes.indices where lanes[i].layout.device == device {
                // The loop first: an arm found closing onto a vehicle is raised again.
                var actions = lanes[i].machine.handle(.loop(occupied: loopOccupied), at: now.mono)
                if position != lanes[i].machine.position { actions += lanes[i].machine.handle(.position(position), at: now.mono) }
                actions += lanes[i].machine.handle(.deviceFault(fault), at: now.mono)
                lane(i, actions, now, &out)
            }
        case .fenceStatus(let device, let reports):
            for i in zones.indices where zones[i].layout.device == device {
                guard let report = reports.first(where: { $0.zone == zones[i].layout.zone }) else { continue }
                zoneInput(i, .hostAlarms(report.alarms), now, &out)
                // A host that lost its arm state (power cycle, someone at its panel) is put back.
                if report.armed != zones[i].machine.armed {
                    out.append(.command(.arm(zone: report.zone, armed: zones[i].machine.armed), device: device))
                }
            }
        case .fenceResetDone(let device, let number, let reports):
            guard let i = zones.firstIndex(where: { $0.layout.device == device && $0.layout.zone == number }) else { break }
            zones[i].resetPending = false
            if let report = reports?.first(where: { $0.zone == number }) {
                zoneInput(i, .hostAlarms(report.alarms), now, &out)
            }
            // The host was reset already: only the zone's own latch is left to clear.
            let actions = zones[i].machine.handle(.reset).filter { $0 != .resetHost }
            zone(i, actions, now, &out)
        case .deviceCommandFailed(let device, let command, let error):
            out.append(.notice(.deviceCommandFailed(device: device, command: command, error: error)))
            out.append(.log(event(.alarm, .deviceCommandFailed, now, detail: [
                ("device", .string(device)), ("command", .string(command.description)), ("error", .string(error)),
            ])))
        case .portalCommand(let portal, let command, let who):
            portalCommand(portal, command, operator: who, now, &out)
        case .fenceCommand(let portal, let command, let who):
            fenceCommand(portal, command, operator: who, now, &out)
        case .readerCommand(let reader, let command, let who):
            readerCommand(reader, command, operator: who, now, &out)
        case .antiPassbackReset(let person, let who):
            antiPassbackReset(person: person, operator: who, now, &out)
        case .tick:
            tick(now, &out)
        case .roster(let policy):
            self.policy = policy.keepingSpentVisitorUses(from: self.policy)
        }
    }

    /// Applies a change set's delta to the roster in place (no copy: the site holds the only
    /// one). False, changing nothing, when it needs a full reload (a schedule or group changed).
    public mutating func applyRoster(_ delta: [RosterChange]) -> Bool {
        policy.apply(delta)
    }

    /// Counts uses of visitor passes spent at other gates of the fleet (already in the database).
    public mutating func recordPassUses(_ ids: [String]) {
        for id in ids { _ = policy.recordPassUse(id) }
    }

    /// Checks visitor QR codes with the community's secret from now on.
    public mutating func usePassSecret(_ secret: [UInt8]) {
        policy.usePassSecret(secret)
    }

    /// Hashes typed PINs with `key` from now on (the fleet's community key).
    public mutating func usePinKey(_ key: PinKey?) {
        policy.usePinKey(key)
    }

    // MARK: Start

    private mutating func start(modes: [String: PortalMode], _ now: SiteTime, _ out: inout EffectList) {
        out.append(.log(event(.system, .started, now, detail: [("controller", .string(layout.rules.controllerID))])))
        for i in doors.indices {
            door(i, doors[i].machine.start(), now, &out)
            // A door's mode is that of its first portal, as operators last set it.
            let mode = doors[i].layout.portals.compactMap { modes[$0] }.first ?? .normal
            if mode != .normal {
                door(i, doors[i].machine.handle(.command(mode == .alwaysOpen ? .alwaysOpen : .alwaysClosed), at: now.mono), now, &out)
            }
        }
        // A normally-open plan whose schedule is on opens the door again at once; a first-card
        // plan waits for a first card again (who passed before the restart is not kept).
        followPlans(now, &out)
        for i in lanes.indices {
            let mode = modes[lanes[i].layout.portal] ?? .normal
            if mode != .normal { laneCommand(i, mode == .alwaysOpen ? .alwaysOpen : .alwaysClosed, now, &out) }
        }
        for i in zones.indices { zone(i, zones[i].machine.start(), now, &out) }
        if !clock.trusted {
            out.append(.notice(.clockUnsetAtStart))
            out.append(.log(event(.alarm, .clockUnset, now, detail: [("wall_clock_micros", .int(now.wall))])))
        }
    }

    // MARK: Decisions

    private mutating func decide(_ credential: PresentedCredential, reader: String, _ now: SiteTime, _ out: inout EffectList) {
        guard let portalID = readerPortal[reader], let portal = layout.rules.portal(portalID) else {
            out.append(.log(event(.system, .unboundReader, now, detail: [("reader", .string(reader))])))
            return
        }
        let door = portalDoor[portalID]
        let lane = portalLane[portalID]
        let mode = door.map { doors[$0].machine.mode } ?? lane.map { lanes[$0].mode } ?? .normal
        let micros = clock.eventMicros(wall: now.wall, mono: now.mono)
        let request = DecisionRequest(portal: portalID, credential: credential, at: micros / 1_000_000,
                                      clockTrusted: clock.trusted, portalMode: mode)
        var guardState = readerGuards[reader] ?? ReaderGuard(settings: layout.gate)
        defer { readerGuards[reader] = guardState }
        var decision: Decision
        var awaitingCard: PresentedCredential?
        switch guardState.admit(credential, at: now.mono) {
        case .repeatRead:
            return  // the read already decided: one decision, one event, one visitor use
        case .locked:
            decision = Decision(granted: false, reason: .readerLocked, portal: portalID, credentialKind: credential.kind)
        case .decide:
            if case .pin(let pin) = credential, let waiting = awaitingPin.removeValue(forKey: reader) {
                if now.mono > waiting.deadline {
                    pinTimedOut(reader, waiting, portal, now, &out)
                    return
                }
                guard let second = try? policy.decideSecondStep(card: waiting.request, pin: pin, ledger: ledger) else { return }
                decision = second
                awaitingCard = waiting.request.credential
            } else {
                guard let first = try? policy.decide(request, ledger: ledger, parking: parking) else { return }
                decision = first
            }
        }
        if decision.granted, let door, interlockHolds(door) {
            decision.granted = false
            decision.reason = .interlock
            decision.consumesVisitorUse = false
        }
        var detail: [(String, JSON)] = []
        var companions: [Decision] = []
        if decision.granted, let rule = portal.multiCard, !heldOpen(portalID) {
            var collection = multiCards[portalID] ?? MultiCardCollection(rule: rule)
            switch collection.admit(decision, at: now.mono) {
            case .awaiting(let presented):
                decision.granted = false
                decision.reason = .awaitingMoreCards
                decision.consumesVisitorUse = false
                detail = [("cards", .int(Int64(presented))), ("cards_needed", .int(Int64(rule.cards)))]
            case .complete(let earlier):
                companions = earlier
                detail = [("cards", .int(Int64(rule.cards))), ("cards_needed", .int(Int64(rule.cards))),
                          ("with", .strings(earlier.map { $0.personID ?? $0.visitorPassID ?? $0.houseID ?? "" }))]
            }
            multiCards[portalID] = collection
        }
        counters.decisions += 1
        // The second step of card and PIN is logged as the card's decision (a PIN is never logged).
        let presented = decision.credentialKind == .card ? (awaitingCard ?? credential) : credential
        carryOut(decision, presented: presented, request: request, portal: portal, reader: reader, now, &out,
                 detail: detail, companions: companions)
        if decision.reason == .pinRequired {
            let deadline = now.mono + ReaderGuard.nanos(layout.gate.pinAfterCardSeconds)
            awaitingPin[reader] = AwaitingPin(request: request, decision: decision, deadline: deadline)
        }
        if guardState.record(decision.reason, at: now.mono) {
            out.append(.log(event(.alarm, .readerLocked, now, portal: portalID, detail: [
                ("reader", .string(reader)), ("attempts", .int(Int64(layout.gate.wrongAttemptLimit))),
                ("window_seconds", .double(layout.gate.wrongAttemptWindowSeconds)), ("lockout_seconds", .double(layout.gate.lockoutSeconds)),
            ])))
        }
    }

    /// Whether another door interlocked with door `i` is released or open (a man-trap lets one
    /// through at a time). Fire and operator commands are not held back.
    private func interlockHolds(_ i: Int) -> Bool {
        (interlockedWith[i] ?? []).contains { doors[$0].machine.released || doors[$0].machine.doorOpen }
    }

    /// Whether a portal's door or lane is held open whatever a grant says (fire, always-open, a
    /// normally-open plan): a multi-card portal then has nothing to collect cards for.
    private func heldOpen(_ portal: String) -> Bool {
        if let door = portalDoor[portal] { return doors[door].machine.heldReleased }
        if let lane = portalLane[portal] { return lanes[lane].mode == .alwaysOpen }
        return false
    }

    /// Opens what a grant opens, logs the decision (before what it did), records passages and
    /// visitor uses, and raises a blacklisted credential's alarm. `detail`: more for the access
    /// event; `companions`: a multi-card opening's earlier grants, who pass with this one.
    private mutating func carryOut(_ decision: Decision, presented credential: PresentedCredential, request: DecisionRequest,
                                   portal: Portal, reader: String, _ now: SiteTime, _ out: inout EffectList,
                                   detail: [(String, JSON)] = [], companions: [Decision] = []) {
        let door = portalDoor[portal.id]
        let lane = portalLane[portal.id]
        lastDecision[reader] = decision
        let first = out.effects.count
        if decision.granted {
            // The door first, so its lock is driven before any event is built.
            counters.granted += 1
            if let door {
                firstCard(decision, door: door, now, &out)
                self.door(door, doors[door].machine.handle(.granted, at: now.mono), now, &out)
            }
            if let lane { self.lane(lane, lanes[lane].machine.handle(.granted, at: now.mono), now, &out) }
        }
        // The reader's LED and beeper after the lock: they never delay it. A duress grant looks
        // like any other at the gate.
        let ledNanos = door.map { doors[$0].layout.config.unlockNanos } ?? 3_000_000_000
        signal(reader, decision.granted ? .granted(ledNanos: ledNanos) : decision.reason == .pinRequired ? .prompt : .denied, now, &out)
        let micros = clock.eventMicros(wall: now.wall, mono: now.mono)
        var access = AccessEvent(decision: decision, presented: credential, portal: portal, timeMicros: micros, zone: layout.rules.zone)
        access.detail.append(("reader", .string(reader)))
        access.detail += detail
        out.effects.insert(.log(access), at: first)  // the log shows the decision before what it did
        if decision.granted {
            for passing in companions + [decision] {
                if let subject = passing.subject {
                    ledger.recordPassage(subject: subject, portal: portal, at: request.at)
                    if portal.direction != .both { out.append(.record(.passage(subject: subject, area: portal.toArea, at: request.at))) }
                }
                if let (key, inside) = parking.recordPassage(passing, kind: credential.kind, portal: portal) {
                    out.append(.record(.parking(key: key, inside: inside)))
                }
                if passing.consumesVisitorUse, let pass = passing.visitorPassID {
                    // Counted here at once, so the next read of the same pass sees it; the store
                    // worker makes it durable.
                    _ = policy.recordPassUse(pass)
                    out.append(.record(.passUse(pass)))
                }
            }
        }
        if decision.alarm {
            var alarm = event(.alarm, .blacklistedCredential, now, portal: portal.id)
            alarm.personID = decision.personID
            alarm.houseID = decision.houseID
            out.append(.log(alarm))
        }
        if decision.duress {
            // Silent: no siren, no light, nothing at the gate; the alarm goes upstream at once.
            var alarm = event(.alarm, .duress, now, portal: portal.id, detail: [("reader", .string(reader)), ("silent", true)])
            alarm.personID = decision.personID
            alarm.houseID = decision.houseID
            out.append(.log(alarm))
        }
    }

    /// Card and PIN: no PIN came in time after the card. Logged as the card's refusal.
    private mutating func pinTimedOut(_ reader: String, _ waiting: AwaitingPin, _ portal: Portal, _ now: SiteTime,
                                      _ out: inout EffectList) {
        var decision = waiting.decision
        decision.reason = .pinTimeout
        carryOut(decision, presented: waiting.request.credential, request: waiting.request, portal: portal, reader: reader, now, &out)
    }

    // MARK: Door-status plans

    /// First-card: a granted member of the plan's group, in the schedule, opens the door for the
    /// rest of the period (before the grant's own release, which then has nothing to do).
    private mutating func firstCard(_ decision: Decision, door i: Int, _ now: SiteTime, _ out: inout EffectList) {
        guard var plan = doors[i].plan, let group = plan.firstCardGroup, plan.scheduleOn, !plan.firstCardPassed,
              let person = decision.personID else { return }
        guard plan.granted(member: policy.roster.person(person, isInGroup: group)) else { return }
        doors[i].plan = plan
        planChanged(i, now, &out, detail: [("first_card_person", .string(person))])
    }

    /// Each door-status plan follows its schedule (on a set clock only). A plan whose schedule
    /// is missing from the roster holds nothing open.
    private mutating func followPlans(_ now: SiteTime, _ out: inout EffectList) {
        guard clock.trusted else { return }
        var local: LocalDateTime?
        for i in doors.indices {
            guard var plan = doors[i].plan else { continue }
            var on = false
            if let schedule = policy.roster.schedule(named: plan.schedule) {
                let time = local ?? layout.rules.zone.localTime(at: now.wall / 1_000_000)
                local = time
                on = schedule.allows(time)
            } else if warnedSchedules.insert("door \(doors[i].layout.id): \(plan.schedule)").inserted {
                out.append(.notice(.planScheduleMissing(schedule: plan.schedule, door: doors[i].layout.id)))
            }
            let changed = plan.schedule(on: on)
            doors[i].plan = plan
            if changed { planChanged(i, now, &out) }
        }
    }

    /// The door follows its plan's new state; its events name the plan.
    private mutating func planChanged(_ i: Int, _ now: SiteTime, _ out: inout EffectList, detail: [(String, JSON)] = []) {
        guard let plan = doors[i].plan else { return }
        door(i, doors[i].machine.handle(.plan(open: plan.holdsOpen), at: now.mono), now, &out,
             detail: [("plan", .string(plan.kind)), ("schedule", .string(plan.schedule))] + detail)
    }

    // MARK: Readers

    private mutating func signal(_ reader: String, _ signal: ReaderSignal, _ now: SiteTime, _ out: inout EffectList) {
        guard signals[reader] != nil else { return }
        readerLines(reader, signals[reader]!.signal(signal, at: now.mono), &out)
    }

    private func readerLines(_ reader: String, _ actions: [ReaderSignalStateMachine.Action], _ out: inout EffectList) {
        guard let lines = layout.readers.first(where: { $0.name == reader }) else { return }
        for action in actions {
            if let line = action.line == .led ? lines.led : lines.beeper { out.append(.output(line, on: action.on)) }
        }
    }

    /// A reader's tamper switch: the alarm latches on the first activation and stays until an
    /// operator resets it once the switch is back.
    private mutating func tamperInput(_ reader: String, line: String, active: Bool, _ now: SiteTime, _ out: inout EffectList) {
        guard active else {
            tamperActive.remove(reader)
            return
        }
        guard tamperActive.insert(reader).inserted, tamperLatched.insert(reader).inserted else { return }
        out.append(.log(event(.alarm, .readerTamper, now, portal: readerPortal[reader], detail: [("reader", .string(reader)), ("line", .string(line))])))
    }

    private mutating func readerCommand(_ reader: String, _ command: ReaderCommand, operator who: String, _ now: SiteTime,
                                        _ out: inout EffectList) {
        guard layout.readers.contains(where: { $0.name == reader && $0.tamper != nil }) else {
            out.append(.reply(.notFound("reader \(reader) has no tamper input in the board map")))
            return
        }
        out.append(.log(event(.operator, .readerReset, now, portal: readerPortal[reader],
                              detail: [("operator", .string(who)), ("reader", .string(reader))])))
        out.append(.record(.audit(action: "reader.\(command.rawValue)", target: reader, operator: who)))
        if tamperLatched.contains(reader) && !tamperActive.contains(reader) {
            tamperLatched.remove(reader)
            out.append(.log(event(.system, .alarmReset, now, portal: readerPortal[reader],
                                  detail: [("reader", .string(reader)), ("cleared", .strings(["reader_tamper"]))])))
        }
        out.append(.reply(.done(["alarm": tamperLatched.contains(reader)])))
    }

    /// Forgets where a person (and each plate of theirs) was last seen, at every portal: their
    /// next passage is judged as a first one.
    private mutating func antiPassbackReset(person id: String, operator who: String, _ now: SiteTime, _ out: inout EffectList) {
        guard let subjects = policy.roster.antiPassbackSubjects(person: id) else {
            out.append(.reply(.notFound("no person \(id) on the roster")))
            return
        }
        let known = subjects.filter { ledger.locations[$0] != nil }
        for subject in subjects { ledger.forget(subject: subject) }
        var e = event(.operator, .antiPassbackReset, now, detail: [("operator", .string(who)), ("cleared", .int(Int64(known.count)))])
        e.personID = id
        out.append(.log(e))
        out.append(.record(.forgetPassages(subjects)))
        out.append(.record(.audit(action: "apb.reset", target: id, operator: who)))
        out.append(.reply(.done(["cleared": !known.isEmpty])))
    }

    // MARK: Inputs and devices

    private mutating func input(_ line: String, active: Bool, _ now: SiteTime, _ out: inout EffectList) {
        if let reader = readerTamper[line] {
            tamperInput(reader, line: line, active: active, now, &out)
        } else if let i = doors.firstIndex(where: { $0.layout.contact == line }) {
            door(i, doors[i].machine.handle(.contact(open: active), at: now.mono), now, &out)
        } else if let i = doors.firstIndex(where: { $0.layout.exitButton == line }) {
            guard active else { return }
            if interlockHolds(i) {
                out.append(.log(event(.door, .interlock, now, portal: doors[i].layout.portals.first,
                                      detail: [("door", .string(doors[i].layout.id)), ("request", "exit_button")])))
                return
            }
            door(i, doors[i].machine.handle(.exitButton, at: now.mono), now, &out)
        } else if let i = lanes.firstIndex(where: { $0.layout.contacts?.inputs.contains(line) == true }) {
            // A dry-contact lane's loop, beam or limit switch: the lane machine's input, as a
            // Modbus gate's status would give it.
            guard let input = lanes[i].contacts?.input(line, active: active) else { return }
            if case .position(let p) = input, p == lanes[i].machine.position { return }
            let actions = lanes[i].machine.handle(input, at: now.mono)
            lane(i, actions, now, &out)
        } else if layout.linkage.fire.contains(line) {
            // The board reports every input at start: only a change is an event.
            guard active != fireActive else { return }
            fireActive = active
            out.append(.log(event(.alarm, active ? .fireAlarm : .fireAlarmCleared, now, detail: [("line", .string(line))])))
            for i in doors.indices { door(i, doors[i].machine.handle(.fire(active: active), at: now.mono), now, &out) }
            for i in lanes.indices { lane(i, lanes[i].machine.handle(.fire(active: active), at: now.mono), now, &out) }
        } else if layout.linkage.call.contains(line), active {
            out.append(.log(event(.alarm, .oneKeyCall, now, detail: [("line", .string(line)), ("urgent", true)])))
        } else if layout.linkage.tamper.contains(line), active {
            out.append(.log(event(.alarm, .tamper, now, detail: [("line", .string(line))])))
        }
    }

    private mutating func deviceOnline(_ device: String, _ online: Bool, _ now: SiteTime, _ out: inout EffectList) {
        out.append(.notice(.deviceOnline(device, online)))
        out.append(.log(event(online ? .system : .alarm, online ? .deviceOnline : .deviceOffline, now, detail: [("device", .string(device))])))
        for i in lanes.indices where lanes[i].layout.device == device {
            lane(i, lanes[i].machine.handle(.deviceFault(!online), at: now.mono), now, &out)
        }
        for i in zones.indices where zones[i].layout.device == device {
            zoneInput(i, .hostOnline(online), now, &out)
            // Back online: the host gets the zone's arm state again.
            if online { out.append(.command(.arm(zone: zones[i].layout.zone, armed: zones[i].machine.armed), device: device)) }
        }
    }

    // MARK: Operators

    private mutating func portalCommand(_ portal: String, _ command: DoorCommand, operator who: String, _ now: SiteTime,
                                        _ out: inout EffectList) {
        if let i = portalLane[portal] {
            out.append(.log(operatorEvent(portal, .init(command), who, now)))
            laneCommand(i, command, now, &out)
            let mode: PortalMode? = [.alwaysOpen, .alwaysClosed, .normal].contains(command) ? lanes[i].mode : nil
            out.append(.record(.operatorCommand(portals: [portal], action: "barrier.\(command.rawValue)", mode: mode, operator: who)))
            out.append(.reply(.done(["locked": lanes[i].machine.lockedMode])))
        } else if portalZone[portal] != nil {
            guard command == .resetAlarm else {
                out.append(.reply(.unknownPortal("portal \(portal) is a fence zone: use accessctl fence arm|disarm|reset")))
                return
            }
            fenceCommand(portal, .reset, operator: who, now, &out)
        } else if let i = portalDoor[portal] {
            out.append(.log(operatorEvent(portal, .init(command), who, now)))
            door(i, doors[i].machine.handle(.command(command), at: now.mono), now, &out)
            out.append(.record(.operatorCommand(portals: doors[i].layout.portals, action: "door.\(command.rawValue)",
                                                mode: doors[i].machine.mode, operator: who)))
            out.append(.reply(.done(["released": doors[i].machine.released])))
        } else {
            out.append(.reply(.unknownPortal("portal \(portal) has no door, lane or fence zone")))
        }
    }

    private mutating func fenceCommand(_ portal: String, _ command: FenceCommand, operator who: String, _ now: SiteTime,
                                       _ out: inout EffectList) {
        guard let i = portalZone[portal] else {
            out.append(.reply(.unknownPortal("portal \(portal) is not a fence zone")))
            return
        }
        let reason: EventReason = command == .arm ? .fenceArm : command == .disarm ? .fenceDisarm : .fenceReset
        out.append(.log(operatorEvent(portal, reason, who, now)))
        out.append(.record(.operatorCommand(portals: [portal], action: "fence.\(command.rawValue)", mode: nil, operator: who)))
        switch command {
        case .arm: zoneInput(i, .arm, now, &out)
        case .disarm:
            if zoneInput(i, .disarm, now, &out).contains(.event(.disarmRefused)) {
                out.append(.reply(.refused("\(portal) is an emergency zone: it is armed always and cannot be disarmed")))
                return
            }
        case .reset:
            // The host's latch first; the zone's own reset follows when the host has answered.
            zones[i].resetPending = true
            out.append(.command(.reset(zone: zones[i].layout.zone), device: zones[i].layout.device))
        }
        out.append(.reply(.done(["armed": zones[i].machine.armed, "alarm": !zones[i].machine.latched.isEmpty])))
    }

    /// A lane command as the lane's machine takes it.
    private mutating func laneCommand(_ i: Int, _ command: DoorCommand, _ now: SiteTime, _ out: inout EffectList) {
        let inputs: [BarrierLaneStateMachine.Input]
        switch command {
        case .open: inputs = [.command(.open)]
        case .close: inputs = [.command(.close)]
        case .alwaysOpen: inputs = [.command(.unlock), .command(.open), .command(.lock)]
        case .alwaysClosed: inputs = [.command(.unlock), .command(.close), .command(.lock)]
        case .normal: inputs = [.command(.unlock)]
        case .resetAlarm: inputs = [.resetAlarm]
        }
        switch command {
        case .alwaysOpen: lanes[i].mode = .alwaysOpen
        case .alwaysClosed: lanes[i].mode = .alwaysClosed
        case .normal: lanes[i].mode = .normal
        default: break
        }
        for input in inputs { lane(i, lanes[i].machine.handle(input, at: now.mono), now, &out) }
    }

    // MARK: Time

    private mutating func tick(_ now: SiteTime, _ out: inout EffectList) {
        if let change = clock.observe(wall: now.wall, mono: now.mono) {
            out.append(.notice(.clock(change)))
            out.append(.log(clockEvent(change, now)))
        }
        for i in doors.indices where (doors[i].machine.nextDeadline ?? .max) <= now.mono {
            door(i, doors[i].machine.handle(.tick, at: now.mono), now, &out)
        }
        for i in lanes.indices where (lanes[i].contacts?.nextDeadline ?? .max) <= now.mono {
            contactOutputs(lanes[i].contacts?.tick(at: now.mono) ?? [], &out)
        }
        for i in lanes.indices where (lanes[i].machine.nextDeadline ?? .max) <= now.mono {
            lane(i, lanes[i].machine.handle(.tick, at: now.mono), now, &out)
        }
        for reader in signals.keys.sorted() where (signals[reader]?.nextDeadline ?? .max) <= now.mono {
            readerLines(reader, signals[reader]!.tick(at: now.mono), &out)
        }
        for (reader, waiting) in awaitingPin.sorted(by: { $0.key < $1.key }) where waiting.deadline < now.mono {
            awaitingPin[reader] = nil
            if let portal = layout.rules.portal(waiting.request.portal) { pinTimedOut(reader, waiting, portal, now, &out) }
        }
        guard clock.trusted else { return }  // no schedule is followed on an unset clock
        followPlans(now, &out)
        let local = layout.rules.zone.localTime(at: now.wall / 1_000_000)
        for i in zones.indices {
            guard let name = zones[i].layout.armSchedule else { continue }
            guard let schedule = policy.roster.schedule(named: name) else {
                if zones[i].scheduleActive != nil || !warnedSchedules.contains(name) {
                    warnedSchedules.insert(name)
                    out.append(.notice(.armScheduleMissing(schedule: name, portal: zones[i].layout.portal)))
                }
                zones[i].scheduleActive = nil
                continue
            }
            let active = schedule.allows(local)
            guard active != zones[i].scheduleActive else { continue }
            zones[i].scheduleActive = active
            zoneInput(i, active ? .arm : .disarm, now, &out)
        }
    }

    private func clockEvent(_ change: EventClock.Change, _ now: SiteTime) -> AccessEvent {
        let zone = layout.rules.zone
        func detail(_ from: Int64, _ to: Int64) -> [(String, JSON)] {
            [("from", .string(ISO8601.format(micros: from, zone: zone))), ("to", .string(ISO8601.format(micros: to, zone: zone))),
             ("jump_seconds", .int((to - from) / 1_000_000))]
        }
        switch change {
        case .set(let from, let to): return event(.system, .clockSet, now, detail: detail(from, to))
        case .jump(let from, let to): return event(.system, .clockJump, now, detail: detail(from, to))
        case .lost(let from, let to): return event(.alarm, .clockUnset, now, detail: detail(from, to))
        }
    }

    // MARK: Machines' actions as effects

    private func door(_ i: Int, _ actions: [DoorAction], _ now: SiteTime, _ out: inout EffectList, detail: [(String, JSON)] = []) {
        for action in actions {
            switch action {
            case .lock(let released): out.append(.lock(door: i, released: released))
            case .event(let e):
                out.append(.log(event(e.isAlarm ? .alarm : .door, .init(e), now, portal: doors[i].layout.portals.first,
                                      detail: [("door", .string(doors[i].layout.id))] + detail)))
            }
        }
    }

    /// A lane's actions as effects: a command goes to its field device, or becomes relay pulses
    /// on its dry contacts (driven at once, like a door's lock).
    private mutating func lane(_ i: Int, _ actions: [BarrierLaneAction], _ now: SiteTime, _ out: inout EffectList) {
        for action in actions {
            switch action {
            case .send(let command):
                switch lanes[i].layout.gate {
                case .device(let device): out.append(.command(.barrier(command), device: device))
                case .contacts: contactOutputs(lanes[i].contacts?.send(command, at: now.mono) ?? [], &out)
                }
            case .event(let e):
                let detail: [(String, JSON)] = lanes[i].layout.device.map { [("device", .string($0))] } ?? []
                out.append(.log(event(e.isAlarm ? .alarm : .barrier, .init(e), now, portal: lanes[i].layout.portal, detail: detail)))
            }
        }
    }

    private func contactOutputs(_ outputs: [ContactOutput], _ out: inout EffectList) {
        for o in outputs { out.append(.output(o.line, on: o.on)) }
    }

    /// Steps a zone's machine, then turns its actions into effects (the sirens read every zone's
    /// state, so the machine must have moved first).
    @discardableResult
    private mutating func zoneInput(_ i: Int, _ input: FenceZoneStateMachine.Input, _ now: SiteTime,
                                    _ out: inout EffectList) -> [FenceZoneAction] {
        let actions = zones[i].machine.handle(input)
        zone(i, actions, now, &out)
        return actions
    }

    private func zone(_ i: Int, _ actions: [FenceZoneAction], _ now: SiteTime, _ out: inout EffectList) {
        let zone = zones[i].layout
        for action in actions {
            switch action {
            case .armHost(let armed): out.append(.command(.arm(zone: zone.zone, armed: armed), device: zone.device))
            case .resetHost: out.append(.command(.reset(zone: zone.zone), device: zone.device))
            case .linkage:
                // Sirens and lights: on while any zone they serve has a latched alarm.
                for name in layout.fenceOutputs {
                    out.append(.output(name, on: zones.contains { $0.layout.outputs.contains(name) && !$0.machine.latched.isEmpty }))
                }
            case .event(let e):
                var detail: [(String, JSON)] = [("device", .string(zone.device)), ("zone", .int(zone.zone))]
                let type: EventType
                let reason: EventReason
                switch e {
                case .armed: (type, reason) = (.fence, .armed)
                case .disarmed: (type, reason) = (.fence, .disarmed)
                case .disarmRefused: (type, reason) = (.fence, .disarmRefused)
                case .alarm(let kind): (type, reason) = (.alarm, EventReason(fenceAlarm: kind))
                case .commRestored: (type, reason) = (.fence, .commRestored)
                case .reset(let cleared, let stillActive):
                    (type, reason) = (.fence, .alarmReset)
                    detail += [("cleared", .strings(cleared.map(\.rawValue))), ("still_active", .strings(stillActive.map(\.rawValue)))]
                }
                out.append(.log(event(type, reason, now, portal: zone.portal, detail: detail)))
            }
        }
    }

    // MARK: Events

    /// An event at `now`: stamped with the wall clock when it is set; while it is not (before
    /// 2020), with the last time known good plus the monotonic time since, so never 1970.
    public func event(_ type: EventType, _ reason: EventReason, _ now: SiteTime, portal: String? = nil,
                      detail: [(String, JSON)] = []) -> AccessEvent {
        let micros = clock.eventMicros(wall: now.wall, mono: now.mono)
        return AccessEvent(timeMicros: micros, utcOffset: layout.rules.zone.offset(at: micros / 1_000_000), type: type,
                           portal: portal, reason: reason, detail: detail)
    }

    private func operatorEvent(_ portal: String, _ reason: EventReason, _ who: String, _ now: SiteTime) -> AccessEvent {
        event(.operator, reason, now, portal: portal, detail: [("operator", .string(who))])
    }
}

/// The effects of one step as they arise; lock and output effects also go to the interpreter at
/// once.
struct EffectList {
    var effects: [SiteEffect] = []
    let drive: (SiteEffect) -> Void

    init(drive: @escaping (SiteEffect) -> Void) {
        self.drive = drive
        effects.reserveCapacity(8)
    }

    mutating func append(_ effect: SiteEffect) {
        switch effect {
        case .lock, .output: drive(effect)
        default: break
        }
        effects.append(effect)
    }
}
