/// One Modbus line: a serial RS-485/RS-232 port (RTU) or a TCP connection, shared by the devices
/// on it. A plain value with defaults; `ModbusBus` validates it.
public struct ModbusBusConfig: Sendable, Equatable {
    /// Serial parity, spelled as libmodbus and device manuals do (`N`, `E`, `O`).
    public enum Parity: String, Sendable, CaseIterable {
        case none = "N", even = "E", odd = "O"
    }

    /// How the line is reached.
    public enum Transport: Sendable, Equatable {
        /// Modbus RTU on a serial device. `rs485` switches the UART into kernel RS-485 mode
        /// (`TIOCSRS485`, for transceivers whose driver enable follows RTS); leave it off for USB
        /// adapters that switch direction themselves. `interFrameGapMicros` is the quiet time kept
        /// between one transaction and the next; `nil` uses 3.5 character times (at least 1750 µs,
        /// as the Modbus serial line spec asks above 19200 baud).
        case rtu(device: String, baud: Int = 9600, parity: Parity = .none, dataBits: Int = 8, stopBits: Int = 1,
                 rs485: Bool = false, interFrameGapMicros: Int? = nil)
        /// Modbus TCP; `host` is a name or an address.
        case tcp(host: String, port: Int = 502)
    }

    /// The line's name in logs, errors and events (e.g. `rs485-1`).
    public var id: String
    public var transport: Transport
    /// How long one request waits for its answer.
    public var responseTimeout: Duration
    /// Further attempts after a request gets no (or a garbled) answer. Exception replies are
    /// answers and are never retried.
    public var retries: Int
    /// Reconnect backoff: after a failed connect the line is not tried again for `reconnectMin`,
    /// doubling on each failure up to `reconnectMax`; requests in between fail at once.
    public var reconnectMin: Duration
    public var reconnectMax: Duration

    public init(id: String, transport: Transport, responseTimeout: Duration = .milliseconds(500), retries: Int = 2,
                reconnectMin: Duration = .milliseconds(200), reconnectMax: Duration = .seconds(30)) {
        self.id = id
        self.transport = transport
        self.responseTimeout = responseTimeout
        self.retries = retries
        self.reconnectMin = reconnectMin
        self.reconnectMax = reconnectMax
    }

    /// The quiet time between transactions: what `.rtu` asks for, zero on TCP.
    public var interFrameGap: Duration {
        guard case .rtu(_, let baud, let parity, let dataBits, let stopBits, _, let gap) = transport else { return .zero }
        if let gap { return .microseconds(gap) }
        // 3.5 characters of start + data + parity + stop bits.
        let bits = 1 + dataBits + (parity == .none ? 0 : 1) + stopBits
        let micros = baud > 0 ? (35 * bits * 1_000_000) / (10 * baud) : 0
        return .microseconds(max(micros, baud > 19_200 ? 1_750 : 0))
    }

    /// What the line is, for error messages: the serial device or host:port.
    public var endpoint: String {
        switch transport {
        case .rtu(let device, _, _, _, _, _, _): return device
        case .tcp(let host, let port): return "\(host):\(port)"
        }
    }

    /// The first thing wrong with this configuration, as `(key, problem)`.
    public func problem() -> (key: String, problem: String)? {
        if id.isEmpty { return ("id", "may not be empty") }
        if responseTimeout <= .zero { return ("response_timeout", "must be positive, not \(responseTimeout)") }
        if !(0...10).contains(retries) { return ("retries", "\(retries) is outside 0…10") }
        if reconnectMin <= .zero || reconnectMax < reconnectMin {
            return ("reconnect", "need 0 < min (\(reconnectMin)) ≤ max (\(reconnectMax))")
        }
        switch transport {
        case .rtu(let device, let baud, _, let dataBits, let stopBits, _, let gap):
            if device.isEmpty { return ("device", "may not be empty") }
            if !(300...4_000_000).contains(baud) { return ("baud", "\(baud) is outside 300…4000000") }
            if !(5...8).contains(dataBits) { return ("data_bits", "\(dataBits) is not 5, 6, 7 or 8") }
            if !(1...2).contains(stopBits) { return ("stop_bits", "\(stopBits) is not 1 or 2") }
            if let gap, !(0...1_000_000).contains(gap) { return ("inter_frame_gap_us", "\(gap) is outside 0…1000000") }
        case .tcp(let host, let port):
            if host.isEmpty { return ("host", "may not be empty") }
            if !(1...65_535).contains(port) { return ("port", "\(port) is outside 1…65535") }
        }
        return nil
    }
}
