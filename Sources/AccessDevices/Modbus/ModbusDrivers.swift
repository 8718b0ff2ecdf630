import AccessConfig
import AccessCore

// Role drivers over a ModbusBus: what each register means comes from the device map, so a
// different model needs a new TOML file, not new code.

/// A barrier gate driven through its command register, read through its position and flag
/// registers (`Hardware/devices/barrier-gate.toml`).
public struct ModbusBarrierGate: BarrierGate {
    public let name: String
    public let bus: ModbusBus
    public let unit: ModbusUnit
    public let map: BarrierGateMap

    /// Fails when `map` is not a barrier-gate map.
    public init(name: String, bus: ModbusBus, unit: UInt8, map: DeviceMap) throws(DeviceError) {
        guard let gate = map.barrierGate else { throw map.wrongKind(wanted: "barrier-gate") }
        self.name = name
        self.bus = bus
        self.unit = ModbusUnit(unit, name: name)
        self.map = gate
    }

    public func send(_ command: BarrierCommand) async throws(DeviceError) {
        // The parser requires a value for every command.
        let value = map.commandValues[command] ?? 0
        try await write(map.command, value)
    }

    public func status() async throws(DeviceError) -> BarrierStatus {
        let position: UInt16
        let flags: UInt16
        if map.flags.function == map.position.function && map.flags.address == map.position.address &+ 1 {
            let both = try await read(map.position, count: 2)  // adjacent: one transaction
            (position, flags) = (both[0], both[1])
        } else {
            position = try await read(map.position, count: 1)[0]
            flags = try await read(map.flags, count: 1)[0]
        }
        func bit(_ n: Int) -> Bool { flags & (1 << n) != 0 }
        return BarrierStatus(position: map.positionValues[position] ?? .unknown, loopOccupied: bit(map.loopOccupiedBit),
                             locked: bit(map.lockedBit), fault: bit(map.faultBit))
    }

    private func write(_ point: ModbusPoint, _ value: UInt16) async throws(DeviceError) {
        if point.function == .writeMultipleRegisters {
            try await bus.writeRegisters(unit: unit, address: point.address, values: [value])
        } else {
            try await bus.writeRegister(unit: unit, address: point.address, value: value)
        }
    }

    private func read(_ point: ModbusPoint, count: Int) async throws(DeviceError) -> [UInt16] {
        try await readRegisters(bus, unit, point, count)
    }
}

/// A pulse-fence alarm host with per-zone arm registers, a reset register and per-zone alarm
/// bit registers (`Hardware/devices/fence-host.toml`). Zones are numbered from 1.
public struct ModbusFenceHost: FenceAlarmHost {
    public let name: String
    public let bus: ModbusBus
    public let unit: ModbusUnit
    public let map: FenceHostMap

    public var zoneCount: Int { map.zoneCount }

    /// Fails when `map` is not a fence-host map.
    public init(name: String, bus: ModbusBus, unit: UInt8, map: DeviceMap) throws(DeviceError) {
        guard let fence = map.fenceHost else { throw map.wrongKind(wanted: "fence-host") }
        self.name = name
        self.bus = bus
        self.unit = ModbusUnit(unit, name: name)
        self.map = fence
    }

    public func arm(zone: Int) async throws(DeviceError) {
        try await bus.writeRegister(unit: unit, address: try address(map.arm, zone), value: map.armedValue)
    }

    public func disarm(zone: Int) async throws(DeviceError) {
        try await bus.writeRegister(unit: unit, address: try address(map.arm, zone), value: map.disarmedValue)
    }

    public func reset(zone: Int) async throws(DeviceError) {
        _ = try address(map.reset, zone)
        try await bus.writeRegister(unit: unit, address: map.reset.address, value: UInt16(zone))
    }

    public func zones() async throws(DeviceError) -> [FenceZoneStatus] {
        let armed = try await readRegisters(bus, unit, map.armState, map.zoneCount)
        let alarms = try await readRegisters(bus, unit, map.alarms, map.zoneCount)
        return (0..<map.zoneCount).map { i in
            let active = FenceAlarm.allCases.filter { alarms[i] & (1 << (map.alarmBits[$0] ?? 16)) != 0 }
            return FenceZoneStatus(zone: i + 1, armed: armed[i] == map.armedValue, alarms: Set(active))
        }
    }

    private func address(_ point: ModbusPoint, _ zone: Int) throws(DeviceError) -> UInt16 {
        guard (1...map.zoneCount).contains(zone) else { throw .unknownName(kind: "zone of \(name)", name: "\(zone)") }
        return point.address + UInt16(zone - 1)
    }
}

/// A relay board whose channels are coils, switched with FC05 and read with FC01
/// (`Hardware/devices/relay-board.toml`). Channels are numbered from 1; `channels()[0]` is
/// channel 1.
public struct ModbusRelayBoard: RelayBoard {
    public let name: String
    public let bus: ModbusBus
    public let unit: ModbusUnit
    public let map: RelayBoardMap

    public var channelCount: Int { map.channelCount }

    /// Fails when `map` is not a relay-board map.
    public init(name: String, bus: ModbusBus, unit: UInt8, map: DeviceMap) throws(DeviceError) {
        guard let board = map.relayBoard else { throw map.wrongKind(wanted: "relay-board") }
        self.name = name
        self.bus = bus
        self.unit = ModbusUnit(unit, name: name)
        self.map = board
    }

    public func set(channel: Int, on: Bool) async throws(DeviceError) {
        guard (1...map.channelCount).contains(channel) else {
            throw .unknownName(kind: "channel of \(name)", name: "\(channel)")
        }
        try await bus.writeCoil(unit: unit, address: map.write.address + UInt16(channel - 1), value: on)
    }

    public func channels() async throws(DeviceError) -> [Bool] {
        if map.read.function == .readDiscreteInputs {
            return try await bus.readDiscreteInputs(unit: unit, address: map.read.address, count: map.channelCount)
        }
        return try await bus.readCoils(unit: unit, address: map.read.address, count: map.channelCount)
    }
}

private func readRegisters(_ bus: ModbusBus, _ unit: ModbusUnit, _ point: ModbusPoint, _ count: Int) async throws(DeviceError) -> [UInt16] {
    if point.function == .readInputRegisters {
        return try await bus.readInputRegisters(unit: unit, address: point.address, count: count)
    }
    return try await bus.readHoldingRegisters(unit: unit, address: point.address, count: count)
}

extension DeviceMap {
    /// The error a driver raises when handed a map of another kind.
    func wrongKind(wanted: String) -> DeviceError {
        .configuration(file: file, key: "kind", problem: "\"\(role.kind)\" is not a \(wanted) map")
    }
}
