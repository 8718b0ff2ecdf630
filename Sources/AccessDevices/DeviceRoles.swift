import AccessCore

// Devices by the role they play at a gate, not by how they are wired. Each role has a real
// driver (GPIO through libgpiod, or Modbus through libmodbus) and a simulated one.

/// Something that happened on the board, in the order the driver saw it.
public enum BoardEvent: Sendable, Equatable {
    /// A named input changed; `active` already accounts for active-low wiring and NO/NC.
    case input(line: String, active: Bool, monotonicNanos: UInt64)
    /// A card reader completed a Wiegand frame.
    case card(reader: String, frame: WiegandFrame, lastEdgeNanos: UInt64)
    /// A keypad key (Wiegand 4- or 8-bit burst).
    case key(reader: String, key: KeypadKey, lastEdgeNanos: UInt64)
    /// A frame that failed parity, had a length no format accepts, or was cut by an overrun:
    /// counted and dropped, never decoded as a card.
    case garbled(reader: String, reason: WiegandGarble)
    /// The kernel's edge queue filled before it was read: edges may have been lost on `line`.
    case overrun(line: String)
    /// A device came online or went offline (Modbus devices, readers with a supervision input,
    /// serial QR readers unplugged and plugged back).
    case device(name: String, online: Bool)
    /// A QR reader read a code (one line of its serial output).
    case qr(reader: String, code: String)
    /// A reader's line that is no code (noise, over-long, non-printable): counted and dropped.
    case garbledLine(reader: String, problem: String)
}

/// An output line driven by role: lock relay, siren, light, barrier dry contact.
public protocol OutputLine: Sendable {
    var name: String { get }
    /// Drives the line: `true` energises the role (unlocks, sounds, lights), whatever the wiring.
    func set(_ active: Bool) throws(DeviceError)
}

/// A door lock relay. Fail-safe locks release when unpowered; fail-secure ones stay locked.
public struct DoorLock: Sendable {
    public let output: any OutputLine
    public let failSafe: Bool

    public init(output: any OutputLine, failSafe: Bool) {
        self.output = output
        self.failSafe = failSafe
    }

    /// Releases (true) or locks (false) the door. For a fail-safe lock the relay holds the door
    /// locked while energised, so release de-energises it.
    public func release(_ released: Bool) throws(DeviceError) {
        try output.set(failSafe ? !released : released)
    }
}

/// A barrier gate's reported state.
public struct BarrierStatus: Sendable, Equatable {
    public var position: BarrierPosition
    /// The vehicle loop (or infrared beam) under the arm sees a vehicle.
    public var loopOccupied: Bool
    /// The gate is locked open or closed and ignores open/close.
    public var locked: Bool
    /// The device reports a fault (motor, encoder, over-current …).
    public var fault: Bool

    public init(position: BarrierPosition, loopOccupied: Bool, locked: Bool = false, fault: Bool = false) {
        self.position = position
        self.loopOccupied = loopOccupied
        self.locked = locked
        self.fault = fault
    }
}

/// A vehicle barrier gate.
public protocol BarrierGate: Sendable {
    var name: String { get }
    func send(_ command: BarrierCommand) async throws(DeviceError)
    func status() async throws(DeviceError) -> BarrierStatus
}

/// One zone of a fence alarm host.
public struct FenceZoneStatus: Sendable, Equatable {
    public var zone: Int
    public var armed: Bool
    /// The alarms the host reports now (the controller latches them until reset).
    public var alarms: Set<FenceAlarm>

    public init(zone: Int, armed: Bool, alarms: Set<FenceAlarm> = []) {
        self.zone = zone
        self.armed = armed
        self.alarms = alarms
    }
}

/// A pulse electronic-fence alarm host.
public protocol FenceAlarmHost: Sendable {
    var name: String { get }
    var zoneCount: Int { get }
    func arm(zone: Int) async throws(DeviceError)
    func disarm(zone: Int) async throws(DeviceError)
    /// Clears the host's own latched alarm for a zone.
    func reset(zone: Int) async throws(DeviceError)
    func zones() async throws(DeviceError) -> [FenceZoneStatus]
}

/// A Modbus relay board (coils driven with function 05/15).
public protocol RelayBoard: Sendable {
    var name: String { get }
    var channelCount: Int { get }
    func set(channel: Int, on: Bool) async throws(DeviceError)
    func channels() async throws(DeviceError) -> [Bool]
}
