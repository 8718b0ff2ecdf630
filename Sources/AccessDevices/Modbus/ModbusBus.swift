import AccessConfig
import AccessRuntime
import CModbus
#if canImport(Glibc)
import Glibc
#endif

// The one file that calls libmodbus. Everything libmodbus does blocks (select() on the serial
// port or socket for up to the response timeout), so the bus actor runs on a thread of its own
// rather than on the cooperative pool, and one actor per line serialises every device on it.

/// One Modbus line (RTU or TCP) and the devices on it. Requests from any task are carried out one
/// at a time, in order, on the bus's own thread, with the inter-frame gap between them; failed
/// requests are retried and the line reconnected with exponential backoff. `events` reports
/// `.device(name:online:)` whenever a unit starts or stops answering.
public actor ModbusBus {
    public nonisolated let config: ModbusBusConfig
    /// Device online/offline changes, once per change (the first answer, or the first failure,
    /// of a unit counts as a change). One consumer; the newest 256 are kept if it lags.
    public nonisolated let events: AsyncStream<BoardEvent>
    public private(set) var statistics = ModbusBusStatistics()

    private nonisolated let thread: ThreadExecutor
    private let sink: AsyncStream<BoardEvent>.Continuation
    // Used only on the bus thread, and by deinit once nothing else can reach the bus.
    nonisolated(unsafe) private var context: OpaquePointer?
    private var connected = false
    private var closed = false
    private var backoff: Duration
    private var nextConnect = ContinuousClock.now
    private var connectError: DeviceError?
    private var lastTransaction: ContinuousClock.Instant?
    private var online: [UInt8: Bool] = [:]

    public nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    /// Checks the configuration and prepares the line; nothing is opened until `open()` or the
    /// first request.
    public init(config: ModbusBusConfig) throws(DeviceError) {
        if let (key, problem) = config.problem() {
            throw .configuration(file: "bus \(config.id)", key: key, problem: problem)
        }
        self.config = config
        backoff = config.reconnectMin
        (events, sink) = AsyncStream.makeStream(of: BoardEvent.self, bufferingPolicy: .bufferingNewest(256))
        do {
            thread = try ThreadExecutor(threadName: "mb-\(config.id)")
        } catch {
            throw .modbus(operation: "start the executor thread", device: config.id, errno: error.errno)
        }

        let made: OpaquePointer
        do {
            made = try syscall("set up \(config.endpoint)") { () -> OpaquePointer? in
                switch config.transport {
                case .rtu(let device, let baud, let parity, let dataBits, let stopBits, _, _):
                    modbus_new_rtu(device, Int32(baud), CChar(parity.rawValue.utf8.first ?? UInt8(ascii: "N")), Int32(dataBits), Int32(stopBits))
                case .tcp(let host, let port):
                    modbus_new_tcp_pi(host, String(port))
                }
            }
        } catch {
            // deinit stops the thread.
            throw .modbus(operation: error.operation, device: config.id, errno: error.errno)
        }
        let timeout = Self.secondsAndMicros(config.responseTimeout)
        modbus_set_response_timeout(made, timeout.seconds, timeout.micros)
        // Protocol recovery flushes the line after a garbled frame; reconnecting is done here,
        // with backoff, rather than by libmodbus's own blocking link recovery.
        modbus_set_error_recovery(made, MODBUS_ERROR_RECOVERY_PROTOCOL)
        context = made
    }

    // Nothing can be under way: a running request holds a reference to the bus. (Not an
    // `isolated deinit`: with cross-module optimisation the Swift 6.3 compiler reports a
    // "circular reference" on it in every module that uses the bus, in release builds.)
    deinit {
        if let context {
            modbus_close(context)
            modbus_free(context)
        }
        sink.finish()
        thread.stop()
    }

    /// Opens the line now, so a missing serial device or an unreachable host is reported at start
    /// rather than at the first request. Ignores the reconnect backoff.
    public func open() throws(DeviceError) {
        guard !connected else { return }
        do {
            try connectNow()
        } catch {
            noteConnectFailure(error)
            throw error
        }
    }

    /// Closes the line and ends `events`; later requests fail.
    public func close() {
        if connected, let context { modbus_close(context) }
        connected = false
        closed = true
        sink.finish()
    }

    /// Whether the unit answered its last request (`nil`: never asked yet).
    public func isOnline(_ unit: UInt8) -> Bool? { online[unit] }

    // MARK: Function codes

    /// FC01: `count` coils from `address`.
    public func readCoils(unit: ModbusUnit, address: UInt16, count: Int) throws(DeviceError) -> [Bool] {
        let op = "read coils (FC01) \(Self.span(address, count))"
        try check(op, unit, address, count, 1...2000)
        var bits = [UInt8](repeating: 0, count: count)
        try transact(op, unit) { modbus_read_bits($0, Int32(address), Int32(count), &bits) }
        return bits.map { $0 != 0 }
    }

    /// FC02: `count` discrete inputs from `address`.
    public func readDiscreteInputs(unit: ModbusUnit, address: UInt16, count: Int) throws(DeviceError) -> [Bool] {
        let op = "read discrete inputs (FC02) \(Self.span(address, count))"
        try check(op, unit, address, count, 1...2000)
        var bits = [UInt8](repeating: 0, count: count)
        try transact(op, unit) { modbus_read_input_bits($0, Int32(address), Int32(count), &bits) }
        return bits.map { $0 != 0 }
    }

    /// FC03: `count` holding registers from `address`.
    public func readHoldingRegisters(unit: ModbusUnit, address: UInt16, count: Int) throws(DeviceError) -> [UInt16] {
        let op = "read holding registers (FC03) \(Self.span(address, count))"
        try check(op, unit, address, count, 1...125)
        var registers = [UInt16](repeating: 0, count: count)
        try transact(op, unit) { modbus_read_registers($0, Int32(address), Int32(count), &registers) }
        return registers
    }

    /// FC04: `count` input registers from `address`.
    public func readInputRegisters(unit: ModbusUnit, address: UInt16, count: Int) throws(DeviceError) -> [UInt16] {
        let op = "read input registers (FC04) \(Self.span(address, count))"
        try check(op, unit, address, count, 1...125)
        var registers = [UInt16](repeating: 0, count: count)
        try transact(op, unit) { modbus_read_input_registers($0, Int32(address), Int32(count), &registers) }
        return registers
    }

    /// FC05: sets one coil.
    public func writeCoil(unit: ModbusUnit, address: UInt16, value: Bool) throws(DeviceError) {
        let op = "write coil (FC05) \(address) = \(value ? "on" : "off")"
        try transact(op, unit) { modbus_write_bit($0, Int32(address), value ? 1 : 0) }
    }

    /// FC06: sets one holding register.
    public func writeRegister(unit: ModbusUnit, address: UInt16, value: UInt16) throws(DeviceError) {
        let op = "write register (FC06) \(address) = \(value)"
        try transact(op, unit) { modbus_write_register($0, Int32(address), value) }
    }

    /// FC15: sets consecutive coils from `address`.
    public func writeCoils(unit: ModbusUnit, address: UInt16, values: [Bool]) throws(DeviceError) {
        let op = "write coils (FC15) \(Self.span(address, values.count))"
        try check(op, unit, address, values.count, 1...1968)
        let bytes = values.map { UInt8($0 ? 1 : 0) }
        try transact(op, unit) { modbus_write_bits($0, Int32(address), Int32(bytes.count), bytes) }
    }

    /// FC16: sets consecutive holding registers from `address`.
    public func writeRegisters(unit: ModbusUnit, address: UInt16, values: [UInt16]) throws(DeviceError) {
        let op = "write registers (FC16) \(Self.span(address, values.count))"
        try check(op, unit, address, values.count, 1...123)
        try transact(op, unit) { modbus_write_registers($0, Int32(address), Int32(values.count), values) }
    }

    // MARK: Transactions

    /// The name a unit's errors and events carry.
    public nonisolated func deviceName(_ unit: ModbusUnit) -> String {
        unit.name ?? "unit \(unit.id) on \(config.id)"
    }

    private func check(_ op: String, _ unit: ModbusUnit, _ address: UInt16, _ count: Int, _ allowed: ClosedRange<Int>) throws(DeviceError) {
        // Counts the protocol cannot carry, or a span past 65535, are the caller's mistake.
        if !allowed.contains(count) || Int(address) + count - 1 > 65_535 {
            throw .modbus(operation: op, device: deviceName(unit), errno: EINVAL)
        }
    }

    /// Runs one request with retries. `call` returns libmodbus's result: -1 and errno on failure.
    private func transact(_ op: String, _ unit: ModbusUnit, _ call: (OpaquePointer) -> Int32) throws(DeviceError) {
        let device = deviceName(unit)
        var failure = DeviceError.offline(device: device)
        attempts: for attempt in 0...config.retries {
            if attempt > 0 { statistics.retries += 1 }
            let context: OpaquePointer
            do {
                context = try liveContext()
            } catch {
                // Within backoff, or the line cannot be opened: retrying now would not help.
                failure = error
                break attempts
            }
            waitForGap()
            modbus_set_slave(context, Int32(unit.id))
            let result = call(context)
            let code = errno
            lastTransaction = .now
            if result >= 0 {
                statistics.answered += 1
                mark(unit, online: true)
                return
            }
            if let exception = Self.exception(code) {
                statistics.exceptions += 1
                mark(unit, online: true)  // it answered, if only to refuse
                throw .modbusException(operation: op, device: device, code: exception)
            }
            failure = code == ETIMEDOUT ? .offline(device: device) : .modbus(operation: op, device: device, errno: code)
            recover(after: code)
        }
        statistics.failed += 1
        mark(unit, online: false)
        throw failure
    }

    /// After a failed attempt: TCP reconnects (a late answer would otherwise be read as the next
    /// one's); RTU flushes the line, and reopens it only when the port itself failed.
    private func recover(after code: Int32) {
        guard let context else { return }
        let garbled = code == ETIMEDOUT || code > Self.exceptionBase
        if case .rtu = config.transport, garbled {
            modbus_flush(context)
        } else {
            modbus_close(context)
            connected = false
        }
    }

    private func liveContext() throws(DeviceError) -> OpaquePointer {
        guard let context, !closed else {
            throw .modbus(operation: "use closed line \(config.endpoint)", device: config.id, errno: ESHUTDOWN)
        }
        if connected { return context }
        if let connectError, ContinuousClock.now < nextConnect { throw connectError }
        do {
            try connectNow()
        } catch {
            noteConnectFailure(error)
            throw error
        }
        return context
    }

    private func connectNow() throws(DeviceError) {
        guard let context, !closed else {
            throw .modbus(operation: "use closed line \(config.endpoint)", device: config.id, errno: ESHUTDOWN)
        }
        let what: String
        switch config.transport {
        case .rtu(let device, _, _, _, _, _, _): what = "open serial device \(device)"
        case .tcp: what = "connect to \(config.endpoint)"
        }
        do throws(SystemError) {
            _ = try syscall(what) { modbus_connect(context) }
            if case .rtu(let device, _, _, _, _, true, _) = config.transport {
                do {
                    _ = try syscall("switch \(device) to RS-485 mode") { modbus_rtu_set_serial_mode(context, MODBUS_RTU_RS485) }
                } catch {
                    modbus_close(context)
                    throw error
                }
            }
        } catch {
            throw .modbus(operation: error.operation, device: config.id, errno: error.errno)
        }
        connected = true
        connectError = nil
        backoff = config.reconnectMin
        statistics.connects += 1
    }

    private func noteConnectFailure(_ error: DeviceError) {
        statistics.connectFailures += 1
        connectError = error
        nextConnect = .now + backoff
        backoff = min(backoff * 2, config.reconnectMax)
    }

    private func mark(_ unit: ModbusUnit, online now: Bool) {
        guard online[unit.id] != now else { return }
        online[unit.id] = now
        sink.yield(.device(name: deviceName(unit), online: now))
    }

    /// Keeps the line quiet for the inter-frame gap since the last transaction. Blocking is fine:
    /// this is the bus's own thread and nothing else may use the line meanwhile.
    private func waitForGap() {
        guard let last = lastTransaction else { return }
        sleepBlocking(for: last + config.interFrameGap - .now)
    }

    // MARK: Helpers

    /// libmodbus reports a Modbus exception reply as errno MODBUS_ENOBASE + code.
    static let exceptionBase = Int32(MODBUS_ENOBASE)

    static func exception(_ code: Int32) -> ModbusExceptionCode? {
        guard code > exceptionBase else { return nil }
        return ModbusExceptionCode(rawValue: code - exceptionBase)
    }

    /// libmodbus's own text for an errno it returned (covers its bad-CRC and bad-data codes).
    public static func errorText(_ code: Int32) -> String {
        String(cString: modbus_strerror(code))
    }

    static func span(_ address: UInt16, _ count: Int) -> String {
        count == 1 ? "at \(address)" : "at \(address)…\(Int(address) + count - 1)"
    }

    static func secondsAndMicros(_ d: Duration) -> (seconds: UInt32, micros: UInt32) {
        let parts = d.components
        return (UInt32(clamping: parts.seconds), UInt32(clamping: parts.attoseconds / 1_000_000_000_000))
    }
}
