import AccessConfig
import AccessCore
import AccessDevices
import AccessTestSupport
import Glibc
import Testing

@Suite("Modbus device maps")
struct ModbusDeviceMapTests {
    static func shipped(_ name: String) -> String { "\(ModbusTestEnvironment.repo)/Hardware/devices/\(name)" }

    static func text(_ name: String) throws -> String {
        guard let text = readTextFile(shipped(name)) else { throw PeerError(description: "cannot read \(shipped(name))") }
        return text
    }

    @Test func shippedBarrierMap() throws {
        let map = try DeviceMap.load(path: Self.shipped("barrier-gate.toml"))
        let gate = try #require(map.barrierGate)
        #expect(gate.command == ModbusPoint(.writeSingleRegister, 0))
        #expect(gate.commandValues == [.open: 1, .close: 2, .stop: 3, .lock: 4, .unlock: 5])
        #expect(gate.position == ModbusPoint(.readInputRegisters, 0))
        #expect(gate.positionValues == [0: .unknown, 1: .opening, 2: .open, 3: .closing, 4: .closed, 5: .stopped])
        #expect(gate.flags == ModbusPoint(.readInputRegisters, 1))
        #expect([gate.loopOccupiedBit, gate.lockedBit, gate.faultBit] == [0, 1, 2])
        #expect(map.model.contains("barrier"))
    }

    @Test func shippedFenceMap() throws {
        let fence = try #require(try DeviceMap.load(path: Self.shipped("fence-host.toml")).fenceHost)
        #expect(fence.zoneCount == 4)
        #expect(fence.arm == ModbusPoint(.writeSingleRegister, 0))
        #expect(fence.armState == ModbusPoint(.readHoldingRegisters, 0))
        #expect(fence.reset == ModbusPoint(.writeSingleRegister, 10))
        #expect(fence.alarms == ModbusPoint(.readInputRegisters, 0))
        #expect(fence.alarmBits == [.broken: 0, .short: 1, .touch: 2, .tamper: 3, .power: 4])
        #expect(fence.armedValue == 1 && fence.disarmedValue == 0)
    }

    @Test func shippedRelayMap() throws {
        let relay = try #require(try DeviceMap.load(path: Self.shipped("relay-board.toml")).relayBoard)
        #expect(relay.channelCount == 8)
        #expect(relay.write == ModbusPoint(.writeSingleCoil, 0))
        #expect(relay.read == ModbusPoint(.readCoils, 0))
    }

    /// A shipped map with one change, the key the error must name, and words its problem must
    /// contain (the bad value among them).
    struct BadMap: Sendable, CustomTestStringConvertible {
        let file: String
        let from: String
        let to: String
        let key: String
        let words: [String]
        var testDescription: String { "\(file): \(key)" }
    }

    static let badMaps: [BadMap] = [
        BadMap(file: "barrier-gate.toml", from: "[command]\nfunction = \"write_single_register\"\naddress = 0",
               to: "[command]\nfunction = \"write_single_register\"\naddress = 70000", key: "command.address", words: ["70000", "0…65535"]),
        BadMap(file: "barrier-gate.toml", from: "address = 1\n", to: "address = -3\n", key: "flags.address", words: ["-3", "out of range"]),
        BadMap(file: "barrier-gate.toml", from: "function = \"read_input_registers\"\naddress = 0",
               to: "function = \"read_input_register\"\naddress = 0", key: "position.function", words: ["\"read_input_register\"", "not a Modbus function"]),
        BadMap(file: "barrier-gate.toml", from: "function = \"write_single_register\"", to: "function = \"read_coils\"",
               key: "command.function", words: ["\"read_coils\"", "cannot be used here"]),
        BadMap(file: "barrier-gate.toml", from: "fault = 2", to: "falt = 2", key: "flags.bits.falt", words: ["unknown key"]),
        BadMap(file: "barrier-gate.toml", from: "locked = 1\n", to: "locked = 16\n", key: "flags.bits.locked", words: ["16", "0…15"]),
        BadMap(file: "barrier-gate.toml", from: "stop = 3", to: "stop = 2", key: "command.values.stop", words: ["value 2", "command.values.close"]),
        BadMap(file: "barrier-gate.toml", from: "unlock = 5", to: "", key: "command.values.unlock", words: ["is required"]),
        BadMap(file: "fence-host.toml", from: "[alarms]\nfunction = \"read_input_registers\"\naddress = 0",
               to: "[alarms]\nfunction = \"read_input_registers\"\naddress = 65534", key: "alarms.address", words: ["65534", "4 addresses", "65535"]),
        BadMap(file: "fence-host.toml", from: "touch = 2", to: "touch = \"2\"", key: "alarms.bits.touch", words: ["must be an integer"]),
        BadMap(file: "fence-host.toml", from: "zones = 4", to: "zones = 0", key: "zones", words: ["0", "1…64"]),
        BadMap(file: "relay-board.toml", from: "function = \"read_coils\"", to: "function = \"FC01\"", key: "read.function", words: ["\"FC01\""]),
        BadMap(file: "relay-board.toml", from: "[read]", to: "[reed]", key: "reed", words: ["unknown key"]),
        BadMap(file: "relay-board.toml", from: "kind = \"relay-board\"", to: "kind = \"relay\"", key: "kind", words: ["\"relay\""]),
    ]

