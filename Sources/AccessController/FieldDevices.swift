import AccessConfig
import AccessCore
import AccessRuntime
import AccessDevices
import Synchronization

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
        let queue: AsyncStream<FieldCommand>
        let sink: AsyncStream<FieldCommand>.Continuation
    }

    let devices: [String: Device]
    /// The in-memory devices of `simulated` lines, for `accessctl sim`.
    let simulatedGates: [String: SimulatedBarrierGate]
    let simulatedHosts: [String: SimulatedFenceHost]
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// Where the queues and pollers run: their own thread, so a busy or blocked cooperative pool
    /// never delays a barrier command or an alarm.
    private let thread: ThreadExecutor

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
            let map: DeviceMap
            do {
                map = try DeviceMap.load(path: spec.map)
            } catch {
                throw .configuration(file: error.line.map { "\(spec.map):\($0)" } ?? spec.map, key: error.key, problem: error.problem)
            }
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
            let (queue, sink) = AsyncStream.makeStream(of: FieldCommand.self)
            devices[spec.id] = Device(id: spec.id, driver: driver, poll: .milliseconds(spec.pollMillis), queue: queue, sink: sink)
        }
        for barrier in config.barriers {
            guard let device = barrier.device else { continue }  // on the board's dry contacts
            guard case .gate? = devices[device]?.driver else {
                throw .configuration(file: config.source, key: "barrier \(barrier.portal)", problem: "device \(device) is not a barrier gate")
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
        do {
            thread = try ThreadExecutor(threadName: "field-devices")
        } catch {
            throw .configuration(file: config.source, key: "field devices", problem: "cannot start their thread: \(error)")
        }
        simulatedGates = gates
        simulatedHosts = hosts
    }

    /// Queues a command for a device; it runs after the ones before it.
    func send(_ command: FieldCommand, to device: String) {
        devices[device]?.sink.yield(command)
    }

    /// Starts each device's command queue and poller; what they find goes to `controller`.
    func start(_ controller: Controller) {
        var started: [Task<Void, Never>] = []
        for device in devices.values {
            started.append(Task(executorPreference: thread) { [weak controller] in
                for await command in device.queue {
                    do throws(DeviceError) {
                        try await Self.execute(command, on: device.driver)
                        if case .reset(let zone) = command, case .fenceHost(let host) = device.driver {
                            let zones = try? await host.zones()
                            controller?.report(.fenceResetDone(device: device.id, zone: zone, zones: zones.map(Self.reports)))
                        }
                    } catch {
                        controller?.report(.deviceCommandFailed(device: device.id, command: command, error: error.description))
                        if case .reset(let zone) = command { controller?.report(.fenceResetDone(device: device.id, zone: zone, zones: nil)) }
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
                            controller?.report(.barrierStatus(device: device.id, position: status.position,
                                                              loopOccupied: status.loopOccupied, fault: status.fault))
                            answered = true
                        } catch { answered = false }
                    case .fenceHost(let host):
                        do {
                            let zones = try await host.zones()
                            controller?.report(.fenceStatus(device: device.id, zones: Self.reports(zones)))
                            answered = true
                        } catch { answered = false }
                    case .relays(let relays):
                        answered = (try? await relays.channels()) != nil
                    }
                    if answered != online {
                        online = answered
                        controller?.report(.deviceOnline(device: device.id, online: answered))
                    }
                    try? await Task.sleep(for: device.poll)
                }
            })
        }
        tasks.withLock { $0 = started }
    }

    /// A host's zones as the site reads them.
    private static func reports(_ zones: [FenceZoneStatus]) -> [FenceZoneReport] {
        zones.map { FenceZoneReport(zone: $0.zone, armed: $0.armed, alarms: Set($0.alarms.compactMap { FenceAlarmKind(rawValue: $0.rawValue) })) }
    }

    /// Ends the queues and pollers; buses close when their last request is done.
    func stop() {
        for device in devices.values { device.sink.finish() }
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }

    deinit { thread.stop() }

    private static func execute(_ command: FieldCommand, on driver: Driver) async throws(DeviceError) {
        switch (command, driver) {
        case (.barrier(let c), .gate(let gate)): try await gate.send(c)
        case (.arm(let zone, let armed), .fenceHost(let host)):
            if armed { try await host.arm(zone: zone) } else { try await host.disarm(zone: zone) }
        case (.reset(let zone), .fenceHost(let host)): try await host.reset(zone: zone)
        default: break  // the config check binds lanes to gates and zones to hosts
        }
    }
}
