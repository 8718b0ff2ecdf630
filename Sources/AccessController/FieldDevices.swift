import AccessConfig
import AccessCore
import AccessDevices
import Synchronization

/// What the controller asks of a field device. Each device has one queue, so its commands reach
/// it in the order the state machines sent them.
enum DeviceCommand: Sendable, CustomStringConvertible {
    case barrier(BarrierCommand)
    case arm(zone: Int, armed: Bool)
    /// Clears the host's latch, reads the zone again, then resets the zone's state machine.
    case reset(zone: Int)

    var description: String {
        switch self {
        case .barrier(let c): return c.rawValue
        case .arm(let zone, let armed): return "\(armed ? "arm" : "disarm") zone \(zone)"
        case .reset(let zone): return "reset zone \(zone)"
        }
    }
}

/// The Modbus devices behind barrier lanes and fence zones (or their in-memory stand-ins on a
/// `simulated` line): one command queue and one poller per device, on tasks. Blocking libmodbus
/// calls run on each bus's own thread (`ModbusBus` is an actor with its own executor), never on
/// the cooperative pool, and a device that stops answering never holds up doors or other devices.
final class FieldDevices: Sendable {
    enum Driver: Sendable {
        case gate(any BarrierGate)
        case fenceHost(any FenceAlarmHost)
        case relays(any RelayBoard)
    }

    struct Device: Sendable {
        let id: String
        let driver: Driver
        let poll: Duration
        let queue: AsyncStream<DeviceCommand>
        let sink: AsyncStream<DeviceCommand>.Continuation
    }

    let devices: [String: Device]
    /// The in-memory devices of `simulated` lines, for `accessctl sim`.
    let simulatedGates: [String: SimulatedBarrierGate]
    let simulatedHosts: [String: SimulatedFenceHost]
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// Where the queues and pollers run: their own thread, so a busy or blocked cooperative pool
    /// never delays a barrier command or an alarm.
    private let thread: ExecutorThread

    /// Reads every device's register map and opens nothing yet; throws naming the device, file
    /// or key at fault.
    init(config: SiteConfig) throws(DeviceError) {
        var buses: [String: ModbusBus] = [:]
        var simulatedLines: Set<String> = []
        for line in config.modbusLines {
            switch line.kind {
            case .simulated: simulatedLines.insert(line.id)
            case .bus(let bus): buses[line.id] = try ModbusBus(config: bus)
            }
        }
        var devices: [String: Device] = [:]
        var gates: [String: SimulatedBarrierGate] = [:]
        var hosts: [String: SimulatedFenceHost] = [:]
        for spec in config.modbusDevices {
            let map = try DeviceMap.load(path: spec.map)
            let driver: Driver
            if let bus = buses[spec.bus] {
                switch map.role {
                case .barrierGate: driver = .gate(try ModbusBarrierGate(name: spec.id, bus: bus, unit: spec.unit, map: map))
                case .fenceHost: driver = .fenceHost(try ModbusFenceHost(name: spec.id, bus: bus, unit: spec.unit, map: map))
                case .relayBoard: driver = .relays(try ModbusRelayBoard(name: spec.id, bus: bus, unit: spec.unit, map: map))
                }
            } else if simulatedLines.contains(spec.bus) {
                switch map.role {
                case .barrierGate:
                    let gate = SimulatedBarrierGate(name: spec.id)
                    gates[spec.id] = gate
                    driver = .gate(gate)
                case .fenceHost(let fence):
                    let host = SimulatedFenceHost(name: spec.id, zoneCount: fence.zoneCount)
                    hosts[spec.id] = host
                    driver = .fenceHost(host)
                case .relayBoard:
                    throw .configuration(file: spec.map, key: "kind", problem: "a relay board cannot be simulated yet (device \(spec.id))")
                }
            } else {
                throw .unknownName(kind: "Modbus bus (device \(spec.id))", name: spec.bus)
            }
            let (queue, sink) = AsyncStream.makeStream(of: DeviceCommand.self)
            devices[spec.id] = Device(id: spec.id, driver: driver, poll: .milliseconds(spec.pollMillis), queue: queue, sink: sink)
        }
        for barrier in config.barriers {
            guard case .gate? = devices[barrier.device]?.driver else {
                throw .configuration(file: config.source, key: "barrier \(barrier.portal)", problem: "device \(barrier.device) is not a barrier gate")
            }
        }
        for fence in config.fenceZones {
            guard case .fenceHost(let host)? = devices[fence.device]?.driver else {
                throw .configuration(file: config.source, key: "fence \(fence.portal)", problem: "device \(fence.device) is not a fence host")
            }
            guard fence.zone <= host.zoneCount else {
                throw .configuration(file: config.source, key: "fence \(fence.portal)",
                                     problem: "zone \(fence.zone) is beyond the \(host.zoneCount) zones of \(fence.device)")
            }
        }
        self.devices = devices
        thread = try ExecutorThread(name: "field-devices")
        simulatedGates = gates
        simulatedHosts = hosts
    }

