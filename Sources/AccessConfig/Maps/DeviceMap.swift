import AccessCore
import TOMLKit

/// A Modbus function a device map may name, by the name used in `Hardware/devices/*.toml`.
public enum ModbusFunction: String, Sendable, CaseIterable {
    case readCoils = "read_coils"
    case readDiscreteInputs = "read_discrete_inputs"
    case readHoldingRegisters = "read_holding_registers"
    case readInputRegisters = "read_input_registers"
    case writeSingleCoil = "write_single_coil"
    case writeSingleRegister = "write_single_register"
    case writeMultipleCoils = "write_multiple_coils"
    case writeMultipleRegisters = "write_multiple_registers"

    /// The function code (FC01 … FC16).
    public var code: Int {
        switch self {
        case .readCoils: return 1
        case .readDiscreteInputs: return 2
        case .readHoldingRegisters: return 3
        case .readInputRegisters: return 4
        case .writeSingleCoil: return 5
        case .writeSingleRegister: return 6
        case .writeMultipleCoils: return 15
        case .writeMultipleRegisters: return 16
        }
    }
}

/// Where a value lives on a device: the function that reaches it and its (first) address.
public struct ModbusPoint: Sendable, Equatable {
    public var function: ModbusFunction
    public var address: UInt16

    public init(_ function: ModbusFunction, _ address: UInt16) {
        self.function = function
        self.address = address
    }
}

/// A barrier gate's registers: a command register and position and flag registers.
public struct BarrierGateMap: Sendable, Equatable {
    public var command: ModbusPoint
    /// The value written to `command` for each command.
    public var commandValues: [BarrierCommand: UInt16]
    public var position: ModbusPoint
    /// The position each value of the position register means; other values read as `.unknown`.
    public var positionValues: [UInt16: BarrierPosition]
    public var flags: ModbusPoint
    public var loopOccupiedBit: Int
    public var lockedBit: Int
    public var faultBit: Int
}

/// A pulse-fence alarm host's registers, one per zone from each point's address (zone 1 first).
public struct FenceHostMap: Sendable, Equatable {
    public var zoneCount: Int
    /// Zone n's arm register is `arm.address + n - 1`; written `armedValue` or `disarmedValue`.
    public var arm: ModbusPoint
    public var armedValue: UInt16
    public var disarmedValue: UInt16
    /// Read back per zone; `armedValue` means armed.
    public var armState: ModbusPoint
    /// Writing a zone number here clears the host's latched alarms of that zone.
    public var reset: ModbusPoint
    /// One register per zone; each alarm type is one bit.
    public var alarms: ModbusPoint
    public var alarmBits: [FenceAlarm: Int]
}

/// A relay board: channel n (from 1) is coil `write.address + n - 1`.
public struct RelayBoardMap: Sendable, Equatable {
    public var channelCount: Int
    public var write: ModbusPoint
    public var read: ModbusPoint
}

/// One device model's register map, read from a TOML file under `Hardware/devices/`.
public struct DeviceMap: Sendable, Equatable {
    public enum Role: Sendable, Equatable {
        case barrierGate(BarrierGateMap)
        case fenceHost(FenceHostMap)
        case relayBoard(RelayBoardMap)

        /// The `kind` value that selects this role.
        public var kind: String {
            switch self {
            case .barrierGate: return "barrier-gate"
            case .fenceHost: return "fence-host"
            case .relayBoard: return "relay-board"
            }
        }
    }

    /// The file it came from, named in every error about it.
    public var file: String
    public var model: String
    public var vendorNote: String
    public var role: Role

    /// Reads and checks a map file.
    public static func load(path: String) throws(ConfigError) -> DeviceMap {
        try MapParser(r: try TOMLReader.load(path: path)).parse()
    }

    /// Checks a map's text; errors name `file`, the line, the key (e.g. `position.address`) and
    /// the value.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> DeviceMap {
        try MapParser(r: try TOMLReader(text: text, file: file)).parse()
    }

    public var barrierGate: BarrierGateMap? {
        if case .barrierGate(let m) = role { return m }
        return nil
    }

    public var fenceHost: FenceHostMap? {
        if case .fenceHost(let m) = role { return m }
        return nil
    }

    public var relayBoard: RelayBoardMap? {
        if case .relayBoard(let m) = role { return m }
        return nil
    }
}

