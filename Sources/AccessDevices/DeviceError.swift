#if canImport(Glibc)
import Glibc
#endif

/// A device failure, naming the operation, the device or line, and the cause.
public enum DeviceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A libgpiod call failed; `errno` is the C library's.
    case gpio(operation: String, line: String, errno: Int32)
    /// A line named in the board map is not on any GPIO chip.
    case lineNotFound(line: String, chip: String?)
    /// A Modbus call failed with a system error (timeout, broken link …).
    case modbus(operation: String, device: String, errno: Int32)
    /// The Modbus peer answered with an exception (function code | 0x80).
    case modbusException(operation: String, device: String, code: ModbusExceptionCode)
    /// A serial port call failed (open, termios, poll, read) on a reader's device.
    case serial(operation: String, device: String, errno: Int32)
    /// The device did not answer after the configured retries.
    case offline(device: String)
    /// A driver was handed configuration it cannot use (a map of another kind, a bad bus): the
    /// file or bus, the key and what is wrong with it.
    case configuration(file: String, key: String, problem: String)
    /// A name the caller used is not on the board.
    case unknownName(kind: String, name: String)

    public var description: String {
        switch self {
        case .gpio(let operation, let line, let code):
            return "GPIO \(operation) on line \(line) failed: \(Self.errnoText(code)) (errno \(code))"
        case .lineNotFound(let line, let chip):
            return "GPIO line \"\(line)\" not found\(chip.map { " on \($0)" } ?? " on any chip")"
        case .modbus(let operation, let device, let code):
            return "Modbus \(operation) on \(device) failed: \(Self.errnoText(code)) (errno \(code))"
        case .modbusException(let operation, let device, let code):
            return "Modbus \(operation) on \(device): the device answered exception \(code.rawValue) (\(code))"
        case .serial(let operation, let device, let code):
            return "serial \(operation) on \(device) failed: \(Self.errnoText(code)) (errno \(code))"
        case .offline(let device):
            return "device \(device) does not answer"
        case .configuration(let file, let key, let problem):
            return "\(file): \(key): \(problem)"
        case .unknownName(let kind, let name):
            return "no \(kind) named \"\(name)\" on this board"
        }
    }

    static func errnoText(_ code: Int32) -> String {
        // libmodbus numbers its own errors (bad CRC, bad data …) from MODBUS_ENOBASE up.
        if code >= 112_345_678 { return ModbusBus.errorText(code) }
        guard let text = strerror(code) else { return "unknown error" }
        return String(cString: text)
    }
}

/// The exception codes of the Modbus application protocol (V1.1b3, §7).
public enum ModbusExceptionCode: Int32, Sendable, CustomStringConvertible {
    case illegalFunction = 1
    case illegalDataAddress = 2
    case illegalDataValue = 3
    case serverDeviceFailure = 4
    case acknowledge = 5
    case serverDeviceBusy = 6
    case negativeAcknowledge = 7
    case memoryParityError = 8
    case gatewayPathUnavailable = 10
    case gatewayTargetFailedToRespond = 11

    public var description: String {
        switch self {
        case .illegalFunction: return "illegal function"
        case .illegalDataAddress: return "illegal data address"
        case .illegalDataValue: return "illegal data value"
        case .serverDeviceFailure: return "server device failure"
        case .acknowledge: return "acknowledge"
        case .serverDeviceBusy: return "server device busy"
        case .negativeAcknowledge: return "negative acknowledge"
        case .memoryParityError: return "memory parity error"
        case .gatewayPathUnavailable: return "gateway path unavailable"
        case .gatewayTargetFailedToRespond: return "gateway target failed to respond"
        }
    }
}
