import AccessCore
import AccessRuntime
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

// Modbus devices of the simulated profile, in memory: what accessd drives on a `simulated` bus
// when no hardware is present. `accessctl sim loop|fence|device` plays their physical side.

/// A barrier gate whose arm takes `travelNanos` to open or close, with a vehicle loop the
/// simulation sets. Like real gates, it refuses open/close while locked.
public final class SimulatedBarrierGate: BarrierGate, Sendable {
    public let name: String
    private let travelNanos: UInt64
    private struct State {
        var position: BarrierPosition = .closed
        var moving: (target: BarrierPosition, until: UInt64)?
        var loopOccupied = false
        var locked = false
        var fault = false
        var offline = false
        var commands: [BarrierCommand] = []
    }
    private let state = Mutex(State())

    public init(name: String, travelSeconds: Double = 1) {
        self.name = name
        travelNanos = UInt64(travelSeconds * 1e9)
    }

    public func send(_ command: BarrierCommand) async throws(DeviceError) {
        let offline = state.withLock { s -> Bool in
            guard !s.offline else { return true }
            s.commands.append(command)
            settle(&s)
            switch command {
            case .open where !s.locked: move(&s, to: .open)
            case .close where !s.locked: move(&s, to: .closed)
            case .stop:
                s.moving = nil
                s.position = .stopped
            case .lock: s.locked = true
            case .unlock: s.locked = false
            default: break
            }
            return false
        }
        if offline { throw .offline(device: name) }
    }

    public func status() async throws(DeviceError) -> BarrierStatus {
        let status = state.withLock { s -> BarrierStatus? in
            guard !s.offline else { return nil }
            settle(&s)
            return BarrierStatus(position: s.position, loopOccupied: s.loopOccupied, locked: s.locked, fault: s.fault)
        }
        guard let status else { throw .offline(device: name) }
        return status
    }

    /// A vehicle stands on (or leaves) the loop under the arm.
    public func setLoop(occupied: Bool) { state.withLock { $0.loopOccupied = occupied } }
    /// The motor or encoder reports a fault; a faulty gate does not move.
    public func setFault(_ fault: Bool) { state.withLock { $0.fault = fault } }
    /// Stops answering, as a gate whose bus is cut.
    public func setOffline(_ offline: Bool) { state.withLock { $0.offline = offline } }
    /// Every command received, oldest first.
    public var commands: [BarrierCommand] { state.withLock { $0.commands } }

    private func move(_ s: inout State, to target: BarrierPosition) {
        guard !s.fault, s.position != target else { return }
        s.position = target == .open ? .opening : .closing
        s.moving = (target, monotonicNanos() + travelNanos)
    }

    private func settle(_ s: inout State) {
        if let moving = s.moving, monotonicNanos() >= moving.until {
            s.position = moving.target
            s.moving = nil
        }
    }
}

/// A fence alarm host whose zone alarms the simulation raises and clears. Like the hosts it
/// stands for, it latches an alarm until reset, and reports it only while the zone is armed
/// (tamper and power always).
public final class SimulatedFenceHost: FenceAlarmHost, Sendable {
    public let name: String
    public let zoneCount: Int
    private struct Zone {
        var armed = false
        var active: Set<FenceAlarm> = []
        var latched: Set<FenceAlarm> = []
    }
    private let state: Mutex<(zones: [Zone], offline: Bool)>
    private let answered = Atomic<Int>(0)

    public init(name: String, zoneCount: Int = 4) {
        self.name = name
        self.zoneCount = zoneCount
        state = Mutex((Array(repeating: Zone(), count: zoneCount), false))
    }

    public func arm(zone: Int) async throws(DeviceError) { try update(zone) { $0.armed = true } }
    public func disarm(zone: Int) async throws(DeviceError) { try update(zone) { $0.armed = false } }
    public func reset(zone: Int) async throws(DeviceError) { try update(zone) { $0.latched = $0.active } }

    public func zones() async throws(DeviceError) -> [FenceZoneStatus] {
        if state.withLock({ $0.offline }) { throw .offline(device: name) }
        defer { answered.add(1, ordering: .relaxed) }
        return zoneStates
    }

    /// How many reads of the zones it has answered: a test waits for the next poll with it.
    public var reads: Int { answered.load(ordering: .relaxed) }

    /// What the host would report now, answering or not (simulation and tests).
    public var zoneStates: [FenceZoneStatus] {
        state.withLock { s in
            s.zones.enumerated().map { FenceZoneStatus(zone: $0.offset + 1, armed: $0.element.armed, alarms: $0.element.latched) }
        }
    }

    /// The physical side: a wire cut, shorted, touched; a box opened; power lost. Off clears the
    /// cause; the latch stays until `reset`.
    public func setAlarm(_ alarm: FenceAlarm, zone: Int, on: Bool) throws(DeviceError) {
        try update(zone, online: false) { z in
            if on {
                z.active.insert(alarm)
                if z.armed || alarm == .tamper || alarm == .power { z.latched.insert(alarm) }
            } else {
                z.active.remove(alarm)
            }
        }
    }

    /// Stops answering, as a host whose bus is cut.
    public func setOffline(_ offline: Bool) { state.withLock { $0.offline = offline } }

    private func update(_ zone: Int, online: Bool = true, _ change: (inout Zone) -> Void) throws(DeviceError) {
        guard (1...zoneCount).contains(zone) else { throw .unknownName(kind: "zone of \(name)", name: String(zone)) }
        let offline = state.withLock { s -> Bool in
            if online && s.offline { return true }
            change(&s.zones[zone - 1])
            return false
        }
        if offline { throw .offline(device: name) }
    }
}
