import AccessCore
import AccessDevices
import Synchronization

/// An output that records every value it is given.
public final class FakeOutputLine: OutputLine, Sendable {
    public let name: String
    private let history = Mutex<[Bool]>([])
    /// Makes the next `set` fail, to test error paths.
    public let failNext = Mutex<DeviceError?>(nil)

    public init(name: String) { self.name = name }

    public func set(_ active: Bool) throws(DeviceError) {
        if let error = failNext.withLock({ e -> DeviceError? in defer { e = nil }; return e }) { throw error }
        history.withLock { $0.append(active) }
    }

    public var values: [Bool] { history.withLock { $0 } }
    public var current: Bool? { values.last }
}

/// A barrier gate whose status the test sets and whose commands it reads.
public final class FakeBarrierGate: BarrierGate, Sendable {
    public let name: String
    private let state: Mutex<(status: BarrierStatus, commands: [BarrierCommand], offline: Bool)>

    public init(name: String, status: BarrierStatus = BarrierStatus(position: .closed, loopOccupied: false)) {
        self.name = name
        state = Mutex((status, [], false))
    }

    public func send(_ command: BarrierCommand) async throws(DeviceError) {
        let offline = state.withLock { s -> Bool in
            if !s.offline { s.commands.append(command) }
            return s.offline
        }
        if offline { throw .offline(device: name) }
    }

    public func status() async throws(DeviceError) -> BarrierStatus {
        let (status, offline) = state.withLock { ($0.status, $0.offline) }
        if offline { throw .offline(device: name) }
        return status
    }

    public var commands: [BarrierCommand] { state.withLock { $0.commands } }
    public func setStatus(_ status: BarrierStatus) { state.withLock { $0.status = status } }
    public func setOffline(_ offline: Bool) { state.withLock { $0.offline = offline } }
}

/// A fence host with zones whose alarms the test raises.
public final class FakeFenceHost: FenceAlarmHost, Sendable {
    public let name: String
    public let zoneCount: Int
    private let zoneStates: Mutex<[FenceZoneStatus]>

    public init(name: String, zoneCount: Int) {
        self.name = name
        self.zoneCount = zoneCount
        zoneStates = Mutex((1...zoneCount).map { FenceZoneStatus(zone: $0, armed: false) })
    }

    public func arm(zone: Int) async throws(DeviceError) { try update(zone) { $0.armed = true } }
    public func disarm(zone: Int) async throws(DeviceError) { try update(zone) { $0.armed = false } }
    public func reset(zone: Int) async throws(DeviceError) { try update(zone) { $0.alarms = [] } }
    public func zones() async throws(DeviceError) -> [FenceZoneStatus] { zoneStates.withLock { $0 } }

    public func raise(_ alarm: FenceAlarm, zone: Int) throws(DeviceError) { try update(zone) { $0.alarms.insert(alarm) } }

    private func update(_ zone: Int, _ change: (inout FenceZoneStatus) -> Void) throws(DeviceError) {
        guard (1...zoneCount).contains(zone) else { throw .unknownName(kind: "zone", name: String(zone)) }
        zoneStates.withLock { change(&$0[zone - 1]) }
    }
}

/// A relay board that remembers its channels.
public final class FakeRelayBoard: RelayBoard, Sendable {
    public let name: String
    public let channelCount: Int
    private let relays: Mutex<[Bool]>

    public init(name: String, channelCount: Int) {
        self.name = name
        self.channelCount = channelCount
        relays = Mutex(Array(repeating: false, count: channelCount))
    }

    public func set(channel: Int, on: Bool) async throws(DeviceError) {
        guard (1...channelCount).contains(channel) else { throw .unknownName(kind: "channel", name: String(channel)) }
        relays.withLock { $0[channel - 1] = on }
    }

    public func channels() async throws(DeviceError) -> [Bool] { relays.withLock { $0 } }
}