    /// Queues a command for a device; it runs after the ones before it.
    func send(_ command: DeviceCommand, to device: String) {
        devices[device]?.sink.yield(command)
    }

    /// Starts each device's command queue and poller; results go to `controller`.
    func start(_ controller: Controller) {
        var started: [Task<Void, Never>] = []
        for device in devices.values {
            started.append(Task(executorPreference: thread) { [weak controller] in
                for await command in device.queue {
                    do throws(DeviceError) {
                        try await Self.execute(command, on: device.driver)
                        if case .reset(let zone) = command, case .fenceHost(let host) = device.driver {
                            controller?.fenceZoneReset(device: device.id, zone: zone, now: try? await host.zones())
                        }
                    } catch {
                        controller?.deviceCommandFailed(device: device.id, command: command, error: error)
                        if case .reset(let zone) = command { controller?.fenceZoneReset(device: device.id, zone: zone, now: nil) }
                    }
                }
            })
            started.append(Task(executorPreference: thread) { [weak controller] in
                var online: Bool?
                while !Task.isCancelled {
                    let answered: Bool
                    switch device.driver {
                    case .gate(let gate):
                        do {
                            let status = try await gate.status()
                            controller?.barrierStatus(device: device.id, status)
                            answered = true
                        } catch { answered = false }
                    case .fenceHost(let host):
                        do {
                            let zones = try await host.zones()
                            controller?.fenceStatus(device: device.id, zones)
                            answered = true
                        } catch { answered = false }
                    case .relays(let relays):
                        answered = (try? await relays.channels()) != nil
                    }
                    if answered != online {
                        online = answered
                        controller?.deviceOnline(device.id, answered)
                    }
                    try? await Task.sleep(for: device.poll)
                }
            })
        }
        tasks.withLock { $0 = started }
    }

    /// Ends the queues and pollers; buses close when their last request is done.
    func stop() {
        for device in devices.values { device.sink.finish() }
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }

    deinit { thread.stop() }

    private static func execute(_ command: DeviceCommand, on driver: Driver) async throws(DeviceError) {
        switch (command, driver) {
        case (.barrier(let c), .gate(let gate)): try await gate.send(c)
        case (.arm(let zone, let armed), .fenceHost(let host)):
            if armed { try await host.arm(zone: zone) } else { try await host.disarm(zone: zone) }
        case (.reset(let zone), .fenceHost(let host)): try await host.reset(zone: zone)
        default: break  // the config check binds lanes to gates and zones to hosts
        }
    }
}

// MARK: Lanes and zones in the controller

/// A barrier lane at runtime: its machine and the gate that carries out its commands.
struct LaneRuntime {
    var portal: String
    var device: String
    var machine: BarrierLaneStateMachine
    var mode: PortalMode = .normal
}

