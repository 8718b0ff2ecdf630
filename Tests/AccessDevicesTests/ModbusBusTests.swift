import AccessConfig
import AccessCore
import AccessDevices
import AccessTestSupport
import Glibc
import Testing

// The Modbus driver against real peers (pymodbus) on 127.0.0.1 and on a socat pty pair.
// Serialised: timing checks (timeouts, gaps) should not compete with each other for 2 cores.
@Suite("Modbus bus against real peers", .serialized, .timeLimit(.minutes(2)))
struct ModbusBusTests {
    static func map(_ name: String) throws -> DeviceMap {
        try DeviceMap.load(path: "\(ModbusTestEnvironment.repo)/Hardware/devices/\(name)")
    }

    static func tcpBus(_ id: String, _ port: Int, timeout: Duration = .milliseconds(300), retries: Int = 2) throws -> ModbusBus {
        try ModbusBus(config: ModbusBusConfig(id: id, transport: .tcp(host: "127.0.0.1", port: port), responseTimeout: timeout,
                                              retries: retries, reconnectMin: .milliseconds(50), reconnectMax: .milliseconds(400)))
    }

    static func rtuBus(_ id: String, _ device: String, gapMicros: Int? = nil, rs485: Bool = false,
                       timeout: Duration = .milliseconds(200), retries: Int = 2) throws -> ModbusBus {
        try ModbusBus(config: ModbusBusConfig(
            id: id, transport: .rtu(device: device, baud: 115_200, parity: .none, dataBits: 8, stopBits: 1, rs485: rs485,
                                    interFrameGapMicros: gapMicros),
            responseTimeout: timeout, retries: retries))
    }