private struct MapParser {
    let r: TOMLReader

    static let registerReads: [ModbusFunction] = [.readHoldingRegisters, .readInputRegisters]
    static let bitReads: [ModbusFunction] = [.readCoils, .readDiscreteInputs]
    static let registerWrites: [ModbusFunction] = [.writeSingleRegister, .writeMultipleRegisters]

    func error(_ key: String, _ problem: String) -> ConfigError { r.error(key, problem) }

    func parse() throws(ConfigError) -> DeviceMap {
        let root = r.root
        let kinds = ["barrier-gate", "fence-host", "relay-board"]
        let kind = try string(root, "kind")
        let model = try string(root, "model")
        let note = try r.string(root, "vendor_note", required: true, allowEmpty: true)
        let role: DeviceMap.Role
        switch kind {
        case "barrier-gate":
            try allowOnly(root, "", ["kind", "model", "vendor_note", "command", "position", "flags"])
            role = .barrierGate(try barrierGate(root))
        case "fence-host":
            try allowOnly(root, "", ["kind", "model", "vendor_note", "zones", "arm", "arm_state", "reset", "alarms"])
            role = .fenceHost(try fenceHost(root))
        case "relay-board":
            try allowOnly(root, "", ["kind", "model", "vendor_note", "channels", "write", "read"])
            role = .relayBoard(try relayBoard(root))
        default:
            throw error("kind", "\"\(kind)\" is not one of \(kinds.joined(separator: ", "))")
        }
        return DeviceMap(file: r.file, model: model, vendorNote: note, role: role)
    }

    func barrierGate(_ root: TOMLTable) throws(ConfigError) -> BarrierGateMap {
        let command = try table(root, "command")
        try allowOnly(command, "command", ["function", "address", "values"])
        let commandPoint = try point(command, "command", allowed: Self.registerWrites, span: 1)
        let commandTable = try table(command, "command.values")
        try allowOnly(commandTable, "command.values", BarrierCommand.allCases.map(\.rawValue))
        var commandValues: [BarrierCommand: UInt16] = [:]
        for c in BarrierCommand.allCases {
            commandValues[c] = UInt16(try int(commandTable, "command.values.\(c.rawValue)", 0...65_535))
        }
        try distinct(commandValues.map { ("command.values.\($0.key.rawValue)", Int($0.value)) }, what: "value")

        let position = try table(root, "position")
        try allowOnly(position, "position", ["function", "address", "values"])
        let positionPoint = try point(position, "position", allowed: Self.registerReads, span: 1)
        let positionTable = try table(position, "position.values")
        try allowOnly(positionTable, "position.values", BarrierPosition.allCases.map(\.rawValue))
        var positionValues: [UInt16: BarrierPosition] = [:]
        var seen: [(String, Int)] = []
        for p in BarrierPosition.allCases where positionTable.contains(key: p.rawValue) || p != .unknown {
            let value = try int(positionTable, "position.values.\(p.rawValue)", 0...65_535)
            seen.append(("position.values.\(p.rawValue)", value))
            positionValues[UInt16(value)] = p
        }
        try distinct(seen, what: "value")

        let flags = try table(root, "flags")
        try allowOnly(flags, "flags", ["function", "address", "bits"])
        let flagsPoint = try point(flags, "flags", allowed: Self.registerReads, span: 1)
        let bits = try table(flags, "flags.bits")
        try allowOnly(bits, "flags.bits", ["loop_occupied", "locked", "fault"])
        let loop = try int(bits, "flags.bits.loop_occupied", 0...15)
        let locked = try int(bits, "flags.bits.locked", 0...15)
        let fault = try int(bits, "flags.bits.fault", 0...15)
        try distinct([("flags.bits.loop_occupied", loop), ("flags.bits.locked", locked), ("flags.bits.fault", fault)], what: "bit")
        return BarrierGateMap(command: commandPoint, commandValues: commandValues, position: positionPoint,
                              positionValues: positionValues, flags: flagsPoint, loopOccupiedBit: loop, lockedBit: locked,
                              faultBit: fault)
    }