    @Test(arguments: badMaps)
    func badMapIsRefusedNamingFileKeyAndValue(_ bad: BadMap) throws {
        let original = try Self.text(bad.file)
        #expect(original.contains(bad.from), "the mutation must apply to the shipped file")
        let dir = TemporaryDirectory("modbus-map")
        let path = dir.write(bad.file, original.replacingFirst(bad.from, with: bad.to))
        let error = try #require(#expect(throws: ConfigError.self) { try DeviceMap.load(path: path) })
        #expect(error.file == path)
        #expect(error.key == bad.key)
        for word in bad.words { #expect(error.problem.contains(word), "\(error.problem)") }
        let line = try #require(error.line, "the line of \(bad.key)")
        #expect(error.description.hasPrefix("\(path):\(line): \(bad.key): "))
    }

    @Test func missingFileIsNamed() {
        #expect(throws: ConfigError(file: "/nonexistent/gate.toml", line: nil, key: "file", problem: "cannot be read: No such file or directory")) {
            try DeviceMap.load(path: "/nonexistent/gate.toml")
        }
    }

    @Test func driverRefusesAMapOfAnotherKind() throws {
        let map = try DeviceMap.load(path: Self.shipped("relay-board.toml"))
        let bus = try ModbusBus(config: ModbusBusConfig(id: "unused", transport: .tcp(host: "127.0.0.1", port: 1)))
        #expect(throws: DeviceError.configuration(file: map.file, key: "kind", problem: "\"relay-board\" is not a barrier-gate map")) {
            try ModbusBarrierGate(name: "gate", bus: bus, unit: 1, map: map)
        }
    }

    @Test func badBusConfigurationIsNamed() {
        let config = ModbusBusConfig(id: "rs485-1", transport: .rtu(device: "/dev/ttyS1", baud: 115_200, dataBits: 9))
        #expect(throws: DeviceError.configuration(file: "bus rs485-1", key: "data_bits", problem: "9 is not 5, 6, 7 or 8")) {
            try ModbusBus(config: config)
        }
    }

    @Test func interFrameGapIsThreeAndAHalfCharacters() {
        #expect(ModbusBusConfig(id: "a", transport: .rtu(device: "x", baud: 9600)).interFrameGap == .microseconds(3645))
        #expect(ModbusBusConfig(id: "a", transport: .rtu(device: "x", baud: 115_200)).interFrameGap == .microseconds(1750))
        #expect(ModbusBusConfig(id: "a", transport: .rtu(device: "x", interFrameGapMicros: 5000)).interFrameGap == .microseconds(5000))
        #expect(ModbusBusConfig(id: "a", transport: .tcp(host: "h")).interFrameGap == .zero)
    }
}

private extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = firstRange(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(r, with: replacement)
        return copy
    }
}