/// A fence zone at runtime.
struct ZoneRuntime {
    var portal: String
    var device: String
    var zone: Int
    var machine: FenceZoneStateMachine
    var outputs: [String]
    var armSchedule: String?
    /// The schedule's state when last looked at: the zone follows its changes only, so an
    /// operator's arm or disarm holds until the schedule next changes.
    var scheduleActive: Bool?
}

/// What an operator may ask of a fence zone.
public enum FenceCommand: String, Sendable, CaseIterable {
    case arm, disarm, reset
}

extension Controller {
    /// Builds the lanes and zones of the config over `devices`.
    static func fieldRuntimes(_ config: SiteConfig) -> (lanes: [LaneRuntime], zones: [ZoneRuntime]) {
        let lanes = config.barriers.map { b in
            LaneRuntime(portal: b.portal, device: b.device, machine: BarrierLaneStateMachine(config: BarrierLaneConfig(
                positionTimeoutSeconds: b.positionTimeoutSeconds, closeDelaySeconds: b.closeDelaySeconds, autoClose: b.autoClose)))
        }
        let zones = config.fenceZones.map { f in
            ZoneRuntime(portal: f.portal, device: f.device, zone: f.zone,
                        machine: FenceZoneStateMachine(zone: f.zone, emergency: f.emergency, armed: f.armed),
                        outputs: f.outputs, armSchedule: f.armSchedule)
        }
        return (lanes, zones)
    }

    /// Position, loop and fault from a gate's poll.
    func barrierStatus(device: String, _ status: BarrierStatus) {
        let now = monotonicNow()
        var events: [AccessEvent] = []
        state.withLock { s in
            for i in s.lanes.indices where s.lanes[i].device == device {
                // The loop first: an arm found closing onto a vehicle is raised again.
                var actions = s.lanes[i].machine.handle(.loop(occupied: status.loopOccupied), at: now)
                if status.position != s.lanes[i].machine.position {
                    actions += s.lanes[i].machine.handle(.position(status.position), at: now)
                }
                actions += s.lanes[i].machine.handle(.deviceFault(status.fault), at: now)
                applyLane(actions, lane: i, &s, &events)
            }
        }
        worker.submit(events.map { .event($0) })
    }

    /// A fence host's zones from its poll.
    func fenceStatus(device: String, _ zones: [FenceZoneStatus]) {
        var events: [AccessEvent] = []
        state.withLock { s in
            for i in s.zones.indices where s.zones[i].device == device {
                guard let reported = zones.first(where: { $0.zone == s.zones[i].zone }) else { continue }
                let kinds = Set(reported.alarms.compactMap { FenceAlarmKind(rawValue: $0.rawValue) })
                applyZone(s.zones[i].machine.handle(.hostAlarms(kinds)), zone: i, &s, &events)
                // A host that lost its arm state (power cycle, someone at its panel) is put back.
                if reported.armed != s.zones[i].machine.armed {
                    fieldDevices?.send(.arm(zone: s.zones[i].zone, armed: s.zones[i].machine.armed), to: device)
                }
            }
        }
        worker.submit(events.map { .event($0) })
    }

    /// After the host's latch was cleared (or could not be): the zone's own reset.
    func fenceZoneReset(device: String, zone: Int, now zones: [FenceZoneStatus]?) {
        var events: [AccessEvent] = []
        state.withLock { s in
            guard let i = s.zones.firstIndex(where: { $0.device == device && $0.zone == zone }) else { return }
            if let reported = zones?.first(where: { $0.zone == zone }) {
                let kinds = Set(reported.alarms.compactMap { FenceAlarmKind(rawValue: $0.rawValue) })
                applyZone(s.zones[i].machine.handle(.hostAlarms(kinds)), zone: i, &s, &events)
            }
            // The host was reset already: only the zone's own latch is left to clear.
            let actions = s.zones[i].machine.handle(.reset).filter { $0 != .resetHost }
            applyZone(actions, zone: i, &s, &events)
        }
        worker.submit(events.map { .event($0) })
    }