    func fenceHost(_ root: TOMLTable) throws(ConfigError) -> FenceHostMap {
        let zones = try int(root, "zones", 1...64)
        let arm = try table(root, "arm")
        try allowOnly(arm, "arm", ["function", "address", "armed", "disarmed"])
        let armPoint = try point(arm, "arm", allowed: [.writeSingleRegister], span: zones)
        let armed = try int(arm, "arm.armed", 0...65_535)
        let disarmed = try int(arm, "arm.disarmed", 0...65_535)
        try distinct([("arm.armed", armed), ("arm.disarmed", disarmed)], what: "value")

        let state = try table(root, "arm_state")
        try allowOnly(state, "arm_state", ["function", "address"])
        let statePoint = try point(state, "arm_state", allowed: Self.registerReads, span: zones)

        let reset = try table(root, "reset")
        try allowOnly(reset, "reset", ["function", "address"])
        let resetPoint = try point(reset, "reset", allowed: [.writeSingleRegister], span: 1)

        let alarms = try table(root, "alarms")
        try allowOnly(alarms, "alarms", ["function", "address", "bits"])
        let alarmsPoint = try point(alarms, "alarms", allowed: Self.registerReads, span: zones)
        let bits = try table(alarms, "alarms.bits")
        try allowOnly(bits, "alarms.bits", FenceAlarm.allCases.map(\.rawValue))
        var alarmBits: [FenceAlarm: Int] = [:]
        for a in FenceAlarm.allCases { alarmBits[a] = try int(bits, "alarms.bits.\(a.rawValue)", 0...15) }
        try distinct(FenceAlarm.allCases.map { ("alarms.bits.\($0.rawValue)", alarmBits[$0] ?? 0) }, what: "bit")
        return FenceHostMap(zoneCount: zones, arm: armPoint, armedValue: UInt16(armed), disarmedValue: UInt16(disarmed),
                            armState: statePoint, reset: resetPoint, alarms: alarmsPoint, alarmBits: alarmBits)
    }

    func relayBoard(_ root: TOMLTable) throws(ConfigError) -> RelayBoardMap {
        let channels = try int(root, "channels", 1...256)
        let write = try table(root, "write")
        try allowOnly(write, "write", ["function", "address"])
        let writePoint = try point(write, "write", allowed: [.writeSingleCoil], span: channels)
        let read = try table(root, "read")
        try allowOnly(read, "read", ["function", "address"])
        let readPoint = try point(read, "read", allowed: Self.bitReads, span: channels)
        return RelayBoardMap(channelCount: channels, write: writePoint, read: readPoint)
    }

    // MARK: Typed access

    /// `function` and `address` of a point spanning `span` consecutive addresses.
    func point(_ t: TOMLTable, _ prefix: String, allowed: [ModbusFunction], span: Int) throws(ConfigError) -> ModbusPoint {
        let name = try string(t, "\(prefix).function")
        guard let function = ModbusFunction(rawValue: name) else {
            throw error("\(prefix).function", "\"\(name)\" is not a Modbus function (known: \(ModbusFunction.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard allowed.contains(function) else {
            throw error("\(prefix).function", "\"\(name)\" cannot be used here (use \(allowed.map(\.rawValue).joined(separator: " or ")))")
        }
        let address = try int(t, "\(prefix).address", 0...65_535)
        if address + span - 1 > 65_535 {
            throw error("\(prefix).address", "\(address) + \(span) addresses runs past 65535")
        }
        return ModbusPoint(function, UInt16(address))
    }

    func allowOnly(_ table: TOMLTable, _ prefix: String, _ allowed: [String]) throws(ConfigError) {
        try r.allowOnly(table, prefix, allowed)
    }

    /// The table `key`, required.
    func table(_ parent: TOMLTable, _ key: String) throws(ConfigError) -> TOMLTable {
        try r.requiredTable(parent, key)
    }

    /// A required string; empty only where a map may leave it so.
    func string(_ table: TOMLTable, _ key: String) throws(ConfigError) -> String {
        try r.string(table, key, required: true, allowEmpty: true)
    }

    /// A required integer within `range`.
    func int(_ table: TOMLTable, _ key: String, _ range: ClosedRange<Int>) throws(ConfigError) -> Int {
        try r.int(table, key, default: nil, range: range)
    }

    func distinct(_ entries: [(key: String, value: Int)], what: String) throws(ConfigError) {
        var seen: [Int: String] = [:]
        for (key, value) in entries.sorted(by: { $0.key < $1.key }) {
            if let other = seen[value] { throw error(key, "\(what) \(value) is already used by \(other)") }
            seen[value] = key
        }
    }
}
