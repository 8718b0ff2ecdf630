/// The two clocks every step is taken at: the monotonic one that timers run on, and the wall
/// clock events are stamped with (which may be unset or jump).
public struct SiteTime: Sendable, Equatable {
    public var mono: MonotonicNanos
    /// Microseconds since 1970 (CLOCK_REALTIME).
    public var wall: Int64

    public init(mono: MonotonicNanos, wall: Int64) {
        self.mono = mono
        self.wall = wall
    }

    /// The same instant `seconds` later on both clocks.
    public func advanced(bySeconds seconds: Double) -> SiteTime {
        let nanos = UInt64(seconds * 1e9)
        return SiteTime(mono: mono + nanos, wall: wall + Int64(nanos / 1000))
    }
}

/// What an operator may ask of a fence zone.
public enum FenceCommand: String, Sendable, CaseIterable {
    case arm, disarm, reset
}

/// What an operator may ask of a reader: clear its latched tamper alarm (once the switch is back).
public enum ReaderCommand: String, Sendable, CaseIterable {
    case reset
}

/// What a field device is asked to do. Each device has one queue, so its commands reach it in
/// the order the site sent them.
public enum FieldCommand: Sendable, Equatable, CustomStringConvertible {
    case barrier(BarrierCommand)
    case arm(zone: Int, armed: Bool)
    /// Clears the host's latch for a zone; the site hears back with `fenceResetDone`.
    case reset(zone: Int)

    public var description: String {
        switch self {
        case .barrier(let c): return c.rawValue
        case .arm(let zone, let armed): return "\(armed ? "arm" : "disarm") zone \(zone)"
        case .reset(let zone): return "reset zone \(zone)"
        }
    }
}

/// One zone as a fence host reports it.
public struct FenceZoneReport: Sendable, Equatable {
    public var zone: Int
    public var armed: Bool
    public var alarms: Set<FenceAlarmKind>

    public init(zone: Int, armed: Bool, alarms: Set<FenceAlarmKind> = []) {
        self.zone = zone
        self.armed = armed
        self.alarms = alarms
    }
}

/// Everything that can happen to a site.
public enum SiteInput: Sendable {
    /// Normal running begins: every lock to its locked state, then the operators' standing modes.
    case start(modes: [String: PortalMode])
    /// A controlled stop: every lock to its stopped (fail-safe or fail-secure) state.
    case stop
    /// A card at a reader or a plate at a lane's camera.
    case credential(reader: String, PresentedCredential)
    case key(reader: String, KeypadKey)
    case garbled(reader: String, problem: String)
    case overrun(line: String)
    /// A named input line's level (contact, exit button, fire, call, tamper).
    case input(line: String, active: Bool)
    case deviceOnline(device: String, online: Bool)
    case barrierStatus(device: String, position: BarrierPosition, loopOccupied: Bool, fault: Bool)
    case fenceStatus(device: String, zones: [FenceZoneReport])
    /// A fence host's latch was cleared (`zones`: its report afterwards) or could not be (nil).
    case fenceResetDone(device: String, zone: Int, zones: [FenceZoneReport]?)
    case deviceCommandFailed(device: String, command: FieldCommand, error: String)
    /// An operator's command at a door's or a lane's portal (`reset-alarm` also at a fence zone).
    case portalCommand(portal: String, DoorCommand, operator: String)
    case fenceCommand(portal: String, FenceCommand, operator: String)
    /// An operator's command at a reader (its tamper alarm reset).
    case readerCommand(reader: String, ReaderCommand, operator: String)
    /// An operator clears a person's anti-passback state at every portal.
    case antiPassbackReset(person: String, operator: String)
    /// Time passes: door and lane timers, arm schedules, the wall clock watched.
    case tick
    /// A new roster took effect.
    case roster(AccessPolicy)
}