    /// A device started or stopped answering its polls.
    func deviceOnline(_ device: String, _ online: Bool) {
        handle(.device(name: device, online: online))
        let now = monotonicNow()
        var events: [AccessEvent] = []
        state.withLock { s in
            for i in s.lanes.indices where s.lanes[i].device == device {
                applyLane(s.lanes[i].machine.handle(.deviceFault(!online), at: now), lane: i, &s, &events)
            }
            for i in s.zones.indices where s.zones[i].device == device {
                applyZone(s.zones[i].machine.handle(.hostOnline(online)), zone: i, &s, &events)
                // Back online: the host gets the zone's arm state again.
                if online { fieldDevices?.send(.arm(zone: s.zones[i].zone, armed: s.zones[i].machine.armed), to: device) }
            }
        }
        worker.submit(events.map { .event($0) })
    }

    func deviceCommandFailed(device: String, command: DeviceCommand, error: DeviceError) {
        logger.error("device command failed", metadata: ["device": "\(device)", "command": "\(command)", "error": "\(error)"])
        worker.submit([.event(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .alarm, reason: "device_command_failed",
                                          detail: [("device", .string(device)), ("command", .string(command.description)),
                                                   ("error", .string(error.description))]))])
    }

    func applyLane(_ actions: [BarrierLaneAction], lane i: Int, _ s: inout State, _ events: inout [AccessEvent]) {
        for action in actions {
            switch action {
            case .send(let command):
                fieldDevices?.send(.barrier(command), to: s.lanes[i].device)
            case .event(let e):
                events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: e.isAlarm ? .alarm : .barrier,
                                          portal: s.lanes[i].portal, reason: e.isAlarm ? "barrier_\(e.rawValue)" : e.rawValue,
                                          detail: [("device", .string(s.lanes[i].device))]))
            }
        }
    }

    func applyZone(_ actions: [FenceZoneAction], zone i: Int, _ s: inout State, _ events: inout [AccessEvent]) {
        let zone = s.zones[i]
        for action in actions {
            switch action {
            case .armHost(let armed): fieldDevices?.send(.arm(zone: zone.zone, armed: armed), to: zone.device)
            case .resetHost: fieldDevices?.send(.reset(zone: zone.zone), to: zone.device)
            case .linkage: updateFenceOutputs(s, &events)
            case .event(let e):
                var detail: [(String, JSON)] = [("device", .string(zone.device)), ("zone", .int(zone.zone))]
                let type: EventType
                let reason: String
                switch e {
                case .armed: (type, reason) = (.fence, "armed")
                case .disarmed: (type, reason) = (.fence, "disarmed")
                case .disarmRefused: (type, reason) = (.fence, "disarm_refused")
                case .alarm(let kind): (type, reason) = (.alarm, "fence_\(kind.rawValue)")
                case .commRestored: (type, reason) = (.fence, "comm_restored")
                case .reset(let cleared, let stillActive):
                    (type, reason) = (.fence, "alarm_reset")
                    detail += [("cleared", .strings(cleared.map(\.rawValue))), ("still_active", .strings(stillActive.map(\.rawValue)))]
                }
                events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: type, portal: zone.portal,
                                          reason: reason, detail: detail))
            }
        }
    }

    /// Sirens and lights: on while any zone they serve has a latched alarm.
    private func updateFenceOutputs(_ s: State, _ events: inout [AccessEvent]) {
        for (name, line) in fenceOutputs {
            let on = s.zones.contains { $0.outputs.contains(name) && !$0.machine.latched.isEmpty }
            do {
                try line.set(on)
            } catch {
                logger.error("fence output failed", metadata: ["line": "\(name)", "error": "\(error)"])
                events.append(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .alarm, reason: "relay_failed",
                                          detail: [("line", .string(name)), ("error", .string(error.description))]))
            }
        }
    }

    /// Lanes' position timeouts and close delays, and zones' arm schedules; called by the ticker.
    func tickField(now: UInt64, wallSeconds: Int64, clockTrusted: Bool, _ s: inout State, _ events: inout [AccessEvent]) {
        for i in s.lanes.indices where (s.lanes[i].machine.nextDeadline ?? .max) <= now {
            applyLane(s.lanes[i].machine.handle(.tick, at: now), lane: i, &s, &events)
        }
        guard clockTrusted else { return }  // no schedule is followed on an unset clock
        let local = config.controller.timeZone.localTime(at: wallSeconds)
        for i in s.zones.indices {
            guard let name = s.zones[i].armSchedule else { continue }
            guard let schedule = s.policy.roster.schedule(named: name) else {
                if s.zones[i].scheduleActive != nil || !s.warnedSchedules.contains(name) {
                    s.warnedSchedules.insert(name)
                    logger.warning("fence arm schedule not found; the zone keeps its state", metadata: ["schedule": "\(name)", "portal": "\(s.zones[i].portal)"])
                }
                s.zones[i].scheduleActive = nil
                continue
            }
            let active = schedule.allows(local)
            guard active != s.zones[i].scheduleActive else { continue }
            s.zones[i].scheduleActive = active
            applyZone(s.zones[i].machine.handle(active ? .arm : .disarm), zone: i, &s, &events)
        }
    }

    /// A fence zone command from an operator.
    public func fence(portal: String, command: FenceCommand, operator who: String) throws -> [String: Bool] {
        var events: [AccessEvent] = []
        let result: [String: Bool] = try state.withLock { s throws in
            guard let i = s.zones.firstIndex(where: { $0.portal == portal }) else { throw ControlError.unknown("portal \(portal) is not a fence zone") }
            switch command {
            case .arm: applyZone(s.zones[i].machine.handle(.arm), zone: i, &s, &events)
            case .disarm: applyZone(s.zones[i].machine.handle(.disarm), zone: i, &s, &events)
            case .reset: fieldDevices?.send(.reset(zone: s.zones[i].zone), to: s.zones[i].device)
            }
            return ["armed": s.zones[i].machine.armed, "alarm": !s.zones[i].machine.latched.isEmpty]
        }
        events.insert(AccessEvent(timeMicros: eventMicros(), utcOffset: offset(), type: .operator, portal: portal,
                                  reason: "fence.\(command.rawValue)", detail: [("operator", .string(who))]), at: 0)
        worker.submit([.operatorCommand(portals: [portal], action: "fence.\(command.rawValue)", mode: nil, operator: who)] + events.map { .event($0) })
        return result
    }

    /// A barrier lane command from an operator (`open`, `close`, `always-open` …).
    func laneCommand(_ i: Int, _ command: DoorCommand, now: UInt64, _ s: inout State, _ events: inout [AccessEvent]) {
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
        case .alwaysOpen: s.lanes[i].mode = .alwaysOpen
        case .alwaysClosed: s.lanes[i].mode = .alwaysClosed
        case .normal: s.lanes[i].mode = .normal
        default: break
        }
        for input in inputs { applyLane(s.lanes[i].machine.handle(input, at: now), lane: i, &s, &events) }
    }

    /// The in-memory gate of a `simulated` Modbus line (simulation and tests).
    public func simulatedGate(_ device: String) -> SimulatedBarrierGate? { fieldDevices?.simulatedGates[device] }

    /// The in-memory fence host of a `simulated` Modbus line.
    public func simulatedFenceHost(_ device: String) -> SimulatedFenceHost? { fieldDevices?.simulatedHosts[device] }

    /// Lane and zone state, for `status`.
    public var fieldStates: (lanes: [(portal: String, position: String, loop: Bool, locked: Bool)],
                             zones: [(portal: String, armed: Bool, latched: [String])]) {
        state.withLock { s in
            (s.lanes.map { ($0.portal, $0.machine.position.rawValue, $0.machine.loopOccupied, $0.machine.lockedMode) },
             s.zones.map { ($0.portal, $0.machine.armed, $0.machine.latched.sorted().map(\.rawValue)) })
        }
    }
}