    @Test func everyFunctionCodeOverTCP() async throws {
        let dir = TemporaryDirectory("modbus-tcp")
        let peer = try await ModbusPeer.tcp(["barrier:1", "fence:2", "relay:3"], dir: dir)
        defer { peer.kill() }
        let bus = try Self.tcpBus("tcp-fc", peer.port)
        try await bus.open()

        try await bus.writeCoil(unit: 3, address: 2, value: true)  // FC05
        #expect(try await bus.readCoils(unit: 3, address: 0, count: 8) == [false, false, true, false, false, false, false, false])  // FC01
        try await bus.writeCoils(unit: 3, address: 4, values: [true, false, true])  // FC15
        #expect(try await bus.readCoils(unit: 3, address: 0, count: 8) == [false, false, true, false, true, false, true, false])
        #expect(try await peer.command("show 3").contains("\"coils\": [false, false, true, false, true, false, true, false]"))
        #expect(try await bus.readDiscreteInputs(unit: 3, address: 0, count: 4) == [false, false, false, false])  // FC02

        try await bus.writeRegisters(unit: 2, address: 0, values: [1, 0, 1, 1])  // FC16
        #expect(try await bus.readHoldingRegisters(unit: 2, address: 0, count: 4) == [1, 0, 1, 1])  // FC03
        try await bus.writeRegister(unit: 2, address: 1, value: 1)  // FC06
        #expect(try await peer.command("show 2").contains("\"armed\": [1, 1, 1, 1]"))
        #expect(try await bus.readInputRegisters(unit: 1, address: 0, count: 2) == [4, 0])  // FC04: closed, no flags

        let stats = await bus.statistics
        #expect(stats.answered == 9 && stats.failed == 0 && stats.retries == 0 && stats.connects == 1)
        await #expect(throws: DeviceError.modbus(operation: "read holding registers (FC03) at 65535…65536", device: "unit 2 on tcp-fc", errno: EINVAL)) {
            try await bus.readHoldingRegisters(unit: 2, address: 65_535, count: 2)
        }
    }

    @Test func roleDriversOverTCP() async throws {
        let dir = TemporaryDirectory("modbus-roles")
        let peer = try await ModbusPeer.tcp(["barrier:1", "fence:2", "relay:3"], dir: dir)
        defer { peer.kill() }
        let bus = try Self.tcpBus("tcp-roles", peer.port)
        let gate = try ModbusBarrierGate(name: "lane-in", bus: bus, unit: 1, map: Self.map("barrier-gate.toml"))
        let fence = try ModbusFenceHost(name: "fence", bus: bus, unit: 2, map: Self.map("fence-host.toml"))
        let relays = try ModbusRelayBoard(name: "relays", bus: bus, unit: 3, map: Self.map("relay-board.toml"))

        // Barrier: open moves opening → open; close is refused while the loop sees a vehicle.
        // The arm travels 5 s here (the peer's default is 0.3 s): a loaded machine must still see
        // it opening right after the command (with 2 s, a full CI run once read it open already).
        try await peer.command("travel 5")
        #expect(try await gate.status() == BarrierStatus(position: .closed, loopOccupied: false))
        try await gate.send(.open)
        #expect(try await gate.status().position == .opening)
        var position = BarrierPosition.opening
        for _ in 0..<1_000 where position == .opening {
            try await Task.sleep(for: .milliseconds(20))
            position = try await gate.status().position
        }
        #expect(position == .open)
        try await peer.command("loop 1 on")
        #expect(try await gate.status() == BarrierStatus(position: .open, loopOccupied: true))
        await #expect(throws: DeviceError.modbusException(operation: "write register (FC06) 0 = 2", device: "lane-in", code: .illegalDataValue)) {
            try await gate.send(.close)
        }
        try await peer.command("loop 1 off")
        try await gate.send(.lock)
        #expect(try await gate.status() == BarrierStatus(position: .open, loopOccupied: false, locked: true))
        try await gate.send(.unlock)
        try await gate.send(.close)
        #expect(try await gate.status().position == .closing)

        // Fence: arm, alarms latched by the host until reset.
        try await fence.arm(zone: 2)
        try await fence.arm(zone: 4)
        try await fence.disarm(zone: 4)
        try await peer.command("alarm 2 2 touch on")
        try await peer.command("alarm 2 3 broken on")
        try await peer.command("alarm 2 3 tamper on")
        #expect(try await fence.zones() == [
            FenceZoneStatus(zone: 1, armed: false), FenceZoneStatus(zone: 2, armed: true, alarms: [.touch]),
            FenceZoneStatus(zone: 3, armed: false, alarms: [.broken, .tamper]), FenceZoneStatus(zone: 4, armed: false),
        ])
        try await peer.command("alarm 2 2 touch off")
        #expect(try await fence.zones()[1].alarms == [.touch])  // still latched
        try await fence.reset(zone: 2)
        #expect(try await fence.zones()[1].alarms == [])
        await #expect(throws: DeviceError.unknownName(kind: "zone of fence", name: "5")) { try await fence.arm(zone: 5) }

        // Relays: FC05 per channel, FC01 to read back; the peer confirms its coils.
        try await relays.set(channel: 1, on: true)
        try await relays.set(channel: 8, on: true)
        #expect(try await relays.channels() == [true, false, false, false, false, false, false, true])
        #expect(try await peer.command("show 3").contains("\"coils\": [true, false, false, false, false, false, false, true]"))
        try await relays.set(channel: 1, on: false)
        #expect(try await relays.channels() == [false, false, false, false, false, false, false, true])
        await #expect(throws: DeviceError.unknownName(kind: "channel of relays", name: "9")) { try await relays.set(channel: 9, on: true) }
    }

    @Test func exceptionRepliesAreDecodedAndNotRetried() async throws {
        let dir = TemporaryDirectory("modbus-exc")
        let peer = try await ModbusPeer.tcp(["barrier:1", "relay:3"], dir: dir)
        defer { peer.kill() }
        let bus = try Self.tcpBus("tcp-exc", peer.port)
        let log = BusEventLog(bus)
        let relays = try ModbusRelayBoard(name: "relays", bus: bus, unit: 3, map: Self.map("relay-board.toml"))

        // Not in the device's map: the peer answers "illegal data address".
        let error = await #expect(throws: DeviceError.modbusException(operation: "read input registers (FC04) at 50", device: "unit 1 on tcp-exc",
                                                                      code: .illegalDataAddress)) {
            try await bus.readInputRegisters(unit: 1, address: 50, count: 1)
        }
        #expect(error?.description == "Modbus read input registers (FC04) at 50 on unit 1 on tcp-exc: the device answered exception 2 (illegal data address)")

        try await peer.command("exception 3 c 0 6")
        await #expect(throws: DeviceError.modbusException(operation: "read coils (FC01) at 0…7", device: "relays", code: .serverDeviceBusy)) {
            try await relays.channels()
        }
        try await peer.command("exception 3 c 0 off")
        #expect(try await relays.channels().count == 8)

        let stats = await bus.statistics
        #expect(stats.exceptions == 2 && stats.retries == 0 && stats.failed == 0)
        // An exception is an answer: both stay online, with no offline event in between.
        #expect(await log.wait(for: "unit 1 on tcp-exc", [true]) == [true])
        #expect(await log.wait(for: "relays", [true]) == [true])
    }

    @Test func deviceThatStopsAnsweringOnASharedRTULine() async throws {
        let dir = TemporaryDirectory("modbus-silent")
        let pty = try await PtyPair(dir: dir)
        defer { pty.kill() }
        let peer = try await ModbusPeer.rtu(["barrier:1", "relay:2"], device: pty.a, dir: dir)
        defer { peer.kill() }
        let timeout = Duration.milliseconds(150)
        let bus = try Self.rtuBus("rtu-silent", pty.b, timeout: timeout, retries: 2)
        let log = BusEventLog(bus)
        let gate = try ModbusBarrierGate(name: "gate", bus: bus, unit: 1, map: Self.map("barrier-gate.toml"))
        let relays = try ModbusRelayBoard(name: "relays", bus: bus, unit: 2, map: Self.map("relay-board.toml"))

        #expect(try await gate.status().position == .closed)
        #expect(try await relays.channels().count == 8)

        try await peer.command("silence 1 on")
        let started = ContinuousClock.now
        await #expect(throws: DeviceError.offline(device: "gate")) { try await gate.status() }
        let spent = ContinuousClock.now - started
        #expect(spent >= timeout * 3, "one attempt and two retries, each waiting for the response timeout")
        #expect(spent < .seconds(3))
        #expect(await bus.statistics.retries == 2)
        #expect(await log.wait(for: "gate", [true, false]) == [true, false])

        // The other device on the line keeps working.
        try await relays.set(channel: 3, on: true)
        #expect(try await relays.channels()[2] == true)
        await #expect(throws: DeviceError.offline(device: "gate")) { try await gate.send(.open) }
        #expect(log.changes(of: "gate") == [true, false], "offline is reported once, not per failed request")

        try await peer.command("silence 1 off")
        try await gate.send(.open)
        #expect(try await gate.status().position == .opening)
        #expect(await log.wait(for: "gate", [true, false, true]) == [true, false, true])
        #expect(log.changes(of: "relays") == [true])
        #expect(await bus.isOnline(1) == true)
    }

    @Test func peerKilledAndRestartedIsReconnectedWithBackoff() async throws {
        let dir = TemporaryDirectory("modbus-restart")
        let first = try await ModbusPeer.tcp(["relay:3"], dir: dir)
        let port = first.port
        defer { first.kill() }
        let bus = try Self.tcpBus("tcp-restart", port, timeout: .milliseconds(200), retries: 1)
        let log = BusEventLog(bus)
        let relays = try ModbusRelayBoard(name: "relays", bus: bus, unit: 3, map: Self.map("relay-board.toml"))
        try await relays.set(channel: 2, on: true)

        first.kill()
        do {
            _ = try await relays.channels()
            Issue.record("a request to a killed peer succeeded")
        } catch {
            switch error {
            case .offline(let device): #expect(device == "relays")
            case .modbus(_, let device, let code):
                #expect([ECONNRESET, ECONNREFUSED, EPIPE].contains(code), "\(error)")
                #expect(device == "relays" || device == "tcp-restart")
            default: Issue.record("unexpected \(error)")
            }
        }
        #expect(await log.wait(for: "relays", [true, false]) == [true, false])
        // While nobody listens, connects are refused and the backoff makes requests fail fast.
        await #expect(throws: DeviceError.modbus(operation: "connect to 127.0.0.1:\(port)", device: "tcp-restart", errno: ECONNREFUSED)) {
            try await relays.channels()
        }

        let second = try await ModbusPeer.tcp(["relay:3"], port: port, dir: dir)
        defer { second.kill() }
        var channels: [Bool]?
        let deadline = ContinuousClock.now + .seconds(5)
        while channels == nil, ContinuousClock.now < deadline {
            channels = try? await relays.channels()
            if channels == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(channels == Array(repeating: false, count: 8), "a fresh peer has every relay off")
        #expect(await log.wait(for: "relays", [true, false, true]) == [true, false, true])
        let stats = await bus.statistics
        #expect(stats.connects == 2 && stats.connectFailures >= 1)
    }

    @Test func twoDevicesShareOneRTULineWithoutInterleaving() async throws {
        let dir = TemporaryDirectory("modbus-shared")
        let pty = try await PtyPair(dir: dir)
        defer { pty.kill() }
        let peer = try await ModbusPeer.rtu(["barrier:1", "relay:2"], device: pty.a, dir: dir)
        defer { peer.kill() }
        let gap = 5_000
        let bus = try Self.rtuBus("rtu-shared", pty.b, gapMicros: gap)
        try await bus.open()
        let gate = try ModbusBarrierGate(name: "gate", bus: bus, unit: 1, map: Self.map("barrier-gate.toml"))
        let relays = try ModbusRelayBoard(name: "relays", bus: bus, unit: 2, map: Self.map("relay-board.toml"))

        let rounds = 15
        let started = ContinuousClock.now
        async let gateReads: [BarrierStatus] = {
            var seen: [BarrierStatus] = []
            for _ in 0..<rounds { seen.append(try await gate.status()) }
            return seen
        }()
        async let relayReads: [[Bool]] = {
            var seen: [[Bool]] = []
            for i in 0..<rounds {
                try await relays.set(channel: i % 8 + 1, on: i % 2 == 0)
                seen.append(try await relays.channels())
            }
            return seen
        }()
        let (statuses, boards) = try await (gateReads, relayReads)
        let elapsed = ContinuousClock.now - started

        #expect(statuses.allSatisfy { $0 == BarrierStatus(position: .closed, loopOccupied: false) })
        var expected = Array(repeating: false, count: 8)
        for (i, board) in boards.enumerated() {
            expected[i % 8] = i % 2 == 0
            #expect(board == expected, "round \(i)")
        }
        let stats = await bus.statistics
        let transactions = rounds * 3  // gate: one FC04 of 2 registers; relays: FC05 + FC01
        #expect(stats.answered == transactions && stats.retries == 0 && stats.failed == 0)
        // Every transaction after the first waited for the gap: the line was never shared.
        #expect(elapsed >= .microseconds(gap * (transactions - 1)), "\(elapsed)")
        #expect(try await peer.command("show 1").contains("\"requests\": \(rounds)"))
        #expect(try await peer.command("show 2").contains("\"requests\": \(rounds * 2)"))
    }

    @Test func rs485ModeOnAPtyIsAClearError() async throws {
        let dir = TemporaryDirectory("modbus-rs485")
        let pty = try await PtyPair(dir: dir)
        defer { pty.kill() }
        let bus = try Self.rtuBus("rtu-485", pty.b, rs485: true)
        let error = await #expect(throws: DeviceError.modbus(operation: "switch \(pty.b) to RS-485 mode", device: "rtu-485", errno: ENOTTY)) {
            try await bus.open()
        }
        #expect(error?.description.contains("Inappropriate ioctl for device") == true)
    }

    @Test func missingSerialDeviceIsNamedAtStart() async throws {
        let path = "/dev/ttyACCESS-missing-\(getpid())"
        let bus = try Self.rtuBus("rs485-9", path)
        let log = BusEventLog(bus)
        let expected = DeviceError.modbus(operation: "open serial device \(path)", device: "rs485-9", errno: ENOENT)
        let error = await #expect(throws: expected) { try await bus.open() }
        #expect(error?.description == "Modbus open serial device \(path) on rs485-9 failed: No such file or directory (errno 2)")
        // A request meanwhile fails at once with the same error and marks the device offline.
        let relays = try ModbusRelayBoard(name: "relays", bus: bus, unit: 2, map: Self.map("relay-board.toml"))
        let started = ContinuousClock.now
        await #expect(throws: expected) { try await relays.channels() }
        #expect(ContinuousClock.now - started < .milliseconds(100))
        #expect(await log.wait(for: "relays", [false]) == [false])
    }
}
